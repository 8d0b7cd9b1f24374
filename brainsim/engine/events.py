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
            region = int(recipe.regions_of(gid))
            for s, syn, weight, d in zip(inc.source, inc.synapse, inc.weight, inc.delay):
                index, scale = group.event_target(int(gid), syn)
                src += [s] * index.size
                idx.append(index)
                w.append(weight * scale)
                delay += [d] * index.size
                target_region += [region] * index.size
        self.source = np.asarray(src, dtype=np.int64)
        self.index = np.concatenate(idx) if idx else np.zeros(0, np.int64)
        self.weight = np.concatenate(w) if w else np.zeros(0)
        self.delay = np.asarray(delay, dtype=float)
        self.target_region = np.asarray(target_region, dtype=np.int64)
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
    how the run is cut into epochs.
    """

    CHUNK = 64

    def __init__(self, recipe, group):
        self.streams = []
        for gid in group.gids:
            for p in recipe.poisson_on(int(gid)):
                if p.rate > 0 and p.stop > p.start:
                    index, scale = group.event_target(int(gid), p.synapse)
                    rng = np.random.default_rng(list(p.stream))
                    self.streams.append(_Stream(rng, p, index, p.weight * scale, -1 - p.stream[2]))

    def events_before(self, t):
        """Events of every stream with times before t (and before the stream's stop): stream by stream,
        each time repeated over the stream's targets."""
        taken = [
            (times, s) for s in self.streams if (times := s.take_before(min(t, s.spec.stop), self.CHUNK)).size
        ]
        if not taken:
            return Events.empty()
        n = np.array([times.size for times, _ in taken])
        k = np.array([s.index.size for _, s in taken])
        per_time = np.repeat(k, n)  # targets of each time taken
        first = np.repeat(np.cumsum(k) - k, n)  # where its stream's targets start in index, weight
        within = np.arange(per_time.sum()) - np.repeat(np.cumsum(per_time) - per_time, per_time)
        gather = np.repeat(first, per_time) + within
        return Events(
            np.repeat(np.concatenate([times for times, _ in taken]), per_time),
            np.concatenate([s.index for _, s in taken])[gather],
            np.concatenate([s.weight for _, s in taken])[gather],
            np.repeat([s.source for _, s in taken], n * k),
        )

    def restore(self, saved):
        """Continue the streams from a checkpoint: [(gid, salt, generator state JSON, last, ahead)]."""
        by_key = {(s.spec.stream[1], s.spec.stream[2]): s for s in self.streams}
        for gid, salt, state, last, ahead in saved:
            stream = by_key[(gid, salt)]
            stream.rng.bit_generator.state = json.loads(state)
            stream.last, stream.ahead = last, np.asarray(ahead, dtype=float)


class _Stream:
    def __init__(self, rng, spec, index, weight, source):
        self.rng, self.spec, self.index, self.weight, self.source = rng, spec, index, weight, source
        self.ahead = np.zeros(0)
        self.last = spec.start

    def take_before(self, t, chunk):
        while self.last < t:
            draws = self.last + np.cumsum(self.rng.exponential(1000.0 / self.spec.rate, chunk))
            self.ahead = np.concatenate([self.ahead, draws])
            self.last = draws[-1]
        n = int(np.searchsorted(self.ahead, t, side="left"))
        out, self.ahead = self.ahead[:n], self.ahead[n:]
        return out


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
