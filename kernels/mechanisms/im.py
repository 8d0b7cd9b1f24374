"""im: Im, the M-type K⁺ current of Hay et al. 2011 (Adams et al. 1982).

ik = gbar·m·(V − ek) (mA/cm²). Rates fitted at 21 °C, scaled by qt = 2.3^((celsius − 21)/10).
"""

import numpy as np
from numba import njit

from .. import JIT
from ..mathfn import vexp
from . import kv31

KIND = "density"
STATES = ("m",)
PARAMS = (("gbar", 1e-5, "S/cm2"), ("ek", -85.0, "mV"))
ION_WRITES = ()
ION_READS = ()


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    for j in range(node.size):
        u = vi[j]
        a = 3.3e-3 * vexp(2.5 * 0.04 * (u + 35.0))
        b = 3.3e-3 * vexp(-2.5 * 0.04 * (u + 35.0))
        xinf[0, j] = a / (a + b)
        tau[0, j] = 1.0 / (qt * (a + b))


def rates_np(vi, node, p, ion, celsius):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    u = vi
    a, b = 3.3e-3 * np.exp(2.5 * 0.04 * (u + 35.0)), 3.3e-3 * np.exp(-2.5 * 0.04 * (u + 35.0))
    return (a / (a + b))[None, :], (1.0 / (qt * (a + b)))[None, :]


current, current_np = kv31.current, kv31.current_np
