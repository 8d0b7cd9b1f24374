"""Mechanism parameters that vary along the cell: the expression grammar (config.expressions), the values
it gives every compartment, the errors that name the key path and the compartment, and a passive cell
whose input resistance follows a g_pas gradient."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import L5PC, trace

import brainsim
from brainsim.config import resolve_config
from brainsim.config.expressions import MAX_DEPTH, MAX_LENGTH, ExpressionError, evaluate, parse
from brainsim.errors import ConfigError
from brainsim.model.cells import location_variables, scale_parameters
from brainsim.model.morphology import binary_tree, synthetic_pyramidal
from brainsim.model.recipe import Recipe

ROOT = Path(__file__).resolve().parents[2]
HAY_IH = "(-0.8696 + 2.087*exp(0.0031*distance)) * 8e-5"


def value(text, **variables):
    """An expression's value for variables given as numbers or arrays (a constant: a 0-d array)."""
    return evaluate(parse(text), {k: np.asarray(v, dtype=float) for k, v in variables.items()})


# --- the grammar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("7 - 2 - 1", 4.0),  # left-associative
        ("8 / 4 / 2", 1.0),
        ("2 ^ 3 ^ 2", 512.0),  # right-associative
        ("2 ** 3 ** 2", 512.0),
        ("(2 ^ 3) ^ 2", 64.0),
        ("-2 ^ 2", -4.0),  # the power binds tighter than the sign, as in Python
        ("2 ^ -1", 0.5),
        ("--3", 3.0),
        ("+3 - -3", 6.0),
        ("2 * -3", -6.0),
        ("3 * 2 ^ 2", 12.0),
        (".5e1 + 1.", 6.0),
        ("1E-5 * 1e5", 1.0),
        ("exp(0) + log(exp(2)) + sqrt(16) + abs(-3)", 10.0),
        ("min(3, 1, 2) + max(3, 1, 2)", 4.0),
        ("step(685, 685, 885) + step(885, 685, 885) + step(684.9, 685, 885)", 2.0),  # bounds inside
        ("1 < 2", 1.0),
        ("2 <= 2", 1.0),
        ("1 > 2", 0.0),
        ("2 >= 3", 0.0),
        ("1 + 1 < 3", 1.0),  # comparisons bind loosest
        ("(1 < 2) * (3 > 2)", 1.0),
        ("  3.137968  ", 3.137968),
    ],
)
def test_constant_values(text, expected):
    assert float(value(text)) == pytest.approx(expected, rel=1e-15)


def test_values_per_compartment_against_numpy():
    d = np.linspace(0.0, 1200.0, 241)
    diameter, x = np.linspace(4.0, 0.5, d.size), np.linspace(0.0, 1.0, d.size)
    at = dict(distance=d, diameter=diameter, x=x, order=np.zeros_like(d))
    np.testing.assert_allclose(value(HAY_IH, **at), (-0.8696 + 2.087 * np.exp(0.0031 * d)) * 8e-5, rtol=1e-15)
    hot = value("1e-4 + 9e-4*step(distance, 685, 885)", **at)
    np.testing.assert_array_equal(hot, np.where((d >= 685) & (d <= 885), 1e-4 + 9e-4, 1e-4))
    np.testing.assert_allclose(value("exp(-distance/50) * 0.01", **at), np.exp(-d / 50) * 0.01, rtol=1e-15)
    np.testing.assert_allclose(
        value("min(diameter, 2)^2 * (x < 0.5) + max(x, 0.25)", **at),
        np.minimum(diameter, 2) ** 2 * (x < 0.5) + np.maximum(x, 0.25),
        rtol=1e-15,
    )
    assert value("2.5", **at).shape == d.shape  # a constant fills every compartment


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("", 0, "an empty expression"),
        ("   ", 0, "an empty expression"),
        ("1 +", 3, "expected a number, a variable, a function or '('"),
        ("2 * * 3", 4, "unexpected '*'"),
        ("distanc * 2", 0, "unknown variable 'distanc'; the variables are ['diameter', 'distance', 'order'"),
        ("1 + sin(distance)", 4, "unknown function 'sin'; the functions are ['abs', 'exp', 'log', 'max'"),
        ("exp * 2", 0, "the function exp needs its arguments in parentheses"),
        ("(1 + 2", 0, "'(' is never closed"),
        ("exp(1, 2)", 0, "exp() takes 1 argument(s), got 2"),
        ("step(distance, 685)", 0, "step() takes 3 argument(s), got 2"),
        ("max(1)", 0, "max() takes at least 2 argument(s), got 1"),
        ("1 + 2)", 5, "unexpected ')'; expected an operator or the end"),
        ("exp(1 2)", 6, "unexpected '2'; expected ')' or an operator"),
        ("3distance", 0, "a malformed number '3d'"),
        ("1.2.3", 0, "a malformed number '1.2.'"),
        ("1e400 * distance", 0, "the number 1e400 is beyond the range of a float"),
        ("distance % 2", 9, "unexpected character '%'"),
        ("0 < distance < 10", 13, "a chained comparison"),
        ("2 ^^ 3", 3, "unexpected '^'"),
        ("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1), MAX_DEPTH, f"more than {MAX_DEPTH} levels"),
        ("-" * (MAX_DEPTH + 1) + "1", MAX_DEPTH, f"more than {MAX_DEPTH} levels"),
    ],
)
def test_errors_say_what_and_where(text, position, words):
    with pytest.raises(ExpressionError) as info:
        parse(text)
    err = info.value
    assert err.position == position, str(err)
    assert words in err.message
    lines = str(err).splitlines()
    assert lines[0].startswith(f"at character {position + 1}: ")
    assert lines[2].index("^") - 4 == position  # the caret under the character


def test_length_and_depth_limits():
    assert float(value(" + ".join(["1"] * ((MAX_LENGTH - 1) // 4 + 1)))) == (MAX_LENGTH - 1) // 4 + 1
    with pytest.raises(ExpressionError, match=f"longer than {MAX_LENGTH} characters"):
        parse("1" + " + 1" * (MAX_LENGTH // 4))
    nested = "(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH
    assert float(value(nested)) == 1.0


def test_bluepyopt_l5pc_ih_distribution_reads_as_an_expression():
    """The reference L5PC's apical Ih distribution, BluePyOpt's Python text with math.exp as exp and its
    placeholders filled in, is an expression of this grammar: Hay's gradient."""
    file = L5PC / "config" / "parameters.json"
    if not file.is_file():
        pytest.skip(f"no reference L5PC at {L5PC} (set BRAINSIM_L5PC to its folder)")
    dist = next(p for p in json.loads(file.read_text()) if p.get("dist_type") == "exp")["dist"]
    text = dist.replace("math.exp", "exp").replace("{distance}", "distance").replace("{value}", "8e-5")
    d = np.linspace(0.0, 1300.0, 27)
    np.testing.assert_allclose(value(text, distance=d), value(HAY_IH, distance=d), rtol=1e-14)


# --- per-compartment values on cells ---------------------------------------------------------------


def config_with(regions, morphology=None, discretization=None, **extra):
    """A one-cell config mapping: cell 'c' with these regions (a binary tree by default)."""
    cell = {
        "name": "c",
        "morphology": morphology or {"kind": "binary_tree", "depth": 3},
        "discretization": discretization or {"per_branch": 5},
        "regions": regions,
    }
    return {"simulation": {"tstop": 1.0}, "cells": [cell], **extra}


def cell_type(raw):
    return Recipe(resolve_config(raw)).cell_type("c")


def per_node(cell, mechanism, parameter):
    """{node: value} of one parameter of a placed mechanism."""
    from brainsim.config.mechanisms import CATALOGUE

    placement = next(p for p in cell.mechanisms if p.mechanism == mechanism)
    row = [p[0] for p in CATALOGUE[mechanism].PARAMS].index(parameter)
    return dict(zip(placement.node.tolist(), placement.params[row]))


def binary_tree_expected(geometry, n_soma, n_dend):
    """Analytic distance, diameter, x and order of every compartment of binary_tree(depth=3): soma 20 µm
    long and wide, dendrites of 130 µm with diameters 2, 1.5 and 1 µm by level."""
    nodes = np.flatnonzero(~geometry.is_junction)
    b = geometry.branch[nodes]
    k = nodes - np.searchsorted(geometry.branch, b)  # index of the compartment on its branch
    x = (k + 0.5) / np.where(b == 0, n_soma, n_dend)
    level = np.floor(np.log2(np.maximum(b, 1)))  # branch b is dendrite b - 1 in heap order
    distance = np.where(b == 0, np.abs(x - 0.5) * 20.0, 10.0 + (level + x) * 130.0)
    diameter = np.where(b == 0, 20.0, np.array([2.0, 1.5, 1.0])[level.astype(int)])
    return nodes, distance, diameter, x, np.where(b == 0, 0, level + 1)


def test_variables_on_a_binary_tree_are_the_analytic_ones():
    raw = config_with({"all": {"mechanisms": {"pas": {"g": 1e-4}}}}, discretization={"per_branch": 5})
    geometry = cell_type(raw).geometry
    nodes, distance, diameter, x, order = binary_tree_expected(geometry, 5, 5)
    got = location_variables(binary_tree(depth=3), geometry)
    np.testing.assert_allclose(got["distance"][nodes], distance, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got["diameter"][nodes], diameter, rtol=1e-12)
    np.testing.assert_allclose(got["x"][nodes], x, rtol=1e-15)
    np.testing.assert_array_equal(got["order"][nodes], order)
    # a dendrite's first compartment is soma_length/2 + half a compartment away: 10 + 13 µm
    assert got["distance"][geometry.node_at(1, 0.0)] == pytest.approx(23.0)


def test_parameters_per_compartment_all_and_region_combined():
    """'all' gives g_pas as a gradient everywhere, the dendrites override e_pas with another expression
    and keep all's g; the soma keeps all's e; hh sits on the soma only."""
    regions = {
        "all": {"mechanisms": {"pas": {"g": "1e-4 * (1 + distance/100)", "e": -70.0}}},
        "dend": {"mechanisms": {"pas": {"e": "-70 + 2*order + diameter + x"}}},
        "soma": {"mechanisms": {"hh": {"gnabar": "0.12 * (x > 0.5)"}}},
    }
    cell = cell_type(config_with(regions, discretization={"per_branch": 4}))
    nodes, distance, diameter, x, order = binary_tree_expected(cell.geometry, 4, 4)
    soma = cell.geometry.branch[nodes] == 0
    g, e = per_node(cell, "pas", "g"), per_node(cell, "pas", "e")
    assert sorted(g) == nodes.tolist()
    np.testing.assert_allclose([g[n] for n in nodes], 1e-4 * (1 + distance / 100), rtol=1e-14)
    np.testing.assert_allclose(
        [e[n] for n in nodes], np.where(soma, -70.0, -70 + 2 * order + diameter + x), rtol=1e-14
    )
    gna = per_node(cell, "hh", "gnabar")
    assert sorted(gna) == nodes[soma].tolist()
    np.testing.assert_array_equal([gna[n] for n in nodes[soma]], [0.0, 0.0, 0.12, 0.12])
    assert all(v == 0.036 for v in per_node(cell, "hh", "gkbar").values())  # the default, uniform


def test_soma_children_start_at_the_soma_centre(tmp_path):
    """An SWC dendrite on a one-sample soma attaches at soma(0.5) (NEURON's import3d): its distance
    counts from its own first sample, as h.distance from soma(0.5) does."""
    (tmp_path / "cell.swc").write_text("1 1 0 0 0 5 -1\n2 3 0 8 0 1 1\n3 3 0 108 0 1 2\n")
    raw = config_with(
        {"dend": {"mechanisms": {"pas": {"g": "1e-6 * distance"}}}},
        morphology={"kind": "swc", "file": str(tmp_path / "cell.swc")},
        discretization={"per_branch": 4},
    )
    g = per_node(cell_type(raw), "pas", "g")
    np.testing.assert_allclose(sorted(g.values()), 1e-6 * np.array([12.5, 37.5, 62.5, 87.5]), rtol=1e-12)


def walked_distances(morphology, geometry):
    """Path distance of every node from the soma's single node, walking parent to child node by node: a
    step between nodes is half of each one's compartment (a junction has none), and a branch on the soma's
    middle (parent_x 0.5) starts at its node."""
    assert geometry.x[0] == 0.5 and geometry.branch[1] != 0  # one soma compartment
    d = np.zeros(geometry.n_nodes)
    length, branch = geometry.length, geometry.branch
    for i in range(1, geometry.n_nodes):
        p = geometry.parent[i]
        on_soma_middle = branch[i] != branch[p] and morphology.branches[branch[i]].parent_x == 0.5
        assert not on_soma_middle or p == 0
        d[i] = d[p] + length[i] / 2 + (0.0 if on_soma_middle else length[p] / 2)
    return d


def test_hay_ih_gradient_on_the_synthetic_pyramidal_cell():
    """Hay et al.'s apical Ih gradient on the generated L5 cell: every apical compartment's gbar is the
    formula at its path distance found by walking the compartments; basal and somatic Ih stay uniform."""
    regions = {
        "all": {"mechanisms": {"ih": {"gbar": 8e-5}}},
        "apic": {"mechanisms": {"ih": {"gbar": HAY_IH}}},
        "soma": {"discretization": {"per_branch": 1}},
    }
    raw = config_with(regions, morphology={"kind": "synthetic_pyramidal"}, discretization={"max_length": 20})
    cell = cell_type(raw)
    geo = cell.geometry
    d = walked_distances(synthetic_pyramidal(), geo)
    np.testing.assert_allclose(location_variables(synthetic_pyramidal(), geo)["distance"], d, atol=1e-9)
    gbar = per_node(cell, "ih", "gbar")
    apic = np.flatnonzero((geo.region == geo.region_names.index("apic")) & ~geo.is_junction)
    np.testing.assert_allclose([gbar[n] for n in apic], (-0.8696 + 2.087 * np.exp(0.0031 * d[apic])) * 8e-5)
    others = [v for n, v in gbar.items() if n not in set(apic.tolist())]
    assert others and all(v == 8e-5 for v in others)
    assert d[apic].max() > 1000  # the tuft is reached: there gbar is ~ 30× the soma's
    assert max(gbar.values()) > 25 * 8e-5


def test_patient_factors_multiply_the_values_per_compartment():
    cell = cell_type(config_with({"all": {"mechanisms": {"pas": {"g": "1e-4 * exp(-distance/100)"}}}}))
    scaled = scale_parameters(cell, {"pas.g": 1.5}, "c_scaled", "factors")
    (before,), (after,) = cell.mechanisms, scaled.mechanisms
    np.testing.assert_array_equal(after.params[0], 1.5 * before.params[0])
    np.testing.assert_array_equal(after.params[1], before.params[1])
    assert np.unique(before.params[0]).size > 10


# --- the config: numbers, hashes, errors ------------------------------------------------------------


def test_constant_expressions_are_numbers_and_the_hash_follows_the_text():
    def config(g):
        return resolve_config(config_with({"all": {"mechanisms": {"pas": {"g": g}}}}))

    assert config("1e-4")["cells"][0]["regions"]["all"]["mechanisms"]["pas"]["g"] == 1e-4
    assert config("1e-4").hash() == config(1e-4).hash() == config("2e-4 / 2").hash()
    gradient = config("1e-4 * exp(-distance/50)")
    assert gradient["cells"][0]["regions"]["all"]["mechanisms"]["pas"]["g"] == "1e-4 * exp(-distance/50)"
    assert len({gradient.hash(), config("1e-4 * exp(-distance/60)").hash(), config(1e-4).hash()}) == 3


@pytest.mark.parametrize(
    "g, words",
    [
        ("1e-4 * exp(-distanse/50)", ["at character 13: unknown variable 'distanse'", "^"]),
        ("1e-4 * (1 + distance", ["at character 8: '(' is never closed"]),
        (True, []),
        ([1e-4], []),
    ],
)
def test_bad_expressions_are_config_errors_naming_the_key(g, words):
    with pytest.raises(ConfigError) as info:
        resolve_config(config_with({"dend": {"mechanisms": {"pas": {"g": g}}}}))
    err = info.value
    assert err.path == "cells[0].regions.dend.mechanisms.pas.g"
    assert err.value == g
    assert "a number, or an expression of the compartment's location" in err.allowed
    assert "['diameter', 'distance', 'order', 'x']" in err.allowed and "step()" in err.allowed
    for word in words:
        assert word in str(err)


def test_a_constant_expression_without_a_finite_value_is_refused():
    with pytest.raises(ConfigError) as info:
        resolve_config(config_with({"all": {"mechanisms": {"pas": {"g": "1 / 0"}}}}))
    assert info.value.path == "cells[0].regions.all.mechanisms.pas.g"
    assert "it is inf" in str(info.value)


@pytest.mark.parametrize("where", ["all", "dend"])
def test_a_value_that_is_not_finite_names_the_compartment(where):
    """On a ball-and-stick (dendrite 1000 µm in 100 compartments, from the soma's end: distances 10 + 5,
    15, ... µm), sqrt(500 - distance) is NaN from the compartment at 505 µm on."""
    raw = config_with(
        {where: {"mechanisms": {"pas": {"g": "1e-6 * sqrt(500 - distance)"}}}},
        morphology={"kind": "ball_and_stick"},
        discretization={"per_branch": 100},
    )
    raw["cells"][0]["regions"].setdefault("soma", {})["discretization"] = {"per_branch": 1}
    with pytest.raises(ConfigError) as info:
        cell_type(raw)
    err = info.value
    assert err.path == f"cells[0].regions.{where}.mechanisms.pas.g"
    assert err.value == "1e-6 * sqrt(500 - distance)"
    assert "a finite number on every compartment" in err.allowed
    assert "it is nan on dend[0](0.495) (distance 505 µm, diameter 2 µm)" in str(err)
    assert "on 51 of the 100 compartments of region 'dend' it is not finite" in str(err)


def test_brain_cell_types_take_expressions_and_errors_name_them():
    small = ROOT / "tests" / "data" / "small_brain.yaml"
    key = "brain.cell_types.pyr.regions.all.mechanisms.pas.g"
    with pytest.raises(ConfigError) as info:
        brainsim.load_config(small, set={key: "log(distance - 1e9)"})
    assert info.value.path == key
    assert "it is nan on soma[0](0.166667) (distance 6.66667 µm, diameter 20 µm)" in str(info.value)
    brainsim.load_config(small, set={key: "2e-4 * (1 + distance/300)"})


# --- end to end -------------------------------------------------------------------------------------

SOMA_L, SOMA_D, DEND_L, DEND_D, NSEG = 20.0, 20.0, 1000.0, 2.0, 200
G_UNIFORM, G_GRADIENT = 1e-4, "1e-4 * (1 + distance/250)"


def input_resistance(geometry, g):
    """DC input resistance (MΩ) at node 0 for membrane conductances g (S/cm², per node), by Gaussian
    elimination of the tree's conductance matrix from the leaves up."""
    diag = g * geometry.area * 1e-2  # µS
    diag[1:] += geometry.gax[1:]
    np.add.at(diag, geometry.parent[1:], geometry.gax[1:])
    for i in range(geometry.n_nodes - 1, 0, -1):
        diag[geometry.parent[i]] -= geometry.gax[i] ** 2 / diag[i]
    return 1.0 / diag[0]


def test_a_g_pas_gradient_changes_the_input_resistance_of_a_run(tmp_path):
    """A passive ball-and-stick under a somatic current step: with g_pas rising along the dendrite, the
    settled soma voltage is what the cable's conductances with that gradient give (not the uniform
    cell's), from the config file and from the Python API's `set`."""
    config = {
        "name": "gradient",
        "simulation": {"tstop": 120.0, "dt": 0.1, "method": "staggered"},
        "cells": [
            {
                "name": "c",
                "v_init": -70.0,
                "morphology": {"kind": "ball_and_stick"},
                "discretization": {"per_branch": NSEG},
                "regions": {
                    "all": {"mechanisms": {"pas": {"g": G_GRADIENT, "e": -70.0}}},
                    "soma": {"discretization": {"per_branch": 1}},
                },
            }
        ],
        "stimuli": [
            {"kind": "iclamp", "cell": "c", "location": "soma(0.5)", "duration": 1000.0, "amplitude": 0.1}
        ],
        "probes": [{"name": "v", "variable": "v", "cell": "c", "location": "soma(0.5)", "sampling": 1.0}],
        "output": {"path": str(tmp_path / "gradient.zarr"), "overwrite": True},
    }
    path = tmp_path / "gradient.yaml"
    path.write_text(yaml.safe_dump(config))
    key = "cells.c.regions.all.mechanisms.pas.g"
    configs = {
        "gradient": brainsim.load_config(path),
        "uniform": brainsim.load_config(path, set={key: G_UNIFORM}),
    }
    assert configs["gradient"].hash() != configs["uniform"].hash()

    geometry = Recipe(configs["gradient"]).cell_type("c").geometry
    distance = np.where(
        geometry.branch == 0, 0.0, SOMA_L / 2 + (np.arange(geometry.n_nodes) - 0.5) / NSEG * DEND_L
    )  # node 0 is the soma's one compartment, node k >= 1 the dendrite's (k - 1)-th
    expected = {
        "gradient": input_resistance(geometry, 1e-4 * (1 + distance / 250)),
        "uniform": input_resistance(geometry, np.full(geometry.n_nodes, G_UNIFORM)),
    }
    assert expected["uniform"] / expected["gradient"] > 1.3  # the gradient's extra leak is seen at the soma
    for name, cfg in configs.items():
        store = brainsim.run(cfg, tmp_path / f"{name}.zarr", overwrite=True, progress=False)
        _, v, _ = trace(store.path, "v")
        assert (v[-1, 0] + 70.0) / 0.1 == pytest.approx(expected[name], rel=1e-4), name
