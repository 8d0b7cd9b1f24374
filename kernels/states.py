"""Kernels shared by every mechanism: all states relax as dx/dt = (x∞ − x)/τ.

A mechanism's own `rates` kernel fills x∞ and τ (ms); everything else about its states is here.
All arrays are flat views over [n_states × n_instances], in the same order as the states themselves.
"""

import numpy as np
from numba import njit

from . import JIT
from .mathfn import vexp


@njit(**JIT)
def exp_euler(s, xinf, tau, dt):
    """Advance s by dt, exactly for fixed x∞ and τ: s ← x∞ + (s − x∞)·exp(−dt/τ) (NEURON's cnexp)."""
    for k in range(s.size):
        s[k] = xinf[k] + (s[k] - xinf[k]) * vexp(-dt / tau[k])


def exp_euler_np(s, xinf, tau, dt):
    """NumPy twin of `exp_euler`: returns the advanced states."""
    return xinf + (s - xinf) * np.exp(-dt / tau)


@njit(**JIT)
def relax_residual(s, sdot, xinf, tau, f):
    """Implicit-form residual of the state rows: f = ds/dt − (x∞ − s)/τ."""
    for k in range(s.size):
        f[k] = sdot[k] - (xinf[k] - s[k]) / tau[k]


def relax_residual_np(s, sdot, xinf, tau):
    """NumPy twin of `relax_residual`."""
    return sdot - (xinf - s) / tau
