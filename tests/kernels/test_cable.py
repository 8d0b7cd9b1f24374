"""The cable kernels vs dense NumPy/LAPACK twins on random forests, and backward Euler on one passive node."""

import numpy as np
import pytest

from brainsim.kernels.cable import (
    AREA_SCALE,
    axial_sum,
    cable_residual,
    cable_residual_np,
    first_bad,
    hines_solve,
    hines_solve_np,
    solver_order,
    staggered_solve,
    staggered_solve_np,
)

SHAPES = ("branchy", "chain", "forest", "chains")
SIZES = (1, 2, 3, 17, 120, 500)


def random_forest(rng, n, shape):
    """parent (int32, parent[i] < i, roots -1) and gax (µS, 0 at roots) of a random forest of n nodes.

    branchy: one tree, uniform random parents; chain: one unbranched cable; forest: several branchy
    trees (a tree's nodes need not be contiguous); chains: several cables with a few side branches, each
    contiguous (cells one after another, as in a CellGroup).
    """
    parent = np.full(n, -1, dtype=np.int32)
    start = 0  # the root of the present cable (chains)
    for i in range(1, n):
        if shape == "branchy":
            parent[i] = rng.integers(0, i)
        elif shape == "chain":
            parent[i] = i - 1
        elif shape == "forest":
            parent[i] = -1 if rng.random() < 0.08 else rng.integers(0, i)
        else:
            r = rng.random()
            if r < 0.03:
                start = i
            else:
                parent[i] = rng.integers(start, i) if r < 0.1 else i - 1
    gax = np.where(parent >= 0, rng.uniform(0.1, 10.0, n), 0.0)
    return parent, gax


def dax_np(gax, parent):
    """Σ gax over each node's neighbours, by a bincount over the child -> parent edges."""
    child = np.nonzero(parent >= 0)[0]
    return gax + np.bincount(parent[child], weights=gax[child], minlength=gax.size)


def root_of(parent, i):
    while parent[i] >= 0:
        i = parent[i]
    return i


def roots_np(parent):
    """The root of every node."""
    root = np.arange(parent.size)
    for i in range(parent.size):
        if parent[i] >= 0:
            root[i] = root[parent[i]]
    return root


def tree_system(rng, n, shape):
    """A diagonally dominant tree system: (parent, gax, d, rhs)."""
    parent, gax = random_forest(rng, n, shape)
    d = dax_np(gax, parent) + rng.uniform(0.01, 1.0, n)
    rhs = rng.uniform(-50.0, 50.0, n)
    return parent, gax, d, rhs


def run_hines(d, rhs, gax, parent, limit=np.inf):
    """hines_solve on copies (it consumes d and rhs): returns (x, first bad node)."""
    x = np.full(d.size, np.nan)
    bad = hines_solve(d.copy(), rhs.copy(), gax, parent, x, limit, 0, d.size)
    return x, bad


def limit_between(a):
    """A limit strictly between two of the values |a| with a clear gap, near their median."""
    s = np.unique(np.abs(a))
    if s.size == 1:
        return 0.5 * s[0]
    gaps = np.diff(s) > 1e-6 * s[-1]
    j = min(np.nonzero(gaps)[0], key=lambda j: abs(j - s.size // 2))
    return 0.5 * (s[j] + s[j + 1])


# -- hines_solve ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", SIZES)
def test_hines_solve_matches_dense_solve(n, shape):
    rng = np.random.default_rng(n * 31 + SHAPES.index(shape))
    parent, gax, d, rhs = tree_system(rng, n, shape)
    x, bad = run_hines(d, rhs, gax, parent)
    expect = hines_solve_np(d, rhs, gax, parent)
    np.testing.assert_allclose(x, expect, rtol=1e-10, atol=1e-12 * np.abs(expect).max())
    assert bad == -1
    # the dense twin is itself the right matrix: A·x = rhs with A built here from the definition
    a = np.diag(d)
    for i in np.nonzero(parent >= 0)[0]:
        a[i, parent[i]] = a[parent[i], i] = -gax[i]
    np.testing.assert_allclose(a @ x, rhs, rtol=1e-9, atol=1e-9 * np.abs(rhs).max())


def test_hines_solve_ignores_root_gax():
    """The root's gax (no parent) takes no part in the solve."""
    rng = np.random.default_rng(3)
    parent, gax, d, rhs = tree_system(rng, 40, "forest")
    x0, _ = run_hines(d, rhs, gax, parent)
    gax2 = np.where(parent < 0, 123.0, gax)
    x1, _ = run_hines(d, rhs, gax2, parent)
    np.testing.assert_array_equal(x0, x1)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", (1, 2, 17, 500))
def test_hines_solve_reports_first_node_beyond_limit(n, shape):
    rng = np.random.default_rng(n + 7 * SHAPES.index(shape))
    parent, gax, d, rhs = tree_system(rng, n, shape)
    if n > 1:
        rhs -= rhs.mean()  # solutions of both signs
    expect = hines_solve_np(d, rhs, gax, parent)
    limit = limit_between(expect)
    x, bad = run_hines(d, rhs, gax, parent, limit)
    first = int(np.nonzero(np.abs(expect) > limit)[0][0])
    assert bad == first
    np.testing.assert_allclose(x, expect, rtol=1e-10, atol=1e-12 * np.abs(expect).max())
    assert run_hines(d, rhs, gax, parent, 2.0 * np.abs(expect).max())[1] == -1
    # a limit exactly |x| of the largest node is still within (|x| <= limit)
    i = int(np.argmax(np.abs(x)))
    assert run_hines(d, rhs, gax, parent, float(np.abs(x[i])))[1] == -1


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("shape", ("forest", "chains"))
def test_hines_solve_reports_first_non_finite_node(shape, value):
    """A non-finite rhs spoils its whole tree (elimination carries it to the root): the first bad node is
    that tree's root, and the trees before it are solved normally."""
    rng = np.random.default_rng(11)
    parent, gax, d, rhs = tree_system(rng, 300, shape)
    roots = np.nonzero(parent < 0)[0]
    assert roots.size >= 3
    later = np.nonzero(roots_np(parent) >= roots[2])[0]  # nodes of the third tree or later
    k = int(later[later.size // 2])
    clean = hines_solve_np(d, rhs, gax, parent)
    rhs[k] = value
    x, bad = run_hines(d, rhs, gax, parent, 1e12)
    r = root_of(parent, k)
    assert bad == r
    tree = roots_np(parent) == r
    np.testing.assert_allclose(x[~tree], clean[~tree], rtol=1e-10, atol=1e-12 * np.abs(clean).max())
    assert not np.isfinite(x[tree]).any()


# -- axial_sum, first_bad ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", SIZES)
def test_axial_sum(n, shape):
    rng = np.random.default_rng(5 * n + SHAPES.index(shape))
    parent, gax = random_forest(rng, n, shape)
    dax = np.full(n, np.nan)
    axial_sum(gax, parent, dax)
    # independent: every edge i–parent[i] adds gax[i] to both of its ends
    expect = np.zeros(n)
    for i in range(n):
        if parent[i] >= 0:
            expect[i] += gax[i]
            expect[parent[i]] += gax[i]
    np.testing.assert_allclose(dax, expect, rtol=1e-14)
    np.testing.assert_allclose(dax, dax_np(gax, parent), rtol=1e-14)


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e3 + 1e-9, -2e3, np.nan])
@pytest.mark.parametrize("k", (0, 1, 37, 99))
def test_first_bad(k, value):
    rng = np.random.default_rng(k)
    v = rng.uniform(-1e3, 1e3, 100)
    assert first_bad(v, 1e3) == -1
    v[k] = value
    v[min(k + 5, 99)] = value  # only the first is reported
    assert first_bad(v, 1e3) == k
    assert first_bad(v[k + 1 :], 1e3) == (4 if k + 5 <= 99 else -1)


def test_first_bad_edges():
    assert first_bad(np.zeros(0), 1.0) == -1
    assert first_bad(np.array([1.0, -1.0]), 1.0) == -1  # |v| == limit is within
    assert first_bad(np.array([1.0, np.nextafter(-1.0, -2.0)]), 1.0) == 1
    assert first_bad(np.array([0.0, 5.0]), 0.0) == 1


# -- staggered_solve --------------------------------------------------------------------------------


def staggered_case(rng, n, shape):
    """Random node arrays as a CellGroup has them: ~20% junction nodes (no area, no cap), roots excepted."""
    parent, gax = random_forest(rng, n, shape)
    dax = np.empty(n)
    axial_sum(gax, parent, dax)
    junction = (rng.random(n) < 0.2) & (parent >= 0)
    area = np.where(junction, 0.0, rng.uniform(10.0, 2000.0, n))  # µm²
    cap = area * 1e-5 * rng.uniform(0.5, 2.0, n)  # nF (cm in µF/cm²)
    v = rng.uniform(-90.0, 40.0, n)
    i_dens = rng.uniform(-0.5, 0.5, n)  # mA/cm²
    g_dens = rng.uniform(0.0, 0.1, n)  # S/cm²
    pt = rng.random(n) < 0.3
    i_pt = np.where(pt, rng.uniform(-1.0, 1.0, n), 0.0)  # nA
    g_pt = np.where(pt, rng.uniform(0.0, 0.05, n), 0.0)  # µS
    return v, cap, dax, gax, parent, area, i_dens, g_dens, i_pt, g_pt


@pytest.mark.parametrize("dt", (0.025, 1.0))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", SIZES)
def test_staggered_solve_matches_twin(n, shape, dt):
    rng = np.random.default_rng(n + 100 * SHAPES.index(shape) + int(dt * 1000))
    case = staggered_case(rng, n, shape)
    v = case[0].copy()
    work = np.full(n, np.nan), np.full(n, np.nan)
    bad = staggered_solve(v, *case[1:], dt, *work, 1e3, 0, n)
    expect = staggered_solve_np(*case, dt)
    np.testing.assert_allclose(v, expect, rtol=1e-10, atol=1e-10 * np.abs(expect).max())
    assert bad == -1
    # with a limit inside the range of the new V, the first node beyond it is reported
    limit = limit_between(expect)
    v = case[0].copy()
    assert staggered_solve(v, *case[1:], dt, *work, limit, 0, n) == int(
        np.nonzero(np.abs(expect) > limit)[0][0]
    )


def test_staggered_solve_steady_state_is_fixed():
    """With no membrane current, no injection and uniform V in each tree, V does not move."""
    rng = np.random.default_rng(2)
    v, cap, dax, gax, parent, area, _, g_dens, _, g_pt = staggered_case(rng, 200, "chains")
    v = rng.uniform(-80.0, -60.0, 200)[roots_np(parent)]  # one value per tree
    out, zero, work = v.copy(), np.zeros(200), (np.empty(200), np.empty(200))
    bad = staggered_solve(
        out, cap, dax, gax, parent, area, zero, g_dens, zero, g_pt, 0.1, *work, 1e3, 0, out.size
    )
    assert bad == -1
    np.testing.assert_allclose(out, v, rtol=1e-13)


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_staggered_solve_reports_non_finite_current(value):
    rng = np.random.default_rng(4)
    case = list(staggered_case(rng, 300, "chains"))
    parent = case[4]
    k = int(np.nonzero(parent < 0)[0][2]) + 3  # inside the third cell
    case[8] = case[8].copy()
    case[8][k] = value  # i_pt
    bad = staggered_solve(case[0].copy(), *case[1:], 0.025, np.empty(300), np.empty(300), 1e3, 0, 300)
    assert bad == root_of(parent, k)


@pytest.mark.parametrize("via", ("density", "point"))
def test_staggered_solve_passive_relaxation(via):
    """One passive node without axial coupling: backward Euler gives V_n = e + (V0 − e)/(1 + dt/τ)^n
    exactly, τ = cap/G, which is first-order accurate: the error at fixed t halves with dt."""
    area, cm, g, e, v0 = 500.0, 1.0, 1e-3, -70.0, -20.0  # µm², µF/cm², S/cm², mV, mV
    cap = np.array([cm * area * 1e-5])  # nF
    big_g = area * AREA_SCALE * g  # µS
    tau = cap[0] / big_g  # ms (nF/µS)
    parent, gax, dax = np.array([-1], np.int32), np.zeros(1), np.zeros(1)
    zero, work = np.zeros(1), (np.empty(1), np.empty(1))

    def run(dt, steps):
        v, out = np.array([v0]), []
        for _ in range(steps):
            if via == "density":
                i_dens, g_dens, i_pt, g_pt = g * (v - e), np.array([g]), zero, zero
            else:
                i_dens, g_dens, i_pt, g_pt = zero, zero, big_g * (v - e), np.array([big_g])
            a = np.array([area])
            bad = staggered_solve(
                v, cap, dax, gax, parent, a, i_dens, g_dens, i_pt, g_pt, dt, *work, 1e3, 0, v.size
            )
            assert bad == -1
            out.append(v[0])
        return np.array(out)

    dt, steps = 0.1, 200
    n = np.arange(1, steps + 1)
    np.testing.assert_allclose(run(dt, steps), e + (v0 - e) / (1.0 + dt / tau) ** n, rtol=1e-12)
    t_end = 5.0
    exact = e + (v0 - e) * np.exp(-t_end / tau)
    errors = [abs(run(t_end / k, k)[-1] - exact) for k in (50, 100, 200, 400)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    np.testing.assert_allclose(ratios, 2.0, rtol=0.05)
    assert errors[-1] < 0.01 * abs(v0 - e)


# -- cable_residual ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", SIZES)
def test_cable_residual_matches_twin(n, shape):
    rng = np.random.default_rng(3 * n + SHAPES.index(shape))
    v, cap, _, gax, parent, area, i_dens, _, i_pt, _ = staggered_case(rng, n, shape)
    vdot = rng.uniform(-10.0, 10.0, n)
    f = np.full(n, np.nan)
    cable_residual(v, vdot, cap, gax, parent, area, i_dens, i_pt, f)
    expect = cable_residual_np(v, vdot, cap, gax, parent, area, i_dens, i_pt)
    np.testing.assert_allclose(f, expect, rtol=1e-12, atol=1e-12 * np.abs(expect).max())
    # independent: the membrane and capacitive currents plus the axial current out of each node
    axial = np.zeros(n)
    for i in range(n):
        p = parent[i]
        if p >= 0:
            axial[i] += gax[i] * (v[i] - v[p])
            axial[p] += gax[i] * (v[p] - v[i])
    direct = cap * vdot + area * 1e-2 * i_dens + i_pt + axial
    np.testing.assert_allclose(f, direct, rtol=1e-12, atol=1e-12 * np.abs(direct).max())
    # axial currents only move charge: the total is the membrane total
    membrane = cap * vdot + area * 1e-2 * i_dens + i_pt
    np.testing.assert_allclose(f.sum(), membrane.sum(), rtol=1e-9, atol=1e-9 * np.abs(membrane).sum())


def cells_of(parent):
    """cell_start of a forest whose trees are contiguous (each root starts a cell)."""
    return np.concatenate([np.nonzero(parent < 0)[0], [parent.size]]).astype(np.int64)


def heights(parent):
    depth = np.zeros(parent.size, dtype=np.int64)
    for i in range(parent.size):
        depth[i] = depth[parent[i]] + 1 if parent[i] >= 0 else 0
    return depth


@pytest.mark.parametrize("shape", ["chain", "chains", "branchy"])
@pytest.mark.parametrize("n", [1, 2, 3, 17, 500])
def test_solver_order_is_the_same_system(shape, n):
    """Re-rooting and reordering change the elimination, not the matrix: the solution is the same."""
    rng = np.random.default_rng(n)
    parent, gax = random_forest(rng, n, shape)
    order, sparent, sg = solver_order(parent, gax, cells_of(parent))
    assert sorted(order.tolist()) == list(range(n))
    assert np.all(sparent < np.arange(n)) and np.count_nonzero(sparent < 0) == np.count_nonzero(parent < 0)
    assert np.all(sg[sparent < 0] == 0) and np.all(sg[sparent >= 0] > 0)
    # the same edges, with the same conductances
    edges = {frozenset((int(i), int(parent[i]))): gax[i] for i in np.nonzero(parent >= 0)[0]}
    new = {frozenset((int(order[i]), int(order[sparent[i]]))): sg[i] for i in np.nonzero(sparent >= 0)[0]}
    assert edges == new
    d = dax_np(gax, parent) + rng.uniform(0.1, 1.0, n)
    rhs = rng.normal(size=n)
    x = np.zeros(n)
    assert hines_solve(d[order].copy(), rhs[order].copy(), sg, sparent, x, np.inf, 0, n) == -1
    solution = np.empty(n)
    solution[order] = x
    np.testing.assert_allclose(solution, hines_solve_np(d, rhs, gax, parent), rtol=1e-10, atol=1e-12)


def test_solver_order_halves_a_cable_and_interleaves_cells():
    parent = np.concatenate([[-1], np.arange(0, 100)]).astype(np.int32)  # one 101-node cable rooted at 0
    order, sparent, _ = solver_order(parent, np.where(parent >= 0, 1.0, 0.0), cells_of(parent))
    assert order[0] == 50 and heights(sparent).max() == 50  # rooted at the middle: half the depth
    two = np.concatenate([parent, np.where(parent >= 0, parent + 101, -1)]).astype(np.int32)
    order, _, _ = solver_order(two, np.where(two >= 0, 1.0, 0.0), cells_of(two))
    assert (order[:2] // 101).tolist() == [0, 1]  # the two cells' roots first, then their nodes alternate


def test_chunks_of_cells_are_solved_range_by_range():
    """With cells grouped in chunks, each chunk's positions are one range holding whole trees: solving
    range by range gives the whole solve's solution to the last bit, and touches nothing outside."""
    rng = np.random.default_rng(7)
    parent, gax = random_forest(rng, 400, "chains")
    cell_start = cells_of(parent)
    cell_chunk = np.arange(cell_start.size - 1) * 3 // (cell_start.size - 1)  # 3 chunks of cells
    chunk = np.repeat(cell_chunk, np.diff(cell_start))
    order, sparent, sg = solver_order(parent, gax, cell_start, chunk=chunk)
    bounds = np.searchsorted(chunk[order], np.arange(4))
    assert np.all(np.diff(chunk[order]) >= 0) and bounds[-1] == parent.size
    d = (dax_np(gax, parent) + rng.uniform(0.1, 1.0, parent.size))[order]
    rhs = rng.normal(size=parent.size)[order]
    whole = np.zeros(parent.size)
    assert hines_solve(d.copy(), rhs.copy(), sg, sparent, whole, np.inf, 0, parent.size) == -1
    ranged, dd, rr = np.full(parent.size, np.nan), d.copy(), rhs.copy()
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        assert np.all((sparent[lo:hi] >= lo) | (sparent[lo:hi] < 0))  # whole trees
        assert hines_solve(dd, rr, sg, sparent, ranged, np.inf, lo, hi) == -1
        assert np.isnan(ranged[hi:]).all()
    np.testing.assert_array_equal(ranged, whole)
