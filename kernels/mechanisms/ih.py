"""ih: Ih, the HCN non-specific cation current of Hay et al. 2011 (Kole, Hallermann & Stuart 2006).

ihcn = gbar·m·(V − ehcn) (mA/cm²). The published rates have no temperature dependence, so `celsius`
is unused.
"""

import numpy as np
from numba import njit

from .. import JIT
from ..mathfn import exprelr, exprelr_np, vexp
from . import kv31

KIND = "density"
STATES = ("m",)
PARAMS = (("gbar", 1e-5, "S/cm2"), ("ehcn", -45.0, "mV"))
ION_WRITES = ()
ION_READS = ()


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    for j in range(node.size):
        u = vi[j]
        a = 0.001 * 6.43 * 11.9 * exprelr((u + 154.9) / 11.9)  # 0.00643·(V+154.9)/(exp((V+154.9)/11.9) − 1)
        b = 0.001 * 193.0 * vexp(u / 33.1)
        xinf[0, j] = a / (a + b)
        tau[0, j] = 1.0 / (a + b)


def rates_np(vi, node, p, ion, celsius):
    u = vi
    a, b = 0.001 * 6.43 * 11.9 * exprelr_np((u + 154.9) / 11.9), 0.001 * 193.0 * np.exp(u / 33.1)
    return (a / (a + b))[None, :], (1.0 / (a + b))[None, :]


current, current_np = kv31.current, kv31.current_np
