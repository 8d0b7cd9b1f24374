"""The config layer: every invalid config is refused before anything runs, with an error naming the key
path, the bad value and what is allowed (spec: "Validated before anything runs; every error names the
key path, the bad value and what is allowed").

Each error case is a small mutation of the valid M2 ring benchmark config.
"""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import checked

from brainsim.config import load_config, resolve_config
from brainsim.config.load import apply_override
from brainsim.config.mechanisms import CATALOGUE
from brainsim.errors import ConfigError
from brainsim.model.recipe import Recipe

ROOT = Path(__file__).resolve().parents[2]
M1_YAML = ROOT / "configs" / "bench" / "m1_hh_cable.yaml"
M2_YAML = ROOT / "configs" / "bench" / "m2_ring.yaml"
M2 = yaml.safe_load(M2_YAML.read_text())

DELETE = object()
DENSITY = sorted(n for n, m in CATALOGUE.items() if m.KIND == "density")
POINT = sorted(n for n, m in CATALOGUE.items() if m.KIND == "point")
TOP_KEYS = ["cells", "connections", "description", "name", "output", "probes", "simulation", "stimuli"]
TOP_KEYS.append("synapses")

SWC = "1 1 0 0 0 5 -1\n2 1 10 0 0 5 1\n3 3 20 0 0 1 2\n4 3 120 0 0 1 3\n"
"""A soma and one 100 µm dendrite."""


# --- helpers ---------------------------------------------------------------------------------------


def edit(raw, key, value):
    """Set (or, with DELETE, remove) a dotted key such as 'cells.0.count'; index len(list) appends."""
    *parents, last = [int(k) if k.isdigit() else k for k in key.split(".")]
    node = raw
    for k in parents:
        node = node[k]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list) and last == len(node):
        node.append(copy.deepcopy(value))
    else:
        node[last] = copy.deepcopy(value)


def mutated(edits):
    """A copy of the M2 config with edits applied: {dotted key: value} or a function of the raw dict."""
    raw = copy.deepcopy(M2)
    if callable(edits):
        edits(raw)
    else:
        for key, value in edits.items():
            edit(raw, key, value)
    return raw


def check_error(err, path, value, allowed=()):
    """err names exactly this path and bad value, and its `allowed` (also in the message) says allowed."""
    assert err.path == path
    if value is None or isinstance(value, bool):
        assert err.value is value
    else:
        assert not isinstance(err.value, bool) and err.value == value
    text = str(err)
    assert f"config error at '{path}'" in text
    assert f"got {err.value!r}" in text
    assert isinstance(err.allowed, str) and err.allowed.strip(), "the error says what is allowed"
    assert f"allowed: {err.allowed}" in text
    for part in allowed:
        assert part in err.allowed, f"{part!r} not in {err.allowed!r}"


def config_error(edits, overrides=()):
    """The first ConfigError of the schema or the model checks."""
    with pytest.raises(ConfigError) as info:
        checked(resolve_config(mutated(edits), overrides))
    return info.value


def model_error(edits):
    """The ConfigError of the model checks (the config itself must pass the schema)."""
    config = resolve_config(mutated(edits))
    with pytest.raises(ConfigError) as info:
        checked(config)
    return info.value


def cell_type(edits):
    return Recipe(resolve_config(mutated(edits))).cell_type("ring")


def other_population(count):
    """Edits adding a second population 'other' (count cells) with a synapse 'syn' of its own."""

    def apply(raw):
        other = copy.deepcopy(raw["cells"][0])
        other.update(name="other", count=count)
        raw["cells"].append(other)
        raw["synapses"].append({**copy.deepcopy(raw["synapses"][0]), "cell": "other"})
        raw["connections"][0]["target"] = "other"

    return apply


def poisson(**kw):
    return {"kind": "poisson", "cell": "ring", "synapse": "syn", "rate": 10.0, "weight": 0.01, **kw}


def iclamp(**kw):
    return {"kind": "iclamp", "cell": "ring", "duration": 1.0, "amplitude": 0.1, **kw}


def probe(**kw):
    return {"variable": "v", "cell": "ring", **kw}


# --- the base configs are valid ------------------------------------------------------------------


@pytest.mark.parametrize("path", [M1_YAML, M2_YAML], ids=["m1", "m2"])
def test_bench_configs_are_valid(path):
    config = load_config(path)
    assert config.source == path
    checked(config)


def test_resolve_does_not_modify_its_input():
    raw = copy.deepcopy(M2)
    resolve_config(raw, ["cells.ring.count=3", "simulation.seed=9"])
    assert raw == M2


# --- unknown keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edits, path, value, allowed",
    [
        pytest.param(
            {"colour": "red"}, "colour", "red", ["keys of '<top level>'", *map(repr, TOP_KEYS)], id="top"
        ),
        pytest.param(
            {"simulation.tsop": 100},
            "simulation.tsop",
            100,
            ["keys of 'simulation'", "'tstop'", "'dt'", "'method'"],
            id="simulation",
        ),
        pytest.param(
            {"cells.0.colour": "red"},
            "cells[0].colour",
            "red",
            ["keys of 'cells[0]'", "'count'", "'morphology'", "'regions'"],
            id="list-item",
        ),
        pytest.param(
            {"cells.0.regions.soma.Rm": 1},
            "cells[0].regions.soma.Rm",
            1,
            ["'Ra'", "'cm'", "'mechanisms'", "'discretization'"],
            id="region",
        ),
        pytest.param(
            {"cells.0.morphology.height": 3},
            "cells[0].morphology.height",
            3,
            ["'depth'", "'branch_length'", "'diameters'"],
            id="morphology-variant",
        ),
        pytest.param(
            {"stimuli.0": iclamp(synapse="syn")},
            "stimuli[0].synapse",
            "syn",
            ["'amplitude'", "'duration'", "'location'"],
            id="stimulus-variant",
        ),
        pytest.param(
            {"output.file": "x.zarr"}, "output.file", "x.zarr", ["'path'", "'overwrite'"], id="output"
        ),
    ],
)
def test_unknown_key(edits, path, value, allowed):
    err = config_error(edits)
    check_error(err, path, value, allowed)
    assert f"unknown key '{path.rsplit('.', 1)[-1]}'" in str(err)


# --- missing required keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, path, allowed",
    [
        pytest.param("simulation.tstop", "simulation.tstop", ["a finite number > 0 ms"], id="tstop"),
        pytest.param("cells.0.name", "cells[0].name", ["a non-empty string"], id="cell-name"),
        pytest.param("synapses.0.mechanism", "synapses[0].mechanism", [repr(POINT)], id="synapse-mechanism"),
        pytest.param("synapses.0.cell", "synapses[0].cell", ["a non-empty string"], id="synapse-cell"),
        pytest.param("stimuli.0.times", "stimuli[0].times", ["a list"], id="spike-times"),
        pytest.param(
            "cells.0.morphology",
            "cells[0].morphology",
            ["'binary_tree'", "'swc'", "kind"],
            id="morphology",
        ),
        pytest.param(
            "cells.0.discretization",
            "cells[0].discretization",
            ["per_branch", "max_length"],
            id="discretization",
        ),
        pytest.param("simulation", "simulation", ["tstop"], id="simulation"),
        pytest.param(
            "connections.0.weight",
            "connections[0].weight",
            ["a number, or {uniform: [low, high]}"],
            id="weight",
        ),
    ],
)
def test_missing_required_key(key, path, allowed):
    err = config_error({key: DELETE})
    check_error(err, path, None, allowed)
    assert "this key is required" in str(err)


def test_no_population_at_all():
    """Without cells and without a brain there is nothing to simulate."""
    err = config_error({"cells": DELETE})
    check_error(err, "cells", [], ["at least one population, or a 'brain' section that makes them"])


def test_missing_swc_file_key():
    err = config_error({"cells.0.morphology": {"kind": "swc"}})
    check_error(err, "cells[0].morphology.file", None, ["a non-empty string"])


def test_empty_file_is_missing_its_required_sections(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing here\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "empty.yaml")
    assert info.value.path == "simulation" and info.value.value is None


# --- wrong types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edits, path, value, allowed",
    [
        pytest.param(
            {"simulation.tstop": "long"},
            "simulation.tstop",
            "long",
            ["a finite number > 0 ms"],
            id="str-for-num",
        ),
        pytest.param(
            {"simulation.tstop": "1e3"}, "simulation.tstop", "1e3", ["a finite number"], id="yaml11-exponent"
        ),
        pytest.param(
            {"simulation.dt": True},
            "simulation.dt",
            True,
            ["a finite number > 0 and <= 10 ms"],
            id="bool-for-num",
        ),
        pytest.param({"cells.0.count": True}, "cells[0].count", True, ["an integer >= 1"], id="bool-for-int"),
        pytest.param({"cells.0.count": "5"}, "cells[0].count", "5", ["an integer >= 1"], id="str-for-int"),
        pytest.param({"cells.0.count": 2.5}, "cells[0].count", 2.5, ["an integer >= 1"], id="float-for-int"),
        pytest.param(
            {"simulation.dt": float("inf")}, "simulation.dt", float("inf"), ["a finite number"], id="inf"
        ),
        pytest.param(
            {"simulation": [1, 2]},
            "simulation",
            [1, 2],
            ["a mapping with keys", "'tstop'", "'dt'"],
            id="list-for-section",
        ),
        pytest.param(
            {"cells.0.regions": ["soma"]},
            "cells[0].regions",
            ["soma"],
            ["a mapping of regions"],
            id="list-for-map",
        ),
        pytest.param(
            {"cells.0.regions.dend.mechanisms": ["pas"]},
            "cells[0].regions.dend.mechanisms",
            ["pas"],
            ["a mapping of mechanisms"],
            id="list-for-mechanisms",
        ),
        pytest.param(
            {"cells.0.regions": {1: {}}},
            "cells[0].regions.1",
            1,
            ["regions as non-empty strings"],
            id="int-key",
        ),
        pytest.param(
            {"cells.0.morphology": "binary_tree"},
            "cells[0].morphology",
            "binary_tree",
            ["a mapping with 'kind' one of", "'binary_tree'", "'swc'"],
            id="str-for-tagged",
        ),
        pytest.param(
            {"cells": {"ring": {}}},
            "cells",
            {"ring": {}},
            ["a list, each a mapping with keys"],
            id="map-for-list",
        ),
        pytest.param(
            {"cells": []}, "cells", [], ["at least one population, or a 'brain' section"], id="empty-list"
        ),
        pytest.param(
            {"output.overwrite": "yes"}, "output.overwrite", "yes", ["true or false"], id="str-for-bool"
        ),
        pytest.param({"stimuli.0.times": 1.0}, "stimuli[0].times", 1.0, ["a list"], id="num-for-list"),
        pytest.param(
            {"stimuli.0.times": [1.0, "two"]},
            "stimuli[0].times[1]",
            "two",
            ["a finite number >= 0"],
            id="item",
        ),
        pytest.param(
            {"stimuli.0.cells": "some"},
            "stimuli[0].cells",
            "some",
            ["'all' or a list of cell indices"],
            id="cells-selection",
        ),
        pytest.param(
            {"connections.0.weight": "strong"},
            "connections[0].weight",
            "strong",
            ["a number, or {uniform: [low, high]}"],
            id="number-or-range",
        ),
        pytest.param(
            {"connections.0.weight": {"uniform": [1.0]}},
            "connections[0].weight",
            {"uniform": [1.0]},
            ["a number, or {uniform: [low, high]}"],
            id="short-range",
        ),
        pytest.param(
            {"cells.0.regions.dend.mechanisms.pas.g": [0.1]},
            "cells[0].regions.dend.mechanisms.pas.g",
            [0.1],
            ["a number, or an expression of the compartment's location"],
            id="mechanism-param",
        ),
        pytest.param({"name": ""}, "name", "", ["a non-empty string"], id="empty-name"),
        pytest.param({"name": 7}, "name", 7, ["a non-empty string"], id="int-for-str"),
        pytest.param(
            {"simulation.petsc": {"ts_type": ["bdf"]}},
            "simulation.petsc.ts_type",
            ["bdf"],
            ["string", "number"],
            id="petsc-option",
        ),
    ],
)
def test_wrong_type(edits, path, value, allowed):
    check_error(config_error(edits), path, value, allowed)


def test_top_level_must_be_a_mapping(tmp_path):
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "list.yaml")
    check_error(info.value, "<top level>", [1, 2], ["a mapping with keys", *map(repr, TOP_KEYS)])


# --- out of range --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edits, path, value, allowed",
    [
        pytest.param({"simulation.dt": 0}, "simulation.dt", 0, ["> 0"], id="dt-zero"),
        pytest.param({"simulation.dt": -0.025}, "simulation.dt", -0.025, ["> 0"], id="dt-negative"),
        pytest.param({"simulation.dt": 20}, "simulation.dt", 20, ["<= 10"], id="dt-huge"),
        pytest.param({"simulation.tstop": 0}, "simulation.tstop", 0, ["> 0"], id="tstop-zero"),
        pytest.param(
            {"simulation.tstop": 0.01},
            "simulation.tstop",
            0.01,
            ["a stop time >= dt (0.025 ms)"],
            id="tstop<dt",
        ),
        pytest.param({"simulation.seed": -1}, "simulation.seed", -1, ["an integer >= 0"], id="seed"),
        pytest.param(
            {"simulation.celsius": 100}, "simulation.celsius", 100, [">= -30", "<= 60", "°C"], id="celsius"
        ),
        pytest.param({"cells.0.count": -3}, "cells[0].count", -3, ["an integer >= 1"], id="count-negative"),
        pytest.param({"cells.0.count": 0}, "cells[0].count", 0, ["an integer >= 1"], id="count-zero"),
        pytest.param(
            {"connections.0.rule": {"kind": "fixed_probability", "p": 1.5}},
            "connections[0].rule.p",
            1.5,
            [">= 0 and <= 1"],
            id="probability>1",
        ),
        pytest.param(
            {"connections.0.rule": {"kind": "fixed_probability", "p": -0.1}},
            "connections[0].rule.p",
            -0.1,
            [">= 0 and <= 1"],
            id="probability<0",
        ),
        pytest.param(
            {"connections.0.rule": {"kind": "fixed_indegree", "indegree": 0}},
            "connections[0].rule.indegree",
            0,
            ["an integer >= 1"],
            id="indegree-zero",
        ),
        pytest.param(
            {"connections.0.weight": {"uniform": [2.0, 1.0]}},
            "connections[0].weight.uniform",
            [2.0, 1.0],
            ["[low, high] with low <= high"],
            id="range-reversed",
        ),
        pytest.param(
            {"stimuli.0": iclamp(duration=-1)}, "stimuli[0].duration", -1, [">= 0", "ms"], id="duration"
        ),
        pytest.param({"stimuli.0": poisson(rate=-5)}, "stimuli[0].rate", -5, [">= 0", "Hz"], id="rate"),
        pytest.param({"stimuli.0.times": [-1.0]}, "stimuli[0].times[0]", -1.0, [">= 0"], id="spike-time"),
        pytest.param(
            {"cells.0.discretization": {"per_branch": 13, "max_length": 10}},
            "cells[0].discretization",
            {"per_branch": 13, "max_length": 10.0, "odd_per_length": None},
            ["exactly one of per_branch, max_length or odd_per_length"],
            id="nseg-both",
        ),
        pytest.param(
            {"cells.0.discretization": {}},
            "cells[0].discretization",
            {"per_branch": None, "max_length": None, "odd_per_length": None},
            ["exactly one of per_branch, max_length or odd_per_length"],
            id="nseg-neither",
        ),
        pytest.param(
            {"cells.0.discretization.per_branch": 0},
            "cells[0].discretization.per_branch",
            0,
            ["an integer >= 1"],
            id="nseg-zero",
        ),
        pytest.param({"cells.0.morphology.depth": 0}, "cells[0].morphology.depth", 0, [">= 1"], id="depth"),
        pytest.param(
            {"cells.0.morphology.diameters": []},
            "cells[0].morphology.diameters",
            [],
            ["a list of at least 1 item(s)"],
            id="diameters-empty",
        ),
        pytest.param(
            {"cells.0.morphology.diameters": [2.0, -1.0]},
            "cells[0].morphology.diameters[1]",
            -1.0,
            ["a finite number > 0"],
            id="diameter-negative",
        ),
        pytest.param({"probes": [probe(sampling=0)]}, "probes[0].sampling", 0, ["> 0"], id="sampling-zero"),
        pytest.param(
            {"output.flush_interval": 0}, "output.flush_interval", 0, ["> 0", " s"], id="flush-interval"
        ),
    ],
)
def test_out_of_range(edits, path, value, allowed):
    check_error(config_error(edits), path, value, allowed)


# --- bad choices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edits, path, value, allowed",
    [
        pytest.param(
            {"simulation.method": "rk4"},
            "simulation.method",
            "rk4",
            ["one of ['petsc', 'staggered']"],
            id="method",
        ),
        pytest.param(
            {"cells.0.morphology": {"kind": "sphere"}},
            "cells[0].morphology.kind",
            "sphere",
            ["one of ['ball_and_stick', 'binary_tree', 'cylinder', 'file', 'swc', 'synthetic_pyramidal']"],
            id="morphology-kind",
        ),
        pytest.param(
            {"stimuli.0.kind": "vclamp"},
            "stimuli[0].kind",
            "vclamp",
            ["one of ['iclamp', 'poisson', 'spikes']"],
            id="stimulus-kind",
        ),
        pytest.param(
            {"stimuli.0.kind": DELETE},
            "stimuli[0].kind",
            None,
            ["one of ['iclamp', 'poisson', 'spikes']"],
            id="no-kind",
        ),
        pytest.param(
            {"connections.0.rule.kind": "small_world"},
            "connections[0].rule.kind",
            "small_world",
            ["'all_to_all'", "'fixed_indegree'", "'fixed_probability'", "'one_to_one'", "'pairs'", "'ring'"],
            id="rule-kind",
        ),
        pytest.param(
            {"synapses.0.mechanism": "ampa"},
            "synapses[0].mechanism",
            "ampa",
            [f"one of {POINT}"],
            id="synapse-mech",
        ),
        pytest.param(
            {"synapses.0.mechanism": "hh"},
            "synapses[0].mechanism",
            "hh",
            [f"one of {POINT}"],
            id="density-as-point",
        ),
        pytest.param(
            {"stimuli.0.cells": "every"},
            "stimuli[0].cells",
            "every",
            ["'all' or a list of cell indices"],
            id="cells-all",
        ),
    ],
)
def test_bad_choice(edits, path, value, allowed):
    check_error(config_error(edits), path, value, allowed)


# --- mechanisms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edits, path, value, allowed",
    [
        pytest.param(
            {"cells.0.regions.dend.mechanisms.nmda": {}},
            "cells[0].regions.dend.mechanisms.nmda",
            "nmda",
            [f"a density mechanism: {DENSITY}"],
            id="unknown-density",
        ),
        pytest.param(
            {"cells.0.regions.all.mechanisms": {"hhh": {}}},
            "cells[0].regions.all.mechanisms.hhh",
            "hhh",
            [f"a density mechanism: {DENSITY}"],
            id="unknown-in-all",
        ),
        pytest.param(
            {"cells.0.regions.soma.mechanisms.expsyn": {}},
            "cells[0].regions.soma.mechanisms.expsyn",
            "expsyn",
            [f"a density mechanism: {DENSITY}"],
            id="point-as-density",
        ),
        pytest.param(
            {"cells.0.regions.soma.mechanisms.hh.gbar": 0.1},
            "cells[0].regions.soma.mechanisms.hh.gbar",
            0.1,
            ["parameters of 'hh': ['gnabar', 'gkbar', 'gl', 'el', 'ena', 'ek']"],
            id="unknown-param",
        ),
        pytest.param(
            {"cells.0.regions.dend.mechanisms.pas.G": 0.1},
            "cells[0].regions.dend.mechanisms.pas.G",
            0.1,
            ["parameters of 'pas': ['g', 'e']"],
            id="param-case",
        ),
        pytest.param(
            {"synapses.0.params.tau2": 1},
            "synapses[0].params.tau2",
            1,
            ["parameters of 'expsyn': ['tau', 'e']"],
            id="synapse-param",
        ),
    ],
)
def test_mechanisms(edits, path, value, allowed):
    check_error(config_error(edits), path, value, allowed)


def test_point_mechanism_is_not_offered_as_density():
    err = config_error({"cells.0.regions.soma.mechanisms.expsyn": {}})
    assert "'expsyn'" not in err.allowed and "'hh'" in err.allowed


# --- location strings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, path, location",
    [
        pytest.param("synapses.0.location", "synapses[0].location", "soma", id="no-x"),
        pytest.param("synapses.0.location", "synapses[0].location", "soma(1.5)", id="x>1"),
        pytest.param("synapses.0.location", "synapses[0].location", "soma(-0.5)", id="x<0"),
        pytest.param("synapses.0.location", "synapses[0].location", "soma[a](0.5)", id="bad-index"),
        pytest.param("synapses.0.location", "synapses[0].location", "(0.5)", id="no-region"),
        pytest.param("synapses.0.location", "synapses[0].location", "soma 0.5", id="space"),
        pytest.param("synapses.0.location", "synapses[0].location", 0.5, id="number"),
        pytest.param("synapses.0.location", "synapses[0].location", "soma(0.5)x", id="trailing"),
        pytest.param(
            "cells.0.spike_detector.location", "cells[0].spike_detector.location", "all", id="detector"
        ),
        pytest.param("stimuli.0", "stimuli[0].location", "dend[1]", id="stimulus"),
        pytest.param("probes", "probes[0].location", "dend[1]", id="probe"),
        pytest.param(
            "synapses.0.location",
            "synapses[0].location",
            "soma(0.5.5)",
            id="two-dots",
        ),
        pytest.param("synapses.0.location", "synapses[0].location", "soma(.)", id="dot"),
    ],
)
def test_bad_location(key, path, location):
    if key == "stimuli.0":
        edits = {key: iclamp(location=location)}
    elif key == "probes":
        edits = {key: [probe(location=location)]}
    else:
        edits = {key: location}
    check_error(config_error(edits), path, location, ["a location such as 'soma(0.5)'", "'dend[2](0.25)'"])


def test_probe_location_also_allows_sets():
    err = config_error({"probes": [probe(location="dend[1]")]})
    assert "'all', or a region name" in err.allowed
    config = resolve_config(
        mutated({"probes": [probe(location="dend"), probe(name="all_v", location="all")]})
    )
    assert [p["location"] for p in config["probes"]] == ["dend", "all"]


# --- references between sections -----------------------------------------------------------------


@pytest.mark.parametrize(
    "edits, path, value, allowed",
    [
        pytest.param(
            {"connections.0.source": "rign"},
            "connections[0].source",
            "rign",
            ["one of the populations ['ring']"],
            id="connection-source",
        ),
        pytest.param(
            {"connections.0.target": "rign"},
            "connections[0].target",
            "rign",
            ["one of the populations ['ring']"],
            id="connection-target",
        ),
        pytest.param(
            {"stimuli.0.cell": "rign"},
            "stimuli[0].cell",
            "rign",
            ["one of the populations ['ring']"],
            id="stimulus",
        ),
        pytest.param(
            {"probes": [probe(cell="rign")]},
            "probes[0].cell",
            "rign",
            ["one of the populations ['ring']"],
            id="probe",
        ),
        pytest.param(
            {"synapses.0.cell": "rign"},
            "synapses[0].cell",
            "rign",
            ["one of the populations ['ring']"],
            id="synapse",
        ),
        pytest.param(
            {"connections.0.synapse": "ampa"},
            "connections[0].synapse",
            "ampa",
            ["a synapse of 'ring': ['syn']", "declare it under 'synapses'"],
            id="connection-synapse",
        ),
        pytest.param(
            {"stimuli.0.synapse": "ampa"},
            "stimuli[0].synapse",
            "ampa",
            ["a synapse of 'ring': ['syn']"],
            id="stimulus-synapse",
        ),
        pytest.param(
            {"stimuli.0": poisson(synapse="ampa")},
            "stimuli[0].synapse",
            "ampa",
            ["a synapse of 'ring': ['syn']"],
            id="poisson-synapse",
        ),
        pytest.param(
            {"stimuli.0.cells": [0, 64]},
            "stimuli[0].cells",
            64,
            ["cell indices below 64 (the size of 'ring')"],
            id="stimulus-index",
        ),
        pytest.param(
            {"probes": [probe(cells=[0, 100])]},
            "probes[0].cells",
            100,
            ["cell indices below 64 (the size of 'ring')"],
            id="probe-index",
        ),
        pytest.param(
            {"stimuli.0.cells": [-1]},
            "stimuli[0].cells",
            [-1],
            ["'all' or a list of cell indices within the population"],
            id="negative-index",
        ),
        pytest.param(
            other_population(10),
            "connections[0].rule.kind",
            "ring",
            ["only between populations of equal size (here 64 and 10)"],
            id="ring-sizes",
        ),
        pytest.param(
            lambda raw: (other_population(10)(raw), edit(raw, "connections.0.rule.kind", "one_to_one")),
            "connections[0].rule.kind",
            "one_to_one",
            ["of equal size (here 64 and 10)"],
            id="one-to-one-sizes",
        ),
        pytest.param(
            {"connections.0.rule": {"kind": "fixed_indegree", "indegree": 64}},
            "connections[0].rule.indegree",
            64,
            ["at most 63 (the sources available)"],
            id="indegree-self",
        ),
        pytest.param(
            lambda raw: (
                other_population(10)(raw),
                edit(raw, "connections.0.rule", {"kind": "fixed_indegree", "indegree": 65}),
            ),
            "connections[0].rule.indegree",
            65,
            ["at most 64"],
            id="indegree-other",
        ),
        pytest.param(
            {"connections.0.rule": {"kind": "pairs", "pairs": [[0, 1], [3, 64]]}},
            "connections[0].rule.pairs[1]",
            [3, 64],
            ["indices below the population sizes (64, 64)"],
            id="pairs-index",
        ),
        pytest.param(
            {"connections.0.rule": {"kind": "pairs", "pairs": [[0, 1, 2]]}},
            "connections[0].rule.pairs[0]",
            [0, 1, 2],
            [],
            id="pairs-triple",
        ),
        pytest.param(
            {"connections.0.delay": 0.01},
            "connections[0].delay",
            0.01,
            ["delays >= dt = 0.025 ms"],
            id="delay<dt",
        ),
        pytest.param(
            {"connections.0.delay": {"uniform": [0.01, 2.0]}},
            "connections[0].delay",
            {"uniform": [0.01, 2.0]},
            ["delays >= dt = 0.025 ms"],
            id="delay-range<dt",
        ),
        pytest.param(
            {"stimuli.0": poisson(start=50, stop=20)},
            "stimuli[0].stop",
            20,
            ["a time >= start (50.0 ms)"],
            id="poisson-stop<start",
        ),
        pytest.param(
            {"probes": [probe(sampling=0.03)]},
            "probes[0].sampling",
            0.03,
            ["a multiple of dt = 0.025 ms"],
            id="sampling-not-multiple",
        ),
        pytest.param(
            {"probes": [probe(sampling=0.0125)]},
            "probes[0].sampling",
            0.0125,
            ["a multiple of dt = 0.025 ms"],
            id="sampling<dt",
        ),
        pytest.param(
            {"cells.1": M2["cells"][0]},
            "cells[1].name",
            "ring",
            ["a population name not used before"],
            id="dup-pop",
        ),
        pytest.param(
            {"synapses.1": {**M2["synapses"][0], "mechanism": "exp2syn", "params": {}}},
            "synapses[1].name",
            "syn",
            ["a synapse name not used before on 'ring'"],
            id="dup-synapse",
        ),
        pytest.param(
            {"probes": [probe(name="soma_v"), probe(name="soma_v", location="soma(1)")]},
            "probes[1].name",
            "soma_v",
            ["a probe name not used before"],
            id="dup-probe",
        ),
        pytest.param(
            {"probes": [probe(), probe(location="soma(1)")]},
            "probes[1].name",
            "v",
            ["a probe name not used before"],
            id="dup-probe-default-name",
        ),
    ],
)
def test_references(edits, path, value, allowed):
    check_error(config_error(edits), path, value, allowed)


def test_same_synapse_name_on_two_populations_is_fine():
    config = checked(resolve_config(mutated(other_population(64)))).config
    assert [(s["cell"], s["name"]) for s in config["synapses"]] == [("ring", "syn"), ("other", "syn")]


def test_autapses_make_every_source_available():
    rule = {"kind": "fixed_indegree", "indegree": 64, "autapses": True}
    config = checked(resolve_config(mutated({"connections.0.rule": rule}))).config
    assert config["connections"][0]["rule"] == rule


def test_delay_equal_to_dt_is_fine():
    config = checked(resolve_config(mutated({"connections.0.delay": 0.025}))).config
    assert config["connections"][0]["delay"] == 0.025


# --- --set overrides -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "items, key, expected",
    [
        pytest.param(["cells[0].count=5"], "cells.0.count", 5, id="index"),
        pytest.param(["cells.0.count=5"], "cells.0.count", 5, id="dotted-index"),
        pytest.param(["cells.ring.count=256"], "cells.0.count", 256, id="name"),
        pytest.param(["synapses.syn.location=soma(0.25)"], "synapses.0.location", "soma(0.25)", id="name-2"),
        pytest.param(
            ["connections[0].rule.kind=all_to_all"], "connections.0.rule.kind", "all_to_all", id="nested"
        ),
        pytest.param(["simulation.tstop=50"], "simulation.tstop", 50.0, id="int"),
        pytest.param(["simulation.dt=0.01"], "simulation.dt", 0.01, id="float"),
        pytest.param(["simulation.tstop= 50 "], "simulation.tstop", 50.0, id="spaces"),
        pytest.param(["stimuli[0].times=[1, 2.5]"], "stimuli.0.times", [1.0, 2.5], id="list"),
        pytest.param(["output.overwrite=false"], "output.overwrite", False, id="bool"),
        pytest.param(["simulation.method=petsc"], "simulation.method", "petsc", id="string"),
        pytest.param(
            ["connections.0.weight={uniform: [0.01, 0.02]}"],
            "connections.0.weight",
            {"uniform": [0.01, 0.02]},
            id="mapping",
        ),
        pytest.param(["description=a=b"], "description", "a=b", id="equals-in-value"),
        pytest.param(["simulation.seed=7"], "simulation.seed", 7, id="create-key"),
        pytest.param(
            ["simulation.petsc.ts_type=bdf"], "simulation.petsc", {"ts_type": "bdf"}, id="create-nested"
        ),
        pytest.param(
            ["simulation.tstop=10", "simulation.tstop=20"], "simulation.tstop", 20.0, id="last-wins"
        ),
        pytest.param(["name=ring_run"], "output.path", "out/m2_ring.zarr", id="explicit-path-kept"),
    ],
)
def test_override(items, key, expected):
    data = resolve_config(M2, items).data
    for k in key.split("."):
        data = data[int(k) if k.isdigit() else k]
    assert data == expected and type(data) is type(expected)


def test_override_creates_a_missing_section():
    raw = mutated({"output": DELETE})
    config = resolve_config(raw, ["output.path=elsewhere.zarr"])
    assert config["output"]["path"] == "elsewhere.zarr"


def test_override_is_validated_like_the_file():
    err = config_error({}, ["simulation.tstop=-1"])
    check_error(err, "simulation.tstop", -1, ["a finite number > 0 ms"])
    err = config_error({}, ["cells.ring.colour=red"])
    check_error(err, "cells[0].colour", "red", ["'count'"])


def test_load_config_applies_overrides():
    config = load_config(M2_YAML, ["cells.ring.count=256", "simulation.tstop=1000"])
    assert config["cells"][0]["count"] == 256 and config["simulation"]["tstop"] == 1000.0
    assert config.source == M2_YAML


@pytest.mark.parametrize(
    "item, path, value, allowed",
    [
        pytest.param("cells[3].count=5", "cells[3]", 3, ["an index below 1"], id="index"),
        pytest.param("cells.3.count=5", "cells[3]", 3, ["an index below 1"], id="dotted-index"),
        pytest.param(
            "cells.nope.count=1", "cells.nope", "nope", ["an index or one of the names ['ring']"], id="name"
        ),
        pytest.param(
            "synapses.ampa.location=soma(1)",
            "synapses.ampa",
            "ampa",
            ["one of the names ['syn']"],
            id="name-2",
        ),
        pytest.param(
            "simulation.tstop.x=1",
            "simulation.tstop",
            200.0,
            ["a mapping or list to set a key in"],
            id="scalar",
        ),
        pytest.param("simulation.tstop", "simulation.tstop", None, ["key.path=value"], id="no-equals"),
        pytest.param("cells.ring.count", "cells.ring.count", None, ["key.path=value"], id="no-equals-2"),
        pytest.param("=5", "", None, ["a dotted key path"], id="no-key"),
    ],
)
def test_override_error(item, path, value, allowed):
    err = config_error({}, [item])
    check_error(err, path, value, allowed)


def test_override_value_that_is_not_yaml():
    err = config_error({}, ["cells[0].count=[1,"])
    check_error(err, "cells[0].count", "[1,", ["YAML"])


def test_apply_override_edits_in_place():
    raw = {"cells": [{"name": "a"}, {"name": "b", "count": 1}]}
    apply_override(raw, "cells.b.count=3")
    apply_override(raw, "cells[0].regions.all.cm=2")
    assert raw == {"cells": [{"name": "a", "regions": {"all": {"cm": 2}}}, {"name": "b", "count": 3}]}


# --- loading files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, where, got, reported",
    [
        pytest.param(
            "name: x\nsimulation:\n  tstop: 10\n   dt: 1\n",
            "4:6",
            "   dt: 1",
            "not allowed here",
            id="indent",
        ),
        pytest.param("name: x\n\tsimulation: 1\n", "2:1", "\tsimulation: 1", "'\\t'", id="tab"),
        pytest.param(
            "name: x\ncells: [a, b\nsimulation: {tstop: 1}\n",
            "3:11",
            "simulation: {tstop: 1}",
            "flow sequence started at line 2, column 8",
            id="unclosed",
        ),
    ],
)
def test_yaml_syntax_error_names_file_and_line(tmp_path, text, where, got, reported):
    """file:line:column, the line as the value, and what YAML reported."""
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, ["simulation.tstop=5"])
    check_error(info.value, f"{path}:{where}", got, ["valid YAML"])
    assert reported in info.value.detail


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    check_error(info.value, str(path), None, ["a readable YAML file"])
    assert "No such file or directory" in str(info.value)


def test_config_path_is_a_folder(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    check_error(info.value, str(tmp_path), None, ["a readable YAML file"])


def test_duplicate_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(M2_YAML.read_text().replace("  tstop: 200.0\n", "  tstop: 200.0\n  tstop: 5\n"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "tstop" in str(info.value)


# --- model-level checks: check_model(Recipe(config)) ---------------------------------------------


@pytest.mark.parametrize(
    "edits, path, value, allowed",
    [
        pytest.param(
            {"cells.0.regions.apical": {"cm": 2.0}},
            "cells[0].regions.apical",
            "apical",
            ["'all' or a region of the morphology: ['soma', 'dend']"],
            id="region",
        ),
        pytest.param(
            {"probes": [probe(variable="nata.m")]},
            "probes[0].variable",
            "nata.m",
            ["one of ['v', 'hh.m', 'hh.h', 'hh.n', 'syn.g']"],
            id="variable-not-on-cell",
        ),
        pytest.param(
            {"probes": [probe(variable="cai")]},
            "probes[0].variable",
            "cai",
            ["one of ['v', 'hh.m', 'hh.h', 'hh.n', 'syn.g']"],
            id="cai-without-cadyn",
        ),
        pytest.param(
            {"probes": [probe(variable="hh.x")]},
            "probes[0].variable",
            "hh.x",
            ["'hh.m'", "'hh.h'", "'hh.n'"],
            id="unknown-state",
        ),
        pytest.param(
            {"probes": [probe(variable="syn.x")]},
            "probes[0].variable",
            "syn.x",
            ["a state of synapse 'syn': ['syn.g']"],
            id="synapse-state",
        ),
        pytest.param(
            {"probes": [probe(variable="hh.m", location="dend(0.5)")]},
            "probes[0].variable",
            "hh.m",
            ["'hh' is not inserted at dend[0](0.5)"],
            id="not-at-location",
        ),
        pytest.param(
            {"probes": [probe(variable="hh.m", location="all")]},
            "probes[0].variable",
            "hh.m",
            ["'hh' is not inserted at dend["],
            id="not-at-every-location",
        ),
        pytest.param(
            {"probes": [probe(location="apical")]},
            "probes[0].location",
            "apical",
            ["a region of the morphology: ['soma', 'dend']"],
            id="probe-region",
        ),
        pytest.param(
            {"probes": [probe(location="apical(0.5)")]},
            "probes[0].location",
            "apical(0.5)",
            ["a region of the morphology: ['soma', 'dend']"],
            id="probe-region-location",
        ),
        pytest.param(
            {"stimuli.0": iclamp(location="dend[99](0.5)")},
            "stimuli[0].location",
            "dend[99](0.5)",
            ["a branch index below 15 ('dend' has 15 branches)"],
            id="stimulus-branch",
        ),
        pytest.param(
            {"stimuli.0": iclamp(location="branch[999](0.5)")},
            "stimuli[0].location",
            "branch[999](0.5)",
            ["a branch index below 16"],
            id="stimulus-global-branch",
        ),
        pytest.param(
            {"synapses.0.location": "soma[1](0.5)"},
            "synapses[0].location",
            "soma[1](0.5)",
            ["a branch index below 1 ('soma' has 1 branches)"],
            id="synapse-branch",
        ),
        pytest.param(
            {"cells.0.spike_detector.location": "dend[15](1)"},
            "cells[0].spike_detector.location",
            "dend[15](1)",
            ["a branch index below 15"],
            id="detector-branch",
        ),
        pytest.param(
            {"cells.0.spike_detector.location": "axon(0.5)"},
            "cells[0].spike_detector.location",
            "axon(0.5)",
            ["a region of the morphology: ['soma', 'dend']"],
            id="detector-region",
        ),
    ],
)
def test_model_check(edits, path, value, allowed):
    check_error(model_error(edits), path, value, allowed)


def test_probe_variable_not_at_location_lists_allowed_variables():
    err = model_error({"probes": [probe(variable="hh.m", location="dend(0.5)")]})
    assert "'v'" in err.allowed


@pytest.mark.parametrize(
    "probes",
    [
        [probe(name="a", variable="hh.m", location="soma")],
        [probe(name="b", variable="v", location="all", cells="all")],
        [probe(name="c", variable="syn.g")],
        [probe(name="d", location="dend[14](1)"), probe(name="e", location="branch[15](0)")],
    ],
    ids=["mechanism-state", "all", "synapse-state", "branches"],
)
def test_model_check_accepts_valid_probes(probes):
    checked(resolve_config(mutated({"probes": probes})))


def write_config(folder, raw):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_swc_file_is_taken_from_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "tiny.swc").write_text(SWC)
    path = write_config(
        tmp_path / "conf", mutated({"cells.0.morphology": {"kind": "swc", "file": "tiny.swc"}})
    )
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    recipe = checked(load_config(path))
    assert recipe.cell_type("ring").geometry.region_names == ("soma", "dend")


def test_missing_swc_file(tmp_path, monkeypatch):
    path = write_config(tmp_path, mutated({"cells.0.morphology": {"kind": "swc", "file": "missing.swc"}}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        checked(load_config(path))
    check_error(
        info.value,
        "cells[0].morphology.file",
        "missing.swc",
        ["an existing SWC file (relative to the config's folder)"],
    )


# --- defaults ------------------------------------------------------------------------------------


def test_defaults_are_filled():
    raw = {
        "simulation": {"tstop": 10},
        "cells": [
            {"name": "c", "morphology": {"kind": "ball_and_stick"}, "discretization": {"per_branch": 3}}
        ],
        "synapses": [{"name": "s", "cell": "c", "mechanism": "expsyn"}],
        "connections": [
            {
                "source": "c",
                "target": "c",
                "synapse": "s",
                "rule": {"kind": "all_to_all"},
                "weight": 0.1,
                "delay": 1,
            }
        ],
        "stimuli": [{"kind": "iclamp", "cell": "c", "duration": 1, "amplitude": 0.1}],
        "probes": [{"variable": "v", "cell": "c"}],
        "output": {},
    }
    config = resolve_config(raw)
    assert config["name"] == "run" and config["description"] == "-"
    assert config["simulation"] == {
        "tstop": 10.0,
        "dt": 0.025,
        "seed": 1,
        "celsius": 6.3,
        "method": "petsc",
        "petsc": {},
        "voltage_limit": 1000.0,
        "progress_interval": 2.0,
        "warmup": 0.0,
    }
    cell = config["cells"][0]
    assert cell["count"] == 1 and cell["v_init"] == -65.0 and cell["regions"] == {}
    assert cell["spike_detector"] == {"location": "branch[0](0.5)", "threshold": -10.0}
    assert cell["morphology"] == {
        "kind": "ball_and_stick",
        "soma_length": 20.0,
        "soma_diameter": 20.0,
        "dend_length": 1000.0,
        "dend_diameter": 2.0,
    }
    assert cell["discretization"] == {"per_branch": 3, "max_length": None, "odd_per_length": None}
    assert config["synapses"][0]["location"] == "soma(0.5)" and config["synapses"][0]["params"] == {}
    assert config["connections"][0]["rule"] == {"kind": "all_to_all", "autapses": False}
    assert config["stimuli"][0] == {
        "kind": "iclamp",
        "name": None,
        "cell": "c",
        "cells": "all",
        "location": "soma(0.5)",
        "delay": 0.0,
        "duration": 1.0,
        "amplitude": 0.1,
    }
    assert config["probes"][0] == {
        "name": "v",
        "variable": "v",
        "cell": "c",
        "cells": [0],
        "location": "soma(0.5)",
        "sampling": None,
    }
    assert config["output"] == {
        "path": "out/run.zarr",
        "overwrite": False,
        "flush_interval": 10.0,
        "region_bin": 1.0,
        "checkpoint_every": None,
        "checkpoint": None,
        "sonata": False,
        "stop_grace": 30.0,
    }
    assert config.source is None
    checked(config)


def test_numbers_become_floats():
    config = resolve_config(mutated({"simulation.tstop": 200, "connections.0.weight": 1}))
    assert type(config["simulation"]["tstop"]) is float and type(config["connections"][0]["weight"]) is float
    assert type(config["cells"][0]["count"]) is int


@pytest.mark.parametrize(
    "edits, overrides, path",
    [
        pytest.param({"output.path": DELETE}, [], "out/m2_ring.zarr", id="from-name"),
        pytest.param({"output.path": DELETE}, ["name=other"], "out/other.zarr", id="overridden-name"),
        pytest.param({"output.path": DELETE, "name": DELETE}, [], "out/run.zarr", id="default-name"),
        pytest.param({"output.path": "runs/x.zarr"}, [], "runs/x.zarr", id="given"),
    ],
)
def test_output_path_default(edits, overrides, path):
    assert resolve_config(mutated(edits), overrides)["output"]["path"] == path


def test_output_section_may_be_left_out():
    config = resolve_config(mutated({"output": DELETE}))
    assert config["output"] == {
        "path": "out/m2_ring.zarr",
        "overwrite": False,
        "flush_interval": 10.0,
        "region_bin": 1.0,
        "checkpoint_every": None,
        "checkpoint": None,
        "sonata": False,
        "stop_grace": 30.0,
    }


def test_spike_detector_defaults_fill_a_partial_section():
    config = resolve_config(mutated({"cells.0.spike_detector": {"threshold": 0}}))
    assert config["cells"][0]["spike_detector"] == {"location": "branch[0](0.5)", "threshold": 0.0}
    config = resolve_config(mutated({"cells.0.spike_detector": DELETE}))
    assert config["cells"][0]["spike_detector"] == {"location": "branch[0](0.5)", "threshold": -10.0}


def test_probe_name_defaults_to_variable():
    config = resolve_config(
        mutated({"probes": [probe(variable="hh.m"), probe(name="dv", location="dend(1)")]})
    )
    assert [p["name"] for p in config["probes"]] == ["hh.m", "dv"]


def _membrane_cm(geometry, region):
    """µF/cm² of the compartments of one region (cap nF = cm · area µm² · 1e-5)."""
    rid = geometry.region_names.index(region)
    nodes = (geometry.region == rid) & ~geometry.is_junction
    return geometry.cap[nodes] / geometry.area[nodes] * 1e5


@pytest.mark.parametrize(
    "regions, soma, dend",
    [
        pytest.param({}, 1.0, 1.0, id="built-in"),
        pytest.param({"all": {"cm": 2.0}}, 2.0, 2.0, id="all"),
        pytest.param({"all": {"cm": 2.0}, "soma": {"cm": 3.0}}, 3.0, 2.0, id="region-over-all"),
        pytest.param({"dend": {"cm": 0.5}}, 1.0, 0.5, id="region-only"),
    ],
)
def test_cm_falls_back_to_all_then_builtin(regions, soma, dend):
    geometry = cell_type({"cells.0.regions": regions}).geometry
    assert np.allclose(_membrane_cm(geometry, "soma"), soma)
    assert np.allclose(_membrane_cm(geometry, "dend"), dend)


def test_ra_falls_back_to_all_then_builtin():
    def gax(regions):
        return cell_type({"cells.0.regions": regions}).geometry.gax

    builtin, all_200 = gax({}), gax({"all": {"Ra": 200.0}})
    assert np.allclose(builtin, gax({"all": {"Ra": 100.0}}))
    assert np.allclose(all_200, gax({"soma": {"Ra": 200.0}, "dend": {"Ra": 200.0}}))
    assert np.allclose(all_200, gax({"all": {"Ra": 50.0}, "soma": {"Ra": 200.0}, "dend": {"Ra": 200.0}}))
    assert np.allclose(builtin, 2 * all_200)


def test_mechanisms_of_all_go_everywhere_and_regions_override_parameters():
    ct = cell_type(
        {
            "cells.0.regions": {
                "all": {"mechanisms": {"pas": {"g": 0.001}}},
                "soma": {"mechanisms": {"pas": {"g": 0.002}, "hh": {}}},
            }
        }
    )
    geo = ct.geometry
    placed = {p.mechanism: p for p in ct.mechanisms}
    assert sorted(placed) == ["hh", "pas"]
    compartments = np.nonzero(~geo.is_junction)[0]
    assert np.array_equal(np.sort(placed["pas"].node), compartments)
    soma = geo.region[placed["pas"].node] == geo.region_names.index("soma")
    g = placed["pas"].params[0]
    assert np.allclose(g[soma], 0.002) and np.allclose(g[~soma], 0.001)
    e_default = dict((n, d) for n, d, _ in CATALOGUE["pas"].PARAMS)["e"]
    assert np.allclose(placed["pas"].params[1], e_default)
    assert np.all(geo.region[placed["hh"].node] == geo.region_names.index("soma"))


def test_region_discretization_overrides_the_cell():
    geo = cell_type({}).geometry
    counts = {
        name: int(np.count_nonzero((geo.region == i) & ~geo.is_junction))
        for i, name in enumerate(geo.region_names)
    }
    assert counts == {"soma": 1, "dend": 15 * 13}
