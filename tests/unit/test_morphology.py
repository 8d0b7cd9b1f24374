"""Morphology data model, validation and generators."""

import math

import numpy as np
import pytest

from brainsim.errors import MorphologyError
from brainsim.model.morphology import (
    Branch,
    Morphology,
    ball_and_stick,
    binary_tree,
    cylinder,
    synthetic_pyramidal,
)


def stick(x0, x1, d=1.0):
    return [[x0, 0, 0, d], [x1, 0, 0, d]]


def region_length(morph, region):
    return sum(morph.branch_length(i) for i, b in enumerate(morph.branches) if b.region == region)


def test_branch_points_are_a_read_only_float_copy():
    source = [[0, 0, 0, 1], [3, 4, 0, 1]]
    b = Branch(source, "dend", -1)
    assert b.points.dtype == np.float64 and b.points.shape == (2, 4)
    assert b.parent_x == 1.0
    with pytest.raises(ValueError):
        b.points[0, 0] = 5.0


def test_regions_in_first_appearance_order_and_path_length():
    m = Morphology(
        (
            Branch(stick(0, 10), "soma", -1),
            Branch([[10, 0, 0, 1], [13, 4, 0, 1], [13, 4, 12, 1]], "apic", 0),
            Branch(stick(10, 20), "dend", 0),
            Branch(stick(20, 30), "apic", 2),
        ),
        "test",
    )
    assert m.regions() == ("soma", "apic", "dend")
    assert m.branch_length(1) == pytest.approx(5.0 + 12.0)


@pytest.mark.parametrize(
    "branches, message",
    [
        ((), "at least one branch"),
        ((Branch(stick(0, 1), "soma", 0),), "must have parent -1"),
        ((Branch(stick(0, 1), "soma", -1), Branch(stick(1, 2), "dend", -1)), "second root"),
        ((Branch(stick(0, 1), "soma", -1), Branch(stick(1, 2), "dend", 1)), "earlier branch"),
        ((Branch(stick(0, 1), "soma", -1), Branch(stick(1, 2), "dend", 5)), "earlier branch"),
        ((Branch(stick(0, 1, d=0.0), "soma", -1),), "diameters must be > 0"),
        ((Branch([[0, 0, 0, 1]], "soma", -1),), "at least 2 points"),
        ((Branch([[0, 0, 1], [1, 0, 1]], "soma", -1),), "shape (k, 4)"),
        ((Branch(stick(0, np.nan), "soma", -1),), "NaN"),
        ((Branch(stick(2, 2), "soma", -1),), "zero length"),
        ((Branch(stick(0, 1), "soma", -1), Branch(stick(1, 2), "dend", 0, 1.5)), "outside [0, 1]"),
        ((Branch(stick(0, 1), "", -1),), "non-empty string"),
    ],
)
def test_validation_rejects_malformed_trees(branches, message):
    with pytest.raises(MorphologyError, match="bad-source") as err:
        Morphology(branches, "bad-source")
    assert message in str(err.value)


def test_cylinder_and_ball_and_stick():
    c = cylinder(30.0, 4.0, region="dend")
    assert c.regions() == ("dend",) and c.branch_length(0) == 30.0
    np.testing.assert_array_equal(c.branches[0].points[:, 3], [4.0, 4.0])

    m = ball_and_stick()
    soma, dend = m.branches
    assert (soma.region, soma.parent, dend.region, dend.parent, dend.parent_x) == ("soma", -1, "dend", 0, 1.0)
    assert m.branch_length(0) == 20.0 and m.branch_length(1) == 1000.0
    np.testing.assert_array_equal(dend.points[0, :3], soma.points[-1, :3])
    assert soma.points[0, 3] == 20.0 and dend.points[0, 3] == 2.0


def test_binary_tree_topology_diameters_and_layout():
    m = binary_tree()
    assert len(m.branches) == 16
    for b in range(15):
        branch = m.branches[b + 1]
        level = int(math.floor(math.log2(b + 1)))
        assert branch.parent == (0 if b == 0 else (b - 1) // 2 + 1)
        assert branch.parent_x == 1.0
        assert branch.points[0, 3] == (2.0, 1.5, 1.0, 0.75)[level]
        assert m.branch_length(b + 1) == pytest.approx(130.0)
        np.testing.assert_allclose(branch.points[0, :3], m.branches[branch.parent].points[-1, :3])

    def heading(b):
        v = np.diff(m.branches[b + 1].points[:, :3], axis=0)[0]
        return math.degrees(math.atan2(v[1], v[0]))

    assert heading(0) == pytest.approx(0.0)
    assert (heading(1), heading(2)) == pytest.approx((60.0, -60.0))
    assert (heading(3), heading(4)) == pytest.approx((90.0, 30.0))
    assert (heading(7), heading(8)) == pytest.approx((105.0, 75.0))


def test_binary_tree_rejects_bad_arguments():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        binary_tree(depth=0)
    with pytest.raises(ValueError, match="at least one diameter"):
        binary_tree(diameters=())


def test_binary_tree_deeper_than_its_diameters_repeats_the_last():
    m = binary_tree(depth=5, diameters=(2.0, 1.0))
    assert len(m.branches) == 1 + 2**5 - 1
    levels = [(b + 1).bit_length() - 1 for b in range(2**5 - 1)]
    assert [branch.points[0][3] for branch in m.branches[1:]] == [2.0 if lv == 0 else 1.0 for lv in levels]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_pyramidal_is_anatomically_plausible(seed):
    m = synthetic_pyramidal(seed)
    assert m.regions() == ("soma", "axon", "dend", "apic")
    assert m.branch_length(0) == 20.0 and m.branches[0].points[0, 3] == 20.0
    on_soma = [b for b in m.branches if b.parent == 0]
    assert all(b.parent_x == 0.5 for b in on_soma)
    assert 5 <= sum(b.region == "dend" for b in on_soma) <= 8
    assert 900 <= region_length(m, "axon") <= 1100
    assert 4000 <= region_length(m, "dend") <= 5000
    assert 6000 <= region_length(m, "apic") <= 7000
    # the trunk (3 -> ~1.6 µm) is thicker than anything else in the apical tree
    apical = [i for i, b in enumerate(m.branches) if b.region == "apic"]
    trunk = [i for i in apical if m.branches[i].points[0, 3] > 1.4]
    assert 850 <= sum(m.branch_length(i) for i in trunk) <= 950
    on_trunk = [i for i in apical if i not in trunk and m.branches[i].parent in trunk]
    obliques = [i for i in on_trunk if m.branches[i].parent != trunk[-1]]
    assert 9 <= len(obliques) <= 11
    assert 8 <= len(apical) - len(trunk) - len(obliques) <= 12  # the tuft
    d = np.concatenate([b.points[:, 3] for b in m.branches[1:]])
    assert d.min() >= 0.5 and d.max() <= 3.0
    assert m.branches[trunk[0]].points[0, 3] > 2.5
    n_children = np.bincount([b.parent for b in m.branches[1:]], minlength=len(m.branches))
    tips = [b.points[-1, 3] for i, b in enumerate(m.branches) if n_children[i] == 0 and b.region != "axon"]
    np.testing.assert_allclose(tips, 0.5)


def test_synthetic_pyramidal_is_deterministic():
    a, b, c = synthetic_pyramidal(3), synthetic_pyramidal(3), synthetic_pyramidal(4)
    assert all(np.array_equal(x.points, y.points) for x, y in zip(a.branches, b.branches, strict=True))
    assert len(a.branches) != len(c.branches) or not all(
        np.array_equal(x.points, y.points) for x, y in zip(a.branches, c.branches, strict=True)
    )
