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


@njit(**JIT)
def pulse_train(t, node, start, stop, period, width, amplitude, i_pt):
    """Inject amplitude (nA) at node during pulses of `width` ms every `period` ms, from start (the first
    pulse's onset) while t < stop."""
    for j in range(node.size):
        if start[j] <= t < stop[j] and (t - start[j]) % period[j] < width[j]:
            i_pt[node[j]] -= amplitude[j]


def pulse_train_np(t, node, start, stop, period, width, amplitude, n_nodes):
    """NumPy twin of `pulse_train`: the point-current contribution per node (nA, outward positive)."""
    on = (start <= t) & (t < stop) & (np.mod(t - start, period) < width)
    out = np.zeros(n_nodes)
    np.subtract.at(out, node, np.where(on, amplitude, 0.0))
    return out


def pulse_edges(start, stop, period, width, t0, t1):
    """Times in (t0, t1) where a pulse of any train switches on or off (ms, sorted)."""
    edges = []
    for s, e, p, w in zip(start, stop, period, width):
        first = max(0, int(np.floor((t0 - s) / p)))
        last = int(np.ceil((min(t1, e) - s) / p))
        onsets = s + p * np.arange(first, max(first, last + 1))
        edges += [onsets, onsets + w, [e]]
    edges = np.concatenate(edges) if edges else np.zeros(0)
    return np.unique(edges[(edges > t0) & (edges < t1)])
