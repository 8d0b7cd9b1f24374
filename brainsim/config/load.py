"""Load a YAML run config, apply `--set key.path=value` overrides, validate it against the schema and resolve
defaults (checks between sections are the model's: `brainsim.model.checks`)."""

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
    """Validate a raw config mapping (after overrides) against the schema into a RunConfig, with the
    defaults that depend on other keys filled in (a probe's name is its variable, the output path is
    named after the run)."""
    raw = copy.deepcopy(raw) if raw is not None else {}
    for item in overrides:
        apply_override(raw, item)
    data = CONFIG.resolve(raw, "")
    for probe in data["probes"]:
        if probe["name"] is None:
            probe["name"] = probe["variable"]
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
