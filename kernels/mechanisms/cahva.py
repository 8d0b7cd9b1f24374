"""cahva: Ca_HVA, the high-voltage-activated Ca²⁺ channel of Hay et al. 2011 (Reuveni et al. 1993).

ica = gbar·m²·h·(V − eca) (mA/cm²), added into the ion array's ica row as well as into the membrane
current. The reversal eca is a fixed parameter (NEURON's default 132.4579 mV), not a Nernst potential
of cai. The published rates have no temperature dependence, so `celsius` is unused. calva reuses this
module's current kernel.
"""

import numpy as np
from numba import njit

from .. import JIT
from ..ions import ICA
from ..mathfn import exprelr, exprelr_np, vexp

KIND = "density"
STATES = ("m", "h")
PARAMS = (("gbar", 1e-5, "S/cm2"), ("eca", 132.4579, "mV"))
ION_WRITES = ("ica",)
ION_READS = ()


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    for j in range(node.size):
        u = vi[j]
        a = 0.055 * 3.8 * exprelr(-(u + 27.0) / 3.8)  # 0.055·(−27−V)/(exp((−27−V)/3.8) − 1)
        b = 0.94 * vexp((-75.0 - u) / 17.0)
        xinf[0, j] = a / (a + b)
        tau[0, j] = 1.0 / (a + b)
        a = 0.000457 * vexp((-13.0 - u) / 50.0)
        b = 0.0065 / (vexp((-u - 15.0) / 28.0) + 1.0)
        xinf[1, j] = a / (a + b)
        tau[1, j] = 1.0 / (a + b)


def rates_np(vi, node, p, ion, celsius):
    u = vi
    am, bm = 0.055 * 3.8 * exprelr_np(-(u + 27.0) / 3.8), 0.94 * np.exp((-75.0 - u) / 17.0)
    ah, bh = 0.000457 * np.exp((-13.0 - u) / 50.0), 0.0065 / (np.exp((-u - 15.0) / 28.0) + 1.0)
    a, b = np.array([am, ah]), np.array([bm, bh])
    return a / (a + b), 1.0 / (a + b)


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        i = node[j]
        m, h = s[0, j], s[1, j]
        g = p[0, j] * m * m * h
        d = v[i] - p[1, j]
        i_acc[i] += g * d
        g_acc[i] += g
        ion[ICA, i] += g * d
        dids[0, j] = 2.0 * p[0, j] * m * h * d
        dids[1, j] = p[0, j] * m * m * d


def current_np(v, node, p, s, ion):
    """Returns (i, g, dids); i is also this mechanism's ica."""
    gbar, e = p
    m, h = s
    d = v[node] - e
    g = gbar * m**2 * h
    return g * d, g, np.array([2 * gbar * m * h * d, gbar * m**2 * d])
