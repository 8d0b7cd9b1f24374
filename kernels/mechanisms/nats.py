"""nats: NaTs2_t, the somatic transient Na⁺ channel of the Blue Brain L5PC models (BluePyOpt).

NaTa_t (see nata) with activation and inactivation shifted by +6 mV: ina = gbar·m³·h·(V − ena)
(mA/cm²), rates scaled by qt = 2.3^((celsius − 21)/10).
"""

import numpy as np
from numba import njit

from .. import JIT
from ..mathfn import exprelr, exprelr_np
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
        a = 0.182 * 6.0 * exprelr(-(u + 32.0) / 6.0)  # 0.182·(V+32)/(1 − exp(−(V+32)/6))
        b = 0.124 * 6.0 * exprelr((u + 32.0) / 6.0)  # 0.124·(−V−32)/(1 − exp((V+32)/6))
        xinf[0, j] = a / (a + b)
        tau[0, j] = 1.0 / (qt * (a + b))
        a = 0.015 * 6.0 * exprelr((u + 60.0) / 6.0)  # −0.015·(V+60)/(1 − exp((V+60)/6))
        b = 0.015 * 6.0 * exprelr(-(u + 60.0) / 6.0)  # −0.015·(−V−60)/(1 − exp((−V−60)/6))
        xinf[1, j] = a / (a + b)
        tau[1, j] = 1.0 / (qt * (a + b))


def rates_np(vi, node, p, ion, celsius):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    u = vi
    am, bm = 0.182 * 6.0 * exprelr_np(-(u + 32.0) / 6.0), 0.124 * 6.0 * exprelr_np((u + 32.0) / 6.0)
    ah, bh = 0.015 * 6.0 * exprelr_np((u + 60.0) / 6.0), 0.015 * 6.0 * exprelr_np(-(u + 60.0) / 6.0)
    a, b = np.array([am, ah]), np.array([bm, bh])
    return a / (a + b), 1.0 / (qt * (a + b))


current, current_np = nata.current, nata.current_np
