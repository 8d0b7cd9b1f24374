"""Spike detection: upward threshold crossings with the time linearly interpolated inside the step."""

import numpy as np
from numba import njit

from . import JIT


@njit(**JIT)
def crossings(v, node, threshold, v_prev, t0, dt, out_index, out_time, count, first):
    """Record detectors whose node V rose through threshold between t0 (V = v_prev) and t0 + dt.

    Appends (first + detector index, interpolated time in ms) to out_index/out_time from position count
    and returns the new count; v_prev is updated to the present V. Buffers must have room for node.size.
    """
    for j in range(node.size):
        vn = v[node[j]]
        vp = v_prev[j]
        if vp < threshold[j] <= vn:
            out_index[count] = first + j
            out_time[count] = t0 + dt * (threshold[j] - vp) / (vn - vp)
            count += 1
        v_prev[j] = vn
    return count


def crossings_np(v, node, threshold, v_prev, t0, dt):
    """NumPy twin of `crossings`: returns (detector indices, times)."""
    vn = v[node]
    hit = (v_prev < threshold) & (threshold <= vn)
    j = np.nonzero(hit)[0]
    return j, t0 + dt * (threshold[j] - v_prev[j]) / (vn[j] - v_prev[j])
