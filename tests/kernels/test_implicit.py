"""The implicit-form Jacobian kernels vs its dense matrix: J·x, the exact inverse (Schur + Hines with the
coupled nodes' dense blocks), d0."""

import numpy as np
import pytest

from brainsim.kernels.cable import axial_sum
from brainsim.kernels.implicit import (
    coupled_factor,
    jacobian_dense_np,
    jacobian_mult,
    schur_diagonal,
    schur_solve,
    state_entries,
    tree_diagonal,
)

SHIFT = 40.0  # 1/dt of a backward-Euler step of 0.025 ms
# (n nodes, mechanisms as (n_instances, n_states), tree shape): n_instances may exceed n (nodes repeat)
SYSTEMS = [
    (1, [], "branchy"),
    (1, [(1, 3)], "branchy"),
    (2, [(2, 1)], "chain"),
    (7, [(5, 2), (3, 0), (7, 3)], "branchy"),
    (30, [(30, 3), (12, 2), (40, 1)], "forest"),
    (60, [(45, 2), (60, 1), (8, 4)], "chain"),
    (120, [(100, 3), (20, 2)], "forest"),
]


def random_system(rng, n, mechanisms, shape):
    """Tree arrays and Jacobian pieces laid out as a CellGroup and the Implicit integrator build them.

    Junction nodes (no area, no cap, no mechanisms) are algebraic rows; each mechanism is a block of
    n_states rows × n_instances, so state_node is its instance nodes tiled once per state.
    """
    parent = np.full(n, -1, dtype=np.int32)
    for i in range(1, n):
        if shape == "chain":
            parent[i] = i - 1
        elif shape == "forest" and rng.random() < 0.1:
            parent[i] = -1
        else:
            parent[i] = rng.integers(0, i)
    gax = np.where(parent >= 0, rng.uniform(0.1, 10.0, n), 0.0)
    dax = np.empty(n)
    axial_sum(gax, parent, dax)
    junction = (rng.random(n) < 0.2) & (parent >= 0)
    area = np.where(junction, 0.0, rng.uniform(10.0, 2000.0, n))
    cap = area * 1e-5
    g_dens = np.where(junction, 0.0, rng.uniform(0.0, 0.05, n))
    g_pt = np.where(junction | (rng.random(n) < 0.7), 0.0, rng.uniform(0.0, 0.1, n))
    compartments = np.nonzero(~junction)[0]
    state_node = [np.zeros(0, np.int32)]
    for n_inst, n_states in mechanisms:
        node = rng.choice(compartments, n_inst).astype(np.int32)
        state_node.append(np.tile(node, n_states))
    state_node = np.concatenate(state_node)
    m = state_node.size
    jss = SHIFT + 1.0 / rng.uniform(0.05, 100.0, m)  # shift + 1/τ
    jsv = rng.uniform(-0.1, 0.1, m)  # −∂(ds/dt)/∂V, per mV
    jvs = area[state_node] * 1e-2 * rng.uniform(-1.0, 1.0, m)  # A·∂i/∂s, nA
    # about a third of the nodes with states have one or two hubs (the ion couplings: a dense block); the
    # node's other states link to them at random, a hub row reading a free state, a free row reading a hub
    nodes = np.unique(state_node)
    hub_nodes = nodes[rng.random(nodes.size) < 0.35]
    is_hub = np.zeros(m, bool)
    for node in hub_nodes:
        mine = np.nonzero(state_node == node)[0]
        is_hub[mine[: rng.integers(1, 3)]] = True
    cstate = np.nonzero(is_hub)[0]
    cstate = cstate[np.argsort(state_node[cstate], kind="stable")].astype(np.int32)
    cnode, first, size = np.unique(state_node[cstate], return_index=True, return_counts=True)
    cstart = np.concatenate([first, [cstate.size]]).astype(np.int64)
    mstart = np.concatenate([[0], np.cumsum(size.astype(np.int64) ** 2)]).astype(np.int64)
    blocks = []
    for c, k in enumerate(size):
        block = rng.uniform(-1.0, 1.0, (k, k))
        block[np.arange(k), np.arange(k)] = jss[cstate[cstart[c] : cstart[c + 1]]]
        blocks.append(block.ravel())
    mat = np.concatenate(blocks or [np.zeros(0)])
    jcv, jvc = jsv[cstate].copy(), jvs[cstate].copy()
    jsv[cstate] = jvs[cstate] = 0.0  # a hub's V column and row are jcv and jvc
    nan = lambda k: np.full(k, np.nan)  # noqa: E731
    hub = (cnode.astype(np.int32), cstart, cstate, mstart[:-1].copy(), mat, nan(mat.size),
           np.zeros(cstate.size, np.int32), jcv, jvc, nan(cstate.size), nan(cstate.size), nan(cstate.size),
           nan(cstate.size))  # fmt: skip
    r_row, r_state, c_state, c_col = [], [], [], []
    for c, node in enumerate(cnode):
        for b in np.nonzero((state_node == node) & ~is_hub)[0]:
            hubs = np.arange(cstart[c], cstart[c + 1])
            if rng.random() < 0.6:
                r_row.append(rng.choice(hubs))
                r_state.append(b)
            if rng.random() < 0.6:
                c_state.append(b)
                c_col.append(rng.choice(hubs))
    r_row, r_state = np.array(r_row, np.int64), np.array(r_state, np.int32)
    c_state, c_col = np.array(c_state, np.int32), np.array(c_col, np.int64)
    rc_r, rc_c = np.nonzero(r_state[:, None] == c_state[None, :])
    block_of = np.repeat(np.arange(cnode.size), size)
    c_of = block_of[r_row[rc_r]]
    rc_at = mstart[c_of] + (r_row[rc_r] - cstart[c_of]) * size[c_of] + (c_col[rc_c] - cstart[c_of])
    links = (r_row, r_state, rng.uniform(-1.0, 1.0, r_row.size), c_state, c_col,
             rng.uniform(-1.0, 1.0, c_state.size), rc_at.astype(np.int64), rc_r.astype(np.int64),
             rc_c.astype(np.int64))  # fmt: skip
    return dict(
        parent=parent, gax=gax, dax=dax, area=area, cap=cap, g_dens=g_dens, g_pt=g_pt,
        state_node=state_node, jss=jss, jsv=jsv, jvs=jvs, free=np.nonzero(~is_hub)[0], hub=hub, links=links,
    )  # fmt: skip


def d0_of(s):
    d0 = np.full(s["cap"].size, np.nan)
    tree_diagonal(s["cap"], s["dax"], s["area"], s["g_dens"], s["g_pt"], SHIFT, d0)
    return d0


def dense(s, d0):
    return jacobian_dense_np(d0, *args_of(s))


def args_of(s):
    return s["gax"], s["parent"], s["jss"], s["jsv"], s["jvs"], s["state_node"], s["hub"], s["links"]


@pytest.fixture(params=range(len(SYSTEMS)), ids=[f"n{n}-m{sum(a * b for a, b in m)}" for n, m, _ in SYSTEMS])
def system(request):
    n, mechanisms, shape = SYSTEMS[request.param]
    return random_system(np.random.default_rng(request.param), n, mechanisms, shape)


def test_tree_diagonal(system):
    s = system
    d0 = d0_of(s)
    expect = SHIFT * s["cap"] + s["dax"] + s["area"] * 1e-2 * s["g_dens"] + s["g_pt"]
    np.testing.assert_allclose(d0, expect, rtol=1e-14)
    junction = s["area"] == 0.0
    np.testing.assert_array_equal(d0[junction], (s["dax"] + s["g_pt"])[junction])


def test_jacobian_dense_np_structure(system):
    """The dense twin has the entries the module docstring describes (and is consistent with itself)."""
    s = system
    d0, n, m = d0_of(s), s["dax"].size, s["jss"].size
    a = dense(s, d0)
    assert a.shape == (n + m, n + m)
    np.testing.assert_array_equal(np.diag(a), np.concatenate([d0, s["jss"]]))  # the blocks' too
    v_block = a[:n, :n]
    np.testing.assert_array_equal(v_block, v_block.T)
    child = np.nonzero(s["parent"] >= 0)[0]
    np.testing.assert_array_equal(v_block[child, s["parent"][child]], -s["gax"][child])
    assert np.count_nonzero(v_block - np.diag(np.diag(v_block))) == 2 * child.size
    # a free state row: its diagonal, the V of its node and its links; a hub's: its block and that V
    free, links = s["free"], s["links"]
    assert np.count_nonzero(a[n + free, :]) == 2 * free.size + links[3].size
    assert np.count_nonzero(a[:n, n + free]) == free.size
    sizes = np.diff(s["hub"][1])
    assert (
        np.count_nonzero(a[n:, :])
        == 2 * free.size + int((sizes**2 + sizes).sum()) + links[0].size + links[3].size
    )
    assert np.count_nonzero(a[:n, n:]) == m


def test_jacobian_mult_matches_dense(system):
    s = system
    d0 = d0_of(s)
    size = d0.size + s["jss"].size
    rng = np.random.default_rng(size)
    for _ in range(3):
        x = rng.uniform(-1.0, 1.0, size)
        y = np.full(size, np.nan)
        jacobian_mult(x, d0, *args_of(s), y)
        expect = dense(s, d0) @ x
        np.testing.assert_allclose(y, expect, rtol=1e-12, atol=1e-12 * np.abs(expect).max())


def test_state_entries():
    rng = np.random.default_rng(3)
    dids, scale, tau = rng.uniform(-1, 1, 50), rng.uniform(0.1, 2, 50), rng.uniform(0.01, 100, 50)
    jvs, jss, rjss = np.full(50, np.nan), np.full(50, np.nan), np.full(50, np.nan)
    state_entries(dids, scale, tau, SHIFT, jvs, jss, rjss)
    np.testing.assert_allclose(jvs, dids * scale, rtol=1e-15)
    np.testing.assert_allclose(jss, SHIFT + 1.0 / tau, rtol=1e-15)
    np.testing.assert_allclose(rjss, 1.0 / jss, rtol=1e-15)


def test_schur_diagonal(system):
    s = system
    d0 = d0_of(s)
    d = np.full(d0.size, np.nan)
    schur_diagonal(d0, s["jsv"], s["jvs"], 1.0 / s["jss"], s["state_node"], d)
    free = s["free"]
    elim = s["jvs"][free] * s["jsv"][free] / s["jss"][free]
    expect = d0 - np.bincount(s["state_node"][free], weights=elim, minlength=d0.size)
    np.testing.assert_allclose(d, expect, rtol=1e-12, atol=1e-14 * np.abs(d0).max())


def test_schur_solve_inverts_the_jacobian(system):
    """Schur elimination of the states + Hines on the V tree is an exact inverse of J."""
    s = system
    d0 = d0_of(s)
    n, m = d0.size, s["jss"].size
    d, rjss = np.empty(n), 1.0 / s["jss"]
    schur_diagonal(d0, s["jsv"], s["jvs"], rjss, s["state_node"], d)
    coupled_factor(s["hub"], s["links"], rjss, s["jsv"], s["jvs"], d)
    a = dense(s, d0)
    rng = np.random.default_rng(n + m)
    for scale_v, scale_s in ((1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (1e3, 1e-3)):
        r = np.concatenate([scale_v * rng.uniform(-1.0, 1.0, n), scale_s * rng.uniform(-1.0, 1.0, m)])
        r_in = r.copy()
        x = np.full(n + m, np.nan)
        work = np.full(n, np.nan), np.full(n, np.nan)
        args = args_of(s)
        schur_solve(r, d, *args[:2], rjss, *args[2:], x, *work)
        np.testing.assert_array_equal(r, r_in)  # r is not consumed
        np.testing.assert_allclose(a @ x, r, rtol=1e-10, atol=1e-10 * np.abs(r).max())
        expect = np.linalg.solve(a, r)
        np.testing.assert_allclose(x, expect, rtol=1e-9, atol=1e-10 * np.abs(expect).max())
        # and jacobian_mult takes it back
        y = np.full(n + m, np.nan)
        jacobian_mult(x, d0, *args, y)
        np.testing.assert_allclose(y, r, rtol=1e-10, atol=1e-10 * np.abs(r).max())
