"""The spike pass: a run's spikes, read in index ranges by Dask tasks, into binned counts per region and
cell kind, per-cell inter-spike-interval sums and a bounded raster sample. No task holds more than one
range of spikes; per-cell statistics merge pairwise in time order; counts are assembled block by block
of the time grid."""

import os
from dataclasses import dataclass
from functools import lru_cache

import dask
import dask.array as da
import numba
import numpy as np

from brainsim.io.run_store import StoredArray

TASK_SPIKES = 1 << 20  # spikes per task (16 of the run store's chunks)
BLOCK_BYTES = 16 << 20  # bytes of counts per block of the time grid
KINDS = ("", "excitatory", "inhibitory")  # index 0, 1, 2 of the counts' last axis


@dataclass(frozen=True)
class CellMap:
    """Per gid: region index (-1: not in any summarised region) and kind (index into KINDS)."""

    region: np.ndarray  # (n_cells,) int32
    kind: np.ndarray  # (n_cells,) int8
    n_regions: int


@dataclass(frozen=True)
class CellStats:
    """Spike and ISI sums of the cells (sorted gids) that fired in a span of the run."""

    gid: np.ndarray  # int64, sorted
    n: np.ndarray  # spikes
    first: np.ndarray  # ms
    last: np.ndarray  # ms
    isi_sum: np.ndarray  # ms
    isi_sq: np.ndarray  # ms^2

    def merge(self, later):
        """The statistics of this span followed by `later` (the ISI across the boundary included)."""
        gid = np.union1d(self.gid, later.gid)
        a, b = np.searchsorted(gid, self.gid), np.searchsorted(gid, later.gid)
        n, s1, s2 = (np.zeros(gid.size) for _ in range(3))
        first, last = np.full(gid.size, np.nan), np.full(gid.size, np.nan)
        for index, part in ((a, self), (b, later)):
            n[index] += part.n
            s1[index] += part.isi_sum
            s2[index] += part.isi_sq
        first[b], last[a] = later.first, self.last
        first[a], last[b] = self.first, later.last  # the earlier span's first, the later span's last
        both = np.isin(self.gid, later.gid, assume_unique=True)
        gap = later.first[np.isin(later.gid, self.gid, assume_unique=True)] - self.last[both]
        s1[a[both]] += gap
        s2[a[both]] += gap**2
        return CellStats(gid, n, first, last, s1, s2)


def empty_stats():
    return CellStats(*(np.zeros(0, dtype=np.int64 if k == 0 else np.float64) for k in range(6)))


def _spikes(path):
    """The run store's spikes/gid and spikes/time, read by index (damaged chunks: StoreError); opened once
    per version of the store (a store written again at the same path is opened again)."""
    return _opened(path, _version(path))


def _version(path):
    """What changes when the spike arrays are written again: their metadata files' times and sizes."""
    stamps = []
    for name in ("spikes/gid", "spikes/time"):
        try:
            st = os.stat(os.path.join(path, name, "zarr.json"))
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            stamps.append(None)  # StoredArray names the missing array
    return tuple(stamps)


@lru_cache(maxsize=8)
def _opened(path, version):
    return StoredArray(path, "spikes/gid"), StoredArray(path, "spikes/time")


def task_ranges(path, n_bins, bin_ms, start=0.0):
    """[(first index, end index, first bin, last bin)] of the tasks over the spikes that fall in the
    n_bins bins from `start` (ms; reads only each task's first and last spike time)."""
    gid, time = _spikes(str(path))
    out = []
    for i0 in range(0, time.shape[0], TASK_SPIKES):
        i1 = min(i0 + TASK_SPIKES, time.shape[0])
        b0, b1 = (int(np.floor((t - start) / bin_ms)) for t in (time[i0], time[i1 - 1]))
        if b0 >= n_bins:
            break
        out.append((i0, i1, b0, min(b1, n_bins - 1)))
    return out


def span_stats(path, i0, i1, first_bin, last_bin, cells, bin_ms, in_raster, raster_limit, start=0.0):
    """One task: the spikes i0..i1-1 into (counts (last_bin - first_bin + 1, n_regions, 3) uint32,
    CellStats, raster sample (gid, time) of the gids where in_raster (bool per gid) holds); bins are
    counted from `start` (ms)."""
    gid_array, time_array = _spikes(str(path))
    gid, time = gid_array[i0:i1], time_array[i0:i1]
    b = np.floor((time - start) / bin_ms).astype(np.int64)
    region = cells.region[gid]
    keep = (b <= last_bin) & (region >= 0)
    gid, time, b, region = gid[keep], time[keep], b[keep], region[keep]
    k, n_regions = last_bin - first_bin + 1, cells.n_regions
    key = ((b - first_bin) * n_regions + region) * len(KINDS) + cells.kind[gid]
    counts = np.bincount(key, minlength=k * n_regions * len(KINDS)).astype(np.uint32)
    sample = in_raster[gid]
    raster = (gid[sample][:raster_limit], time[sample][:raster_limit])
    return counts.reshape(k, n_regions, len(KINDS)), cell_stats(gid, time, cells.region.size), raster


def cell_stats(gid, time, n_cells):
    """CellStats of spikes (gid, time) given in time order, gids below n_cells (one pass, numba)."""
    n, first, last, s1, s2 = _isi_sums(gid, time, n_cells)
    fired = np.flatnonzero(n)
    return CellStats(fired.astype(np.int64), n[fired], first[fired], last[fired], s1[fired], s2[fired])


@numba.njit(cache=True)
def _isi_sums(gid, time, n_cells):
    n, first, last = np.zeros(n_cells), np.zeros(n_cells), np.zeros(n_cells)
    s1, s2 = np.zeros(n_cells), np.zeros(n_cells)
    for i in range(gid.size):
        g, t = gid[i], time[i]
        if n[g] > 0:
            d = t - last[g]
            s1[g] += d
            s2[g] += d * d
        else:
            first[g] = t
        n[g] += 1.0
        last[g] = t
    return n, first, last, s1, s2


def cell_stats_numpy(gid, time):
    """NumPy twin of cell_stats: CellStats of spikes (gid, time) given in time order."""
    if gid.size == 0:
        return empty_stats()
    order = np.argsort(gid, kind="stable")
    g, t = gid[order], time[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], g.size] - 1
    same = g[1:] == g[:-1]
    isi = (t[1:] - t[:-1])[same]
    owner = np.searchsorted(starts, np.flatnonzero(same) + 1, side="right") - 1
    m = starts.size
    return CellStats(
        g[starts],
        np.diff(np.r_[starts, g.size]).astype(np.float64),
        t[starts],
        t[ends],
        np.bincount(owner, isi, minlength=m),
        np.bincount(owner, isi**2, minlength=m),
    )


def _assemble(first, size, n_regions, parts):
    """Counts of the bins first..first+size-1 from the tasks' (first bin, counts) overlapping them."""
    out = np.zeros((size, n_regions, len(KINDS)), dtype=np.uint32)
    for start, counts in parts:
        lo, hi = max(first, start), min(first + size, start + counts.shape[0])
        out[lo - first : hi - first] += counts[lo - start : hi - start]
    return out


def _merge_all(stats):
    while len(stats) > 1:
        stats = [
            dask.delayed(CellStats.merge)(stats[i], stats[i + 1]) if i + 1 < len(stats) else stats[i]
            for i in range(0, len(stats), 2)
        ]
    return stats[0] if stats else dask.delayed(empty_stats)()


def _first(raster, limit):
    gid = np.concatenate([r[0] for r in raster]) if raster else np.zeros(0, np.int64)
    time = np.concatenate([r[1] for r in raster]) if raster else np.zeros(0)
    return gid[:limit], time[:limit]


def spike_pass(path, cells, n_bins, bin_ms, raster_gids, raster_limit, start=0.0):
    """Lazy results of the spike pass: (counts dask array (n_bins, n_regions, 3) uint32 of the bins from
    `start` (ms: a fork's future starts at its fork time), delayed merged CellStats, delayed raster
    sample (gid, time) of at most raster_limit spikes of raster_gids)."""
    ranges = task_ranges(path, n_bins, bin_ms, start)
    in_raster = np.zeros(cells.region.size, dtype=bool)
    in_raster[raster_gids] = True
    cells_key, raster_key = dask.delayed(cells, pure=True), dask.delayed(in_raster, pure=True)
    tasks = [
        dask.delayed(span_stats, nout=3, pure=True)(
            str(path), i0, i1, b0, b1, cells_key, bin_ms, raster_key, raster_limit, start
        )
        for i0, i1, b0, b1 in ranges
    ]
    n_regions = cells.n_regions
    block = max(1, BLOCK_BYTES // (n_regions * len(KINDS) * 4))
    blocks = []
    for first in range(0, n_bins, block):
        size = min(block, n_bins - first)
        parts = [
            (b0, task[0]) for task, (_, _, b0, b1) in zip(tasks, ranges) if b0 < first + size and b1 >= first
        ]
        blocks.append(
            da.from_delayed(
                dask.delayed(_assemble, pure=True)(first, size, n_regions, parts),
                shape=(size, n_regions, len(KINDS)),
                dtype=np.uint32,
            )
        )
    counts = (
        da.concatenate(blocks, axis=0)
        if blocks
        else da.zeros((0, n_regions, len(KINDS)), dtype=np.uint32, chunks=(1, n_regions, len(KINDS)))
    )
    raster = dask.delayed(_first)([task[2] for task in tasks], raster_limit)
    return counts, _merge_all([task[1] for task in tasks]), raster
