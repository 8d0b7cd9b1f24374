"""kt: K_Tst, the fast transient K⁺ (A-type) channel of Hay et al. 2011 (Korngreen & Sakmann 2000).

ik = gbar·m⁴·h·(V − ek) (mA/cm²). Kinetics shifted by −10 mV for the junction potential (evaluated at
u = V + 10). Rates fitted at 21 °C, scaled by qt = 2.3^((celsius − 21)/10).
"""

import numpy as np
from numba import njit

from .. import JIT
from ..mathfn import vexp

KIND = "density"
STATES = ("m", "h")
PARAMS = (("gbar", 1e-5, "S/cm2"), ("ek", -85.0, "mV"))
ION_WRITES = ()
ION_READS = ()


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    for j in range(node.size):
        u = vi[j] + 10.0
        w = (u + 71.0) / 59.0
        xinf[0, j] = 1.0 / (1.0 + vexp(-u / 19.0))
        tau[0, j] = (0.34 + 0.92 * vexp(-w * w)) / qt
        w = (u + 73.0) / 23.0
        xinf[1, j] = 1.0 / (1.0 + vexp((u + 66.0) / 10.0))
        tau[1, j] = (8.0 + 49.0 * vexp(-w * w)) / qt


def rates_np(vi, node, p, ion, celsius):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    u = vi + 10.0
    xinf = np.array([1.0 / (1.0 + np.exp(-u / 19.0)), 1.0 / (1.0 + np.exp((u + 66.0) / 10.0))])
    taum = 0.34 + 0.92 * np.exp(-(((u + 71.0) / 59.0) ** 2))
    tauh = 8.0 + 49.0 * np.exp(-(((u + 73.0) / 23.0) ** 2))
    return xinf, np.array([taum, tauh]) / qt


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        i = node[j]
        m, h = s[0, j], s[1, j]
        m3 = m * m * m
        g = p[0, j] * m3 * m * h
        d = v[i] - p[1, j]
        i_acc[i] += g * d
        g_acc[i] += g
        dids[0, j] = 4.0 * p[0, j] * m3 * h * d
        dids[1, j] = p[0, j] * m3 * m * d


def current_np(v, node, p, s, ion):
    gbar, e = p
    m, h = s
    d = v[node] - e
    g = gbar * m**4 * h
    return g * d, g, np.array([4 * gbar * m**3 * h * d, gbar * m**4 * d])
