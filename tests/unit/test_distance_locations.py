"""Locations at a path distance from the soma, `<region or section list>(distance=<µm>)`: BluePyOpt's
NrnSomaDistanceCompLocation rule (the last branch of the list, in order, whose ends enclose the distance,
x interpolated between them) on binary_tree(depth=3), whose distances are known: soma 20 µm long, so a
dendrite on its distal end starts 10 µm from its middle; dendrites of 130 µm, level 0 (branch 1) spans
10–140 µm, level 1 (branches 2, 3) 140–270 µm, level 2 (branches 4–7) 270–400 µm."""

import numpy as np
import pytest
from support import checked

from brainsim.config import resolve_config
from brainsim.errors import ConfigError
from brainsim.model.recipe import Recipe


def config_with(probe_location, nseg=5):
    """A one-cell config (cell 'c', a depth-3 binary tree, nseg compartments a branch) probing V there."""
    cell = {
        "name": "c",
        "morphology": {"kind": "binary_tree", "depth": 3},
        "discretization": {"per_branch": nseg},
        "regions": {"all": {"mechanisms": {"pas": {}}}},
    }
    probe = {"name": "p", "variable": "v", "cell": "c", "location": probe_location}
    return {"simulation": {"tstop": 1.0}, "cells": [cell], "probes": [probe]}


def located(location, nseg=5):
    """(the node a location names on cell 'c', the cell type)."""
    cell = Recipe(resolve_config(config_with("soma(0.5)", nseg))).cell_type("c")
    return cell.locate(location, "here"), cell


@pytest.mark.parametrize(
    "location, branch, x",
    [
        ("dend(distance=75)", 1, 65 / 130),  # only level 0 reaches 75 µm
        ("basal(distance=200)", 3, 60 / 130),  # branches 2 and 3 do: the last one, as BluePyOpt
        ("dend(distance=140)", 3, 0.0),  # level 0's end and level 1's start: the last, branch 3
        ("dend(distance=400)", 7, 1.0),  # the farthest tip
        ("dend( distance = 10.0 )", 1, 0.0),
        ("soma(distance=5)", 0, 0.75),  # the root: from its middle towards x = 1
        ("somatic(distance=0)", 0, 0.5),
    ],
)
def test_the_last_branch_that_reaches_the_distance(location, branch, x):
    node, cell = located(location)
    assert node == cell.geometry.node_at(branch, x)
    assert cell.geometry.branch[node] == branch


def test_compartment_follows_the_discretization():
    """200 µm is 60/130 of branch 3: its 3rd of 5 compartments, its 10th of 21."""
    node, cell = located("dend(distance=200)", nseg=5)
    assert cell.label(node) == "dend[2](0.5)"  # branch 3 is the region's 3rd branch
    node, cell = located("dend(distance=200)", nseg=21)
    assert cell.label(node) == f"dend[2]({9.5 / 21:.6g})"


def test_spans_are_path_distances_from_the_soma_middle():
    _, cell = located("soma(0.5)")
    expected = [(10, 10), (10, 140), (140, 270), (140, 270)] + [(270, 400)] * 4
    np.testing.assert_allclose(cell.spans, expected, rtol=1e-12)


def test_a_probe_at_a_distance_records_that_compartment():
    recipe = checked(resolve_config(config_with("dend(distance=300)")))
    (probe,) = recipe.probes_on(0)
    node, _ = located("dend(distance=300)")
    np.testing.assert_array_equal(probe.nodes, [node])
    assert recipe.cell_type("c").geometry.branch[node] == 7


@pytest.mark.parametrize(
    "location, allowed",
    [
        ("dend(distance=400.5)", "a branch of 'dend' reaches (10 to 400 µm along the tree)"),
        ("apical(distance=100)", "a region of the morphology: ['soma', 'dend']"),
    ],
)
def test_a_distance_no_branch_reaches_names_the_key(location, allowed):
    with pytest.raises(ConfigError) as info:
        checked(resolve_config(config_with(location)))
    err = info.value
    assert err.path == "probes[0].location" and err.value == location
    assert allowed in err.allowed


@pytest.mark.parametrize(
    "location", ["dend(distance=-5)", "dend(distance=1e2)", "dend(distance=)", "dend[1](distance=50)"]
)
def test_malformed_distances_are_refused_by_the_schema(location):
    with pytest.raises(ConfigError) as info:
        resolve_config(config_with(location))
    assert info.value.path == "probes[0].location"
    assert "'apical(distance=660)'" in info.value.allowed
