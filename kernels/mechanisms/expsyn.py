"""expsyn: single-exponential conductance synapse (NEURON ExpSyn, Arbor expsyn).

i = g·(V − e) (nA), dg/dt = −g/tau; an event of weight w (µS) does g ← g + w.
"""

import numpy as np
from numba import njit

from .. import JIT

KIND = "point"
STATES = ("g",)
PARAMS = (("tau", 2.0, "ms"), ("e", 0.0, "mV"))
ION_WRITES = ()
ION_READS = ()


def event_scale(p):
    """Per state and instance, the multiple of an event's weight added to that state."""
    return np.ones((1, p.shape[1]))


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    for j in range(node.size):
        xinf[0, j] = 0.0
        tau[0, j] = p[0, j]


def rates_np(vi, node, p, ion, celsius):
    return np.zeros((1, node.size)), p[0:1].copy()


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        i = node[j]
        i_acc[i] += s[0, j] * (v[i] - p[1, j])
        g_acc[i] += s[0, j]
        dids[0, j] = v[i] - p[1, j]


def current_np(v, node, p, s, ion):
    d = v[node] - p[1]
    return s[0] * d, s[0].copy(), d[None, :]
