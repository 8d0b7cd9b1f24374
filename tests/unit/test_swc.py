"""SWC reading (from_swc) and writing (to_swc)."""

from pathlib import Path

import numpy as np
import pytest

from brainsim.errors import MorphologyError
from brainsim.model.discretize import discretize
from brainsim.model.morphology import (
    L5PC_SYNTHETIC_SWC,
    Branch,
    Morphology,
    ball_and_stick,
    binary_tree,
    synthetic_pyramidal,
    to_swc,
    write_l5pc_synthetic,
)
from brainsim.model.swc import from_swc

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def swc(tmp_path):
    def write(text, name="cell.swc"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def points(morph, b):
    return morph.branches[b].points.tolist()


# ------------------------------------------------------------------------------------------ errors

MALFORMED = {
    "wrong field count": ("1 1 0 0 0 5 -1\n2 3 0 1 0 1\n", 2, "expected 7 fields"),
    "non-numeric field": ("1 1 0 0 0 5 -1\n# note\n2 3 0 abc 0 1 1\n", 3, "field 'y' is not a number"),
    "non-finite field": ("1 1 0 0 0 5 -1\n2 3 0 nan 0 1 1\n", 2, "field 'y' is not finite"),
    "non-integer id": ("1 1 0 0 0 5 -1\n2.5 3 0 1 0 1 1\n", 2, "field 'id' must be an integer"),
    "duplicate id": (
        "1 1 0 0 0 5 -1\n2 3 0 9 0 1 1\n\n2 3 0 8 0 1 1\n",
        4,
        "duplicate sample id 2 (first defined on line 2)",
    ),
    "zero radius": ("1 1 0 0 0 5 -1\n2 3 0 9 0 0 1\n", 2, "zero radius"),
    "negative radius": ("1 1 0 0 0 5 -1\n2 3 0 9 0 -1 1\n", 2, "negative radius"),
    "missing parent": ("1 1 0 0 0 5 -1\n2 3 0 9 0 1 1\n3 3 0 9 0 1 7\n", 3, "missing parent"),
    "self parent": ("1 1 0 0 0 5 -1\n2 3 0 9 0 1 2\n", 2, "cycle: 2 -> 2"),
    # sample 5 (line 2) only hangs off the cycle 2 -> 4 -> 3 -> 2, whose first line is 4
    "later parent making a cycle": (
        "1 1 0 0 0 5 -1\n5 3 0 0 9 1 2\n# cycle follows\n2 3 0 9 0 1 4\n3 3 0 8 0 1 2\n4 3 0 7 0 1 3\n",
        4,
        "cycle: 2 -> 4 -> 3 -> 2",
    ),
    "two roots": ("1 1 0 0 0 5 -1\n2 3 0 9 0 1 1\n3 3 50 0 0 5 -1\n4 3 50 9 0 1 3\n", 3, "second root"),
    "soma below a dendrite": ("1 3 0 0 0 5 -1\n2 3 0 9 0 1 1\n3 1 0 19 0 1 2\n", 3, "must form the root"),
    "branched soma": (
        "1 1 0 0 0 5 -1\n2 1 0 5 0 5 1\n3 1 0 -5 0 5 1\n4 1 5 0 0 5 1\n",
        1,
        "has 3 soma children",
    ),
    "zero-length branch": (
        "1 1 0 0 0 5 -1\n2 3 0 9 0 1 1\n3 3 0 9 0 1 2\n4 3 0 19 0 1 2\n",
        3,
        "zero length",
    ),
    "point-like soma cable": (
        "1 1 0 0 0 5 -1\n2 1 0 0 0 4 1\n",
        1,
        "soma cable from sample 1 has zero length",
    ),
    "bare branching root": ("1 3 0 0 0 1 -1\n2 3 0 9 0 1 1\n3 3 0 -9 0 1 1\n", 1, "starts no cable"),
}


@pytest.mark.parametrize("text, line, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_files_name_file_and_line(swc, text, line, message):
    path = swc(text)
    with pytest.raises(MorphologyError) as err:
        from_swc(path)
    assert err.value.line == line
    assert f"{path}:{line}: " in str(err.value)
    assert message in str(err.value)


def test_empty_file(swc):
    path = swc("# only a comment\n\n")
    with pytest.raises(MorphologyError, match="no samples") as err:
        from_swc(path)
    assert err.value.source == str(path) and err.value.line is None


# ------------------------------------------------------------------------------------------ somas


def test_one_point_soma_is_a_cylinder_of_the_sphere_area(swc):
    m = from_swc(swc("1 1 1 2 3 5 -1\n2 3 1 20 3 1 1\n3 3 1 30 3 1 2\n4 3 9 2 3 0.5 1\n"))
    assert m.regions() == ("soma", "dend")
    assert points(m, 0) == [[1, -3, 3, 10], [1, 7, 3, 10]]  # L = d = 2r along y, centred on the sample
    # a child with several samples starts at its first sample; one with a single sample at the soma centre
    assert points(m, 1) == [[1, 20, 3, 2], [1, 30, 3, 2]]
    assert points(m, 2) == [[1, 2, 3, 1], [9, 2, 3, 1]]
    assert [(b.parent, b.parent_x) for b in m.branches[1:]] == [(0, 0.5), (0, 0.5)]
    area = discretize(
        m,
        ra={"soma": 1, "dend": 1},
        cm={"soma": 1, "dend": 1},
        nseg={"soma": ("per_branch", 1), "dend": ("per_branch", 1)},
    ).area[0]
    assert area == pytest.approx(4 * np.pi * 5**2)


def test_three_point_soma(swc):
    text = (
        "1 1 0 0 0 5 -1\n2 1 0 -5 0 5 1\n3 1 0 5 0 5 1\n4 3 0 0 10 1 1\n5 3 0 0 20 1 4\n6 2 0 -5 -3 0.5 2\n"
    )
    m = from_swc(swc(text))
    assert points(m, 0) == [[0, -5, 0, 10], [0, 5, 0, 10]]
    assert points(m, 1) == [[0, 0, 10, 2], [0, 0, 20, 2]]
    assert points(m, 2) == [[0, 0, 0, 1], [0, -5, -3, 1]]  # a child of an outer sample: still the centre
    assert [(b.region, b.parent, b.parent_x) for b in m.branches[1:]] == [("dend", 0, 0.5), ("axon", 0, 0.5)]


def test_contour_soma_uses_centroid_and_mean_radius(swc):
    angles = np.radians(np.arange(0, 360, 30))
    radii = np.where(np.arange(12) % 2, 5.0, 7.0)  # a wavy outline with mean distance 6 µm
    lines = ["# contour"]
    for k, (a, r) in enumerate(zip(angles, radii, strict=True), start=1):
        lines.append(f"{k} 1 {10 + r * np.cos(a)!r} {2 + r * np.sin(a)!r} 4 0.1 {k - 1 if k > 1 else -1}")
    lines += ["13 3 17 2 4 1 1", "14 3 30 2 4 1 13"]
    m = from_swc(swc("\n".join(lines)))
    np.testing.assert_allclose(points(m, 0), [[10, -4, 4, 12], [10, 8, 4, 12]], atol=1e-12)
    assert (m.branches[1].parent, m.branches[1].parent_x) == (0, 0.5)
    assert points(m, 1) == [[17, 2, 4, 2], [30, 2, 4, 2]]


def test_soma_cable_and_attachment_along_it(swc):
    text = (
        "1 1 0 0 0 5 -1\n2 1 0 10 0 4 1\n3 1 0 30 0 3 2\n"  # an open chain: a cable, not a contour
        "4 3 5 10 0 1 2\n5 3 15 10 0 1 4\n"
        "6 3 0 40 0 1 3\n"
        "7 2 0 -8 0 0.5 1\n"
    )
    m = from_swc(swc(text))
    assert points(m, 0) == [[0, 0, 0, 10], [0, 10, 0, 8], [0, 30, 0, 6]]
    assert [(b.parent, b.parent_x) for b in m.branches[1:]] == [(0, 1 / 3), (0, 1.0), (0, 0.0)]
    assert points(m, 2) == [[0, 30, 0, 2], [0, 40, 0, 2]]  # one sample: starts at its soma sample
    assert points(m, 3) == [[0, 0, 0, 1], [0, -8, 0, 1]]


def test_two_sample_soma_is_a_cable(swc):
    m = from_swc(swc("1 1 0 0 0 5 -1\n2 1 20 0 0 5 1\n3 3 20 0 0 1 2\n4 3 90 0 0 1 3\n"))
    assert points(m, 0) == [[0, 0, 0, 10], [20, 0, 0, 10]]
    assert (m.branches[1].parent_x, points(m, 1)) == (1.0, [[20, 0, 0, 2], [90, 0, 0, 2]])


# ------------------------------------------------------------------------------------------ branches

TREE = """\
# soma, a dendrite that forks at sample 4, and an apical piece after a type change
1 1 0 0 0 5 -1
2 3 10 0 0 2 1
3 3 20 0 0 2 2
4 3 30 0 0 1.5 3
5 3 40 5 0 1 4
6 3 50 5 0 1 5
7 3 40 -5 0 0.5 4
8 4 60 5 0 0.8 6
9 4 70 5 0 0.8 8
10 3 30 0 0 0.25 4
11 3 30 -10 0 0.25 10
12 7 0 -20 0 1 1
"""


def test_branches_split_at_forks_and_type_changes(swc):
    m = from_swc(swc(TREE))
    assert m.regions() == ("soma", "dend", "apic", "custom_7")
    assert [(b.region, b.parent, b.parent_x) for b in m.branches] == [
        ("soma", -1, 1.0),
        ("dend", 0, 0.5),
        ("dend", 1, 1.0),
        ("dend", 1, 1.0),
        ("apic", 2, 1.0),
        ("dend", 1, 1.0),
        ("custom_7", 0, 0.5),
    ]
    assert points(m, 1) == [[10, 0, 0, 4], [20, 0, 0, 4], [30, 0, 0, 3]]
    # children of a branch start at the fork with their own first diameter
    assert points(m, 2) == [[30, 0, 0, 2], [40, 5, 0, 2], [50, 5, 0, 2]]
    assert points(m, 3) == [[30, 0, 0, 1], [40, -5, 0, 1]]
    assert points(m, 4) == [[50, 5, 0, 1.6], [60, 5, 0, 1.6], [70, 5, 0, 1.6]]
    assert points(m, 5) == [[30, 0, 0, 0.5], [30, -10, 0, 0.5]]  # its first sample already sits on the fork
    assert points(m, 6) == [[0, 0, 0, 2], [0, -20, 0, 2]]


def test_parents_defined_later_are_reordered(swc):
    lines = TREE.splitlines()
    shuffled = "\n".join([lines[0], *reversed(lines[1:])])
    m, ref = from_swc(swc(shuffled)), from_swc(swc(TREE, "ref.swc"))
    assert [b.region for b in m.branches][0] == "soma"
    assert all(b.parent < i for i, b in enumerate(m.branches))
    key = lambda morph: sorted((b.region, b.parent_x, b.points.tolist()) for b in morph.branches)  # noqa: E731
    assert key(m) == key(ref)


# ------------------------------------------------------------------------------------------ writing


@pytest.mark.parametrize("make", [ball_and_stick, binary_tree, synthetic_pyramidal], ids=lambda f: f.__name__)
def test_to_swc_round_trips_exactly(tmp_path, make):
    morph = make()
    to_swc(morph, tmp_path / "out.swc")
    back = from_swc(tmp_path / "out.swc")
    assert len(back.branches) == len(morph.branches)
    for a, b in zip(morph.branches, back.branches, strict=True):
        assert (a.region, a.parent, a.parent_x) == (b.region, b.parent, b.parent_x)
        np.testing.assert_allclose(a.points, b.points, rtol=0, atol=1e-12)


def test_to_swc_writes_a_three_point_soma_and_custom_types(tmp_path):
    soma = Branch([[0, -4, 0, 8], [0, 4, 0, 8]], "soma", -1)
    morph = Morphology((soma, Branch([[0, 0, 0, 1], [9, 0, 0, 1]], "custom_12", 0, 0.5)), "test")
    to_swc(morph, tmp_path / "out.swc", comments=("hello",))
    text = (tmp_path / "out.swc").read_text(encoding="utf-8")
    assert "# hello\n" in text
    assert [line.split() for line in text.splitlines() if not line.startswith("#")] == [
        ["1", "1", "0.0", "0.0", "0.0", "4.0", "-1"],
        ["2", "1", "0.0", "-4.0", "0.0", "4.0", "1"],
        ["3", "1", "0.0", "4.0", "0.0", "4.0", "1"],
        ["4", "12", "0.0", "0.0", "0.0", "0.5", "1"],
        ["5", "12", "9.0", "0.0", "0.0", "0.5", "4"],
    ]


@pytest.mark.parametrize(
    "child, message",
    [
        (Branch([[5, 0, 0, 1], [5, 9, 0, 1]], "dend", 1, 0.5), "parent_x=0.5"),
        (Branch([[5, 0, 0, 1], [5, 9, 0, 1]], "basal", 1), "has no SWC type"),
        (Branch([[5, 0, 0, 1], [5, 9, 0, 1]], "soma", 1), "soma but not the root"),
    ],
)
def test_to_swc_refuses_what_swc_cannot_encode(tmp_path, child, message):
    morph = Morphology((*ball_and_stick(dend_length=10).branches, child), "test")
    with pytest.raises(MorphologyError, match="test") as err:
        to_swc(morph, tmp_path / "out.swc")
    assert message in str(err.value)


# ------------------------------------------------------------------------------------------ shipped cell


def test_shipped_synthetic_cell_round_trips_lengths_and_areas():
    generated, read = synthetic_pyramidal(0), from_swc(REPO / L5PC_SYNTHETIC_SWC)
    assert len(read.branches) == len(generated.branches)
    np.testing.assert_allclose(
        [read.branch_length(i) for i in range(len(read.branches))],
        [generated.branch_length(i) for i in range(len(generated.branches))],
        rtol=1e-6,
    )
    regions = generated.regions()
    params = dict(
        ra=dict.fromkeys(regions, 100.0),
        cm=dict.fromkeys(regions, 1.0),
        nseg=dict.fromkeys(regions, ("max_length", 10.0)),
    )
    a, b = discretize(generated, **params), discretize(read, **params)
    np.testing.assert_array_equal(a.parent, b.parent)
    np.testing.assert_allclose(a.area, b.area, rtol=1e-6)
    np.testing.assert_allclose(a.gax, b.gax, rtol=1e-6)


def test_shipped_synthetic_cell_is_what_the_generator_writes(tmp_path):
    write_l5pc_synthetic(tmp_path / "l5.swc")
    fresh, shipped = from_swc(tmp_path / "l5.swc"), from_swc(REPO / L5PC_SYNTHETIC_SWC)
    assert [(b.region, b.parent) for b in fresh.branches] == [(b.region, b.parent) for b in shipped.branches]
    for a, b in zip(fresh.branches, shipped.branches, strict=True):
        np.testing.assert_allclose(a.points, b.points, rtol=0, atol=2e-3)  # last-digit rounding may differ
    header = (REPO / L5PC_SYNTHETIC_SWC).read_text(encoding="utf-8").splitlines()[:5]
    assert any("SYNTHETIC" in line for line in header) and any(
        "write_l5pc_synthetic()" in line for line in header
    )
