"""What happens after every step, whatever the integrator: spike detection, sampling, blow-up checks."""

import numpy as np

from ..errors import NumericalError
from ..kernels.cable import first_bad
from ..kernels.detect import crossings

SPIKE_ROOM = 4
"""Spikes per detector the buffers hold at least before they are drained (the staggered integrator makes
room for a whole compiled segment's: make_room)."""


class StepObserver:
    """Detects threshold crossings (time linearly interpolated inside the step), samples probes on
    their time grid (linear interpolation between step ends; exact when the grid is a multiple of
    the step), and stops the run when a voltage is not finite or beyond the limit."""

    def __init__(self, group, probe_sets, sampling, dt, voltage_limit, t0=0.0):
        self.group = group
        self.limit = voltage_limit
        self.advice = ""  # what the integrator suggests after a blow-up (appended to the error)
        self.v_prev = np.zeros(group.detector_node.size)
        room = SPIKE_ROOM * max(1, group.detector_node.size)
        self.spike_index, self.spike_time = np.zeros(room, dtype=np.int64), np.zeros(room)
        self.spikes = []  # [(gid array, time array)] since the last drain
        self.probes = probe_sets
        self.every = [max(1, round(sampling[p.name] / dt)) for p in probe_sets]
        self.period = [e * dt for e in self.every]
        self.dt = dt
        self.samples = {p.name: ([], []) for p in probe_sets}
        self.sample_index = np.concatenate([p.index for p in probe_sets] or [np.zeros(0)]).astype(np.int64)
        """Every probe's indices in u, probe after probe: what a compiled segment samples (sample_buffers)."""
        sizes = [p.index.size for p in probe_sets]
        self.sample_every = np.repeat(np.array(self.every, dtype=np.int64), sizes)
        self._columns = np.cumsum([0] + sizes)
        self._sample_out = np.zeros((0, self.sample_index.size))
        self.prev_values = [None] * len(probe_sets)
        self.next_k = [0] * len(probe_sets)
        self.t_prev = t0
        self.regions = None  # a RegionRecorder, given V at the detectors after every step
        self.halt = None  # None, or a callable of t (ms) that raises to stop the run after this step

    def make_room(self, per_detector):
        """Spike buffers that hold at least per_detector crossings of every detector."""
        room = max(SPIKE_ROOM, per_detector) * max(1, self.group.detector_node.size)
        if room > self.spike_index.size:
            self.spike_index, self.spike_time = np.zeros(room, dtype=np.int64), np.zeros(room)

    def start(self, u, t):
        """Take the state at t (the start of the run or of a resumed run); anything recorded before is
        dropped."""
        self.spikes = []
        for rows, values in self.samples.values():
            rows.clear()
            values.clear()
        self.v_prev[:] = u[self.group.detector_node]
        self.t_prev = t
        for i, p in enumerate(self.probes):
            self.prev_values[i] = u[p.index].astype(np.float64)
            self.next_k[i] = int(np.ceil(t / self.period[i] - 1e-9))
        self._sample(u, t)

    def after_step(self, u, t):
        """Called with the state at the end of every step (t_prev -> t)."""
        t0, dt = self.t_prev, t - self.t_prev
        n = crossings(
            u,
            self.group.detector_node,
            self.threshold,
            self.v_prev,
            t0,
            dt,
            self.spike_index,
            self.spike_time,
            0,
            0,
        )
        if self.regions is not None:
            self.regions.add_step(self.v_prev, t0, t)  # crossings() left V at the detectors in v_prev
        self.after_steps(u, t, n)

    def segment_end(self, k, k_end):
        """The step a compiled segment of steps from step k (engine.stepper) runs to: k_end, or the first
        step boundary before it where a region bin ends (the probes are sampled inside the segment)."""
        if self.regions is not None:
            k_end = min(k_end, self.regions.bin_end_step(k, self.dt))
        return k_end

    def sample_buffers(self, steps):
        """(index, every, out, count) for a compiled segment of at most `steps` steps to sample the probes
        into (engine.stepper.run_steps), count zeroed; `after_steps` takes them."""
        if self.sample_index.size == 0:
            return None
        rows = steps // int(self.sample_every.min()) + 1
        if self._sample_out.shape[0] < rows:
            self._sample_out = np.zeros((rows, self.sample_index.size))
        count = np.zeros(self.sample_index.size, dtype=np.int64)
        return self.sample_index, self.sample_every, self._sample_out, count

    def region_rows(self, k):
        """(∫V dt, ∫dt) per local cell of the region bin that step k belongs to, as views that a segment adds
        to (empty arrays without region summaries)."""
        if self.regions is None:
            return _EMPTY, _EMPTY
        return self.regions.rows_of_step(k, self.dt)

    def after_steps(self, u, t, n_spikes, sampled=None):
        """Called at the end t of one step or of a compiled segment of steps that left n_spikes crossings in
        the buffers and V at the detectors in v_prev: keeps the spikes, samples the probes (or takes the
        samples the segment took: `sampled`, from sample_buffers), halts if asked."""
        if sampled is None:
            self._sample(u, t)
        self.keep(u, t, n_spikes, sampled)
        if self.halt is not None:
            self.halt(t)

    @property
    def threshold(self):
        return self.group.threshold

    def _sample(self, u, t):
        for i, p in enumerate(self.probes):
            now = u[p.index].astype(np.float64)
            period, k = self.period[i], self.next_k[i]
            rows, values = self.samples[p.name]
            while k * period <= t + 1e-9 * self.dt:
                ts = k * period
                w = 1.0 if t <= self.t_prev else (ts - self.t_prev) / (t - self.t_prev)
                rows.append(k)
                values.append(
                    now if w >= 1.0 - 1e-9 else self.prev_values[i] + w * (now - self.prev_values[i])
                )
                k += 1
            self.next_k[i] = k
            self.prev_values[i] = now

    def keep(self, u, t, n_spikes, sampled=None):
        """Keep the n_spikes crossings in the buffers and the samples a compiled segment took (rows next_k,
        next_k + 1, ... of each probe), the steps having reached t with the state u."""
        if n_spikes:
            self.spikes.append(
                (self.group.gids[self.spike_index[:n_spikes]], self.spike_time[:n_spikes].copy())
            )
        self.t_prev = t
        if sampled is None:
            return
        _, _, out, count = sampled
        for i, p in enumerate(self.probes):
            a, b = self._columns[i], self._columns[i + 1]
            c = int(count[a])
            if c:
                rows, values = self.samples[p.name]
                rows.extend(range(self.next_k[i], self.next_k[i] + c))
                values.extend(out[:c, a:b].copy())
                self.next_k[i] += c
            self.prev_values[i] = u[p.index].astype(np.float64)

    def check(self, u, t):
        """Raise NumericalError (cell, compartment, time) if V is not finite or beyond the limit."""
        node = first_bad(u[: self.group.n_nodes], self.limit)
        if node >= 0:
            self.blow_up(node, u, t)

    def blow_up(self, node, u, t):
        """Raise NumericalError for the worst compartment: a non-finite V (the first in cell order), else the
        largest |V|. node is where a check first found a bad value."""
        v = u[: self.group.n_nodes]
        bad = np.nonzero(~np.isfinite(v))[0]
        worst = int(bad[np.argmin(self.group.order[bad])]) if bad.size else int(np.argmax(np.abs(v)))
        gid, comp = self.group.locate_node(worst)
        limit = f" (limit ±{self.limit:g} mV: simulation.voltage_limit)"
        raise NumericalError(gid, comp, t, float(v[worst]), limit + self.advice)

    def drain_spikes(self):
        """(gid, time) of the spikes detected since the last call, sorted by (time, gid)."""
        if not self.spikes:
            return np.zeros(0, np.int64), np.zeros(0)
        gid = np.concatenate([g for g, _ in self.spikes])
        time = np.concatenate([t for _, t in self.spikes])
        self.spikes = []
        order = np.lexsort((gid, time))
        return gid[order], time[order]

    def drain_samples(self):
        """{probe name: (first row, values (k, n_probe))} sampled since the last call; row k is the sample
        at time k·sampling (rows come consecutively)."""
        out = {}
        for name, (rows, values) in self.samples.items():
            if rows:
                out[name] = (rows[0], np.array(values))
                rows.clear()
                values.clear()
        return out


_EMPTY = np.zeros(0)
