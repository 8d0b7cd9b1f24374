"""Current injection."""

import numpy as np
from numba import njit

from . import JIT


@njit(**JIT)
def iclamp(t, node, delay, duration, amplitude, i_pt):
    """Inject amplitude (nA, depolarising when positive) at node while delay <= t < delay + duration."""
    for j in range(node.size):
        if delay[j] <= t < delay[j] + duration[j]:
            i_pt[node[j]] -= amplitude[j]


def iclamp_np(t, node, delay, duration, amplitude, n_nodes):
    """NumPy twin of `iclamp`: the point-current contribution per node (nA, outward positive)."""
    on = (delay <= t) & (t < delay + duration)
    out = np.zeros(n_nodes)
    np.subtract.at(out, node, np.where(on, amplitude, 0.0))
    return out
