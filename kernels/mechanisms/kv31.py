"""kv31: SKv3_1, the fast Kv3.1 K⁺ channel of Hay et al. 2011 (Rettig et al. 1992).

ik = gbar·m·(V − ek) (mA/cm²). The published rates have no temperature dependence, so `celsius` is
unused. im, ih and sk reuse this module's current kernel (one gate, linear in it).
"""

import numpy as np
from numba import njit

from .. import JIT
from ..mathfn import vexp

KIND = "density"
STATES = ("m",)
PARAMS = (("gbar", 1e-5, "S/cm2"), ("ek", -85.0, "mV"))
ION_WRITES = ()
ION_READS = ()


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    for j in range(node.size):
        u = vi[j]
        xinf[0, j] = 1.0 / (1.0 + vexp(-(u - 18.7) / 9.7))
        tau[0, j] = 0.2 * 20.0 / (1.0 + vexp(-(u + 46.56) / 44.14))


def rates_np(vi, node, p, ion, celsius):
    u = vi
    xinf = 1.0 / (1.0 + np.exp(-(u - 18.7) / 9.7))
    return xinf[None, :], (0.2 * 20.0 / (1.0 + np.exp(-(u + 46.56) / 44.14)))[None, :]


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        i = node[j]
        g = p[0, j] * s[0, j]
        d = v[i] - p[1, j]
        i_acc[i] += g * d
        g_acc[i] += g
        dids[0, j] = p[0, j] * d


def current_np(v, node, p, s, ion):
    d = v[node] - p[1]
    g = p[0] * s[0]
    return g * d, g, (p[0] * d)[None, :]
