"""A cell model in BluePyOpt's JSON form (mechanisms.json, parameters.json, release parameters) as the config
of one brainsim cell type, built as BluePyOpt's `ephys` module builds it in NEURON.

- mechanisms.json: {section list: [mechanism names]}; the section lists are brainsim's region names
  (`somatic`, `axonal`, `basal`, `apical`, `all`); `pas` is the built-in `pas` (g_pas -> pas.g,
  e_pas -> pas.e), every other name a loaded NMODL mechanism's SUFFIX.
- parameters.json: `global` celsius (simulation.celsius) and v_init (the cell's v_init); `section`
  cm and Ra (the region's), ena / ek / eca (the reversal potential parameter of every mechanism of the
  section list, `all`'s included, that has one), `<name>_<mechanism>` (that mechanism's parameter);
  `range` <mech_param> of <mech>, `dist_type: uniform` a number, `exp` (or any `dist`) an expression of
  `distance` (µm from soma(0.5), BluePyOpt's `{distance}`).
- release parameters: {"<param_name>.<section list>": value} for the parameters without a `value`.

A config names such a model in a cell entry (`cells[i]` or `brain.cell_types.<name>`) as
`bluepyopt: {folder: ..., morphology: ...}` (schema.BLUEPYOPT); expand_models builds the entry from the
files when the config is loaded, the entry's own keys laid over it (mappings merged key by key), the
model's .mod files added to mechanisms.paths and its celsius used where simulation.celsius is not set.
"""

import json
import re
from pathlib import Path

from ..errors import ConfigError
from .mechanisms import from_section
from .schema import BLUEPYOPT

REVERSALS = ("ena", "ek", "eca")
SECTION_LISTS = ("all", "somatic", "axonal", "basal", "apical")
GLOBALS = ("celsius", "v_init")
BUILT_IN_NAMES = {"pas": {"g": "g", "e": "e"}}
"""NEURON's parameter names of brainsim's built-in mechanisms -> brainsim's."""


def read_json(path):
    """A JSON file's content; an unreadable or malformed file is a ConfigError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(str(path), str(path), "a readable JSON file", detail=str(e)) from None


def cell_config(
    mechanisms, parameters, release=None, *, morphology, mod_paths, name="cell", replace_axon=True,
    nseg_length=40.0,
):  # fmt: skip
    """The config (dict) of one cell of BluePyOpt's model: `mechanisms` (paths), `simulation` (celsius)
    and `cells` (one entry named `name`: the morphology file, replace_axon, odd_per_length discretization
    of nseg_length µm, v_init and regions). mechanisms, parameters, release: the files' paths or their
    content; mod_paths: folders or .mod files of the NMODL mechanisms (absolute, or relative to the
    config's folder)."""
    placed = mechanisms if isinstance(mechanisms, dict) else read_json(mechanisms)
    params = parameters if isinstance(parameters, list) else read_json(parameters)
    values = {} if release is None else release if isinstance(release, dict) else read_json(release)
    registry = from_section({"paths": [str(p) for p in mod_paths]}, ".")
    regions, glob = {}, {"celsius": 6.3, "v_init": -65.0}
    for section_list, names in placed.items():
        where = f"mechanisms.json.{section_list}"
        _check_list(section_list, where)
        for mech in names:
            if mech not in registry:
                loaded = ", ".join(name for name, _ in registry.loaded)
                raise ConfigError(where, mech, "a built-in mechanism or one of the .mod files' SUFFIX names",
                                  detail=f"loaded: {loaded}")  # fmt: skip
            regions.setdefault(section_list, {}).setdefault("mechanisms", {}).setdefault(mech, {})
    for i, p in enumerate(params):
        where = f"parameters.json[{i}]"
        value = _value(p, values, where)
        if p.get("type") == "global":
            if p["param_name"] not in GLOBALS:
                raise ConfigError(f"{where}.param_name", p["param_name"], ", ".join(GLOBALS))
            glob[p["param_name"]] = value
            continue
        section_list = p.get("sectionlist")
        _check_list(section_list, f"{where}.sectionlist")
        region = regions.setdefault(section_list, {})
        if p.get("type") == "range":
            _set(region, p["mech"], p["mech_param"], _distribution(p, value, where), registry, where)
        elif p.get("type") != "section":
            raise ConfigError(f"{where}.type", p.get("type"), "global, section or range")
        elif p["param_name"] in ("cm", "Ra"):
            region[p["param_name"]] = value
        elif p["param_name"] in REVERSALS:
            _set_reversal(regions, placed, section_list, p["param_name"], value, registry, where)
        else:
            param, _, mech = p["param_name"].rpartition("_")
            if not param:
                raise ConfigError(f"{where}.param_name", p["param_name"],
                                  "cm, Ra, ena, ek, eca or <parameter>_<mechanism>")  # fmt: skip
            _set(region, mech, param, value, registry, where)
    cell = {
        "name": name,
        "morphology": {"kind": "file", "file": str(morphology), "replace_axon": replace_axon},
        "discretization": {"odd_per_length": nseg_length},
        "v_init": glob["v_init"],
        "regions": regions,
    }
    return {
        "mechanisms": {"paths": [str(p) for p in mod_paths]},
        "simulation": {"celsius": glob["celsius"]},
        "cells": [cell],
    }


def _check_list(section_list, where):
    if section_list not in SECTION_LISTS:
        raise ConfigError(where, section_list, ", ".join(SECTION_LISTS))


def _value(p, values, where):
    """A parameter's value: its own, else the release parameter `<param_name>.<sectionlist>`."""
    if "value" in p:
        return p["value"]
    key = f"{p.get('param_name')}.{p.get('sectionlist')}" if p.get("sectionlist") else p.get("param_name")
    if key not in values:
        raise ConfigError(where, p.get("param_name"), "a parameter with a value or a release parameter",
                          detail=f"no release parameter '{key}'")  # fmt: skip
    return values[key]


def _distribution(p, value, where):
    """A number (uniform) or brainsim's location expression of BluePyOpt's `dist` string."""
    if p.get("dist_type", "uniform") == "uniform":
        return value
    text = p.get("dist")
    if not isinstance(text, str):
        raise ConfigError(f"{where}.dist", text, "a formula of {distance} and {value}",
                          detail=f"dist_type {p.get('dist_type')!r} needs one")  # fmt: skip
    out = text.replace("math.", "").replace("{distance}", "distance").replace("{value}", repr(float(value)))
    left = re.search(r"\{[^}]*\}", out)
    if left:
        raise ConfigError(f"{where}.dist", text, "a formula of {distance} and {value}",
                          detail=f"unknown placeholder {left.group(0)}")  # fmt: skip
    return out


def _set(region, mech, param, value, registry, where):
    """region's mechanism `mech` gets `param` (NEURON's name) = value."""
    if mech not in registry:
        raise ConfigError(where, mech, "a built-in mechanism or one of the .mod files' SUFFIX names")
    param = BUILT_IN_NAMES.get(mech, {}).get(param, param)
    if param not in registry.param_names(mech):
        raise ConfigError(where, param, f"a parameter of {mech}: {', '.join(registry.param_names(mech))}")
    region.setdefault("mechanisms", {}).setdefault(mech, {})[param] = value


def _set_reversal(regions, placed, section_list, param, value, registry, where):
    """Every mechanism of section_list (and of `all`) that has the reversal parameter gets it, on that
    section list; one that none has is an error."""
    names = [*placed.get(section_list, ()), *(placed.get("all", ()) if section_list != "all" else ())]
    users = [m for m in dict.fromkeys(names) if param in registry.param_names(m)]
    if not users:
        raise ConfigError(where, param, f"a reversal potential read by a mechanism of {section_list}",
                          detail=f"none of {', '.join(names) or 'no mechanism'} reads it")  # fmt: skip
    mechs = regions.setdefault(section_list, {}).setdefault("mechanisms", {})
    for mech in users:
        mechs.setdefault(mech, {})[param] = value


def expand_models(raw, folder):
    """The raw config with every cell entry that names a BluePyOpt model (`bluepyopt:`) built from its
    files (see the module's doc); folder: the config file's folder. The `bluepyopt` key stays, so that a
    resolved config expands again to the same."""
    if not isinstance(raw, dict):
        return raw
    entries = [(f"cells[{i}]", c) for i, c in enumerate(raw.get("cells") or []) if isinstance(c, dict)]
    brain = raw.get("brain")
    types = brain.get("cell_types") if isinstance(brain, dict) else None
    if isinstance(types, dict):
        entries += [(f"brain.cell_types.{k}", c) for k, c in types.items() if isinstance(c, dict)]
    for where, entry in entries:
        if entry.get("bluepyopt") is None:
            continue
        made = _model(BLUEPYOPT.resolve(entry["bluepyopt"], f"{where}.bluepyopt"), folder, where)
        cell = made["cells"][0]
        del cell["name"]
        merged = _merged(cell, entry)
        entry.clear()
        entry.update(merged)
        section = raw.setdefault("mechanisms", {})
        paths = section.setdefault("paths", []) if isinstance(section, dict) else None
        if isinstance(paths, list):
            paths.extend(p for p in made["mechanisms"]["paths"] if p not in paths)
        simulation = raw.setdefault("simulation", {})
        if isinstance(simulation, dict):
            simulation.setdefault("celsius", made["simulation"]["celsius"])
    return raw


def _model(spec, folder, where):
    """cell_config of a resolved `bluepyopt` section, its files checked (errors at where.bluepyopt...)."""
    model = Path(folder) / spec["folder"]
    if not model.is_dir():
        raise ConfigError(f"{where}.bluepyopt.folder", spec["folder"], "a folder", detail=f"no {model}")
    files = {key: model / spec[key] for key in ("mechanisms", "parameters", "release", "morphology", "mods")}
    for key, path in files.items():
        if not path.exists():
            raise ConfigError(f"{where}.bluepyopt.{key}", spec[key], f"a file of {model}",
                              detail=f"{path} does not exist")  # fmt: skip
    try:
        return cell_config(
            files["mechanisms"], files["parameters"], files["release"],
            morphology=files["morphology"].resolve(), mod_paths=[files["mods"].resolve()],
            replace_axon=spec["replace_axon"], nseg_length=spec["nseg_length"],
        )  # fmt: skip
    except ConfigError as e:
        detail = f"{e.path}: {e.detail}" if e.detail else e.path
        raise ConfigError(f"{where}.bluepyopt", e.value, e.allowed, detail=detail) from None


def _merged(base, over):
    """base with over laid on it: mappings merged key by key, any other value of over replacing."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out
