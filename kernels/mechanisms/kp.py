"""kp: K_Pst, the slow (persistent) K⁺ channel of Hay et al. 2011 (Korngreen & Sakmann 2000).

ik = gbar·m²·h·(V − ek) (mA/cm²). Kinetics shifted by −10 mV for the junction potential (evaluated at
u = V + 10); τm is piecewise at u = −50 mV as published. Rates fitted at 21 °C, scaled by
qt = 2.3^((celsius − 21)/10).
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
        xinf[0, j] = 1.0 / (1.0 + vexp(-(u + 1.0) / 12.0))
        tau[0, j] = (1.25 + (175.03 * vexp(0.026 * u) if u < -50.0 else 13.0 * vexp(-0.026 * u))) / qt
        xinf[1, j] = 1.0 / (1.0 + vexp((u + 54.0) / 11.0))
        w = (u + 75.0) / 48.0
        tau[1, j] = (360.0 + (1010.0 + 24.0 * (u + 55.0)) * vexp(-w * w)) / qt


def rates_np(vi, node, p, ion, celsius):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    u = vi + 10.0
    xinf = np.array([1.0 / (1.0 + np.exp(-(u + 1.0) / 12.0)), 1.0 / (1.0 + np.exp((u + 54.0) / 11.0))])
    taum = 1.25 + np.where(u < -50.0, 175.03 * np.exp(0.026 * u), 13.0 * np.exp(-0.026 * u))
    tauh = 360.0 + (1010.0 + 24.0 * (u + 55.0)) * np.exp(-(((u + 75.0) / 48.0) ** 2))
    return xinf, np.array([taum, tauh]) / qt


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        i = node[j]
        m, h = s[0, j], s[1, j]
        g = p[0, j] * m * m * h
        d = v[i] - p[1, j]
        i_acc[i] += g * d
        g_acc[i] += g
        dids[0, j] = 2.0 * p[0, j] * m * h * d
        dids[1, j] = p[0, j] * m * m * d


def current_np(v, node, p, s, ion):
    gbar, e = p
    m, h = s
    d = v[node] - e
    g = gbar * m**2 * h
    return g * d, g, np.array([2 * gbar * m * h * d, gbar * m**2 * d])
