"""The recipe: the model described lazily, one gid at a time (Arbor's recipe).

Cells are numbered by population in config order. Everything a cell needs (its type, its incoming
connections, its stimuli, its probes) is computed from the config and (seed, gid) alone, so any
rank can build any cell and results cannot depend on which rank does.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import ConfigError
from ..kernels.mechanisms import CATALOGUE
from .cells import build_cell_type

SALT_CONNECTION = 1_000
SALT_POISSON = 2_000


@dataclass(frozen=True)
class Population:
    name: str
    index: int  # position in the config's cells list
    first_gid: int
    count: int


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
        self.config = config
        first, pops = 0, []
        for i, cell in enumerate(config["cells"]):
            pops.append(Population(cell["name"], i, first, cell["count"]))
            first += cell["count"]
        self.populations = tuple(pops)
        self.num_cells = first
        self._types = {}
        self._pop_by_name = {p.name: p for p in pops}

    @property
    def seed(self):
        return self.config["simulation"]["seed"]

    def population_of(self, gid):
        for pop in self.populations:
            if pop.first_gid <= gid < pop.first_gid + pop.count:
                return pop
        raise IndexError(f"gid {gid} is not below the number of cells ({self.num_cells})")

    def population(self, name):
        return self._pop_by_name[name]

    def cell_type(self, name):
        """The CellType of a population (built once, on first use)."""
        if name not in self._types:
            pop = self._pop_by_name[name]
            self._types[name] = build_cell_type(
                self.config["cells"][pop.index], self.config, f"cells[{pop.index}]"
            )
        return self._types[name]

    def cell_type_of(self, gid):
        return self.cell_type(self.population_of(gid).name)

    @cached_property
    def min_delay(self):
        """Smallest delay of any connection (ms), or None without connections."""
        lows = [
            c["delay"] if not isinstance(c["delay"], dict) else c["delay"]["uniform"][0]
            for c in self.config["connections"]
        ]
        return min(lows) if lows else None

    def expected_indegree(self, population):
        """Mean number of incoming connections of a cell of population, from the rules alone."""
        total = 0.0
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

    def _selected(self, entry, gid):
        """Whether a stimulus/probe entry (with 'cell' and 'cells') applies to gid."""
        pop = self._pop_by_name[entry["cell"]]
        j = gid - pop.first_gid
        return 0 <= j < pop.count and (entry["cells"] == "all" or j in entry["cells"])

    def iclamps_on(self, gid):
        """[(node, delay ms, duration ms, amplitude nA)] for one cell."""
        ct = self.cell_type_of(gid)
        return [
            (ct.locate(s["location"], f"stimuli[{i}].location"), s["delay"], s["duration"], s["amplitude"])
            for i, s in enumerate(self.config["stimuli"])
            if s["kind"] == "iclamp" and self._selected(s, gid)
        ]

    def spike_events_on(self, gid):
        """[(times ms array, synapse name, weight µS)] from 'spikes' stimuli."""
        return [
            (np.asarray(s["times"], float), s["synapse"], s["weight"])
            for s in self.config["stimuli"]
            if s["kind"] == "spikes" and self._selected(s, gid)
        ]

    def poisson_on(self, gid):
        tstop = self.config["simulation"]["tstop"]
        return [
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

    def check(self):
        """Build every cell type and resolve every location and probe variable (what `validate` runs)."""
        for pop in self.populations:
            ct = self.cell_type(pop.name)
            for i, p in enumerate(self.config["probes"]):
                if p["cell"] == pop.name:
                    nodes = ct.locate_set(p["location"], f"probes[{i}].location")
                    probe_variable_check(ct, p["variable"], nodes, f"probes[{i}].variable")
            for i, s in enumerate(self.config["stimuli"]):
                if s["cell"] == pop.name and s["kind"] == "iclamp":
                    ct.locate(s["location"], f"stimuli[{i}].location")


def probe_variable_check(cell_type, variable, nodes, path):
    """Raise ConfigError unless variable can be recorded at every one of nodes."""
    if variable == "v":
        return
    head, _, state = variable.partition(".")
    if head in cell_type.synapses:
        states = CATALOGUE[cell_type.synapses[head].mechanism].STATES
        if state not in states:
            raise ConfigError(
                path, variable, f"a state of synapse '{head}': {[f'{head}.{s}' for s in states]}"
            )
        return
    if head == "cai" and not state:
        head, state = "cadyn", "cai"
    placed = {p.mechanism: p for p in cell_type.mechanisms}
    allowed = (
        ["v"]
        + [f"{m}.{s}" for m in placed for s in CATALOGUE[m].STATES]
        + [f"{n}.{s}" for n, syn in cell_type.synapses.items() for s in CATALOGUE[syn.mechanism].STATES]
    )
    if head not in placed or state not in CATALOGUE[head].STATES:
        raise ConfigError(path, variable, f"one of {allowed}")
    missing = np.setdiff1d(nodes, placed[head].node)
    if missing.size:
        here = ["v"] + [
            f"{m}.{s}" for m, p in placed.items() if np.isin(nodes, p.node).all() for s in CATALOGUE[m].STATES
        ]
        raise ConfigError(
            path,
            variable,
            f"one of {here}, the variables at every probed compartment ('{head}' is not inserted at "
            f"{cell_type.label(int(missing[0]))})",
        )


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
