"""Reconstructions through MorphIO (ASC, HDF5), NEURON's soma-contour rule, section-list names, BluePyOpt's
axon replacement and nseg rule."""

import json
import math
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from support import L5PC

import brainsim
from brainsim.errors import ConfigError, MorphologyError
from brainsim.model.discretize import compartment_count, discretize
from brainsim.model.morphio_reader import read_morphology, soma_from_contour
from brainsim.model.morphology import ball_and_stick, replace_axon

ROOT = Path(__file__).resolve().parents[2]


L5PC_ASC = L5PC / "morphology" / "C060114A7.asc"
needs_l5pc = pytest.mark.skipif(
    not L5PC_ASC.is_file(),
    reason=f"the reference L5PC is absent ({L5PC_ASC}); set BRAINSIM_L5PC to its folder",
)

# NEURON 9.0.2 on C060114A7.asc (Import3d_Neurolucida3 + Import3d_GUI(...).instantiate, nseg = 1 + 2·int(L /
# 40)): per section type, sections, total length (µm), total area (µm²) and total nseg.
NEURON_L5PC = {
    "soma": (1, 26.11268542797676, 1504.3442844216697, 1),
    "axon": (128, 15158.539532564237, 22655.989525281064, 766),
    "dend": (66, 4175.637007892131, 9782.458253899284, 210),
    "apic": (130, 9821.980909993097, 30920.38100195153, 486),
}


def lateral(points):
    """Length (µm) and lateral frustum area (µm²) of a branch's points."""
    h = np.linalg.norm(np.diff(points[:, :3], axis=0), axis=1)
    d = points[:, 3]
    return h.sum(), float(np.sum(np.pi / 2 * (d[:-1] + d[1:]) * np.hypot(h, np.diff(d) / 2)))


def geometry(morph, rule=("odd_per_length", 40.0)):
    regions = morph.regions()
    return discretize(
        morph,
        ra=dict.fromkeys(regions, 100.0),
        cm=dict.fromkeys(regions, 1.0),
        nseg=dict.fromkeys(regions, rule),
    )


# ------------------------------------------------------------------------------------ the reference L5PC


@needs_l5pc
def test_l5pc_sections_lengths_and_areas_are_neurons():
    morph = read_morphology(L5PC_ASC)
    geo = geometry(morph)
    assert morph.regions() == ("soma", "axon", "dend", "apic")
    for region, (n, length, area, nseg) in NEURON_L5PC.items():
        branches = [i for i, b in enumerate(morph.branches) if b.region == region]
        nodes = geo.nodes_in_region(region)
        nodes = nodes[~geo.is_junction[nodes]]
        assert len(branches) == n, region
        assert len(nodes) == nseg, region
        # NEURON keeps 3-d points as float32 rounded to 8 digits: the contour-made soma agrees to ~1e-7
        tolerance = 1e-6 if region == "soma" else 1e-9
        assert sum(morph.branch_length(i) for i in branches) == pytest.approx(length, rel=tolerance), region
        assert geo.area[nodes].sum() == pytest.approx(area, rel=tolerance), region
    # sections come in NEURON's numbering: apic[3] and dend[5] are NEURON's
    apic = [i for i, b in enumerate(morph.branches) if b.region == "apic"]
    dend = [i for i, b in enumerate(morph.branches) if b.region == "dend"]
    assert morph.branch_length(apic[3]) == pytest.approx(27.87965393666539, rel=1e-9)
    assert morph.branch_length(dend[5]) == pytest.approx(2.8847538300585964, rel=1e-9)


@needs_l5pc
def test_l5pc_soma_is_neurons_contour_section():
    soma = read_morphology(L5PC_ASC).branches[0]
    assert soma.region == "soma" and soma.points.shape == (21, 4)
    length, area = lateral(soma.points)
    s = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(soma.points[:, :3], axis=0), axis=1))))
    d = soma.points[:, 3]
    mean_diameter = np.sum((d[1:] + d[:-1]) / 2 * np.diff(s)) / length
    assert length == pytest.approx(26.11268542797676, rel=1e-6)
    assert area == pytest.approx(1504.3442844216697, rel=1e-6)
    assert mean_diameter == pytest.approx(15.659716033171577, rel=1e-6)  # NEURON's soma.diam (nseg 1)


@needs_l5pc
def test_l5pc_axon_replacement_is_bluepyopts():
    original = read_morphology(L5PC_ASC)
    morph = replace_axon(original)
    axon = [(i, b) for i, b in enumerate(morph.branches) if b.region == "axon"]
    assert len(morph.branches) == 1 + 66 + 130 + 2
    assert [i for i, _ in axon] == [197, 198]  # after the others
    (i0, first), (_, second) = axon
    assert (first.parent, first.parent_x) == (0, 1.0) and (second.parent, second.parent_x) == (i0, 1.0)
    assert [morph.branch_length(i) for i, _ in axon] == pytest.approx([30.0, 30.0], rel=1e-12)
    # NEURON's axon[0].diam and axon[1].diam (axon[1]: the first axonal section whose midpoint lies beyond
    # 60 µm of soma(0.5)), as BluePyOpt's replace_axon reads them
    assert first.points[:, 3].tolist() == pytest.approx([1.38, 1.38], abs=1e-6)
    assert second.points[:, 3].tolist() == pytest.approx([0.92, 0.92], abs=1e-6)
    np.testing.assert_array_equal(first.points[0, :3], original.branches[1].points[0, :3])
    # the other branches are unchanged, in their order
    others = [b for b in original.branches if b.region != "axon"]
    for a, b in zip(others, morph.branches[:197], strict=True):
        assert a.region == b.region and np.array_equal(a.points, b.points)
    # BluePyOpt's nseg rule gives each 30 µm section one compartment
    geo = geometry(morph)
    assert np.count_nonzero(np.isin(geo.branch, [197, 198]) & ~geo.is_junction) == 2


@needs_l5pc
def test_l5pc_runs_from_a_config_with_section_lists(tmp_path):
    """pas only, uniform cm and g: every compartment decays alike, V(t) = e + (v_init - e)·exp(-t·g / cm)."""
    config = {
        "name": "l5pc_asc",
        "simulation": {"tstop": 5.0, "dt": 0.025},
        "cells": [
            {
                "name": "cell",
                "morphology": {"kind": "file", "file": str(L5PC_ASC), "replace_axon": True},
                "discretization": {"odd_per_length": 40.0},
                "v_init": -65.0,
                "regions": {
                    "all": {"Ra": 100.0, "cm": 1.0, "mechanisms": {"pas": {"g": 3.0e-5, "e": -75.0}}},
                    "somatic": {"Ra": 100.0},
                    "apical": {"cm": 1.0},
                },
            }
        ],
        "probes": [
            {"name": "soma", "variable": "v", "cell": "cell", "location": "somatic(0.5)"},
            {"name": "tuft", "variable": "v", "cell": "cell", "location": "apical[120](0.5)"},
            {"name": "basal", "variable": "v", "cell": "cell", "location": "basal"},
            {"name": "ais", "variable": "v", "cell": "cell", "location": "axonal[1](0.5)"},
        ],
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    store = brainsim.run(brainsim.load_config(tmp_path / "run.yaml"), tmp_path / "run.zarr", progress=False)
    assert store.status == "complete"
    assert store.counts["compartments"] == 1 + 2 + 210 + 486
    expected = -75.0 + 10.0 * math.exp(-5.0 * 3.0e-5 / 1.0e-6 / 1e3)
    for name, width in (("soma", 1), ("tuft", 1), ("basal", 210), ("ais", 1)):
        v = store.traces[name]["v"].values
        assert v.shape[-1] == width
        assert np.all(np.isfinite(v)) and np.all(np.diff(v[:, 0]) <= 1e-9)
        assert v[-1] == pytest.approx(expected, abs=0.01)


# ------------------------------------------------------------------------------------ soma contours


def test_circle_contour_is_a_section_of_its_diameter():
    """A circle of radius R: a section about 2R long whose middle is 2R wide; its lateral area is 96-98 % of
    the sphere's 4πR² (the rule's ends stop one sample short of the poles and carry no caps)."""
    t = 2 * np.pi * np.arange(1000) / 1000
    points = soma_from_contour(np.column_stack([3 + 10 * np.cos(t), -2 + 10 * np.sin(t), np.full(1000, 5.0)]))
    length, area = lateral(points)
    assert points.shape == (21, 4)
    assert length == pytest.approx(20.0, rel=2e-3)
    assert points[10].tolist() == pytest.approx([3.0, -2.0, 5.0, 20.0], abs=0.02)
    assert 0.96 < area / (4 * np.pi * 10.0**2) < 0.98


def test_ellipse_contour_lies_along_its_major_axis():
    """An ellipse (semi-axes a > b, turned by θ): the section runs along the major axis, about 2a long and
    2b wide in its middle, with about the prolate spheroid's area."""
    a, b, theta = 12.0, 6.0, 0.4
    t = 2 * np.pi * np.arange(1000) / 1000
    x, y = a * np.cos(t), b * np.sin(t)
    xy = np.column_stack([x * np.cos(theta) - y * np.sin(theta), x * np.sin(theta) + y * np.cos(theta)])
    points = soma_from_contour(np.column_stack([xy, np.zeros(1000)]))
    length, area = lateral(points)
    axis = (points[-1, :3] - points[0, :3]) / length
    np.testing.assert_allclose(axis, [math.cos(theta), math.sin(theta), 0.0], atol=1e-4)
    assert length == pytest.approx(2 * a, rel=3e-3)
    assert points[10, 3] == pytest.approx(2 * b, rel=1e-3)
    e = math.sqrt(1 - (b / a) ** 2)
    spheroid = 2 * np.pi * b**2 * (1 + a / (b * e) * math.asin(e))
    assert area == pytest.approx(spheroid, rel=0.02)


@pytest.mark.parametrize(
    "xyz, message",
    [
        ([[0, 0, 0], [1, 0, 0]], "3 or more"),
        ([[0, 0, 0]] * 4, "one place"),
        ([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]], "width"),
    ],
    ids=["two points", "one place", "a line"],
)
def test_contours_without_a_width_are_refused(xyz, message):
    with pytest.raises(ValueError, match=message):
        soma_from_contour(np.array(xyz, dtype=float))


# ------------------------------------------------------------------------------------ small files

CONTOUR = [(8 * math.cos(a), 5 * math.sin(a), 0.0) for a in np.linspace(0, 2 * math.pi, 16, endpoint=False)]
TREES = [  # (type, MorphIO type number, root points, children's points): x y z diameter
    ("Dendrite", 3, [[0, 5, 0, 2], [0, 20, 0, 2]], [[[5, 30, 0, 1], [10, 40, 0, 1]], [[-5, 30, 0, 1.5]]]),
    ("Apical", 4, [[1, 5, 1, 3], [1, 60, 1, 2.5], [1, 90, 1, 2]], []),
    ("Axon", 2, [[0, -5, 0, 1], [0, -50, 0, 1], [0, -100, 0, 0.5]], []),
]


def asc_text(contour=CONTOUR, trees=TREES):
    lines = ["; a small test cell", '("CellBody"', "  (CellBody)"]
    lines += [f"  ({x:.6f} {y:.6f} {z:.6f} 0.1)" for x, y, z in contour]
    lines.append(")")
    for kind, _, root, children in trees:
        lines += ["", f"( ({kind})"] + [f"  ({' '.join(map(str, p))})" for p in root]
        if children:
            lines.append("  (")
            for k, child in enumerate(children):
                lines += ([] if k == 0 else ["  |"]) + [f"    ({' '.join(map(str, p))})" for p in child]
            lines.append("  )")
        lines.append(")")
    return "\n".join(lines) + "\n"


def write_h5(path, contour=CONTOUR, trees=TREES):
    """MorphIO's H5 v1 layout: /points (x, y, z, diameter) and /structure (first point, type, parent)."""
    points = [[*p, 0.1] for p in contour]
    structure = [[0, 1, -1]]
    for _, number, root, children in trees:
        root_row = len(structure)
        structure.append([len(points), number, 0])
        points += root
        for child in children:
            structure.append([len(points), number, root_row])
            points += [root[-1][:3] + child[0][3:]] + child  # a child repeats its parent's last point
    with h5py.File(path, "w") as f:
        f["points"] = np.array(points, dtype=np.float32)
        f["structure"] = np.array(structure, dtype=np.int32)


def expected_branches():
    out = [("soma", -1, 0.5)]  # (region, parent, parent_x), soma's parent_x unused
    for kind, _, _, children in TREES:
        region = {"Dendrite": "dend", "Apical": "apic", "Axon": "axon"}[kind]
        root = len(out)
        out.append((region, 0, 0.5))
        out += [(region, root, 1.0)] * len(children)
    return out


@pytest.mark.parametrize("fmt", ["asc", "h5"])
def test_small_files_load_with_their_tree(tmp_path, fmt):
    path = tmp_path / f"cell.{fmt.upper() if fmt == 'asc' else fmt}"  # extensions in any case
    if fmt == "asc":
        path.write_text(asc_text())
    else:
        write_h5(path)
    morph = read_morphology(path)
    assert morph.source == str(path)
    assert [(b.region, b.parent) for b in morph.branches] == [(r, p) for r, p, _ in expected_branches()]
    assert [b.parent_x for b in morph.branches[1:]] == [x for _, _, x in expected_branches()[1:]]
    np.testing.assert_allclose(morph.branches[0].points, soma_from_contour(np.array(CONTOUR)), atol=1e-5)
    np.testing.assert_allclose(morph.branches[1].points, TREES[0][2])
    # a child starts at its parent's last point with its own first diameter
    np.testing.assert_allclose(morph.branches[2].points, [[0, 20, 0, 1], [5, 30, 0, 1], [10, 40, 0, 1]])
    np.testing.assert_allclose(morph.branches[3].points, [[0, 20, 0, 1.5], [-5, 30, 0, 1.5]])
    np.testing.assert_allclose(morph.branches[4].points, TREES[1][2], rtol=1e-6)


def test_replace_axon_on_a_small_cell(tmp_path):
    """Axon branches 60 µm from soma(0.5) or less give no second diameter: both take the first's."""
    path = tmp_path / "cell.asc"
    path.write_text(asc_text())
    morph = replace_axon(read_morphology(path))
    assert [b.region for b in morph.branches] == ["soma", "dend", "dend", "dend", "apic", "axon", "axon"]
    # the axon's only branch: 45 µm of 1 µm, then 50 µm tapering to 0.5 µm; NEURON's diam is the mean over
    # its middle compartment (nseg 1 + 2·int(95 / 40) = 5: 38 to 57 µm), (7 + 12·0.94) / 19, for both
    assert [b.points[0, 3] for b in morph.branches[5:]] == pytest.approx([18.28 / 19] * 2)
    assert [(b.parent, b.parent_x) for b in morph.branches[5:]] == [(0, 1.0), (5, 1.0)]
    without = replace_axon(ball_and_stick())
    assert [b.points[0, 3] for b in without.branches[2:]] == [1.0, 1.0]  # no axon: 1 µm, as BluePyOpt


def test_replace_axon_second_diameter_from_beyond_60_um():
    from brainsim.model.morphology import Branch, Morphology

    soma = Branch([[0, 0, 0, 10], [0, 10, 0, 10]], "soma", -1)
    branches = [
        soma,
        Branch([[0, 0, 0, 2], [0, -40, 0, 2]], "axon", 0, 0.5),  # midpoint 20 µm
        Branch([[0, -40, 0, 1.5], [0, -80, 0, 1.5]], "axon", 1, 1.0),  # midpoint 60 µm: not beyond
        Branch([[0, -40, 0, 0.7], [0, -90, 0, 0.7]], "axon", 1, 1.0),  # midpoint 65 µm
        Branch([[0, -80, 0, 0.3], [0, -200, 0, 0.3]], "axon", 2, 1.0),
    ]
    morph = replace_axon(Morphology(branches, "test"))
    assert [b.points[0, 3] for b in morph.branches[1:]] == [2.0, 0.7]
    hanging = [*branches[:2], Branch([[0, -40, 0, 1], [0, -60, 0, 1]], "dend", 1, 1.0)]
    with pytest.raises(MorphologyError, match="hangs from axon branch 1"):
        replace_axon(Morphology(hanging, "test"))


# ------------------------------------------------------------------------------------ malformed files


def replaced(text, old, new):
    assert old in text
    return text.replace(old, new, 1)


def line_of(text, fragment):
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


ASC = asc_text()
SECOND_SOMA = '("CellBody"\n  (CellBody)\n  (1 1 0 1)\n  (2 1 0 1)\n  (2 2 0 1)\n)\n'
UNCLOSED = ASC.rstrip().removesuffix(")") + "\n"
MALFORMED = {  # text, line, message
    "not a number": (replaced(ASC, "(0 20 0 2)", "(0 2x0 0 2)"), "(0 2x0 0 2)", "Error converting"),
    "unclosed tree": (UNCLOSED, len(UNCLOSED.splitlines()) + 1, "end of file"),  # MorphIO: past the end
    "second soma": (ASC + SECOND_SOMA, len((ASC + SECOND_SOMA).splitlines()), "soma is already defined"),
    "negative diameter": (replaced(ASC, "(0 -50 0 1)", "(0 -50 0 -1)"), "(0 -50 0 -1)", "diameter -1"),
    "one-point section": (replaced(ASC, "  (1 60 1 2.5)\n  (1 90 1 2)\n", ""), "(1 5 1 3)", "no length"),
}


@pytest.mark.parametrize("text, line, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_asc_names_file_and_line(tmp_path, text, line, message):
    """Lines count from the top of the file, its leading comments included (MorphIO alone miscounts them)."""
    assert text.startswith("; ")
    line = line if isinstance(line, int) else line_of(text, line)
    path = tmp_path / "bad.asc"
    path.write_text(text)
    with pytest.raises(MorphologyError) as err:
        read_morphology(path)
    assert err.value.source == str(path)
    assert err.value.line == line, str(err.value)
    assert f"{path}:{line}: " in str(err.value) and message in str(err.value)
    assert "\x1b" not in str(err.value)  # MorphIO's terminal colours are gone


def test_unreadable_and_unknown_files(tmp_path):
    with pytest.raises(
        MorphologyError, match=r"unknown morphology format '\.xyz'.*\.asc \(Neurolucida ASC\)"
    ):
        read_morphology(tmp_path / "cell.xyz")
    (tmp_path / "bad.h5").write_text("not HDF5")
    with pytest.raises(MorphologyError, match="cannot read this HDF5") as err:
        read_morphology(tmp_path / "bad.h5")
    assert err.value.source == str(tmp_path / "bad.h5")
    with pytest.raises(MorphologyError, match="cannot read the ASC file") as err:
        read_morphology(tmp_path / "missing.asc")
    assert err.value.source == str(tmp_path / "missing.asc")
    (tmp_path / "empty.asc").write_text("; nothing\n\n")
    with pytest.raises(MorphologyError, match="empty or holds only comments"):
        read_morphology(tmp_path / "empty.asc")
    for contour, message in (
        ([(1, 0, 0)], "single point is not valid."),
        ([(1, 0, 0), (2, 0, 0)], "3 or more"),
    ):
        (tmp_path / "soma.asc").write_text(asc_text(contour=contour))
        with pytest.raises(MorphologyError, match=message) as err:
            read_morphology(tmp_path / "soma.asc")
        assert str(err.value).startswith(f"{tmp_path / 'soma.asc'}: ") and "$STRING$" not in str(err.value)
    (tmp_path / "words.asc").write_text("; words only\nhello world\n")
    with pytest.raises(MorphologyError, match="no soma and no sections"):
        read_morphology(tmp_path / "words.asc")
    write_h5(tmp_path / "neg.h5", trees=[("Axon", 2, [[0, 0, 0, 1], [0, 9, 0, -1]], [])])
    with pytest.raises(MorphologyError, match="section 0: point 1 has diameter -1") as err:
        read_morphology(tmp_path / "neg.h5")
    assert err.value.line is None  # HDF5 has no lines


def test_forest_without_soma_is_refused(tmp_path):
    path = tmp_path / "forest.asc"
    path.write_text(asc_text(contour=()).replace('("CellBody"\n  (CellBody)\n)\n', ""))
    with pytest.raises(MorphologyError, match="no soma and 3 trees"):
        read_morphology(path)
    path.write_text(asc_text(contour=(), trees=TREES[2:]).replace('("CellBody"\n  (CellBody)\n)\n', ""))
    morph = read_morphology(path)
    assert [(b.region, b.parent) for b in morph.branches] == [("axon", -1)]


# ------------------------------------------------------------------------------------ config


def config_with(tmp_path, cell):
    base = {
        "name": "t",
        "description": "-",
        "simulation": {"tstop": 1.0},
        "cells": [{"name": "c", "discretization": {"per_branch": 1}, **cell}],
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(base))
    return tmp_path / "run.yaml"


def config_error(tmp_path, cell):
    with pytest.raises(ConfigError) as err:
        brainsim.load_config(config_with(tmp_path, cell))
    return err.value


def test_file_kind_reads_by_extension_and_aliases_section_lists(tmp_path):
    (tmp_path / "cell.asc").write_text(ASC)
    write_h5(tmp_path / "cell.h5")
    for name in ("cell.asc", "cell.h5"):
        cell = {
            "morphology": {"kind": "file", "file": name},
            "regions": {"basal": {"cm": 2.0}, "apical": {"cm": 3.0}, "somatic": {}, "axonal": {}},
        }
        recipe = brainsim.Recipe(brainsim.load_config(config_with(tmp_path, cell)))
        ct = recipe.cell_type("c")
        geo = ct.geometry
        assert geo.region_names == ("soma", "dend", "apic", "axon")
        for region, cm in (("dend", 2.0), ("apic", 3.0), ("soma", 1.0)):
            nodes = geo.nodes_in_region(region)
            assert np.allclose(geo.cap[nodes], cm * geo.area[nodes] * 1e-5), (name, region)
        assert ct.locate("basal[2](0.5)", "p") == ct.locate("dend[2](0.5)", "p")
        assert ct.locate_set("apical", "p").tolist() == ct.locate_set("apic", "p").tolist()


def test_config_errors_name_the_key_path(tmp_path):
    (tmp_path / "cell.asc").write_text(ASC)
    err = config_error(tmp_path, {"morphology": {"kind": "file", "file": "cell.xyz"}})
    assert err.path == "cells[0].morphology.file" and err.value == "cell.xyz"
    assert ".swc, .asc, .h5" in str(err) and "'.xyz'" in str(err)
    err = config_error(tmp_path, {"morphology": {"kind": "file", "file": "gone.asc"}})
    assert err.path == "cells[0].morphology.file" and "an existing morphology file" in str(err)
    asc = {"kind": "file", "file": "cell.asc"}
    err = config_error(tmp_path, {"morphology": asc, "regions": {"soma": {}, "somatic": {}}})
    assert err.path == "cells[0].regions.somatic" and "'soma' already names region 'soma'" in str(err)
    err = config_error(tmp_path, {"morphology": {"kind": "ball_and_stick"}, "regions": {"apical": {}}})
    assert err.path == "cells[0].regions.apical" and "section list: somatic, axonal" in str(err)
    err = config_error(tmp_path, {"morphology": {**asc, "replace_axon": "yes"}})
    assert err.path == "cells[0].morphology.replace_axon"
    err = config_error(
        tmp_path, {"morphology": asc, "discretization": {"max_length": 10.0, "odd_per_length": 40.0}}
    )
    assert err.path == "cells[0].discretization" and "exactly one of per_branch, max_length" in str(err)


def test_odd_per_length_is_bluepyopts_nseg():
    morph = ball_and_stick(soma_length=20.0, dend_length=120.0)
    nseg = np.bincount(geometry(morph).branch)
    assert nseg.tolist() == [1, 1 + 2 * 3]  # 20 µm: 1; 120 µm: 1 + 2·int(3.0)
    rule = {"soma": ("odd_per_length", 40.0), "dend": ("odd_per_length", 40.0)}
    assert compartment_count(morph, rule) == 8  # the count checked before discretizing agrees


# ------------------------------------------------------------------------------------ NEURON itself

NEURON_SCRIPT = """
import json, sys
from neuron import h
h.load_file("stdrun.hoc"); h.load_file("import3d.hoc")
reader = h.Import3d_Neurolucida3(); reader.quiet = 1
reader.input(sys.argv[1])
h.Import3d_GUI(reader, 0).instantiate(None)
soma = h.soma[0]
areas = {}
for sec in h.allsec():
    kind = sec.name().split("[")[0]
    areas[kind] = areas.get(kind, 0.0) + sum(seg.area() for seg in sec)
points = [[soma.x3d(i), soma.y3d(i), soma.z3d(i), soma.diam3d(i)] for i in range(soma.n3d())]
print(json.dumps({"soma": points, "areas": areas}))
"""


@pytest.mark.parametrize("which", ["small", "l5pc"])
def test_soma_and_areas_match_neuron_import3d(tmp_path, which):
    pytest.importorskip("neuron", reason="NEURON (pip install neuron) is not installed")
    if which == "l5pc":
        if not L5PC_ASC.is_file():
            pytest.skip(f"the reference L5PC is absent ({L5PC_ASC})")
        path = L5PC_ASC
    else:  # an irregular outline, to exercise the rule's pruning of points that turn back
        rng = np.random.default_rng(3)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 30))
        radii = 7 + rng.uniform(-2, 2, 30)
        contour = [(r * math.cos(a), 0.6 * r * math.sin(a), 0.0) for a, r in zip(angles, radii, strict=True)]
        path = tmp_path / "cell.asc"
        path.write_text(asc_text(contour=contour))
    done = subprocess.run(
        [sys.executable, "-c", NEURON_SCRIPT, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    neuron = json.loads(done.stdout.strip().splitlines()[-1])
    morph = read_morphology(path)
    np.testing.assert_allclose(morph.branches[0].points, neuron["soma"], atol=1e-4)
    geo = geometry(morph)
    for region, area in neuron["areas"].items():
        assert geo.area[geo.nodes_in_region(region)].sum() == pytest.approx(area, rel=1e-6), region
