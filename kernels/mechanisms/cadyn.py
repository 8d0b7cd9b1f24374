"""cadyn: CaDynamics_E2, the submembrane [Ca]i shell of Hay et al. 2011 (after Destexhe et al. 1994).

dcai/dt = −1e4·gamma·ica/(2·F·depth) − (cai − minCai)/decay (mM/ms; ica in mA/cm², depth in µm),
i.e. relaxation to cai∞ = minCai − decay·1e4·gamma·ica/(2·F·depth) with τ = decay. Reads the ica that
the Ca²⁺ channels summed into the ion array (so their `current` runs before this `rates`); its
`current` carries no membrane current and writes the state cai into the ion array for sk.
"""

import numpy as np
from numba import njit

from .. import JIT
from ..ions import CAI, ICA

FARADAY = 96485.33212
"""C/mol (CODATA 2018, as NEURON 8's units; Hay et al. ran with 96485.309)."""

KIND = "density"
STATES = ("cai",)
PARAMS = (("gamma", 0.05, "1"), ("decay", 80.0, "ms"), ("depth", 0.1, "um"), ("minCai", 1e-4, "mM"))
ION_WRITES = ("cai",)
ION_READS = ("ica",)


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    for j in range(node.size):
        efflux = 1e4 * p[0, j] * ion[ICA, node[j]] / (2.0 * FARADAY * p[2, j])
        xinf[0, j] = p[3, j] - p[1, j] * efflux
        tau[0, j] = p[1, j]


def rates_np(vi, node, p, ion, celsius):
    gamma, decay, depth, min_cai = p
    efflux = 1e4 * gamma * ion[ICA, node] / (2.0 * FARADAY * depth)
    return (min_cai - decay * efflux)[None, :], decay[None, :].copy()


@njit(**JIT)
def current(v, node, p, s, ion, i_acc, g_acc, dids):
    for j in range(node.size):
        ion[CAI, node[j]] = s[0, j]
        dids[0, j] = 0.0


def current_np(v, node, p, s, ion):
    """Returns zero current; the write of cai into the ion array has no twin (it is just the state)."""
    z = np.zeros(node.size)
    return z, z.copy(), z[None, :].copy()
