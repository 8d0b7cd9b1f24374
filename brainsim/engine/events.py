"""Events: the local connection table, the queue of pending events, and external event sources.

An event is (time ms, index of the state in u it adds to, weight, source). Sources are gids for
spikes and negative numbers for external generators; events are always delivered in (time, source)
order, so the sum into a state never depends on how cells are spread over ranks.
"""

import json

import numpy as np


class ConnectionTable:
    """Incoming connections of the local cells, indexed by source gid, expanded to state targets."""

    def __init__(self, recipe, group):
        src, idx, w, delay, target_region = [], [], [], [], []
        for gid in group.gids:
            inc = recipe.connections_on(int(gid))
            if not len(inc.source):
                continue
            # each synapse's targets once, then every connection onto it: per connection, its states
            names, which = np.unique(np.asarray(inc.synapse), return_inverse=True)
            targets = [group.event_target(int(gid), str(name)) for name in names]
            size = np.array([index.size for index, _ in targets])[which]
            src.append(np.repeat(np.asarray(inc.source, dtype=np.int64), size))
            idx += [targets[k][0] for k in which]
            w.append(np.repeat(np.asarray(inc.weight, dtype=float), size)
                     * np.concatenate([targets[k][1] for k in which]))  # fmt: skip
            delay.append(np.repeat(np.asarray(inc.delay, dtype=float), size))
            target_region.append(np.full(int(size.sum()), int(recipe.regions_of(gid)), dtype=np.int64))
        self.source, self.index = _join(src, np.int64), _join(idx, np.int64)
        self.weight, self.delay = _join(w, float), _join(delay, float)
        self.target_region = _join(target_region, np.int64)
        order = np.argsort(self.source, kind="stable")
        self.source, self.index, self.weight, self.delay, self.target_region = (
            a[order] for a in (self.source, self.index, self.weight, self.delay, self.target_region)
        )
        self.source_region = recipe.regions_of(self.source)
        """Brain region of each connection's source and target (-1 outside a brain): for lesions."""
        self.sources = np.unique(self.source)
        """Gids whose spikes this rank needs."""

    def events_from(self, gid, time):
        """Events caused by spikes (gid, time) on the local targets."""
        lo = np.searchsorted(self.source, gid, side="left")
        hi = np.searchsorted(self.source, gid, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return Events.empty()
        spike = np.repeat(np.arange(gid.size), counts)
        conn = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
        return Events(time[spike] + self.delay[conn], self.index[conn], self.weight[conn], gid[spike])


def _join(parts, dtype):
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


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

    def sorted(self):
        """Sorted by (time, source); ties keep their order (connection order), so sums are reproducible."""
        order = np.lexsort((self.source, self.time))
        return Events(*(getattr(self, f)[order] for f in self.__slots__))

    def split(self, t):
        """(events before t, events at or after t)."""
        early = self.time < t
        return (
            Events(*(getattr(self, f)[early] for f in self.__slots__)),
            Events(*(getattr(self, f)[~early] for f in self.__slots__)),
        )


class EventQueue:
    """Pending events; `pop_before(t)` gives those due before t, sorted."""

    def __init__(self):
        self.pending = Events.empty()

    def push(self, events):
        self.pending = Events.concat([self.pending, events])

    def pop_before(self, t):
        due, self.pending = self.pending.split(t)
        return due.sorted()


class PoissonSources:
    """Independent Poisson event streams, one per (target cell, stimulus), each from its own seed.

    Times are drawn in chunks of CHUNK intervals ahead of need, so a stream's times do not depend on
    how the run is cut into epochs. The drawn times wait in one (streams, width) table (rows sorted,
    +inf past a row's end), so an epoch's events are taken from every stream at once; a stream draws
    again only where the epoch reaches past its last drawn time.
    """

    CHUNK = 64

    def __init__(self, recipe, group):
        self.streams, weights = [], []
        for gid in group.gids:
            for p in recipe.poisson_on(int(gid)):
                if p.rate > 0 and p.stop > p.start:
                    index, scale = group.event_target(int(gid), p.synapse)
                    rng = np.random.default_rng(list(p.stream))
                    self.streams.append(_Stream(self, len(self.streams), rng, p, index))
                    weights.append(p.weight * scale)
        n = len(self.streams)
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
        stream, col = np.nonzero(self.pending < limit[:, None])
        if stream.size == 0:
            return Events.empty()
        times = self.pending[stream, col]
        self.pending[stream, col] = np.inf
        taken = np.bincount(stream, minlength=len(self.streams))
        rows = np.nonzero(taken)[0]
        self.pending[rows] = np.sort(self.pending[rows], axis=1)  # the taken times were each row's first
        k = self.targets[stream]  # targets of each time taken
        within = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
        gather = np.repeat(self.first[stream], k) + within
        return Events(
            np.repeat(times, k), self.index[gather], self.weight[gather], np.repeat(self.source[stream], k)
        )

    def _draw(self, i, t):
        """Draw stream i's times in chunks until its last drawn time reaches t."""
        s, drawn = self.streams[i], []
        while self.last[i] < t:
            draws = self.last[i] + np.cumsum(s.rng.exponential(1000.0 / s.spec.rate, self.CHUNK))
            drawn.append(draws)
            self.last[i] = draws[-1]
        s.ahead = np.concatenate([s.ahead, *drawn])

    def restore(self, saved):
        """Continue the streams from a checkpoint: [(gid, salt, generator state JSON, last, ahead)]."""
        by_key = {(s.spec.stream[1], s.spec.stream[2]): s for s in self.streams}
        for gid, salt, state, last, ahead in saved:
            stream = by_key[(gid, salt)]
            stream.rng.bit_generator.state = json.loads(state)
            stream.last, stream.ahead = last, np.asarray(ahead, dtype=float)


class _Stream:
    """One stream: its generator and spec, its targets (state indices) and, in its owner's tables, its
    drawn times waiting (ahead), its last drawn time (last) and its weights per target (weight)."""

    def __init__(self, owner, i, rng, spec, index):
        self.owner, self.i, self.rng, self.spec, self.index = owner, i, rng, spec, index

    @property
    def ahead(self):
        row = self.owner.pending[self.i]
        return row[np.isfinite(row)].copy()

    @ahead.setter
    def ahead(self, times):
        o = self.owner
        if times.size > o.pending.shape[1]:
            wider = np.full((o.pending.shape[0], times.size), np.inf)
            wider[:, : o.pending.shape[1]] = o.pending
            o.pending = wider
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
