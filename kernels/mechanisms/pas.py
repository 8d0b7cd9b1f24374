"""pas: passive leak, i = g·(V − e) (mA/cm²)."""

import numpy as np
from numba import njit

from .. import JIT

KIND = "density"
STATES = ()
PARAMS = (("g", 0.001, "S/cm2"), ("e", -70.0, "mV"))
ION_WRITES = ()
ION_READS = ()


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    pass


def rates_np(vi, node, p, ion, celsius):
    return np.empty((0, node.size)), np.empty((0, node.size))


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        i = node[j]
        i_acc[i] += p[0, j] * (v[i] - p[1, j])
        g_acc[i] += p[0, j]


def current_np(v, node, p, s, ion):
    g, e = p
    return g * (v[node] - e), g.copy(), np.empty((0, node.size))
