"""The event-table kernels against their NumPy twins, on random tables: every array to the bit."""

import numpy as np
import pytest

from brainsim.kernels.events import pop_due, pop_due_np, spike_events, spike_events_np, take_due, take_due_np


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.mark.parametrize("seed", range(5))
def test_take_due_matches_twin(seed):
    rng = np.random.default_rng(seed)
    n, width = 40, 16
    pending = np.sort(rng.uniform(0.0, 20.0, (n, width)), axis=1)
    pending[rng.random((n, width)) < 0.2] = np.inf  # rows of several lengths, +inf past their ends
    pending.sort(axis=1)
    pending[:3] = np.inf  # streams with nothing waiting
    limit = rng.uniform(0.0, 12.0, n)
    limit[3] = np.inf  # a stream whose whole row is due
    targets = rng.integers(0, 4, n)
    first = np.cumsum(targets) - targets
    index, weight = rng.integers(0, 1000, targets.sum()), rng.random(targets.sum())
    source = -1 - rng.integers(0, 3, n)
    left_np, left = pending.copy(), pending.copy()
    want = take_due_np(left_np, limit, targets, first, index, weight, source)
    _same(take_due(left, limit, targets, first, index, weight, source), want)
    assert np.array_equal(left, left_np)  # the times left, at each row's front
    assert want[0].size > 0 and np.all(left >= limit[:, None])


@pytest.mark.parametrize("seed", range(5))
def test_pop_due_matches_twin(seed):
    rng = np.random.default_rng(seed)
    n, m = 300, 80
    time = rng.integers(0, 40, n) * 0.25  # many equal times, so the tie order is tested
    source = rng.integers(0, 5, n)
    index, weight = rng.integers(0, 50, n), rng.random(n)
    x_time, x_source = rng.integers(0, 20, m) * 0.25, -1 - rng.integers(0, 2, m)
    x_index, x_weight = rng.integers(0, 50, m), rng.random(m)
    args = (time, index, weight, source, 5.0, x_time, x_index, x_weight, x_source)
    (due, left), (due_np, left_np) = pop_due(*args), pop_due_np(*args)
    _same(due, due_np)
    _same(left, left_np)
    assert np.all(np.diff(due[0]) >= 0) and np.all(left[0] >= 5.0)


@pytest.mark.parametrize("seed", range(5))
def test_spike_events_match_twin(seed):
    rng = np.random.default_rng(seed)
    n_conn, n_slots = 200, 30
    sources = np.sort(rng.choice(100, 25, replace=False))
    start = np.concatenate([[0], np.sort(rng.integers(0, n_conn, sources.size - 1)), [n_conn]])
    target = rng.integers(0, n_slots, n_conn).astype(np.int32)
    weight, delay = rng.random(n_conn), rng.uniform(0.5, 3.0, n_conn)
    width = rng.integers(1, 4, n_slots)
    slot_start = np.concatenate([[0], np.cumsum(width)])
    slot_index, slot_scale = rng.integers(0, 500, width.sum()), rng.uniform(0.5, 2.0, width.sum())
    gid = rng.integers(0, 100, 40)  # sources with and without connections here, some spiking twice
    gid[:5] = sources[:5]
    time = rng.uniform(0.0, 10.0, gid.size)
    args = (gid, time, sources, start, target, weight, delay, slot_start, slot_index, slot_scale)
    want = spike_events_np(*args)
    _same(spike_events(*args), want)
    assert want[0].size > 0


def test_spikes_onto_an_empty_table_give_no_events():
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
    out = spike_events(
        np.array([3, 7]), np.array([1.0, 2.0]), empty_i, np.zeros(1, np.int64), np.zeros(0, np.int32),
        empty_f, empty_f, np.zeros(1, np.int64), empty_i, empty_f,
    )  # fmt: skip
    assert all(a.size == 0 for a in out)
