"""The Jacobian of the implicit form and its exact inverse, for PETSc's implicit methods.

Unknowns u = [V (nodes) | states]. Each state row couples only to itself and to the V of its node, so
eliminating the states onto the V block (a Schur complement that stays a tree) lets one Hines solve
invert the whole Jacobian in O(n):

    J = | D_V + tree   J_Vs |      D_V   = shift·cap + dax + A·g + g_pt    (diagonal, µS)
        | J_sV         J_ss |      J_ss  = shift + 1/τ                     (diagonal)
                                   J_sV  = −∂(ds/dt)/∂V,  J_Vs = A·∂i/∂s   (one entry per state)

state_node[k] is the node of state k; jvs holds J_Vs already scaled to nA per unit of state.
"""

import numpy as np
from numba import njit

from . import JIT
from .cable import hines_solve


@njit(**JIT)
def tree_diagonal(cap, dax, area, g_dens, g_pt, shift, d0):
    """d0 = shift·cap + dax + A·1e-2·g_dens + g_pt: the V-block diagonal before elimination (µS)."""
    for i in range(cap.size):
        d0[i] = shift * cap[i] + dax[i] + area[i] * 1e-2 * g_dens[i] + g_pt[i]


@njit(**JIT)
def schur_diagonal(d0, jss, jsv, jvs, state_node, d):
    """d = d0 − Σ_states J_Vs·J_sV/J_ss: the V block with the states eliminated."""
    d[:] = d0
    for k in range(jss.size):
        d[state_node[k]] -= jvs[k] * jsv[k] / jss[k]


@njit(**JIT)
def schur_solve(r, d, gax, parent, jss, jsv, jvs, state_node, x, dwork, rwork):
    """x = J⁻¹·r, exactly, with d from `schur_diagonal`."""
    n = d.size
    for i in range(n):
        rwork[i] = r[i]
        dwork[i] = d[i]
    for k in range(jss.size):
        rwork[state_node[k]] -= jvs[k] * r[n + k] / jss[k]
    hines_solve(dwork, rwork, gax, parent, x[:n], np.inf)
    for k in range(jss.size):
        x[n + k] = (r[n + k] - jsv[k] * x[state_node[k]]) / jss[k]


@njit(**JIT)
def jacobian_mult(x, d0, gax, parent, jss, jsv, jvs, state_node, y):
    """y = J·x."""
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


def jacobian_dense_np(d0, gax, parent, jss, jsv, jvs, state_node):
    """NumPy twin: the whole Jacobian as a dense matrix (for tests on small systems)."""
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
    return a
