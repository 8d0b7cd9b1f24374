"""Discretisation into compartments, checked against formulas written out independently here."""

import math

import numpy as np
import pytest

from brainsim.model.discretize import discretize
from brainsim.model.morphology import Branch, Morphology, ball_and_stick, binary_tree, cylinder


def params(morph, nseg, ra=100.0, cm=1.0):
    regions = morph.regions()
    return dict(
        ra=dict.fromkeys(regions, ra), cm=dict.fromkeys(regions, cm), nseg=dict.fromkeys(regions, nseg)
    )


def r_cyl(ra, length, d):
    """Axial resistance of a cylinder, MΩ (Ra Ω·cm, µm)."""
    return 4 * ra * length / (math.pi * d**2) * 1e-2


def r_cone(ra, length, d1, d2):
    return 4 * ra * length / (math.pi * d1 * d2) * 1e-2


def test_m1_ball_and_stick():
    m = ball_and_stick()
    g = discretize(
        m,
        ra={"soma": 100, "dend": 100},
        cm={"soma": 1, "dend": 1},
        nseg={"soma": ("per_branch", 1), "dend": ("per_branch", 1000)},
    )
    assert g.n_nodes == g.n_compartments == 1001 and not g.is_junction.any()
    np.testing.assert_array_equal(g.parent, np.arange(-1, 1000))
    assert g.area[0] == pytest.approx(1256.637, abs=1e-3)
    np.testing.assert_allclose(g.area[1:], 6.28319, rtol=1e-6)
    np.testing.assert_allclose(g.cap, 1.0 * g.area * 1e-5)
    assert g.gax[0] == 0.0
    assert g.gax[1] == pytest.approx(1 / (r_cyl(100, 10, 20) + r_cyl(100, 0.5, 2)), rel=1e-12)
    np.testing.assert_allclose(g.gax[2:], 1 / (4 * 100 * 1 / (math.pi * 4) * 1e-2), rtol=1e-12)
    assert g.region_names == ("soma", "dend")
    np.testing.assert_array_equal(g.region, [0] + [1] * 1000)
    np.testing.assert_allclose(g.center[0], [10, 0, 0])
    np.testing.assert_allclose(g.center[1:, 0], 20.5 + np.arange(1000))
    np.testing.assert_allclose(g.x[1:], (np.arange(1000) + 0.5) / 1000)
    np.testing.assert_allclose(g.length, [20] + [1] * 1000)
    np.testing.assert_allclose(g.diameter, [20] + [2] * 1000)


def test_m2_binary_tree_with_junctions():
    m = binary_tree()
    nseg = {"soma": ("per_branch", 1), "dend": ("per_branch", 13)}
    g = discretize(m, ra={"soma": 100, "dend": 100}, cm={"soma": 1, "dend": 1}, nseg=nseg)
    assert (g.n_compartments, g.n_nodes) == (196, 203)
    assert np.all(g.parent[1:] < np.arange(1, 203)) and g.parent[0] == -1
    assert g.area[g.region == 1].sum() == pytest.approx(6126.1, abs=0.1)
    diameters = (2.0, 1.5, 1.0, 0.75)
    level = lambda b: int(math.log2(b + 1))  # noqa: E731  (dendrite heap index -> level)
    junctions = np.flatnonzero(g.is_junction)
    assert len(junctions) == 7
    for j in junctions:
        b = g.branch[j]  # the branch it terminates: dendrite b - 1, one of the 7 forks
        last = g.node_at(b, 1.0)
        assert (g.parent[j], j, g.x[j], g.area[j], g.cap[j], g.length[j]) == (last, last + 1, 1.0, 0, 0, 0)
        assert g.gax[j] == pytest.approx(1 / r_cyl(100, 5, diameters[level(b - 1)]), rel=1e-12)
        np.testing.assert_allclose(g.center[j], m.branches[b].points[-1, :3])
        for child in (2 * (b - 1) + 2, 2 * (b - 1) + 3):  # branches of dendrites 2b+1, 2b+2
            first = g.node_at(child, 0.0)
            assert g.parent[first] == j
            assert g.gax[first] == pytest.approx(1 / r_cyl(100, 5, diameters[level(child - 1)]), rel=1e-12)
    first = g.node_at(1, 0.0)
    assert (first, g.parent[first]) == (1, 0)
    assert g.gax[first] == pytest.approx(1 / (r_cyl(100, 10, 20) + r_cyl(100, 5, 2.0)), rel=1e-12)
    inner = [i for i in range(1, 203) if not g.is_junction[i] and g.branch[g.parent[i]] == g.branch[i]]
    assert len(inner) == 15 * 12
    np.testing.assert_allclose(
        g.gax[inner], [1 / r_cyl(100, 10, diameters[level(g.branch[i] - 1)]) for i in inner], rtol=1e-12
    )


def test_tapered_bent_branch_areas_and_resistances():
    # a path bent at 10 µm and tapering from 2 µm (at 10 µm) to 1 µm (at 30 µm), cut into 3 compartments
    m = Morphology((Branch([[0, 0, 0, 2], [10, 0, 0, 2], [10, 20, 0, 1]], "dend", -1),), "cone")
    g = discretize(m, **params(m, ("per_branch", 3), ra=70.0))

    def frustum_area(h, d1, d2):
        return math.pi * (d1 + d2) / 2 * math.hypot(h, (d1 - d2) / 2)

    np.testing.assert_allclose(
        g.area, [math.pi * 2 * 10, frustum_area(10, 2, 1.5), frustum_area(10, 1.5, 1)], rtol=1e-12
    )
    np.testing.assert_allclose(g.center, [[5, 0, 0], [10, 5, 0], [10, 15, 0]], atol=1e-12)
    r01 = r_cyl(70, 5, 2) + r_cone(70, 5, 2, 1.75)
    r12 = r_cone(70, 5, 1.75, 1.5) + r_cone(70, 5, 1.5, 1.25)
    np.testing.assert_allclose(g.gax[1:], [1 / r01, 1 / r12], rtol=1e-12)
    np.testing.assert_allclose(g.diameter, g.area / (math.pi * 10), rtol=1e-12)


def test_children_off_the_distal_end_join_the_nearest_node_through_their_own_half():
    soma = Branch([[0, 0, 0, 10], [30, 0, 0, 10]], "soma", -1)
    kids = [Branch([[15, 0, 0, 1], [15, 40, 0, 1]], "dend", 0, x) for x in (0.0, 0.5, 0.9, 0.5)]
    m = Morphology((soma, *kids), "soma with side branches")
    g = discretize(m, **params(m, ("per_branch", 3)))
    assert g.n_nodes == 3 + 4 * 3 and not g.is_junction.any()
    firsts = [g.node_at(b, 0.0) for b in range(1, 5)]
    assert list(g.parent[firsts]) == [0, 1, 2, 1]
    np.testing.assert_allclose(g.gax[firsts], 1 / r_cyl(100, 40 / 6, 1), rtol=1e-12)


def test_one_distal_child_needs_no_junction_and_uses_its_own_ra():
    m = Morphology(
        (
            Branch([[0, 0, 0, 3], [10, 0, 0, 3]], "axon", -1),
            Branch([[10, 0, 0, 1], [30, 0, 0, 1]], "dend", 0),
        ),
        "two regions",
    )
    g = discretize(
        m,
        ra={"axon": 50, "dend": 200},
        cm={"axon": 1, "dend": 2},
        nseg={"axon": ("per_branch", 2), "dend": ("per_branch", 4)},
    )
    assert g.n_nodes == 6 and not g.is_junction.any()
    assert g.gax[2] == pytest.approx(1 / (r_cyl(50, 2.5, 3) + r_cyl(200, 2.5, 1)), rel=1e-12)
    np.testing.assert_allclose(g.cap[2:], 2 * g.area[2:] * 1e-5)


def input_resistance(g, g_membrane):
    """DC input resistance (MΩ) at node 0 of the discretised cell; g_membrane in S/cm².

    Gaussian elimination of the tree's conductance matrix from the leaves up, for 1 nA into node 0.
    """
    diag = g_membrane * g.area * 1e-2  # S/cm² · µm² · 1e-2 = µS
    diag[1:] += g.gax[1:]
    np.add.at(diag, g.parent[1:], g.gax[1:])
    for i in range(g.n_nodes - 1, 0, -1):
        diag[g.parent[i]] -= g.gax[i] ** 2 / diag[i]
    return 1.0 / diag[0]  # mV per nA = MΩ


def test_passive_cylinder_converges_to_the_sealed_end_cable():
    length, d, ra, rm = 1000.0, 2.0, 100.0, 10_000.0  # µm, µm, Ω·cm, Ω·cm²
    lam = math.sqrt(rm * d / (4 * ra) * 1e4)  # µm
    r_inf = 4 * ra / (math.pi * d**2) * lam * 1e-2  # MΩ
    r_in = r_inf / math.tanh(length / lam)
    m = cylinder(length, d, region="dend")
    errors, node_errors = [], []
    for n in (4, 16, 64, 256, 1024, 4096):
        r = input_resistance(discretize(m, **params(m, ("per_branch", n), ra=ra)), 1 / rm)
        errors.append(abs(r / r_in - 1))
        # node 0 sits at l/2 from the end: the exact transfer resistance from the end to there
        x0 = length / (2 * n)
        node_errors.append(abs(r / (r_inf * math.cosh((length - x0) / lam) / math.sinh(length / lam)) - 1))
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 2e-4
    assert (np.array(node_errors[:-1]) / node_errors[1:] > 12).all()  # second order in l
    assert node_errors[-1] < 1e-8


def test_max_length_policy():
    m = binary_tree()  # dendrites 130 µm, soma 20 µm
    for max_length, expected in ((10, 13), (13, 10), (20, 7), (1000, 1), (129.9, 2)):
        g = discretize(m, **params(m, ("max_length", max_length)))
        assert g.n_compartments - g.node_at(0, 1) - 1 == 15 * expected
    g = discretize(
        m,
        ra={"soma": 1, "dend": 1},
        cm={"soma": 1, "dend": 1},
        nseg={"soma": ("max_length", 7.0), "dend": ("per_branch", 2)},
    )
    assert g.node_at(0, 1.0) == 2  # ceil(20 / 7) = 3 soma compartments


def test_lookups():
    m = binary_tree()
    g = discretize(
        m,
        **{**params(m, ("per_branch", 13)), "nseg": {"soma": ("per_branch", 1), "dend": ("per_branch", 13)}},
    )
    assert g.node_at(0, 0.5) == 0
    assert (g.node_at(1, 0.0), g.node_at(1, 0.5), g.node_at(1, 1.0)) == (1, 7, 13)
    assert g.node_at(2, 0.0) == 15  # after dendrite 0's junction, node 14
    assert g.node_at(15, 1.0) == 202
    np.testing.assert_array_equal(g.nodes_in_region("soma"), [0])
    assert len(g.nodes_in_region("dend")) == 202
    with pytest.raises(ValueError, match="its regions are soma, dend"):
        g.nodes_in_region("apic")
    with pytest.raises(ValueError, match="branches 0..15"):
        g.node_at(16, 0.5)
    with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
        g.node_at(1, 1.5)


def test_array_types_and_immutability():
    g = discretize(ball_and_stick(), **params(ball_and_stick(), ("per_branch", 3)))
    assert (g.parent.dtype, g.region.dtype, g.branch.dtype, g.is_junction.dtype) == (
        np.int32,
        np.int16,
        np.int32,
        np.bool_,
    )
    assert g.center.shape == (6, 3) and g.area.dtype == np.float64
    with pytest.raises(ValueError):
        g.area[0] = 1.0


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(ra={"soma": 100}), r"ra has no value for region\(s\) \['dend'\]"),
        (dict(nseg={"dend": ("per_branch", 1)}), r"nseg has no value for region\(s\) \['soma'\]"),
        (dict(cm={"soma": 1, "dend": 0}), r"cm\['dend'\] must be a finite number > 0"),
        (dict(nseg={"soma": ("per_branch", 0), "dend": ("per_branch", 1)}), r"nseg\['soma'\]"),
        (dict(nseg={"soma": ("per_branch", 2.5), "dend": ("per_branch", 1)}), r"nseg\['soma'\]"),
        (dict(nseg={"soma": ("max_length", -1), "dend": ("per_branch", 1)}), r"nseg\['soma'\]"),
        (dict(nseg={"soma": ("lambda", 0.1), "dend": ("per_branch", 1)}), r"nseg\['soma'\]"),
    ],
)
def test_bad_parameters(override, message):
    m = ball_and_stick()
    with pytest.raises(ValueError, match=message):
        discretize(m, **{**params(m, ("per_branch", 1)), **override})
