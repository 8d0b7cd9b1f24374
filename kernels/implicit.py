"""The Jacobian of the implicit form and its exact inverse, for PETSc's implicit methods.

Unknowns u = [V (nodes) | states]. A state row couples to itself and to the V of its node, except where
the mechanisms of a node couple through the ion rows (kernels.ions; brainsim.engine.jacobian says where).
There a few states are hubs (a calcium shell's cai): the hubs of a node form a small dense block, with one
V column and one V row, and the other states of the node may link to them, a free state's column in a hub
row (the shell's cai row reads the ica of the Ca²⁺ channels' gates) or a hub's column in a free state's
row (SK's z reads cai). Eliminating the free states onto V and the hubs, then the hubs onto V (Schur
complements that keep the V block a tree), lets one Hines solve invert the whole Jacobian in O(n):

    J = | D_V + tree   J_Vs |      D_V   = shift·cap + dax + A·g + g_pt    (diagonal, µS)
        | J_sV         J_ss |      J_ss  = shift + 1/τ for a free state, a dense block per hub node
                                   J_sV  = ∂F_s/∂V,  J_Vs = ∂I/∂s (nA per unit of state)

Free states: state_node[k] is the node of state k (k indexes the state part) and jss, jsv, jvs its
entries; jsv and jvs are 0 at the hubs, whose V column and row are jcv and jvc, so that the loops over the
free states run over every state, in order. Hub nodes c, the tuple `hub` = (cnode, cstart, cstate,
mstart, mat, lu, piv, jcv, jvc, jcv_r, jvc_r, y, q): node cnode[c] holds the m = cstart[c+1] − cstart[c]
hubs cstate[cstart[c]:cstart[c+1]]; their m×m block is mat[mstart[c]:mstart[c] + m²] (row-major), jcv and
jvc (aligned with cstate) its V column and V row. The tuple `links` = (r_row, r_state, r_val, c_state,
c_col, c_val, rc_at, rc_r, rc_c): entry e of J at (hub r_row[e], free state r_state[e]) is r_val[e], at
(free state c_state[e], hub c_col[e]) is c_val[e] (hubs by their index in cstate); rc_at[e] is the mat
entry where link rc_r[e] meets link rc_c[e] through the same free state. `coupled_factor` fills lu, piv
(the reduced blocks' LU factors, partial pivoting), jcv_r, jvc_r (the reduced V column and row) and
y = reduced block⁻¹·jcv_r; q is the solve's work array.
"""

import numpy as np
from numba import njit

from . import JIT
from .cable import hines_solve
from .ions import CAI, ECA, ICA


@njit(**JIT)
def tree_diagonal(cap, dax, area, g_dens, g_pt, shift, d0):
    """d0 = shift·cap + dax + A·1e-2·g_dens + g_pt: the V-block diagonal before elimination (µS)."""
    for i in range(cap.size):
        d0[i] = shift * cap[i] + dax[i] + area[i] * 1e-2 * g_dens[i] + g_pt[i]


@njit(**JIT)
def state_entries(dids, state_scale, tau, shift, jvs, jss, rjss):
    """jvs = ∂I/∂state at the node (nA per unit of state), jss = shift + 1/τ and rjss = 1/jss (which the
    eliminations multiply by), every state."""
    for k in range(jss.size):
        jvs[k] = dids[k] * state_scale[k]
        jss[k] = shift + 1.0 / tau[k]
        rjss[k] = 1.0 / jss[k]


@njit(**JIT)
def schur_diagonal(d0, jsv, jvs, rjss, state_node, d):
    """d = d0 − Σ_free states J_Vs·J_sV/J_ss: the V block with the free states eliminated (jsv and jvs are 0
    at the hubs, after `hub_entries`)."""
    d[:] = d0
    for k in range(rjss.size):
        d[state_node[k]] -= jvs[k] * jsv[k] * rjss[k]


@njit(**JIT)
def hub_entries(u, nernst_scale, ions, di_dion, dica_dion, dica_dv, dica_ds, jsi, jss, jsv, jvs, hub, links):
    """The hubs' blocks, V columns and rows and the links' values from the states' own entries and the ion
    terms (brainsim.engine.jacobian), by the chain rule through eca = nernst_scale·ln(CAO/cai): jsi[row, k]
    = ∂F_k/∂(ion row), di_dion[row, node] = Σ ∂I/∂(ion row) (nA), dica_dion, dica_dv per node and dica_ds
    per state: the ica writers' derivatives. jsv and jvs are set to 0 at the hubs."""
    w_u, w_node, w_pos, deca, diag, ica_reader, ica_pos, ica_node, hub_cai, hub_ica, pairs, r_reader, c_w = (
        ions
    )
    cstate, mat, jcv, jvc = hub[2], hub[4], hub[7], hub[8]
    r_state, r_val, c_state, c_val = links[1], links[2], links[3], links[5]
    for w in range(w_u.size):
        cai = u[w_u[w]]
        deca[w] = -nernst_scale / cai if cai > 0.0 else 0.0  # ∂eca/∂cai (mV/mM)
    mat[:] = 0.0
    for i in range(cstate.size):
        k = cstate[i]
        mat[diag[i]] = jss[k]
        jcv[i], jvc[i] = jsv[k], jvs[k]
        jsv[k] = 0.0
        jvs[k] = 0.0
    for w in range(w_u.size):
        node = w_node[w]
        jvc[w_pos[w]] += di_dion[ECA, node] * deca[w] + di_dion[CAI, node]
    for e in range(ica_reader.size):
        jcv[ica_pos[e]] += jsi[ICA, ica_reader[e]] * dica_dv[ica_node[e]]
    a, wa, at = hub_cai
    for e in range(a.size):
        mat[at[e]] += jsi[CAI, a[e]] + jsi[ECA, a[e]] * deca[wa[e]]
    a, wa, at = hub_ica
    for e in range(a.size):
        node = w_node[wa[e]]
        mat[at[e]] += jsi[ICA, a[e]] * (dica_dion[ECA, node] * deca[wa[e]] + dica_dion[CAI, node])
    at, a, k = pairs
    for e in range(at.size):
        mat[at[e]] += jsi[ICA, a[e]] * dica_ds[k[e]]
    for e in range(r_val.size):
        r_val[e] = jsi[ICA, r_reader[e]] * dica_ds[r_state[e]]
    for e in range(c_val.size):
        c_val[e] = jsi[CAI, c_state[e]] + jsi[ECA, c_state[e]] * deca[c_w[e]]


@njit(**JIT, inline="always")  # inlined into its callers (see brainsim.engine.stepper)
def _lu(a, o, piv, pa, m):
    """LU factors of the m×m row-major matrix a[o : o + m²] in place (unit lower triangle below the
    diagonal), with partial pivoting: at step i rows i and piv[pa + i] were swapped."""
    for i in range(m):
        p = i
        for r in range(i + 1, m):
            if abs(a[o + r * m + i]) > abs(a[o + p * m + i]):
                p = r
        piv[pa + i] = p
        if p != i:
            for c in range(m):
                a[o + i * m + c], a[o + p * m + c] = a[o + p * m + c], a[o + i * m + c]
        for r in range(i + 1, m):
            f = a[o + r * m + i] / a[o + i * m + i]
            a[o + r * m + i] = f
            for c in range(i + 1, m):
                a[o + r * m + c] -= f * a[o + i * m + c]


@njit(**JIT, inline="always")  # inlined into its callers (see brainsim.engine.stepper)
def _lu_solve(a, o, piv, pa, m, b):
    """b[pa : pa + m] ← A⁻¹·b[pa : pa + m] from the factors of `_lu`."""
    for i in range(m):
        p = piv[pa + i]
        if p != i:
            b[pa + i], b[pa + p] = b[pa + p], b[pa + i]
    for i in range(m):
        for c in range(i):
            b[pa + i] -= a[o + i * m + c] * b[pa + c]
    for i in range(m - 1, -1, -1):
        for c in range(i + 1, m):
            b[pa + i] -= a[o + i * m + c] * b[pa + c]
        b[pa + i] /= a[o + i * m + i]


@njit(**JIT)
def coupled_factor(hub, links, rjss, jsv, jvs, d):
    """Eliminate the free states linked to hubs from the hub blocks (lu, jcv_r, jvc_r), factor them,
    y = block⁻¹·jcv_r and d[node] −= jvc_r·y: with `schur_diagonal`, the V block with every state
    eliminated."""
    cnode, cstart, cstate, mstart, mat, lu, piv, jcv, jvc, jcv_r, jvc_r, y, q = hub
    r_row, r_state, r_val, c_state, c_col, c_val, rc_at, rc_r, rc_c = links
    lu[:] = mat
    jcv_r[:] = jcv
    jvc_r[:] = jvc
    for e in range(r_row.size):
        b = r_state[e]
        jcv_r[r_row[e]] -= r_val[e] * jsv[b] * rjss[b]
    for e in range(c_state.size):
        b = c_state[e]
        jvc_r[c_col[e]] -= jvs[b] * c_val[e] * rjss[b]
    for e in range(rc_at.size):
        lu[rc_at[e]] -= r_val[rc_r[e]] * c_val[rc_c[e]] * rjss[r_state[rc_r[e]]]
    for c in range(cnode.size):
        a, m, o = cstart[c], cstart[c + 1] - cstart[c], mstart[c]
        if m == 1:  # one hub (a calcium shell): no factorisation
            piv[a] = 0
            y[a] = jcv_r[a] / lu[o]
            d[cnode[c]] -= jvc_r[a] * y[a]
            continue
        _lu(lu, o, piv, a, m)
        for i in range(m):
            y[a + i] = jcv_r[a + i]
        _lu_solve(lu, o, piv, a, m, y)
        for i in range(m):
            d[cnode[c]] -= jvc_r[a + i] * y[a + i]


@njit(**JIT)
def schur_solve(r, d, gax, parent, rjss, jss, jsv, jvs, state_node, hub, links, x, dwork, rwork):
    """x = J⁻¹·r, exactly, with rjss from `state_entries` and d from `schur_diagonal` and `coupled_factor`."""
    cnode, cstart, cstate, mstart, mat, lu, piv, jcv, jvc, jcv_r, jvc_r, y, q = hub
    r_row, r_state, r_val, c_state, c_col, c_val = links[:6]
    n = d.size
    for i in range(n):
        rwork[i] = r[i]
        dwork[i] = d[i]
    for k in range(jss.size):
        rwork[state_node[k]] -= jvs[k] * r[n + k] * rjss[k]
    for i in range(cstate.size):
        q[i] = r[n + cstate[i]]
    for e in range(r_row.size):
        b = r_state[e]
        q[r_row[e]] -= r_val[e] * r[n + b] * rjss[b]
    for c in range(cnode.size):
        a, m = cstart[c], cstart[c + 1] - cstart[c]
        if m == 1:
            q[a] /= lu[mstart[c]]
        else:
            _lu_solve(lu, mstart[c], piv, a, m, q)
        for i in range(m):
            rwork[cnode[c]] -= jvc_r[a + i] * q[a + i]
    hines_solve(dwork, rwork, gax, parent, x[:n], np.inf, 0, n)
    for k in range(jss.size):
        x[n + k] = (r[n + k] - jsv[k] * x[state_node[k]]) * rjss[k]
    for c in range(cnode.size):
        for i in range(cstart[c], cstart[c + 1]):
            x[n + cstate[i]] = q[i] - y[i] * x[cnode[c]]
    for e in range(c_state.size):
        b = c_state[e]
        x[n + b] -= c_val[e] * x[n + cstate[c_col[e]]] * rjss[b]


@njit(**JIT)
def jacobian_mult(x, d0, gax, parent, jss, jsv, jvs, state_node, hub, links, y):
    """y = J·x."""
    cnode, cstart, cstate, mstart, mat, lu, piv, jcv, jvc = hub[:9]
    r_row, r_state, r_val, c_state, c_col, c_val = links[:6]
    n = d0.size
    for i in range(n):
        y[i] = d0[i] * x[i]
    for i in range(n):
        p = parent[i]
        if p >= 0:
            y[i] -= gax[i] * x[p]
            y[p] -= gax[i] * x[i]
    for k in range(jss.size):
        i = state_node[k]
        y[i] += jvs[k] * x[n + k]
        y[n + k] = jss[k] * x[n + k] + jsv[k] * x[i]
    for e in range(c_state.size):
        y[n + c_state[e]] += c_val[e] * x[n + cstate[c_col[e]]]
    for c in range(cnode.size):
        a, m, o = cstart[c], cstart[c + 1] - cstart[c], mstart[c]
        node = cnode[c]
        for i in range(m):
            row = n + cstate[a + i]
            total = jcv[a + i] * x[node]
            for j in range(m):
                total += mat[o + i * m + j] * x[n + cstate[a + j]]
            y[row] = total
            y[node] += jvc[a + i] * x[row]
    for e in range(r_row.size):
        y[n + cstate[r_row[e]]] += r_val[e] * x[n + r_state[e]]


def jacobian_dense_np(d0, gax, parent, jss, jsv, jvs, state_node, hub, links):
    """NumPy twin: the whole Jacobian as a dense matrix (for tests on small systems)."""
    cnode, cstart, cstate, mstart, mat = hub[:5]
    jcv, jvc = hub[7], hub[8]
    r_row, r_state, r_val, c_state, c_col, c_val = links[:6]
    n, m = d0.size, jss.size
    a = np.zeros((n + m, n + m))
    a[np.arange(n), np.arange(n)] = d0
    child = np.nonzero(parent >= 0)[0]
    a[child, parent[child]] = -gax[child]
    a[parent[child], child] = -gax[child]
    k = np.arange(m)
    a[n + k, n + k] = jss
    a[n + k, state_node] = jsv
    a[state_node, n + k] = jvs
    for c in range(cnode.size):
        rows = n + cstate[cstart[c] : cstart[c + 1]]
        size = rows.size
        a[np.ix_(rows, rows)] = mat[mstart[c] : mstart[c] + size * size].reshape(size, size)
        a[rows, cnode[c]] = jcv[cstart[c] : cstart[c + 1]]
        a[cnode[c], rows] = jvc[cstart[c] : cstart[c + 1]]
    a[n + cstate[r_row], n + r_state] = r_val
    a[n + c_state, n + cstate[c_col]] = c_val
    return a
