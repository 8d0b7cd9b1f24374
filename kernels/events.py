"""Event tables, epoch by epoch: the Poisson streams' drawn times taken, the pending events due, and the
events of spikes through the connection table (times in ms, weights in µS)."""

import numpy as np
from numba import njit

from . import JIT


@njit(**JIT)
def take_due(pending, limit, targets, first, index, weight, source):
    """Take every drawn time of each stream i before limit[i] out of pending (streams, width; rows sorted,
    +inf past a row's end; the times left move to the row's front) and return its events, stream by
    stream and time by time, each time repeated over the stream's targets first[i]:first[i] + targets[i]
    of index and weight: (time, index, weight, source)."""
    n, width = pending.shape
    taken = np.zeros(n, np.int64)
    total = 0
    for i in range(n):
        c = 0
        while c < width and pending[i, c] < limit[i]:
            c += 1
        taken[i] = c
        total += c * targets[i]
    time, out_index = np.empty(total), np.empty(total, np.int64)
    out_weight, out_source = np.empty(total), np.empty(total, np.int64)
    k = 0
    for i in range(n):
        c = taken[i]
        if c == 0:
            continue
        for j in range(c):
            for m in range(first[i], first[i] + targets[i]):
                time[k], out_index[k], out_weight[k], out_source[k] = (
                    pending[i, j],
                    index[m],
                    weight[m],
                    source[i],
                )
                k += 1
        for j in range(width - c):
            pending[i, j] = pending[i, j + c]
        pending[i, width - c :] = np.inf
    return time, out_index, out_weight, out_source


def take_due_np(pending, limit, targets, first, index, weight, source):
    """NumPy twin of `take_due`."""
    stream, col = np.nonzero(pending < limit[:, None])
    times = pending[stream, col]
    pending[stream, col] = np.inf
    rows = np.unique(stream)
    pending[rows] = np.sort(pending[rows], axis=1)
    k = targets[stream]
    gather = _ranges(first[stream], k)
    return np.repeat(times, k), index[gather], weight[gather], np.repeat(source[stream], k)


@njit(**JIT)
def pop_due(time, index, weight, source, t, x_time, x_index, x_weight, x_source):
    """The pending events (time, index, weight, source) before t followed by the extra events x_*, sorted
    by (time, source) with ties in that order; and the pending events at or after t, in their order."""
    early = time < t
    n_due = np.count_nonzero(early)
    m = n_due + x_time.size
    d_time, d_index, d_weight, d_source = (
        np.empty(m),
        np.empty(m, np.int64),
        np.empty(m),
        np.empty(m, np.int64),
    )
    r = time.size - n_due
    r_time, r_index, r_weight, r_source = (
        np.empty(r),
        np.empty(r, np.int64),
        np.empty(r),
        np.empty(r, np.int64),
    )
    a = b = 0
    for i in range(time.size):
        if early[i]:
            d_time[a], d_index[a], d_weight[a], d_source[a] = time[i], index[i], weight[i], source[i]
            a += 1
        else:
            r_time[b], r_index[b], r_weight[b], r_source[b] = time[i], index[i], weight[i], source[i]
            b += 1
    d_time[n_due:], d_index[n_due:], d_weight[n_due:], d_source[n_due:] = x_time, x_index, x_weight, x_source
    order = np.argsort(d_source, kind="mergesort")
    order = order[np.argsort(d_time[order], kind="mergesort")]
    return (d_time[order], d_index[order], d_weight[order], d_source[order]), (
        r_time,
        r_index,
        r_weight,
        r_source,
    )


def pop_due_np(time, index, weight, source, t, x_time, x_index, x_weight, x_source):
    """NumPy twin of `pop_due`."""
    early = time < t
    due = [
        np.concatenate([a[early], x])
        for a, x in zip((time, index, weight, source), (x_time, x_index, x_weight, x_source))
    ]
    order = np.lexsort((due[3], due[0]))
    return tuple(a[order] for a in due), tuple(a[~early] for a in (time, index, weight, source))


@njit(**JIT)
def spike_events(gid, time, sources, start, target, weight, delay, slot_start, slot_index, slot_scale):
    """Events of spikes (gid, time ms) through the connections grouped by source (those of sources[k] are
    start[k]:start[k + 1], onto synapse slot target with weight µS and delay ms), each onto its slot's
    states slot_index[slot_start[s]:slot_start[s + 1]] with the weight times slot_scale: spike by spike,
    connection by connection, state by state, as (time, index, weight, source)."""
    lo, hi = np.empty(gid.size, np.int64), np.empty(gid.size, np.int64)
    total = 0
    for s in range(gid.size):
        lo[s] = start[np.searchsorted(sources, gid[s], side="left")]
        hi[s] = start[np.searchsorted(sources, gid[s], side="right")]
        for c in range(lo[s], hi[s]):
            total += slot_start[target[c] + 1] - slot_start[target[c]]
    out_time, out_index = np.empty(total), np.empty(total, np.int64)
    out_weight, out_source = np.empty(total), np.empty(total, np.int64)
    k = 0
    for s in range(gid.size):
        for c in range(lo[s], hi[s]):
            for e in range(slot_start[target[c]], slot_start[target[c] + 1]):
                out_time[k], out_index[k] = time[s] + delay[c], slot_index[e]
                out_weight[k], out_source[k] = weight[c] * slot_scale[e], gid[s]
                k += 1
    return out_time, out_index, out_weight, out_source


def spike_events_np(gid, time, sources, start, target, weight, delay, slot_start, slot_index, slot_scale):
    """NumPy twin of `spike_events`."""
    lo = start[np.searchsorted(sources, gid, side="left")]
    counts = start[np.searchsorted(sources, gid, side="right")] - lo
    spike = np.repeat(np.arange(gid.size), counts)
    conn = _ranges(lo, counts)
    slot = target[conn]
    width = slot_start[slot + 1] - slot_start[slot]
    entry = _ranges(slot_start[slot], width)
    each = np.repeat(np.arange(conn.size), width)
    conn, spike = conn[each], spike[each]
    return time[spike] + delay[conn], slot_index[entry], weight[conn] * slot_scale[entry], gid[spike]


def _ranges(start, count):
    """start[0] .. start[0] + count[0] - 1, then start[1] .. start[1] + count[1] - 1, ... in one array."""
    return np.arange(count.sum()) - np.repeat(np.cumsum(count) - count - start, count)
