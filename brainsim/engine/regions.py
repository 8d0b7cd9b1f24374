"""Region summaries computed during the run: per brain region and time bin, the population firing rate
and the mean membrane potential (an LFP proxy).

Every rank accumulates its own cells: after each step, V at each cell's spike-detector site (the soma)
times the step length, into the bin holding the step's midpoint; each detected spike into the bin holding
its time. When a bin is complete (at an epoch boundary), the rank sums its cells per region (mean V of a
cell over the bin, spike counts) and keeps the rows until the next flush, where they are summed over the
ranks onto rank 0 (one Reduce). Bin k covers [k·bin, (k+1)·bin) ms (the last one ends at tstop):

    rate[k, r]   = spikes of region r's cells in bin k / (cells of r × bin length)   (Hz)
    v_mean[k, r] = mean over r's cells of each cell's time-averaged V over bin k     (mV)

The open bin's per-cell sums go into checkpoints (keyed by gid), so a resumed run continues it exactly.
"""

import math

import numpy as np

NO_BREAK = 2**62
"""A step index beyond any run."""


class RegionRecorder:
    def __init__(self, recipe, group, bin_ms, tstop):
        self.bin, self.tstop = float(bin_ms), float(tstop)
        brain = recipe.brain
        self.labels = list(brain.labels)
        self.hemisphere = ["right" if right else "left" for right in brain.connectome.hemispheres]
        self.centres = brain.connectome.centres  # (n, 3) mm or None
        self.n_bins = max(1, math.ceil(tstop / self.bin - 1e-9))
        self.n_cells = np.zeros(len(self.labels), dtype=np.int64)
        for pop in recipe.populations:
            if pop.region >= 0:
                self.n_cells[pop.region] += pop.count
        self.region = recipe.regions_of(group.gids)  # of each local cell (-1: outside the brain)
        self.inside = self.region >= 0
        n = group.gids.size
        self.first = 0  # bin index of the first open (not yet complete) row
        self.v_sum = np.zeros((1, n))  # ∫V dt per open bin and local cell (mV·ms)
        self.span = np.zeros((1, n))  # ∫dt (ms)
        self.spikes = np.zeros((1, n))
        self.rows = []  # completed (bin, spikes per region, Σ mean V per region) since the last reduce

    def _row(self, k):
        """Index into the open rows of bin k, adding rows as needed."""
        i = k - self.first
        if i >= self.v_sum.shape[0]:
            grow = i + 1 - self.v_sum.shape[0]
            pad = np.zeros((grow, self.v_sum.shape[1]))
            self.v_sum, self.span, self.spikes = (
                np.vstack([a, pad]) for a in (self.v_sum, self.span, self.spikes)
            )
        return i

    def bin_of(self, t):
        return min(int(math.floor(t / self.bin + 1e-9)), self.n_bins - 1)

    def bin_end_step(self, k, dt):
        """The first step after step k (of dt ms) whose midpoint lies in a later bin than k's."""
        b = self.bin_of(self._midpoint(k, dt))
        if b >= self.n_bins - 1:
            return NO_BREAK
        j = max(k + 1, int((b + 1) * self.bin / dt - 0.5))
        while j > k + 1 and self.bin_of(self._midpoint(j - 1, dt)) > b:
            j -= 1
        while self.bin_of(self._midpoint(j, dt)) <= b:
            j += 1
        return j

    def rows_of_step(self, k, dt):
        """(∫V dt, ∫dt) per local cell of the open bin holding step k's midpoint: views of the open rows,
        which a segment of steps in that bin adds to as add_step does."""
        i = self._row(self.bin_of(self._midpoint(k, dt)))
        return self.v_sum[i], self.span[i]

    @staticmethod
    def _midpoint(k, dt):
        return 0.5 * (k * dt + (k + 1) * dt)

    def add_step(self, v, t0, t1):
        """V (mV) at every local cell's detector at the end of the step t0 -> t1 (ms)."""
        i = self._row(self.bin_of(0.5 * (t0 + t1)))
        h = t1 - t0
        self.v_sum[i] += v * h
        self.span[i] += h

    def add_spikes(self, cell, time):
        """Spikes of local cells (index into the group's gids) at time (ms)."""
        for c, t in zip(cell, time):
            self.spikes[self._row(self.bin_of(t)), c] += 1

    def close_bins(self, t):
        """Complete the bins that end at or before t (ms): all of them once t reaches tstop."""
        done = self.n_bins if t >= self.tstop - 1e-9 else int(math.floor(t / self.bin + 1e-9))
        n_done = min(max(0, done - self.first), self.v_sum.shape[0])
        if n_done == 0:
            return
        n_regions = len(self.labels)
        region = self.region[self.inside]
        for i in range(n_done):
            mean_v = self.v_sum[i, self.inside] / np.where(
                self.span[i, self.inside] > 0, self.span[i, self.inside], 1
            )
            self.rows.append(
                (
                    self.first + i,
                    np.bincount(region, weights=self.spikes[i, self.inside], minlength=n_regions),
                    np.bincount(region, weights=mean_v, minlength=n_regions),
                )
            )
        keep = slice(n_done, None)
        self.v_sum, self.span, self.spikes = (a[keep] for a in (self.v_sum, self.span, self.spikes))
        if self.v_sum.shape[0] == 0:
            self.v_sum, self.span, self.spikes = (np.zeros((1, self.region.size)) for _ in range(3))
        self.first += n_done

    def reduce(self, comm):
        """Collective: the completed rows summed over the ranks, on rank 0 as (first bin, rate (k, n) Hz,
        v_mean (k, n) mV); None elsewhere or when no row completed."""
        rows, self.rows = self.rows, []
        if not rows:  # every rank completes the same bins at the same epoch boundaries
            return None
        local = np.array([np.concatenate([spikes, v]) for _, spikes, v in rows])
        total = np.empty_like(local) if comm.Get_rank() == 0 else None
        comm.Reduce(local, total, root=0)
        if total is None:
            return None
        n = len(self.labels)
        first = rows[0][0]
        k = np.arange(first, first + len(rows))
        length = np.minimum((k + 1) * self.bin, self.tstop) - k * self.bin  # ms
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = total[:, :n] / (self.n_cells * length[:, None] / 1000.0)
            v_mean = total[:, n:] / self.n_cells
        return first, rate, v_mean

    # -- checkpoints -----------------------------------------------------------------------------------

    def open_state(self):
        """(first open bin, per-cell ∫V dt, ∫dt, spikes of it) for a checkpoint. At an epoch boundary t,
        once the bins ending by t are closed, the only open bin is the one holding t."""
        return self.first, self.v_sum[0], self.span[0], self.spikes[0]

    def restore(self, first, v_sum, span, spikes):
        """Continue from a checkpoint's open bin (per-cell sums in the group's gid order)."""
        self.first = int(first)
        self.v_sum, self.span, self.spikes = (
            np.array(a, dtype=float)[None, :] for a in (v_sum, span, spikes)
        )
        self.rows = []
