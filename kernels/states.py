"""Kernels shared by every mechanism: all states relax as dx/dt = (x∞ − x)/τ.

A mechanism's own `rates` kernel fills x∞ and τ (ms) and its `advance` kernel steps its states as
`exp_euler_np` does; the implicit form's residual rows are here. All arrays are flat views over
[n_states × n_instances], in the same order as the states themselves.
"""

import numpy as np
from numba import njit

from . import JIT


def exp_euler_np(s, xinf, tau, dt):
    """s advanced by dt, exactly for fixed x∞ and τ: x∞ + (s − x∞)·exp(−dt/τ) (NEURON's cnexp; the NumPy
    twin of every mechanism's `advance`)."""
    return xinf + (s - xinf) * np.exp(-dt / tau)


@njit(**JIT)
def relax_residual(s, sdot, xinf, tau, f):
    """Implicit-form residual of the state rows: f = ds/dt − (x∞ − s)/τ."""
    for k in range(s.size):
        f[k] = sdot[k] - (xinf[k] - s[k]) / tau[k]


def relax_residual_np(s, sdot, xinf, tau):
    """NumPy twin of `relax_residual`."""
    return sdot - (xinf - s) / tau
