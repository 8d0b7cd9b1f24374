"""Load a YAML run config, apply `--set key.path=value` overrides, validate it against the schema and resolve
defaults (checks between sections are the model's: `brainsim.model.checks`).

Every YAML brainsim reads (configs, `--set` values, patient and intervention overlays, campaigns, site
profiles, alert rules) goes through one loader, bounded whatever the input: at most MAX_YAML_NODES nodes
counting every repeat of an alias (a "billion laughs" document is refused, not expanded), nesting at most
MAX_YAML_DEPTH deep, integers of at most MAX_YAML_INT_DIGITS digits, no alias inside the node it names.
"""

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import yaml

from ..errors import ConfigError
from . import bluepyopt, mechanisms
from .schema import CONFIG, MECHANISMS, using


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

    @cached_property
    def mechanisms(self):
        """The Mechanisms its names refer to: the built-ins and the modules of mechanisms.paths (loaded
        by every process that asks, from the translated-module cache)."""
        return mechanisms.from_section(self.data.get("mechanisms"), _folder(self.source))

    def resolve_path(self, name):
        """A file named in the config: relative to the config file's folder when it exists there."""
        p = Path(name)
        if not p.is_absolute() and self.source is not None and (self.source.parent / p).exists():
            return self.source.parent / p
        return p

    def hash(self):
        """Short stable hash of what determines the simulated dynamics: the resolved config without its
        name, description, progress interval, tstop (a run may be continued past it) and output settings
        (for provenance and checkpoints), its NMODL mechanisms by name and content (not by path). The full
        hash: interventions included, whenever they act."""
        return _digest(self._model())

    def state_hash(self, until):
        """Short stable hash of what determines the state up to time `until` (ms): the config as in
        `hash()` with only the interventions that start before `until` (drug onset, lesion time,
        stimulation start). Runs that differ only in interventions starting at or after `until` share it,
        so a state at `until` of one continues as any of them (a fork)."""
        model = self._model()
        model["interventions"] = [item for item in model["interventions"] if intervention_start(item) < until]
        return _digest(model)

    def _model(self):
        model = {k: v for k, v in self.data.items() if k not in ("name", "description", "output")}
        model.pop("mechanisms", None)
        if self.mechanisms.loaded:
            model["mechanisms"] = [list(item) for item in self.mechanisms.loaded]
        model["simulation"] = {
            k: v for k, v in model["simulation"].items() if k not in ("progress_interval", "tstop")
        }
        return model


START_KEYS = {"drug": "onset", "lesion": "at", "stimulation": "start"}
"""The key of each intervention kind that says when it starts acting (ms)."""


def _folder(source):
    """The folder relative file names of a config are taken from (its file's, else the working one)."""
    return Path(source).parent if source is not None else Path()


def intervention_start(item):
    """When a resolved intervention starts acting (ms)."""
    return float(item[START_KEYS[item["kind"]]])


def _digest(model):
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path, overrides=(), patient=None, interventions=()):
    """Read, override, validate and resolve the config at path, with a patient overlay (a YAML file of the
    `patient` section) and intervention files (one intervention, or a list under `interventions`)."""
    raw = read_yaml(path)
    raw = {} if raw is None else raw
    overlays = {}
    if patient is not None:
        raw["patient"] = _with_absolute_files(read_yaml(patient), Path(patient).parent, ("connectome",))
        overlays["patient"] = str(Path(patient).resolve())
    _add_interventions(raw, interventions, overlays)
    try:
        config = resolve_config(raw, overrides, source=path)
    except ConfigError as e:
        raise e.from_overlay(overlays) from None
    return replace(config, overlays=overlays)


def with_interventions(config, interventions, overrides=()):
    """A validated config with more intervention files (and `--set` overrides) laid over it: what a fork's
    future runs. Errors in an intervention name its file."""
    raw = without_nulls(config.data)
    overlays = dict(config.overlays)
    _add_interventions(raw, interventions, overlays)
    try:
        new = resolve_config(raw, overrides, source=config.source)
    except ConfigError as e:
        raise e.from_overlay(overlays) from None
    return replace(new, overlays=overlays)


def without_nulls(data):
    """A resolved config's data as raw input to resolve it again (a run store's config, say): its null
    values left out, for the schema to fill in again (a null in a resolved config is an option's default:
    the schema refuses null where the default is not)."""
    if isinstance(data, dict):
        return {key: without_nulls(value) for key, value in data.items() if value is not None}
    if isinstance(data, list):
        return [without_nulls(value) for value in data]
    return copy.deepcopy(data)


def _add_interventions(raw, files, overlays):
    """Append the interventions of each file (one intervention, or a list under `interventions`) to the
    raw config, recording {key path: file} in overlays."""
    for file in files:
        content = read_yaml(file)
        items = content.get("interventions", content) if isinstance(content, dict) else content
        raw.setdefault("interventions", [])
        for item in items if isinstance(items, list) else [items]:
            overlays[f"interventions[{len(raw['interventions'])}]"] = str(Path(file).resolve())
            raw["interventions"].append(item)


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


def read_yaml(path):
    """The YAML document in the file at path (None when empty); errors name the file (and line, column)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        detail = e.strerror if isinstance(e, OSError) else f"not UTF-8 text: {e.reason}"
        raise ConfigError(str(path), None, "a readable YAML file", detail=detail) from None
    return parse_yaml(text, path)


def parse_yaml(text, source):
    """The YAML document in text (None when empty), read from source (a file, for messages). Malformed or
    oversized YAML raises ConfigError at 'source:line:column', with the text of that line as the value and
    what YAML reported as the detail."""
    try:
        return _parse(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        if mark is None:
            raise ConfigError(str(source), None, "valid YAML", detail=str(e)) from None
        lines = text.splitlines()
        line = lines[mark.line] if mark.line < len(lines) else ""
        raise ConfigError(
            f"{source}:{mark.line + 1}:{mark.column + 1}", line, "valid YAML", detail=_yaml_problem(e)
        ) from None


def _yaml_problem(error):
    """What YAML reported, with where the construct it was reading started (line, column)."""
    problem = str(getattr(error, "problem", None) or error)
    context, mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and mark is not None:
        return f"{problem}, {context} started at line {mark.line + 1}, column {mark.column + 1}"
    return f"{problem}, {context}" if context else problem


MAX_YAML_NODES = 1_000_000
"""Most nodes (scalars, lists, mappings) a YAML document may hold, every repeat of an alias counted."""
MAX_YAML_DEPTH = 100
"""Deepest nesting of lists and mappings in a YAML document, through aliases too."""
MAX_YAML_INT_DIGITS = 100
"""Most digits of an integer in YAML (options are bounded far below: 64-bit at most)."""


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would keep the last), reading
    exponent-only numbers such as 1e-3 as floats (YAML 1.2; PyYAML's YAML 1.1 keeps them strings), and
    bounded (MAX_YAML_NODES, MAX_YAML_DEPTH, MAX_YAML_INT_DIGITS): every refusal is a YAMLError at a line
    and column."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        """A node, refused deeper than MAX_YAML_DEPTH before the composer recurses any further."""
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nesting deeper than {MAX_YAML_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):
        """The document's node graph, checked (as if its aliases were expanded) before anything is built."""
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_object(self, node, deep=False):
        """A node's value; a scalar Python cannot represent (a date 2020-13-45) is an error at its mark."""
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as e:
            raise yaml.constructor.ConstructorError(None, None, str(e), node.start_mark) from None

    def construct_yaml_int(self, node):
        digits = sum(c.isdigit() for c in node.value)
        if digits > MAX_YAML_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"an integer of {digits} digits, more than {MAX_YAML_INT_DIGITS}",
                node.start_mark,
            )
        return super().construct_yaml_int(node)

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


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _check_expansion(root):
    """Refuse a node graph that, its aliases expanded, holds more than MAX_YAML_NODES nodes or nests deeper
    than MAX_YAML_DEPTH, or in which an alias refers to a node that contains it. Visits each distinct
    node once, without recursion."""
    size, depth, open_ = {}, {}, set()
    stack = [(root, False)]
    while stack:
        node, closing = stack.pop()
        key = id(node)
        children = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else []
        )
        if not closing:
            if key in size:
                continue
            if key in open_:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    "an alias inside the node it refers to: a recursive document",
                    node.start_mark,
                )
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)
            continue
        open_.discard(key)
        size[key] = 1 + sum(size[id(child)] for child in children)
        depth[key] = 1 + max((depth[id(child)] for child in children), default=0)
        if size[key] > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"this holds {size[key]:,} nodes, its aliases expanded: more than {MAX_YAML_NODES:,}",
                node.start_mark,
            )
        if depth[key] > MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nesting deeper than {MAX_YAML_DEPTH} levels (through aliases)", node.start_mark
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
    raw = bluepyopt.expand_models(raw, _folder(source))
    section = MECHANISMS.resolve(raw.get("mechanisms") if isinstance(raw, dict) else None, "mechanisms")
    with using(mechanisms.from_section(section, _folder(source))):
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
                    detail=_yaml_problem(e),
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
