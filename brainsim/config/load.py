"""Load a YAML run config, apply `--set key.path=value` overrides, validate it and resolve defaults."""

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ..errors import ConfigError
from .schema import CONFIG


@dataclass(frozen=True)
class RunConfig:
    """A validated config with every default filled in."""

    data: dict
    source: Path | None
    """The YAML file it came from (relative file names in it are taken from its folder)."""
    overlays: dict = field(default_factory=dict)
    """{key path: file} of the sections that came from --patient and --intervention files."""

    def __getitem__(self, key):
        return self.data[key]

    def resolve_path(self, name):
        """A file named in the config: relative to the config file's folder when it exists there."""
        p = Path(name)
        if not p.is_absolute() and self.source is not None and (self.source.parent / p).exists():
            return self.source.parent / p
        return p

    def to_json(self):
        return json.dumps(self.data, sort_keys=True)

    def hash(self):
        """Short stable hash of what determines the simulated dynamics: the resolved config without its
        name, description, progress interval and output settings (for provenance and checkpoints)."""
        model = {k: v for k, v in self.data.items() if k not in ("name", "description", "output")}
        model["simulation"] = {k: v for k, v in model["simulation"].items() if k != "progress_interval"}
        return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path, overrides=(), patient=None, interventions=()):
    """Read, override, validate and resolve the config at path, with a patient overlay (a YAML file of the
    `patient` section) and intervention files (one intervention, or a list under `interventions`)."""
    raw = _read_yaml(path)
    raw = {} if raw is None else raw
    overlays = {}
    if patient is not None:
        raw["patient"] = _with_absolute_files(_read_yaml(patient), Path(patient).parent, ("connectome",))
        overlays["patient"] = str(Path(patient).resolve())
    for file in interventions:
        content = _read_yaml(file)
        items = content.get("interventions", content) if isinstance(content, dict) else content
        raw.setdefault("interventions", [])
        for item in items if isinstance(items, list) else [items]:
            overlays[f"interventions[{len(raw['interventions'])}]"] = str(Path(file).resolve())
            raw["interventions"].append(item)
    try:
        config = resolve_config(raw, overrides, source=path)
    except ConfigError as e:
        raise e.from_overlay(overlays) from None
    return replace(config, overlays=overlays)


def _with_absolute_files(section, folder, keys):
    """The overlay with the file names inside `keys` made absolute (they are relative to the overlay)."""
    if not isinstance(section, dict):
        return section
    out = dict(section)
    for key in keys:
        if isinstance(out.get(key), dict):
            out[key] = {
                k: str(folder / v)
                if k in ("file", "weights", "tract_lengths", "labels", "centres")
                and isinstance(v, str)
                and not Path(v).is_absolute()
                else v
                for k, v in out[key].items()
            }
    return out


def _read_yaml(path):
    """The YAML document at path (None when empty); errors name the file (and line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(str(path), None, "a readable YAML file", detail=e.strerror) from None
    try:
        raw = _parse(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(where, None, "valid YAML", detail=str(getattr(e, "problem", e))) from None
    return raw


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would keep the last), and
    reading exponent-only numbers such as 1e-3 as floats (YAML 1.2; PyYAML's YAML 1.1 keeps them strings)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse(text):
    return yaml.load(text, Loader=_StrictLoader)


def resolve_config(raw, overrides=(), source=None):
    """Validate a raw config mapping (after overrides) into a RunConfig."""
    raw = copy.deepcopy(raw) if raw is not None else {}
    for item in overrides:
        apply_override(raw, item)
    data = CONFIG.resolve(raw, "")
    check_references(data)
    if data["output"]["path"] is None:
        data["output"]["path"] = f"out/{data['name']}.zarr"
    return RunConfig(data, Path(source) if source is not None else None)


_STEP_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_override(raw, item):
    """Apply one `key.path=value` (value parsed as YAML) to the raw config in place.

    List items are addressed by index (`cells[0].count`, `cells.0.count`) or by their `name`
    (`cells.ring.count`).
    """
    if "=" not in item:
        raise ConfigError(item, None, "key.path=value, e.g. simulation.tstop=50")
    key, text = item.split("=", 1)
    steps = [
        m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP_RE.finditer(key.strip())
    ]
    if not steps:
        raise ConfigError(key, None, "a dotted key path such as simulation.tstop")
    node, walked = raw, []
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(node, list):
            step = _list_index(node, step, ".".join(map(str, walked)) or "<top level>")
        elif not isinstance(node, dict):
            raise ConfigError(".".join(map(str, walked)), node, "a mapping or list to set a key in")
        if last:
            try:
                node[step] = _parse(text)
            except yaml.YAMLError as e:
                raise ConfigError(
                    key,
                    text,
                    "a YAML value (number, string, list, mapping, true/false)",
                    detail=str(getattr(e, "problem", e)),
                ) from None
        else:
            if isinstance(node, dict) and step not in node:
                node[step] = {}
            node = node[step]
        walked.append(step)


def _list_index(items, step, path):
    if isinstance(step, int) or step.isdigit():
        index = int(step)
        if index < len(items):
            return index
        raise ConfigError(f"{path}[{index}]", index, f"an index below {len(items)}")
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == step:
            return index
    names = [item.get("name") for item in items if isinstance(item, dict)]
    raise ConfigError(f"{path}.{step}", step, f"an index or one of the names {names}")


def _unique(items, path, what):
    seen = set()
    for i, name in enumerate(items):
        if name in seen:
            raise ConfigError(f"{path}[{i}].name", name, f"a {what} name not used before")
        seen.add(name)


def check_references(data):
    """Cross-references between sections: names exist, indices are in range, delays are >= dt."""
    if not data["cells"] and data["brain"] is None:
        raise ConfigError("cells", [], "at least one population, or a 'brain' section that makes them")
    if data["brain"] is not None:
        check_brain(data["brain"], data["simulation"]["dt"])
    check_overlays(data)
    cells = {c["name"]: c for c in data["cells"]}
    _unique([c["name"] for c in data["cells"]], "cells", "population")
    synapses = {}
    for i, s in enumerate(data["synapses"]):
        _check_population(cells, s["cell"], f"synapses[{i}].cell")
        if (s["cell"], s["name"]) in synapses:
            raise ConfigError(
                f"synapses[{i}].name", s["name"], f"a synapse name not used before on '{s['cell']}'"
            )
        synapses[(s["cell"], s["name"])] = s
    dt = data["simulation"]["dt"]
    for i, c in enumerate(data["connections"]):
        path = f"connections[{i}]"
        src = _check_population(cells, c["source"], f"{path}.source")
        tgt = _check_population(cells, c["target"], f"{path}.target")
        _check_synapse(synapses, c["target"], c["synapse"], f"{path}.synapse")
        low = c["delay"] if not isinstance(c["delay"], dict) else c["delay"]["uniform"][0]
        if low < dt:
            raise ConfigError(
                f"{path}.delay", c["delay"], f"delays >= dt = {dt} ms (spikes cannot arrive within a step)"
            )
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
    brain = (
        data["brain"] is not None
    )  # brain populations are known once the connectome is read (Recipe.check)
    for i, s in enumerate(data["stimuli"]):
        path = f"stimuli[{i}]"
        if not (brain and s["cell"] not in cells):
            pop = _check_population(cells, s["cell"], f"{path}.cell")
            _check_cells(s["cells"], pop, f"{path}.cells")
            if "synapse" in s:
                _check_synapse(synapses, s["cell"], s["synapse"], f"{path}.synapse")
        if s["kind"] == "poisson" and s["stop"] is not None and s["stop"] < s["start"]:
            raise ConfigError(f"{path}.stop", s["stop"], f"a time >= start ({s['start']} ms)")
    names = []
    for i, p in enumerate(data["probes"]):
        path = f"probes[{i}]"
        if not (brain and p["cell"] not in cells):
            pop = _check_population(cells, p["cell"], f"{path}.cell")
            _check_cells(p["cells"], pop, f"{path}.cells")
        if p["name"] is None:
            p["name"] = p["variable"]
        names.append(p["name"])
        if p["sampling"] is not None and abs(p["sampling"] / dt - round(p["sampling"] / dt)) > 1e-9:
            raise ConfigError(f"{path}.sampling", p["sampling"], f"a multiple of dt = {dt} ms")
    _unique(names, "probes", "probe")


def _check_population(cells, name, path):
    if name not in cells:
        raise ConfigError(path, name, f"one of the populations {sorted(cells)}")
    return cells[name]


def _check_synapse(synapses, cell, name, path):
    if (cell, name) not in synapses:
        known = sorted(n for c, n in synapses if c == cell)
        raise ConfigError(path, name, f"a synapse of '{cell}': {known} (declare it under 'synapses')")


def _check_cells(selection, population, path):
    if selection != "all":
        bad = [i for i in selection if i >= population["count"]]
        if bad:
            raise ConfigError(
                path, bad[0], f"cell indices below {population['count']} (the size of '{population['name']}')"
            )


def check_brain(brain, dt):
    """The brain section's cell types, synapses and factors refer to things that exist."""
    types = brain["cell_types"]
    allowed = f"one of the cell types {sorted(types)}"

    def check_type(name, path, extra=()):
        if name not in types and name not in extra:
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
        low = rule["delay"] if not isinstance(rule["delay"], dict) else rule["delay"]["uniform"][0]
        if low < dt:
            raise ConfigError(f"brain.local[{i}].delay", rule["delay"], f"delays >= dt = {dt} ms")
    long_range = brain["long_range"]
    if long_range is not None:
        check_type(long_range["source"], "brain.long_range.source")
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
    for label, override in brain["region_overrides"].items():
        for name in override["cells_per_region"]:
            check_type(name, f"brain.region_overrides.{label}.cells_per_region.{name}")
        check_factors(override["factors"], types, f"brain.region_overrides.{label}.factors")
        for name in override["background"]:
            if name not in brain["background"]:
                raise ConfigError(
                    f"brain.region_overrides.{label}.background.{name}",
                    name,
                    f"a cell type with a background drive (brain.background): {sorted(brain['background'])}",
                )


def check_factors(factors, types, path):
    """'<mechanism>.<parameter>' factors per cell type name (or 'all') name real mechanisms and parameters."""
    from ..kernels.mechanisms import CATALOGUE

    for type_name, per_param in factors.items():
        if type_name != "all" and type_name not in types:
            raise ConfigError(
                f"{path}.{type_name}", type_name, f"'all' or one of the cell types {sorted(types)}"
            )
        for key in per_param:
            mechanism, _, parameter = key.partition(".")
            if mechanism not in CATALOGUE or parameter not in [p[0] for p in CATALOGUE[mechanism].PARAMS]:
                known = (
                    sorted(CATALOGUE)
                    if mechanism not in CATALOGUE
                    else [f"{mechanism}.{p[0]}" for p in CATALOGUE[mechanism].PARAMS]
                )
                raise ConfigError(
                    f"{path}.{type_name}.{key}", key, f"'<mechanism>.<parameter>', e.g. {known}"
                )


def check_overlays(data):
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
            check_factors(factors, types, f"patient.factors.{label}")
    from ..kernels.mechanisms import CATALOGUE

    for i, item in enumerate(data["interventions"]):
        path = f"interventions[{i}]"
        selection = item.get("cell_types", "all")
        for name in [] if selection == "all" else selection:
            if name not in types:
                raise ConfigError(
                    f"{path}.cell_types", name, f"'all' or cell types of the brain: {sorted(types)}"
                )
        if item["kind"] == "drug":
            params = [p[0] for p in CATALOGUE[item["mechanism"]].PARAMS]
            if item["parameter"] not in params:
                raise ConfigError(
                    f"{path}.parameter", item["parameter"], f"a parameter of '{item['mechanism']}': {params}"
                )
        if item["kind"] == "stimulation" and item["stop"] is not None and item["stop"] < item["start"]:
            raise ConfigError(f"{path}.stop", item["stop"], f"a time >= start ({item['start']} ms)")
