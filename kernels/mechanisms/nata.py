"""nata: NaTa_t, the transient Na⁺ channel of Hay et al. 2011 (ModelDB 139653; Colbert & Pan 2002).

ina = gbar·m³·h·(V − ena) (mA/cm²). Rates fitted at 21 °C, scaled by qt = 2.3^((celsius − 21)/10)
(the .mod file fixes celsius at 34 there). nats and nap reuse this module's current kernel.
"""

import numpy as np
from numba import njit

from .. import JIT
from ..mathfn import exprelr, exprelr_np

KIND = "density"
STATES = ("m", "h")
PARAMS = (("gbar", 1e-5, "S/cm2"), ("ena", 50.0, "mV"))
ION_WRITES = ()
ION_READS = ()


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    for j in range(node.size):
        u = vi[j]
        a = 0.182 * 6.0 * exprelr(-(u + 38.0) / 6.0)  # 0.182·(V+38)/(1 − exp(−(V+38)/6))
        b = 0.124 * 6.0 * exprelr((u + 38.0) / 6.0)  # 0.124·(−V−38)/(1 − exp((V+38)/6))
        xinf[0, j] = a / (a + b)
        tau[0, j] = 1.0 / (qt * (a + b))
        a = 0.015 * 6.0 * exprelr((u + 66.0) / 6.0)  # −0.015·(V+66)/(1 − exp((V+66)/6))
        b = 0.015 * 6.0 * exprelr(-(u + 66.0) / 6.0)  # −0.015·(−V−66)/(1 − exp((−V−66)/6))
        xinf[1, j] = a / (a + b)
        tau[1, j] = 1.0 / (qt * (a + b))


def rates_np(vi, node, p, ion, celsius):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    u = vi
    am, bm = 0.182 * 6.0 * exprelr_np(-(u + 38.0) / 6.0), 0.124 * 6.0 * exprelr_np((u + 38.0) / 6.0)
    ah, bh = 0.015 * 6.0 * exprelr_np((u + 66.0) / 6.0), 0.015 * 6.0 * exprelr_np(-(u + 66.0) / 6.0)
    a, b = np.array([am, ah]), np.array([bm, bh])
    return a / (a + b), 1.0 / (qt * (a + b))


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        i = node[j]
        m, h = s[0, j], s[1, j]
        g = p[0, j] * m * m * m * h
        d = v[i] - p[1, j]
        i_acc[i] += g * d
        g_acc[i] += g
        dids[0, j] = 3.0 * p[0, j] * m * m * h * d
        dids[1, j] = p[0, j] * m * m * m * d


def current_np(v, node, p, s, ion):
    gbar, e = p
    m, h = s
    d = v[node] - e
    g = gbar * m**3 * h
    return g * d, g, np.array([3 * gbar * m**2 * h * d, gbar * m**3 * d])
