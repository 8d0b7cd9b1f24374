"""Model-level checks of a config that passed the schema: everything that needs more than one option.

`check_model(recipe)` runs them in one pass, first error first: references between the config's
sections (names exist, indices are in range, delays are >= dt), the brain section and its patient and
intervention overlays, then the brain's populations (its connectome read), every cell type built and
every stimulus, probe and intervention resolved on the cells it applies to. It builds each cell type
once and allocates nothing per cell.
"""

import numpy as np

from ..errors import ConfigError, warn
from .brain import tract_scales
from .recipe import lowest_delay

MAX_EVENTS_PER_STEP = 100
"""Most expected events per step a Poisson source may bring to one synapse (rate × dt): 100,000 inputs at
40 Hz lumped into one synapse at dt = 0.025 ms. Far above it every step is flooded (a run that never
reaches an epoch boundary), so such a rate is refused."""


def check_model(recipe):
    """Raise the first ConfigError of recipe's config (names the key path, the value, what is allowed);
    then warn (BrainsimWarning) of what runs but is probably not what was meant."""
    config = recipe.config
    _check_references(config)
    _check_brain_cells(recipe)
    _check_cells_and_targets(recipe)
    _warn_model(recipe)


def _check_references(data):
    """Cross-references between sections: names exist, indices are in range, delays are >= dt."""
    if not data["cells"] and data["brain"] is None:
        raise ConfigError("cells", [], "at least one population, or a 'brain' section that makes them")
    dt = data["simulation"]["dt"]
    if data["brain"] is not None:
        _check_brain(data["brain"], dt, data.mechanisms)
    _check_overlays(data)
    cells = {c["name"]: c for c in data["cells"]}
    _unique([c["name"] for c in data["cells"]], "cells", "population")
    if data["output"]["sonata"]:
        for i, c in enumerate(data["cells"]):
            if "/" in c["name"] or c["name"] in ("", ".", ".."):
                raise ConfigError(
                    f"cells[{i}].name",
                    c["name"],
                    "a name without '/', not '.' or '..'",
                    detail="output.sonata writes each population as an HDF5 group of that name",
                )
    synapses = {}
    for i, s in enumerate(data["synapses"]):
        _check_population(cells, s["cell"], f"synapses[{i}].cell")
        if (s["cell"], s["name"]) in synapses:
            raise ConfigError(
                f"synapses[{i}].name", s["name"], f"a synapse name not used before on '{s['cell']}'"
            )
        synapses[(s["cell"], s["name"])] = s
    for i, c in enumerate(data["connections"]):
        path = f"connections[{i}]"
        src = _check_population(cells, c["source"], f"{path}.source")
        tgt = _check_population(cells, c["target"], f"{path}.target")
        _check_synapse(synapses, c["target"], c["synapse"], f"{path}.synapse")
        _check_delay(c["delay"], dt, f"{path}.delay")
        rule = c["rule"]
        if rule["kind"] in ("ring", "one_to_one") and src["count"] != tgt["count"]:
            raise ConfigError(
                f"{path}.rule.kind",
                rule["kind"],
                "'ring' and 'one_to_one' only between populations "
                f"of equal size (here {src['count']} and {tgt['count']})",
            )
        available = src["count"] - (1 if src is tgt and not rule.get("autapses", False) else 0)
        if rule["kind"] == "fixed_indegree" and rule["indegree"] > available:
            raise ConfigError(
                f"{path}.rule.indegree", rule["indegree"], f"at most {available} (the sources available)"
            )
        for j, (a, b) in enumerate(rule.get("pairs", [])):
            if a >= src["count"] or b >= tgt["count"]:
                raise ConfigError(
                    f"{path}.rule.pairs[{j}]",
                    [a, b],
                    f"indices below the population sizes ({src['count']}, {tgt['count']})",
                )
    brain = data["brain"] is not None  # brain populations are known once the connectome is read
    for i, s in enumerate(data["stimuli"]):
        path = f"stimuli[{i}]"
        if not (brain and s["cell"] not in cells):
            pop = _check_population(cells, s["cell"], f"{path}.cell")
            _check_indices(s["cells"], pop, f"{path}.cells")
            if "synapse" in s:
                _check_synapse(synapses, s["cell"], s["synapse"], f"{path}.synapse")
        if s["kind"] == "poisson" and s["stop"] is not None and s["stop"] < s["start"]:
            raise ConfigError(f"{path}.stop", s["stop"], f"a time >= start ({s['start']} ms)")
        if s["kind"] == "poisson":
            _check_rate(s["rate"], dt, f"{path}.rate")
    for i, p in enumerate(data["probes"]):
        path = f"probes[{i}]"
        if not (brain and p["cell"] not in cells):
            pop = _check_population(cells, p["cell"], f"{path}.cell")
            _check_indices(p["cells"], pop, f"{path}.cells")
        if p["sampling"] is not None and abs(p["sampling"] / dt - round(p["sampling"] / dt)) > 1e-9:
            raise ConfigError(f"{path}.sampling", p["sampling"], f"a multiple of dt = {dt} ms")
    _unique([p["name"] for p in data["probes"]], "probes", "probe")


def _unique(items, path, what):
    seen = set()
    for i, name in enumerate(items):
        if name in seen:
            raise ConfigError(f"{path}[{i}].name", name, f"a {what} name not used before")
        seen.add(name)


def _check_population(cells, name, path):
    if name not in cells:
        raise ConfigError(path, name, f"one of the populations {sorted(cells)}")
    return cells[name]


def _check_synapse(synapses, cell, name, path):
    if (cell, name) not in synapses:
        known = sorted(n for c, n in synapses if c == cell)
        raise ConfigError(path, name, f"a synapse of '{cell}': {known} (declare it under 'synapses')")


def _check_indices(selection, population, path):
    if selection != "all":
        bad = [i for i in selection if i >= population["count"]]
        if bad:
            raise ConfigError(
                path, bad[0], f"cell indices below {population['count']} (the size of '{population['name']}')"
            )


def _check_delay(delay, dt, path):
    """A connection rule's delay (ms, or {uniform: [low, high]}) is never below dt."""
    if lowest_delay(delay) < dt:
        raise ConfigError(path, delay, f"delays >= dt = {dt} ms (spikes cannot arrive within a step)")


def _check_rate(rate, dt, path):
    """A Poisson rate (Hz) brings at most MAX_EVENTS_PER_STEP events per step of dt (ms)."""
    if rate * dt / 1000.0 > MAX_EVENTS_PER_STEP:
        raise ConfigError(
            path,
            rate,
            f"a rate (Hz) of at most {MAX_EVENTS_PER_STEP} expected events per step of dt = {dt} ms, i.e. "
            f"<= {MAX_EVENTS_PER_STEP * 1000.0 / dt:g} Hz (here {rate * dt / 1000.0:g} per step: every step "
            "would be flooded)",
        )


def _check_brain(brain, dt, mechanisms):
    """The brain section's cell types, synapses and factors refer to things that exist."""
    types = brain["cell_types"]
    allowed = f"one of the cell types {sorted(types)}"

    def check_type(name, path):
        if name not in types:
            raise ConfigError(path, name, allowed)

    def check_synapse(type_name, synapse, path):
        if synapse not in types[type_name]["synapses"]:
            raise ConfigError(
                path, synapse, f"a synapse of cell type '{type_name}': {sorted(types[type_name]['synapses'])}"
            )

    for name in brain["cells_per_region"]:
        check_type(name, f"brain.cells_per_region.{name}")
    for name in brain["cells_per_mm2"]:
        check_type(name, f"brain.cells_per_mm2.{name}")
        if name in brain["cells_per_region"]:
            raise ConfigError(
                f"brain.cells_per_mm2.{name}", name, "a type counted either per region or per mm², not both"
            )
    if not brain["cells_per_region"] and not brain["cells_per_mm2"]:
        raise ConfigError(
            "brain.cells_per_region", {}, f"cell counts of the types {sorted(types)} (or brain.cells_per_mm2)"
        )
    for i, rule in enumerate(brain["local"]):
        check_type(rule["source"], f"brain.local[{i}].source")
        check_type(rule["target"], f"brain.local[{i}].target")
        check_synapse(rule["target"], rule["synapse"], f"brain.local[{i}].synapse")
        if (rule["indegree"] is None) == (rule["probability"] is None):
            raise ConfigError(
                f"brain.local[{i}]", rule, "exactly one of 'indegree' and 'probability' per connection rule"
            )
        _check_delay(rule["delay"], dt, f"brain.local[{i}].delay")
    long_range = brain["long_range"]
    if long_range is not None:
        check_type(long_range["source"], "brain.long_range.source")
        for name in long_range["weight_factors"]:
            if name not in long_range["targets"]:
                raise ConfigError(
                    f"brain.long_range.weight_factors.{name}",
                    name,
                    f"a target type: {sorted(long_range['targets'])}",
                )
        for name, synapse in long_range["targets"].items():
            check_type(name, f"brain.long_range.targets.{name}")
            check_synapse(name, synapse, f"brain.long_range.targets.{name}")
        if long_range["synaptic_delay"] < dt:
            raise ConfigError(
                "brain.long_range.synaptic_delay",
                long_range["synaptic_delay"],
                f"a delay >= dt = {dt} ms (the conduction delay comes on top)",
            )
    for name, drive in brain["background"].items():
        check_type(name, f"brain.background.{name}")
        check_synapse(name, drive["synapse"], f"brain.background.{name}.synapse")
        _check_rate(drive["rate"], dt, f"brain.background.{name}.rate")
    for label, override in brain["region_overrides"].items():
        for name in override["cells_per_region"]:
            check_type(name, f"brain.region_overrides.{label}.cells_per_region.{name}")
        _check_factors(override["factors"], types, f"brain.region_overrides.{label}.factors", mechanisms)
        for name, drive in override["background"].items():
            if drive["rate"] is not None:
                _check_rate(drive["rate"], dt, f"brain.region_overrides.{label}.background.{name}.rate")
            if name not in brain["background"]:
                raise ConfigError(
                    f"brain.region_overrides.{label}.background.{name}",
                    name,
                    f"a cell type with a background drive (brain.background): {sorted(brain['background'])}",
                )


def _check_factors(factors, types, path, mechanisms):
    """'<mechanism>.<parameter>' factors per cell type name (or 'all') name real mechanisms and parameters
    (of `mechanisms`, the config's built-in and loaded ones)."""
    for type_name, per_param in factors.items():
        if type_name != "all" and type_name not in types:
            raise ConfigError(
                f"{path}.{type_name}", type_name, f"'all' or one of the cell types {sorted(types)}"
            )
        for key in per_param:
            mechanism, _, parameter = key.partition(".")
            if mechanism not in mechanisms or parameter not in mechanisms.param_names(mechanism):
                known = (
                    sorted(mechanisms)
                    if mechanism not in mechanisms
                    else [f"{mechanism}.{p}" for p in mechanisms.param_names(mechanism)]
                )
                raise ConfigError(
                    f"{path}.{type_name}.{key}", key, f"'<mechanism>.<parameter>', e.g. {known}"
                )


def _check_overlays(data):
    """A patient and interventions need a brain; their cell types, mechanisms and parameters exist."""
    brain = data["brain"]
    for key, present in (
        ("patient", data["patient"] is not None),
        ("interventions", bool(data["interventions"])),
    ):
        if present and brain is None:
            raise ConfigError(key, data[key], "only with a 'brain' section (they act on brain regions)")
    if brain is None:
        return
    types = brain["cell_types"]
    if data["patient"] is not None:
        for label, factors in data["patient"]["factors"].items():
            _check_factors(factors, types, f"patient.factors.{label}", data.mechanisms)
        for label, per_type in data["patient"]["background"].items():
            for name in per_type:
                if name not in brain["background"]:
                    raise ConfigError(
                        f"patient.background.{label}.{name}",
                        name,
                        f"a cell type with a background drive (brain.background): "
                        f"{sorted(brain['background'])}",
                    )
    for i, item in enumerate(data["interventions"]):
        path = f"interventions[{i}]"
        selection = item.get("cell_types", "all")
        for name in [] if selection == "all" else selection:
            if name not in types:
                raise ConfigError(
                    f"{path}.cell_types", name, f"'all' or cell types of the brain: {sorted(types)}"
                )
        if item["kind"] == "drug":
            params = data.mechanisms.param_names(item["mechanism"])
            if item["parameter"] not in params:
                raise ConfigError(
                    f"{path}.parameter", item["parameter"], f"a parameter of '{item['mechanism']}': {params}"
                )
        if item["kind"] == "stimulation" and item["stop"] is not None and item["stop"] < item["start"]:
            raise ConfigError(f"{path}.stop", item["stop"], f"a time >= start ({item['start']} ms)")
        key = {"drug": "onset", "stimulation": "start", "lesion": "at"}[item["kind"]]
        tstop = data["simulation"]["tstop"]
        if item[key] >= tstop:
            raise ConfigError(
                f"{path}.{key}",
                item[key],
                f"a time before simulation.tstop = {tstop:g} ms (an intervention after the run's end would "
                "have no effect)",
            )


def _check_brain_cells(recipe):
    """A brain whose counts and scale leave no cell at all is refused, as `count: 0` is."""
    brain = recipe.brain
    if brain is None or any(p.count for p in brain.populations):
        return
    spec = recipe.config["brain"]
    counts = {**spec["cells_per_region"], **{f"{k} per mm²": v for k, v in spec["cells_per_mm2"].items()}}
    lost = (
        " after patient.cell_loss"
        if recipe.config["patient"] and recipe.config["patient"]["cell_loss"]
        else ""
    )
    raise ConfigError(
        "brain.scale",
        spec["scale"],
        f"a scale that leaves cells: the counts {counts} times {spec['scale']:g} round to 0 cells in every "
        f"one of the {len(brain.labels)} regions{lost}",
    )


def _warn_model(recipe):
    """Warn of what validates but is probably not what was meant: a brain's cell type or regions left
    without cells by its scale, tract lengths estimated from region centres, stimuli wholly after tstop."""
    config, brain = recipe.config, recipe.brain
    tstop = config["simulation"]["tstop"]
    if brain is not None:
        spec = brain.spec
        for name in spec["cell_types"]:
            asked = name in spec["cells_per_region"] or name in spec["cells_per_mm2"]
            if asked and not any(p.count for p in brain.populations if p.cell_type == name):
                warn(f"brain.scale = {spec['scale']:g} leaves no '{name}' cells in any region")
        empty = sorted(
            {brain.labels[p.region] for p in brain.populations}
            - {brain.labels[p.region] for p in brain.populations if p.count}
        )
        if empty:
            more = " ..." if len(empty) > 8 else ""
            warn(f"{len(empty)} brain region(s) have no cells (their rates are undefined): {empty[:8]}{more}")
        if brain.connectome.estimated is not None:
            warn(
                f"connectome {brain.connectome.source}: {np.count_nonzero(brain.connectome.estimated)} tract "
                "length(s) of 0 under a nonzero weight among the simulated regions were replaced by the "
                "distance between the region centres (noted in the store's provenance)"
            )
    for i, s in enumerate(config["stimuli"]):
        begins = {
            "iclamp": s.get("delay"),
            "spikes": min(s.get("times") or [tstop]),
            "poisson": s.get("start"),
        }
        if begins[s["kind"]] >= tstop:
            warn(f"stimuli[{i}] ({s['kind']}) begins at or after simulation.tstop = {tstop:g} ms: no effect")


def _check_cells_and_targets(recipe):
    """Build every cell type and resolve every location, synapse and probe variable; stimuli and probes
    may name populations by pattern (e.g. '*.pyr'), which must match one with cells; a pattern matching only
    populations without cells (e.g. a brain subset or scale that leaves a type out) is warned about."""
    config = recipe.config
    for pop in recipe.populations:
        recipe.cell_type(pop.name)
    for kind, entries in (("stimuli", config["stimuli"]), ("probes", config["probes"])):
        for i, entry in enumerate(entries):
            matched = recipe.matching(entry["cell"])
            pops = [p for p in matched if p.count]
            if not pops and matched and any(c in entry["cell"] for c in "*?["):
                warn(
                    f"{kind}[{i}].cell = {entry['cell']!r} matches only populations without cells: no effect"
                )
                continue
            if not pops:
                names = [p.name for p in recipe.populations if p.count]
                raise ConfigError(
                    f"{kind}[{i}].cell",
                    entry["cell"],
                    "a population (or a pattern such as "
                    f"'*.pyr') with cells: {names[:8]}{' ...' if len(names) > 8 else ''}",
                )
            for pop in pops:
                _check_entry(recipe, kind, i, entry, pop)
    for i, item in enumerate(config["interventions"]):
        _check_intervention(recipe, i, item)


def _check_entry(recipe, kind, i, entry, pop):
    """A stimulus or probe entry's cells, location, synapse and variable exist on population pop."""
    ct, path = recipe.cell_type(pop.name), f"{kind}[{i}]"
    if entry["cells"] != "all" and max(entry["cells"]) >= pop.count:
        raise ConfigError(
            f"{path}.cells",
            max(entry["cells"]),
            f"cell indices below {pop.count} (the size of '{pop.name}')",
        )
    if kind == "probes":
        nodes = ct.locate_set(entry["location"], f"{path}.location")
        _check_probe_variable(ct, entry["variable"], nodes, f"{path}.variable")
    elif entry["kind"] == "iclamp":
        ct.locate(entry["location"], f"{path}.location")
    elif entry["synapse"] not in ct.synapses:
        raise ConfigError(
            f"{path}.synapse", entry["synapse"], f"a synapse of '{pop.name}': {sorted(ct.synapses)}"
        )


def _check_intervention(recipe, i, item):
    """Regions and tracts exist; a drug's mechanism and a stimulation's location exist on the cells it
    targets (an intervention that reaches no cell is an error, not a silent sham)."""
    path = f"interventions[{i}]"
    if item["kind"] == "lesion":
        recipe.brain.region_indices(item["regions"], f"{path}.regions")
        tract_scales(item["tracts"], recipe.brain.labels, f"{path}.tracts")
        return
    pops = [p for p in recipe.populations if p.count and recipe.intervention_targets(item, p, path)]
    if not pops:
        raise ConfigError(f"{path}", item, "regions and cell_types that select at least one cell")
    if item["kind"] == "stimulation":
        for pop in pops:
            recipe.cell_type(pop.name).locate(item["location"], f"{path}.location")
        return
    present = {m.mechanism for pop in pops for m in recipe.cell_type(pop.name).mechanisms}
    if item["mechanism"] not in present:
        raise ConfigError(
            f"{path}.mechanism",
            item["mechanism"],
            f"a mechanism of the targeted cells: {sorted(present)}",
        )


def _check_probe_variable(cell_type, variable, nodes, path):
    """Raise ConfigError unless variable can be recorded at every one of nodes."""
    if variable == "v":
        return
    head, _, state = variable.partition(".")
    catalogue = cell_type.catalogue
    if head in cell_type.synapses:
        states = catalogue[cell_type.synapses[head].mechanism].STATES
        if state not in states:
            raise ConfigError(
                path, variable, f"a state of synapse '{head}': {[f'{head}.{s}' for s in states]}"
            )
        return
    if head == "cai" and not state:
        head, state = cell_type.cai_mechanism, "cai"
    placed = {p.mechanism: p for p in cell_type.mechanisms}
    allowed = (
        ["v"]
        + [f"{m}.{s}" for m in placed for s in catalogue[m].STATES]
        + [f"{n}.{s}" for n, syn in cell_type.synapses.items() for s in catalogue[syn.mechanism].STATES]
    )
    if head not in placed or state not in catalogue[head].STATES:
        raise ConfigError(path, variable, f"one of {allowed}")
    missing = np.setdiff1d(nodes, placed[head].node)
    if missing.size:
        here = ["v"] + [
            f"{m}.{s}" for m, p in placed.items() if np.isin(nodes, p.node).all() for s in catalogue[m].STATES
        ]
        raise ConfigError(
            path,
            variable,
            f"one of {here}, the variables at every probed compartment ('{head}' is not inserted at "
            f"{cell_type.label(int(missing[0]))})",
        )
