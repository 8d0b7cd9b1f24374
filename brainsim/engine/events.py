"""Events: the local connection table, the queue of pending events, and external event sources.

An event is (time ms, index of the state in u it adds to, weight, source). Sources are gids for
spikes and negative numbers for external generators; events are always delivered in (time, source)
order, so the sum into a state never depends on how cells are spread over ranks.
"""

import json

import numpy as np

from ..kernels.events import pop_due, spike_events, take_due


class ConnectionTable:
    """Incoming connections of the local cells, grouped by source gid (compressed rows: the connections
    of sources[k] are start[k]:start[k+1]), 20 bytes each: the target synapse (an index into the slots),
    weight (µS) and delay (ms). A slot is one synapse of one local cell: the states in u an event onto
    it adds to and their weight multipliers, slot_index[slot_start[s]:slot_start[s+1]] and slot_scale."""

    def __init__(self, recipe, group):
        slot_index, slot_scale, slot_cell = [], [], []
        source, target = _Column(np.int64), _Column(np.int32)
        weight, delay = _Column(float), _Column(float)
        for cell, gid in enumerate(group.gids):
            inc = recipe.connections_on(int(gid))
            if not len(inc.source):
                continue
            names, which = np.unique(np.asarray(inc.synapse), return_inverse=True)
            target.append(len(slot_index) + which)
            for name in names:
                index, scale = group.event_target(int(gid), str(name))
                slot_index.append(index)
                slot_scale.append(scale)
                slot_cell.append(cell)
            source.append(inc.source)
            weight.append(inc.weight)
            delay.append(inc.delay)
        self.slot_start = np.concatenate([[0], np.cumsum([i.size for i in slot_index])]).astype(np.int64)
        self.slot_index, self.slot_scale = _join(slot_index, np.int64), _join(slot_scale, float)
        self.slot_cell = np.array(slot_cell, dtype=np.int64)
        """Local cell (index into group.gids) of each slot."""
        # sorted by source one column at a time, each column's buffer freed as soon as it is sorted
        order = np.argsort(source.values(), kind="stable")
        source = source.take(order)
        new = np.ones(source.size, dtype=bool)
        new[1:] = source[1:] != source[:-1]
        first = np.flatnonzero(new)
        self.sources = source[first]
        """Gids whose spikes this rank needs."""
        self.start = np.append(first, source.size)
        del source, new, first
        self.target, self.weight, self.delay = (c.take(order) for c in (target, weight, delay))

    def __len__(self):
        return self.target.size

    def source_of(self, k):
        """Source gids of connections k."""
        return self.sources[np.searchsorted(self.start, k, side="right") - 1]

    def source_regions(self, recipe):
        """Brain region of each connection's source (-1 outside a brain)."""
        return np.repeat(recipe.regions_of(self.sources), np.diff(self.start))

    def target_regions(self, cell_region):
        """Brain region of each connection's target cell, from each local cell's region (-1 outside a
        brain)."""
        return cell_region[self.slot_cell][self.target]

    def events_from(self, gid, time):
        """Events caused by spikes (gid, time) on the local targets: each connection adds its weight times
        the slot's multiplier to each of its slot's states."""
        return Events(
            *spike_events(
                np.asarray(gid, np.int64), np.asarray(time, float), self.sources, self.start, self.target,
                self.weight, self.delay, self.slot_start, self.slot_index, self.slot_scale,
            )
        )  # fmt: skip


class _Column:
    """A growing array: many small parts appended into one buffer that grows by half when full, so that
    the parts do not stay allocated (and scattered over the heap) until a final concatenation."""

    def __init__(self, dtype):
        self.data, self.size = np.empty(1024, dtype), 0

    def append(self, part):
        end = self.size + len(part)
        if end > self.data.size:
            grown = np.empty(max(end, self.data.size + self.data.size // 2), self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = part
        self.size = end

    def values(self):
        return self.data[: self.size]

    def take(self, order):
        """The values in `order`; the buffer is freed."""
        out = self.data[order]
        self.data, self.size = None, 0
        return out


def _join(parts, dtype):
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


class Events:
    """Parallel arrays of events."""

    __slots__ = ("time", "index", "weight", "source")

    def __init__(self, time, index, weight, source):
        self.time = np.asarray(time, dtype=float)
        self.index = np.asarray(index, dtype=np.int64)
        self.weight = np.asarray(weight, dtype=float)
        self.source = np.asarray(source, dtype=np.int64)

    @classmethod
    def empty(cls):
        return cls(np.zeros(0), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))

    @classmethod
    def concat(cls, parts):
        parts = [p for p in parts if p.time.size]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__slots__))

    def __len__(self):
        return self.time.size


class EventQueue:
    """Pending events; `pop_before(t, extra)` gives those due before t, with extra, sorted."""

    def __init__(self):
        self.pending = Events.empty()

    def push(self, events):
        self.pending = Events.concat([self.pending, events])

    def pop_before(self, t, extra):
        """The events due before t and the Events `extra` (external ones of the same stretch), sorted."""
        p, x = self.pending, extra
        due, left = pop_due(p.time, p.index, p.weight, p.source, t, x.time, x.index, x.weight, x.source)
        self.pending = Events(*left)
        return Events(*due)


def warm_up(connections, poisson):
    """Load (or compile) the event kernels for the run's argument types, on empty inputs, outside the timed
    run: the first call of each takes milliseconds (M1: 23 ms of a 62 ms run)."""
    connections.events_from(np.zeros(0, np.int64), np.zeros(0))
    EventQueue().pop_before(0.0, Events.empty())
    p = poisson
    if p.streams:
        take_due(p.pending[:0], np.zeros(0), p.targets[:0], p.first[:0], p.index, p.weight, p.source)


class PoissonSources:
    """Independent Poisson event streams, one per (target cell, stimulus), each from its own seed.

    Times are drawn in chunks of CHUNK intervals ahead of need, so a stream's times do not depend on
    how the run is cut into epochs. The drawn times wait in one (streams, width) table (rows sorted,
    +inf past a row's end), so an epoch's events are taken from every stream at once; a stream draws
    again only where the epoch reaches past its last drawn time.
    """

    CHUNK = 64

    def __init__(self, recipe, group):
        self.streams, weights, states = [], [], []
        for gid in group.gids:
            for p in recipe.poisson_on(int(gid)):
                if p.rate > 0 and p.stop > p.start:
                    index, scale = group.event_target(int(gid), p.synapse)
                    states.append(_pack(np.random.PCG64(list(p.stream)).state))  # default_rng's generator
                    self.streams.append(_Stream(self, len(self.streams), p, index))
                    weights.append(p.weight * scale)
        n = len(self.streams)
        self.generator_state = np.array(states, dtype=np.uint64).reshape(n, 6)
        """Each stream's PCG64 state (48 bytes), so that a stream holds no generator object of its own:
        one generator is set to a stream's state when that stream draws."""
        self._bits = np.random.PCG64(0)
        self._generator = np.random.Generator(self._bits)
        self.pending = np.full((n, self.CHUNK), np.inf)  # drawn times not yet taken, per stream
        self.last = np.array([s.spec.start for s in self.streams], dtype=float)  # the last time drawn
        self.stop = np.array([s.spec.stop for s in self.streams], dtype=float)
        self.targets = np.array([s.index.size for s in self.streams], dtype=np.int64)
        self.first = np.cumsum(self.targets) - self.targets  # where a stream's targets start in index
        self.index = np.concatenate([s.index for s in self.streams]) if n else np.zeros(0, np.int64)
        self.weight = np.concatenate(weights) if n else np.zeros(0)
        self.source = np.array([-1 - s.spec.stream[2] for s in self.streams], dtype=np.int64)

    def events_before(self, t):
        """Events of every stream with times before t (and before the stream's stop): stream by stream,
        each time repeated over the stream's targets."""
        if not self.streams:
            return Events.empty()
        limit = np.minimum(t, self.stop)
        for i in np.nonzero(self.last < limit)[0]:
            self._draw(i, limit[i])
        return Events(
            *take_due(self.pending, limit, self.targets, self.first, self.index, self.weight, self.source)
        )

    def _draw(self, i, t):
        """Draw stream i's times in chunks until its last drawn time reaches t, after its times waiting."""
        self._bits.state = _unpack(self.generator_state[i])
        scale, last = 1000.0 / self.streams[i].spec.rate, self.last[i]
        end = int(np.searchsorted(self.pending[i], np.inf))
        while last < t:
            draws = last + np.cumsum(self._generator.exponential(scale, self.CHUNK))
            self._widen(end + draws.size)
            self.pending[i, end : end + draws.size] = draws
            end, last = end + draws.size, draws[-1]
        self.last[i] = last
        self.generator_state[i] = _pack(self._bits.state)

    def _widen(self, width):
        """Make room for `width` times waiting per stream."""
        if width > self.pending.shape[1]:
            wider = np.full((self.pending.shape[0], width), np.inf)
            wider[:, : self.pending.shape[1]] = self.pending
            self.pending = wider

    def restore(self, saved):
        """Continue the streams from a checkpoint: [(gid, salt, generator state JSON, last, ahead)]."""
        by_key = {(s.spec.stream[1], s.spec.stream[2]): s for s in self.streams}
        for gid, salt, state, last, ahead in saved:
            stream = by_key[(gid, salt)]
            stream.state = json.loads(state)
            stream.last, stream.ahead = last, np.asarray(ahead, dtype=float)


_WORD = (1 << 64) - 1


def _pack(state):
    """A PCG64 state (numpy's dict) as 6 unsigned 64-bit words."""
    inner = state["state"]
    return [inner["state"] >> 64, inner["state"] & _WORD, inner["inc"] >> 64, inner["inc"] & _WORD,
            state["has_uint32"], state["uinteger"]]  # fmt: skip


def _unpack(words):
    """numpy's PCG64 state dict of 6 words packed by `_pack`."""
    w = [int(x) for x in words]
    return {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }


class _Stream:
    """One stream: its spec, its targets (state indices) and, in its owner's tables, its generator's
    state (state), its drawn times waiting (ahead), its last drawn time (last) and its weights per target
    (weight)."""

    def __init__(self, owner, i, spec, index):
        self.owner, self.i, self.spec, self.index = owner, i, spec, index

    @property
    def state(self):
        """The stream's PCG64 state, as numpy's bit_generator.state dict."""
        return _unpack(self.owner.generator_state[self.i])

    @state.setter
    def state(self, state):
        bits = self.owner._bits
        bits.state = state  # numpy checks it
        self.owner.generator_state[self.i] = _pack(bits.state)

    @property
    def ahead(self):
        row = self.owner.pending[self.i]
        return row[np.isfinite(row)].copy()

    @ahead.setter
    def ahead(self, times):
        o = self.owner
        o._widen(times.size)
        o.pending[self.i] = np.inf
        o.pending[self.i, : times.size] = times

    @property
    def last(self):
        return float(self.owner.last[self.i])

    @last.setter
    def last(self, t):
        self.owner.last[self.i] = t

    @property
    def weight(self):
        o = self.owner
        return o.weight[o.first[self.i] : o.first[self.i] + o.targets[self.i]]

    @weight.setter
    def weight(self, w):
        self.weight[:] = w


def spike_stimulus_events(recipe, group):
    """Events of the 'spikes' stimuli onto the local cells (all of them, for the whole run)."""
    parts = []
    for gid in group.gids:
        for k, (times, synapse, weight) in enumerate(recipe.spike_events_on(int(gid))):
            index, scale = group.event_target(int(gid), synapse)
            t = np.repeat(times, index.size)
            parts.append(
                Events(
                    t,
                    np.tile(index, times.size),
                    np.tile(weight * scale, times.size),
                    np.full(t.size, -1_000_000 - k),
                )
            )
    return Events.concat(parts)
