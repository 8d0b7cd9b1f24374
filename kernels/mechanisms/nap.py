"""nap: Nap_Et2, the persistent Na⁺ channel of Hay et al. 2011 (Magistretti & Alonso 1999).

ina = gbar·m³·h·(V − ena) (mA/cm²); τm is 6× NaTa_t's. Rates fitted at 21 °C, scaled by
qt = 2.3^((celsius − 21)/10).
"""

import numpy as np
from numba import njit

from .. import JIT
from ..mathfn import exprelr, exprelr_np, vexp
from . import nata

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
        a = 0.182 * 6.0 * exprelr(-(u + 38.0) / 6.0)  # NaTa_t's αm and βm
        b = 0.124 * 6.0 * exprelr((u + 38.0) / 6.0)
        xinf[0, j] = 1.0 / (1.0 + vexp(-(u + 52.6) / 4.6))
        tau[0, j] = 6.0 / (qt * (a + b))
        a = 2.88e-6 * 4.63 * exprelr((u + 17.0) / 4.63)  # −2.88e-6·(V+17)/(1 − exp((V+17)/4.63))
        b = 6.94e-6 * 2.63 * exprelr(-(u + 64.4) / 2.63)  # 6.94e-6·(V+64.4)/(1 − exp(−(V+64.4)/2.63))
        xinf[1, j] = 1.0 / (1.0 + vexp((u + 48.8) / 10.0))
        tau[1, j] = 1.0 / (qt * (a + b))


def rates_np(vi, node, p, ion, celsius):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    u = vi
    am, bm = 0.182 * 6.0 * exprelr_np(-(u + 38.0) / 6.0), 0.124 * 6.0 * exprelr_np((u + 38.0) / 6.0)
    ah, bh = 2.88e-6 * 4.63 * exprelr_np((u + 17.0) / 4.63), 6.94e-6 * 2.63 * exprelr_np(-(u + 64.4) / 2.63)
    xinf = np.array([1.0 / (1.0 + np.exp(-(u + 52.6) / 4.6)), 1.0 / (1.0 + np.exp((u + 48.8) / 10.0))])
    return xinf, np.array([6.0 / (qt * (am + bm)), 1.0 / (qt * (ah + bh))])


current, current_np = nata.current, nata.current_np
