"""The cable equation on a forest of trees: assembly and the exact O(n) Hines solve.

Nodes are ordered parent-before-child (parent[i] < i; roots have parent -1). The matrix of one
implicit step is symmetric with diagonal d and off-diagonal -gax[i] between i and parent[i].
"""

import numpy as np
from numba import njit

from . import JIT

AREA_SCALE = 1e-2
"""mA/cm² × µm² × 1e-2 = nA, and S/cm² × µm² × 1e-2 = µS."""


@njit(**JIT, inline="always")  # inlined where a kernel calls it (see brainsim.engine.stepper)
def hines_solve(d, rhs, gax, parent, x, limit, lo, hi):
    """Solve the tree system (diagonal d, off-diagonals -gax to the parent) for x on nodes lo .. hi - 1
    (whole trees: no parent outside the range); d and rhs are consumed there.

    Returns the first node whose solution is not finite or has |x| > limit, or -1. The elimination
    keeps 1/d in d, so the back-substitution has no division on its dependency chain. The loops run over
    views from lo (a loop from a variable start indexes an array far slower).
    """
    d, rhs, gax, parent, x = d[lo:hi], rhs[lo:hi], gax[lo:hi], parent[lo:hi], x[lo:hi]
    for i in range(d.size - 1, -1, -1):
        inv = 1.0 / d[i]
        d[i] = inv
        p = parent[i] - lo
        if p >= 0:
            f = gax[i] * inv
            d[p] -= f * gax[i]
            rhs[p] += f * rhs[i]
    bad = -1
    for i in range(d.size):
        p = parent[i] - lo
        if p >= 0:
            x[i] = (rhs[i] + gax[i] * x[p]) * d[i]
        else:
            x[i] = rhs[i] * d[i]
        if bad < 0 and not abs(x[i]) <= limit:
            bad = lo + i
    return bad


def hines_solve_np(d, rhs, gax, parent):
    """NumPy twin of `hines_solve`: the same matrix built dense and solved by LAPACK."""
    a = np.diag(np.asarray(d, dtype=float))
    child = np.nonzero(parent >= 0)[0]
    a[child, parent[child]] = -gax[child]
    a[parent[child], child] = -gax[child]
    return np.linalg.solve(a, rhs)


@njit(**JIT)
def axial_sum(gax, parent, dax):
    """dax[i] = conductance from node i to all its neighbours (its parent and its children), µS."""
    dax[:] = gax
    for i in range(gax.size):
        p = parent[i]
        if p >= 0:
            dax[p] += gax[i]


@njit(**JIT)
def staggered_solve(v, cap, dax, gax, parent, area, i_dens, g_dens, i_pt, g_pt, dt, d, rhs, limit, lo, hi):
    """One backward-Euler step of V on the trees of nodes lo .. hi - 1 with membrane currents linearised at
    the present V.

    cap·(V' − V)/dt = −A·(i + g·(V' − V)) − (i_pt + g_pt·(V' − V)) + Σ gax·(V'_nb − V'), solved for V'
    in place of v. Returns the first node whose new V is not finite or beyond ±limit (mV), or -1.
    """
    # views of the range (see hines_solve)
    vr, capr, daxr, arear, idr, gdr = (
        v[lo:hi],
        cap[lo:hi],
        dax[lo:hi],
        area[lo:hi],
        i_dens[lo:hi],
        g_dens[lo:hi],
    )
    ipr, gpr, dr, rr = i_pt[lo:hi], g_pt[lo:hi], d[lo:hi], rhs[lo:hi]
    for i in range(vr.size):
        ga = arear[i] * 1e-2 * gdr[i]
        c = capr[i] / dt
        dr[i] = c + daxr[i] + ga + gpr[i]
        rr[i] = (c + ga + gpr[i]) * vr[i] - arear[i] * 1e-2 * idr[i] - ipr[i]
    return hines_solve(d, rhs, gax, parent, v, limit, lo, hi)


def staggered_solve_np(v, cap, dax, gax, parent, area, i_dens, g_dens, i_pt, g_pt, dt):
    """NumPy twin of `staggered_solve`: returns the new V."""
    ga = area * AREA_SCALE * g_dens
    c = cap / dt
    d = c + dax + ga + g_pt
    rhs = (c + ga + g_pt) * v - area * AREA_SCALE * i_dens - i_pt
    return hines_solve_np(d, rhs, gax, parent)


@njit(**JIT)
def cable_residual(v, vdot, cap, gax, parent, area, i_dens, i_pt, f):
    """Implicit-form residual of the V rows: f = cap·dV/dt + A·i_dens + i_pt − Σ gax·(V_nb − V), nA."""
    for i in range(v.size):
        f[i] = cap[i] * vdot[i] + area[i] * 1e-2 * i_dens[i] + i_pt[i]
    for i in range(v.size):
        p = parent[i]
        if p >= 0:
            a = gax[i] * (v[i] - v[p])
            f[i] += a
            f[p] -= a


def cable_residual_np(v, vdot, cap, gax, parent, area, i_dens, i_pt):
    """NumPy twin of `cable_residual`."""
    f = cap * vdot + area * AREA_SCALE * i_dens + i_pt
    child = np.nonzero(parent >= 0)[0]
    a = gax[child] * (v[child] - v[parent[child]])
    f[child] += a
    np.subtract.at(f, parent[child], a)
    return f


@njit(**JIT)
def first_bad(v, limit):
    """The first index whose value is not finite or has |v| > limit, or -1. The values are counted first,
    in a loop without an exit, which vectorises (55,000 values: 2.3 against 17 µs for the search alone)."""
    n_bad = 0
    for i in range(v.size):
        n_bad += not abs(v[i]) <= limit
    if n_bad == 0:
        return -1
    for i in range(v.size):
        if not abs(v[i]) <= limit:
            return i
    return -1


def solver_order(parent, gax, cell_start, kind=None, chunk=None):
    """An elimination order for `hines_solve` with independent work next to each other.

    Each cell's tree is re-rooted at its centre (the middle of its longest path), and the nodes of all
    cells are ordered by depth from their roots: consecutive positions then belong to different
    branches or cells, so the solve's division chains overlap instead of running one after another.
    At one depth, nodes are ordered by kind (an integer per node, e.g. which mechanisms it carries), then
    by index. With `chunk` (a nondecreasing integer per node, whole cells alike), the chunks' nodes come
    one chunk after another, each chunk ordered as above: a range of positions then holds whole cells.
    Returns (perm, sparent, sg): perm[i] is the node at position i, sparent[i] the position of its
    parent in the re-rooted tree (-1 for roots) and sg[i] the conductance to it (µS).
    """
    n = parent.size
    new_parent = np.full(n, -1, dtype=np.int64)
    new_g = np.zeros(n)
    depth = np.zeros(n, dtype=np.int64)
    centre_rooted(
        parent.astype(np.int64), gax.astype(float), cell_start.astype(np.int64), new_parent, new_g, depth
    )
    zero = np.zeros(n, dtype=np.int64)
    perm = np.lexsort((np.arange(n), zero if kind is None else kind, depth, zero if chunk is None else chunk))
    position = np.empty(n, dtype=np.int64)
    position[perm] = np.arange(n)
    sparent = np.where(new_parent[perm] >= 0, position[np.maximum(new_parent[perm], 0)], -1)
    return perm.astype(np.int32), sparent.astype(np.int32), new_g[perm]


@njit(**JIT)
def centre_rooted(parent, gax, cell_start, new_parent, new_g, depth):
    """Each cell's tree (nodes cell_start[c] .. cell_start[c + 1] - 1, parent[i] < i) re-rooted at its
    centre, the middle node of its longest path (found by two breadth-first searches): new_parent,
    new_g (the conductance to the new parent, µS) and depth (edges from the centre) are filled in."""
    n = parent.size
    first = np.zeros(n + 1, dtype=np.int64)  # the undirected tree's adjacency in compressed rows
    for i in range(n):
        if parent[i] >= 0:
            first[i + 1] += 1
            first[parent[i] + 1] += 1
    first = np.cumsum(first)
    adj, adj_g, fill = np.empty(first[n], dtype=np.int64), np.empty(first[n]), first[:n].copy()
    for i in range(n):
        p = parent[i]
        if p >= 0:
            adj[fill[i]], adj_g[fill[i]] = p, gax[i]
            adj[fill[p]], adj_g[fill[p]] = i, gax[i]
            fill[i] += 1
            fill[p] += 1
    dist, queue = np.full(n, -1, dtype=np.int64), np.empty(n, dtype=np.int64)
    for c in range(cell_start.size - 1):
        far, count = _bfs(first, adj, adj_g, cell_start[c], dist, new_parent, new_g, queue)
        dist[queue[:count]] = -1
        end, count = _bfs(first, adj, adj_g, far, dist, new_parent, new_g, queue)
        steps = (dist[end] + 1) // 2  # to the middle of the path end .. far (len(path) // 2)
        dist[queue[:count]] = -1
        centre = end
        for _ in range(steps):
            centre = new_parent[centre]
        count = _bfs(first, adj, adj_g, centre, dist, new_parent, new_g, queue)[1]
        depth[queue[:count]] = dist[queue[:count]]
        dist[queue[:count]] = -1


@njit(**JIT)
def _bfs(first, adj, adj_g, source, dist, pred, pred_g, queue):
    """Breadth-first search of one tree from source: dist, pred and pred_g (the conductance to pred) of
    its nodes, which queue[:count] lists. Returns (the farthest node, the smallest-numbered among the
    farthest; count). dist must be -1 on the tree's nodes before the call."""
    queue[0], dist[source], pred[source], pred_g[source] = source, 0, -1, 0.0
    head, tail = 0, 1
    while head < tail:
        node = queue[head]
        head += 1
        for k in range(first[node], first[node + 1]):
            other = adj[k]
            if dist[other] < 0:
                dist[other], pred[other], pred_g[other] = dist[node] + 1, node, adj_g[k]
                queue[tail] = other
                tail += 1
    far = source
    for k in range(tail):
        node = queue[k]
        if dist[node] > dist[far] or (dist[node] == dist[far] and node < far):
            far = node
    return far, tail
