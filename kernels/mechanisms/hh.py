"""hh: Hodgkin–Huxley 1952 squid axon channels, exactly NEURON's hh.mod with exact rates (Arbor's hh).

ina = gnabar·m³·h·(V − ena), ik = gkbar·n⁴·(V − ek), il = gl·(V − el)  (mA/cm²).
"""

import numpy as np
from numba import njit

from .. import JIT
from ..mathfn import exprelr, exprelr_np, vexp

KIND = "density"
STATES = ("m", "h", "n")
PARAMS = (
    ("gnabar", 0.12, "S/cm2"),
    ("gkbar", 0.036, "S/cm2"),
    ("gl", 0.0003, "S/cm2"),
    ("el", -54.3, "mV"),
    ("ena", 50.0, "mV"),
    ("ek", -77.0, "mV"),
)
ION_WRITES = ()
ION_READS = ()


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    q10 = 3.0 ** ((celsius - 6.3) / 10.0)
    for j in range(node.size):
        u = vi[j]
        a = exprelr(-(u + 40.0) / 10.0)  # 0.1·vtrap(−(V+40), 10)
        r = 1.0 / (a + 4.0 * vexp(-(u + 65.0) / 18.0))
        xinf[0, j] = a * r
        tau[0, j] = r / q10
        a = 0.07 * vexp(-(u + 65.0) / 20.0)
        r = 1.0 / (a + 1.0 / (vexp(-(u + 35.0) / 10.0) + 1.0))
        xinf[1, j] = a * r
        tau[1, j] = r / q10
        a = 0.1 * exprelr(-(u + 55.0) / 10.0)  # 0.01·vtrap(−(V+55), 10)
        r = 1.0 / (a + 0.125 * vexp(-(u + 65.0) / 80.0))
        xinf[2, j] = a * r
        tau[2, j] = r / q10


def rates_np(vi, node, p, ion, celsius):
    q10 = 3.0 ** ((celsius - 6.3) / 10.0)
    u = vi
    am, bm = exprelr_np(-(u + 40.0) / 10.0), 4.0 * np.exp(-(u + 65.0) / 18.0)
    ah, bh = 0.07 * np.exp(-(u + 65.0) / 20.0), 1.0 / (np.exp(-(u + 35.0) / 10.0) + 1.0)
    an, bn = 0.1 * exprelr_np(-(u + 55.0) / 10.0), 0.125 * np.exp(-(u + 65.0) / 80.0)
    a, b = np.array([am, ah, an]), np.array([bm, bh, bn])
    return a / (a + b), 1.0 / (q10 * (a + b))


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        i = node[j]
        m, h, n = s[0, j], s[1, j], s[2, j]
        gna = p[0, j] * m * m * m * h
        gk = p[1, j] * n * n * n * n
        dna, dk = v[i] - p[4, j], v[i] - p[5, j]
        i_acc[i] += gna * dna + gk * dk + p[2, j] * (v[i] - p[3, j])
        g_acc[i] += gna + gk + p[2, j]
        dids[0, j] = 3.0 * p[0, j] * m * m * h * dna
        dids[1, j] = p[0, j] * m * m * m * dna
        dids[2, j] = 4.0 * p[1, j] * n * n * n * dk


def current_np(v, node, p, s, ion):
    gnabar, gkbar, gl, el, ena, ek = p
    m, h, n = s
    u = v[node]
    i = gnabar * m**3 * h * (u - ena) + gkbar * n**4 * (u - ek) + gl * (u - el)
    g = gnabar * m**3 * h + gkbar * n**4 + gl
    dids = np.array(
        [3 * gnabar * m**2 * h * (u - ena), gnabar * m**3 * (u - ena), 4 * gkbar * n**3 * (u - ek)]
    )
    return i, g, dids
