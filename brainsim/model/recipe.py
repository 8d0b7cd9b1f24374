"""The recipe: the model described lazily, one gid at a time (Arbor's recipe).

Cells are numbered by population in config order. Everything a cell needs (its type, its incoming
connections, its stimuli, its probes) is computed from the config and (seed, gid) alone, so any
rank can build any cell and results cannot depend on which rank does.
"""

import copy
import fnmatch
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .brain import Brain
from .cells import build_cell_type, scale_parameters

SALT_CONNECTION = 1_000
SALT_POISSON = 2_000
SALT_BRAIN = 3_000
SALT_BACKGROUND = 4_000


@dataclass(frozen=True)
class Population:
    name: str
    index: int  # position in the config's cells list; -1 for a population of the brain
    first_gid: int
    count: int
    region: int = -1  # brain region (index into Brain.labels), -1 outside the brain
    cell_type: str = ""  # brain cell type


@dataclass(frozen=True)
class Incoming:
    """Connections onto one cell: parallel arrays, sorted by source gid."""

    source: np.ndarray  # int64 gid
    synapse: tuple  # synapse name per connection
    weight: np.ndarray  # µS
    delay: np.ndarray  # ms


@dataclass(frozen=True)
class Poisson:
    synapse: str
    rate: float  # Hz
    start: float  # ms
    stop: float  # ms
    weight: float  # µS
    stream: tuple  # (seed, gid, salt) for numpy's SeedSequence


@dataclass(frozen=True)
class Probe:
    name: str
    variable: str
    nodes: np.ndarray  # nodes of the cell


class Recipe:
    def __init__(self, config):
        """The model of a config that passed the schema. Nothing is read or built yet: the brain's
        connectome and the populations on first use, each cell type when first asked for (so a recipe
        exists for `check_model` to report on even when the config's references are wrong)."""
        self.config = config
        self._types = {}

    @cached_property
    def brain(self):
        """The Brain of the config's `brain` section (its connectome read), or None without one."""
        return Brain(self.config) if self.config["brain"] is not None else None

    @cached_property
    def populations(self):
        """Every population: the config's cells in order, then the brain's, region after region."""
        first, pops = 0, []
        for i, cell in enumerate(self.config["cells"]):
            pops.append(Population(cell["name"], i, first, cell["count"]))
            first += cell["count"]
        for bp in self.brain.populations if self.brain else ():
            pops.append(Population(bp.name(self.brain.labels), -1, first, bp.count, bp.region, bp.cell_type))
            first += bp.count
        return tuple(pops)

    @cached_property
    def num_cells(self):
        """Cells of every population together."""
        return sum(p.count for p in self.populations)

    @cached_property
    def _starts(self):
        return np.array([p.first_gid for p in self.populations], dtype=np.int64)

    @cached_property
    def _brain_pop(self):
        return {(p.region, p.cell_type): p for p in self.populations if p.region >= 0}

    @cached_property
    def _pop_by_name(self):
        return {p.name: p for p in self.populations}

    @property
    def seed(self):
        return self.config["simulation"]["seed"]

    def resting(self, duration):
        """This model at rest for `duration` ms: the same cells, connections and background drive (a
        subclass's own answers included), without stimuli, interventions and probes — a warm-up."""
        rest = copy.copy(self)
        data = self.config.data
        quiet = {"stimuli": [], "interventions": [], "probes": []}
        simulation = {**data["simulation"], "tstop": duration, "warmup": 0.0}
        rest.config = replace(self.config, data={**data, **quiet, "simulation": simulation})
        return rest

    def population_of(self, gid):
        """The population of gid: the last to start at or before it (empty ones start where the next does)."""
        if not 0 <= gid < self.num_cells:
            raise IndexError(f"gid {gid} is not below the number of cells ({self.num_cells})")
        return self.populations[int(np.searchsorted(self._starts, gid, side="right")) - 1]

    def regions_of(self, gids):
        """Brain region of each gid (-1 outside a brain), vectorised."""
        return self._population_regions[np.searchsorted(self._starts, gids, side="right") - 1]

    @cached_property
    def _population_regions(self):
        return np.array([p.region for p in self.populations], dtype=np.int64)

    def population_table(self):
        """Every population as a JSON-able dict (name, region label or None, cell type, first_gid, count,
        kind), for readers of the output that have no recipe. kind: 'inhibitory' when every synapse its
        cells contact reverses below -40 mV, 'excitatory' when none does, '' otherwise or if it has no
        targets."""
        return [
            {
                "name": p.name,
                "region": None if p.region < 0 else self.brain.labels[p.region],
                "cell_type": p.cell_type or p.name,
                "first_gid": p.first_gid,
                "count": p.count,
                "kind": self._kind(p),
            }
            for p in self.populations
        ]

    def _kind(self, pop):
        targets = [(c["target"], c["synapse"]) for c in self.config["connections"] if c["source"] == pop.name]
        if pop.region >= 0:
            brain = self.config["brain"]
            own = [(r["target"], r["synapse"]) for r in brain["local"] if r["source"] == pop.cell_type]
            long_range = brain["long_range"]
            if long_range is not None and long_range["source"] == pop.cell_type:
                own += list(long_range["targets"].items())
            label = self.brain.labels[pop.region]
            targets += [(f"{label}.{target}", synapse) for target, synapse in own]
        reversals = []
        for target, synapse in targets:
            if target not in self._pop_by_name:
                continue
            site = self.cell_type(target).synapses[synapse]
            names = self.config.mechanisms.param_names(site.mechanism)
            if "e" in names:
                reversals.append(site.params[names.index("e")])
        if not reversals:
            return ""
        inhibitory = [e < -40.0 for e in reversals]
        return "inhibitory" if all(inhibitory) else "excitatory" if not any(inhibitory) else ""

    def population(self, name):
        return self._pop_by_name[name]

    def cell_type(self, name):
        """The CellType of a population (built once, on first use)."""
        if name not in self._types:
            pop = self._pop_by_name[name]
            if pop.region < 0:
                self._types[name] = build_cell_type(
                    self.config["cells"][pop.index], self.config, f"cells[{pop.index}]"
                )
            else:
                factors = self.brain.factors(pop.region, pop.cell_type)
                label = self.brain.labels[pop.region]
                self._types[name] = scale_parameters(
                    self._brain_type(pop.cell_type), factors, name, f"brain.region_overrides.{label}.factors"
                )
        return self._types[name]

    def _brain_type(self, cell_type):
        """A brain cell type before any per-region factor (built once)."""
        key = ("brain type", cell_type)
        if key not in self._types:
            spec = self.config["brain"]["cell_types"][cell_type]
            path = f"brain.cell_types.{cell_type}"
            synapses = [(n, site, f"{path}.synapses.{n}") for n, site in spec["synapses"].items()]
            self._types[key] = build_cell_type({**spec, "name": cell_type}, self.config, path, synapses)
        return self._types[key]

    def matching(self, pattern):
        """Populations whose name matches pattern (a name, or a glob such as '*.pyr' or 'lh-insula.*')."""
        return [p for p in self.populations if fnmatch.fnmatchcase(p.name, pattern)]

    def cell_type_of(self, gid):
        return self.cell_type(self.population_of(gid).name)

    @cached_property
    def min_delay(self):
        """Smallest delay of any connection (ms), or None without connections."""
        rules = [*self.config["connections"], *(self.config["brain"] or {}).get("local", [])]
        lows = [lowest_delay(c["delay"]) for c in rules]
        if self.brain is not None and self.brain.min_long_range_delay() is not None:
            lows.append(self.brain.min_long_range_delay())
        return min(lows) if lows else None

    def expected_indegree(self, population):
        """Mean number of incoming connections of a cell of population, from the rules alone."""
        total = 0.0
        if population.region >= 0:
            brain = self.config["brain"]
            for rule in brain["local"]:
                if rule["target"] == population.cell_type:
                    src = self._brain_pop.get((population.region, rule["source"]))
                    others = 0 if src is None else src.count - (src == population)
                    total += (
                        rule["indegree"] if rule["indegree"] is not None else rule["probability"] * others
                    )
            long_range = brain["long_range"]
            if long_range is not None and population.cell_type in long_range["targets"]:
                total += long_range["indegree"]
        for c in self.config["connections"]:
            if c["target"] != population.name:
                continue
            rule, src = c["rule"], self._pop_by_name[c["source"]]
            others = src.count - (1 if src.name == population.name and not rule.get("autapses", False) else 0)
            total += {
                "ring": 1.0,
                "one_to_one": 1.0,
                "all_to_all": others,
                "fixed_indegree": rule.get("indegree", 0),
                "fixed_probability": rule.get("p", 0.0) * others,
                "pairs": len(rule.get("pairs", [])) / population.count,
            }[rule["kind"]]
        return total

    def connections_on(self, gid):
        """Incoming connections of one cell, drawn from its own random stream."""
        pop = self.population_of(gid)
        j = gid - pop.first_gid
        sources, syns, weights, delays = [], [], [], []
        for k, c in enumerate(self.config["connections"]):
            if c["target"] != pop.name:
                continue
            src = self._pop_by_name[c["source"]]
            rng = np.random.default_rng([self.seed, gid, SALT_CONNECTION + k])
            idx = _sources(c["rule"], src, pop, j, rng)
            sources.append(src.first_gid + idx)
            syns += [c["synapse"]] * idx.size
            weights.append(_draw(c["weight"], idx.size, rng))
            delays.append(_draw(c["delay"], idx.size, rng))
        if pop.region >= 0:
            for part in self._brain_connections(pop, gid):
                sources.append(part[0])
                syns += [part[1]] * part[0].size
                weights.append(part[2])
                delays.append(part[3])
        if not sources:
            return Incoming(np.zeros(0, np.int64), (), np.zeros(0), np.zeros(0))
        source = np.concatenate(sources).astype(np.int64)
        order = np.argsort(source, kind="stable")
        return Incoming(
            source[order],
            tuple(syns[i] for i in order),
            np.concatenate(weights)[order],
            np.concatenate(delays)[order],
        )

    def _brain_connections(self, pop, gid):
        """[(source gids, synapse, weights, delays)] of a brain cell: within its region, then long-range."""
        brain, rng = self.config["brain"], np.random.default_rng([self.seed, gid, SALT_BRAIN])
        k, j = pop.region, gid - pop.first_gid
        for rule in brain["local"]:
            src = self._brain_pop.get((k, rule["source"]))
            if rule["target"] != pop.cell_type or src is None or src.count - (src is pop) < 1:
                continue
            others = src.count - (src is pop)
            if rule["indegree"] is not None:
                idx = rng.integers(0, others, rule["indegree"])
            else:
                idx = np.nonzero(rng.random(others) < rule["probability"])[0]
            if src is pop:
                idx[idx >= j] += 1  # no autapse
            n = idx.size
            yield (
                src.first_gid + idx,
                rule["synapse"],
                _draw(rule["weight"], n, rng),
                _draw(rule["delay"], n, rng),
            )
        long_range = brain["long_range"]
        if long_range is None or pop.cell_type not in long_range["targets"] or long_range["indegree"] == 0:
            return
        sources = [self._brain_pop.get((r, long_range["source"])) for r in range(len(self.brain.labels))]
        w = np.array(
            [
                self.brain.connectome.weights[k, r] if s is not None and s.count else 0.0
                for r, s in enumerate(sources)
            ]
        )
        if w.sum() <= 0:
            return
        counts = rng.multinomial(long_range["indegree"], w / w.sum())
        for r in np.nonzero(counts)[0]:
            n = int(counts[r])
            idx = rng.integers(0, sources[r].count, n)
            delay = self.brain.conduction_delay(k, r) + long_range["synaptic_delay"]
            yield (
                sources[r].first_gid + idx,
                long_range["targets"][pop.cell_type],
                _draw(long_range["weight"], n, rng)
                * long_range["weight_factors"].get(pop.cell_type, 1.0)
                * self.brain.long_range_scale,
                np.full(n, delay),
            )

    def _selected(self, entry, gid):
        """Whether a stimulus/probe entry ('cell': a population name or pattern, 'cells') applies to gid."""
        pop = self.population_of(gid)
        j = gid - pop.first_gid
        return fnmatch.fnmatchcase(pop.name, entry["cell"]) and (
            entry["cells"] == "all" or j in entry["cells"]
        )

    def iclamps_on(self, gid):
        """[(node, delay ms, duration ms, amplitude nA)] for one cell."""
        ct = self.cell_type_of(gid)
        return [
            (ct.locate(s["location"], f"stimuli[{i}].location"), s["delay"], s["duration"], s["amplitude"])
            for i, s in enumerate(self.config["stimuli"])
            if s["kind"] == "iclamp" and self._selected(s, gid)
        ]

    def pulse_trains_on(self, gid):
        """[(node, start, stop, period, width ms, amplitude nA)] of the stimulation interventions on gid."""
        pop = self.population_of(gid)
        trains = []
        for i, item in enumerate(self.config["interventions"]):
            if item["kind"] == "stimulation" and self.intervention_targets(item, pop, f"interventions[{i}]"):
                node = self.cell_type_of(gid).locate(item["location"], f"interventions[{i}].location")
                stop = self.config["simulation"]["tstop"] if item["stop"] is None else item["stop"]
                trains.append(
                    (
                        node,
                        item["start"],
                        stop,
                        1000.0 / item["frequency"],
                        item["pulse_width"],
                        item["amplitude"],
                    )
                )
        return trains

    def intervention_targets(self, item, pop, path):
        """Whether an intervention's regions and cell types include population pop."""
        if pop.region < 0:
            return False
        regions = self.brain.region_indices(item["regions"], f"{path}.regions")
        return pop.region in regions and (item["cell_types"] == "all" or pop.cell_type in item["cell_types"])

    def spike_events_on(self, gid):
        """[(times ms array, synapse name, weight µS)] from 'spikes' stimuli."""
        return [
            (np.asarray(s["times"], float), s["synapse"], s["weight"])
            for s in self.config["stimuli"]
            if s["kind"] == "spikes" and self._selected(s, gid)
        ]

    def poisson_on(self, gid):
        tstop = self.config["simulation"]["tstop"]
        pop = self.population_of(gid)
        drive = None
        if pop.region >= 0 and pop.cell_type in self.config["brain"]["background"]:
            label = self.brain.labels[pop.region]
            own = self.config["brain"]["region_overrides"].get(label, {}).get("background", {})
            given = own.get(pop.cell_type, {})
            drive = {
                **self.config["brain"]["background"][pop.cell_type],
                **{key: value for key, value in given.items() if value is not None},
            }
            scale = self.config["patient"] or {}
            for where in ("all", label):
                drive["rate"] *= scale.get("background", {}).get(where, {}).get(pop.cell_type, 1.0)
        background = (
            [
                Poisson(
                    drive["synapse"],
                    drive["rate"],
                    0.0,
                    tstop,
                    drive["weight"],
                    (self.seed, gid, SALT_BACKGROUND),
                )
            ]
            if drive
            else []
        )
        return background + [
            Poisson(
                s["synapse"],
                s["rate"],
                s["start"],
                tstop if s["stop"] is None else s["stop"],
                s["weight"],
                (self.seed, gid, SALT_POISSON + i),
            )
            for i, s in enumerate(self.config["stimuli"])
            if s["kind"] == "poisson" and self._selected(s, gid)
        ]

    def probes_on(self, gid):
        ct = self.cell_type_of(gid)
        return [
            Probe(p["name"], p["variable"], ct.locate_set(p["location"], f"probes[{i}].location"))
            for i, p in enumerate(self.config["probes"])
            if self._selected(p, gid)
        ]


def _sources(rule, src, tgt, j, rng):
    """Source indices (within the source population) of target cell j under one connection rule."""
    kind, n = rule["kind"], src.count
    same = src.name == tgt.name
    if kind == "ring":
        return np.array([(j - 1) % n])
    if kind == "one_to_one":
        return np.array([j])
    candidates = np.arange(n)
    if same and not rule.get("autapses", False):
        candidates = candidates[candidates != j]
    if kind == "all_to_all":
        return candidates
    if kind == "fixed_indegree":
        return np.sort(rng.choice(candidates, size=rule["indegree"], replace=False))
    if kind == "fixed_probability":
        return candidates[rng.random(candidates.size) < rule["p"]]
    pairs = np.asarray(rule["pairs"], dtype=np.int64).reshape(-1, 2)
    return pairs[pairs[:, 1] == j, 0]


def _draw(value, n, rng):
    """n values of a weight or delay: a constant or uniform over [low, high]."""
    if isinstance(value, dict):
        low, high = value["uniform"][:2]
        return rng.uniform(low, high, n)
    return np.full(n, float(value))


def lowest_delay(delay):
    """The lowest value (ms) of a connection rule's delay: a constant or {uniform: [low, high]}."""
    return delay["uniform"][0] if isinstance(delay, dict) else delay
