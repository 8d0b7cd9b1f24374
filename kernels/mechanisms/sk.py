"""sk: SK_E2, the small-conductance Ca²⁺-activated K⁺ channel of Hay et al. 2011 (Köhler et al. 1996).

ik = gbar·z·(V − ek) (mA/cm²); z∞ = 1/(1 + (0.00043 mM/cai)^4.8) depends on [Ca]i only (1e-7 mM is
added to cai below 1e-7 mM, as published), τz = ztau. No temperature dependence, so `celsius` is unused.
"""

import numpy as np
from numba import njit

from .. import JIT
from ..ions import CAI
from ..mathfn import vexp, vlog
from . import kv31

LOG_KD = np.log(0.00043)  # half-activation [Ca]i, mM

KIND = "density"
STATES = ("z",)
PARAMS = (("gbar", 1e-6, "S/cm2"), ("ek", -85.0, "mV"), ("ztau", 1.0, "ms"))
ION_WRITES = ()
ION_READS = ("cai",)


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    for j in range(node.size):
        ca = ion[CAI, node[j]]
        ca = ca + 1e-7 if ca < 1e-7 else ca
        xinf[0, j] = 1.0 / (1.0 + vexp(4.8 * (LOG_KD - vlog(ca))))  # (0.00043/ca)^4.8, vectorisable
        tau[0, j] = p[2, j]


def rates_np(vi, node, p, ion, celsius):
    ca = ion[CAI, node]
    ca = np.where(ca < 1e-7, ca + 1e-7, ca)
    return (1.0 / (1.0 + (0.00043 / ca) ** 4.8))[None, :], p[2:3].copy()


current, current_np = kv31.current, kv31.current_np
