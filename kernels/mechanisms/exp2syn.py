"""exp2syn: double-exponential conductance synapse (NEURON Exp2Syn).

g = B − A with dA/dt = −A/tau1, dB/dt = −B/tau2 (tau1 < tau2, ms); i = g·(V − e) (nA). An event of
weight w adds w·factor to A and B, the factor chosen so that the peak of g is w (µS).
"""

import numpy as np
from numba import njit

from .. import JIT

KIND = "point"
STATES = ("A", "B")
PARAMS = (("tau1", 0.5, "ms"), ("tau2", 2.0, "ms"), ("e", 0.0, "mV"))
ION_WRITES = ()
ION_READS = ()


def event_scale(p):
    """Per state and instance, the multiple of an event's weight added to that state."""
    tau1, tau2 = p[0], p[1]
    tpeak = tau1 * tau2 / (tau2 - tau1) * np.log(tau2 / tau1)
    factor = 1.0 / (np.exp(-tpeak / tau2) - np.exp(-tpeak / tau1))
    return np.array([factor, factor])


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    for j in range(node.size):
        xinf[0, j] = 0.0
        xinf[1, j] = 0.0
        tau[0, j] = p[0, j]
        tau[1, j] = p[1, j]


def rates_np(vi, node, p, ion, celsius):
    return np.zeros((2, node.size)), p[0:2].copy()


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        i = node[j]
        g = s[1, j] - s[0, j]
        d = v[i] - p[2, j]
        i_acc[i] += g * d
        g_acc[i] += g
        dids[0, j] = -d
        dids[1, j] = d


def current_np(v, node, p, s, ion):
    g = s[1] - s[0]
    d = v[node] - p[2]
    return g * d, g, np.array([-d, d])
