"""Spike detection (upward crossings, interpolated times) and current clamps vs their NumPy twins."""

import numpy as np
import pytest

from brainsim.kernels.detect import crossings, crossings_np
from brainsim.kernels.stimuli import iclamp, iclamp_np

# -- crossings --------------------------------------------------------------------------------------


def run_crossings(v, node, threshold, v_prev, t0, dt, count=0):
    """crossings on fresh buffers (with `count` entries already in them): (count, index, time, v_prev)."""
    size = count + node.size
    out_index = np.full(size, -7, dtype=np.int64)
    out_time = np.full(size, -7.0)
    out_index[:count], out_time[:count] = np.arange(count), 100.0 + np.arange(count)
    vp = v_prev.copy()
    new = crossings(v, node, threshold, vp, t0, dt, out_index, out_time, count, 0)
    assert np.all(out_index[:count] == np.arange(count)) and np.all(
        out_time[:count] == 100.0 + np.arange(count)
    )
    assert np.all(out_index[new:] == -7) and np.all(out_time[new:] == -7.0)  # nothing written past count
    return new, out_index[count:new], out_time[count:new], vp


@pytest.mark.parametrize("count", (0, 5))
@pytest.mark.parametrize("seed", range(4))
def test_crossings_match_twin(seed, count):
    rng = np.random.default_rng(seed)
    n_nodes, n_det = 50, 200  # more detectors than nodes: several watch the same node
    node = rng.integers(0, n_nodes, n_det).astype(np.int32)
    threshold = rng.uniform(-20.0, 10.0, n_det)
    v = threshold.mean() + rng.uniform(-15.0, 15.0, n_nodes)
    v_prev = threshold + rng.uniform(-15.0, 15.0, n_det)
    # exact-threshold cases: before == threshold (no crossing), after == threshold (a crossing at t0 + dt)
    v_prev[:10] = threshold[:10]
    threshold[10:20] = v[node[10:20]]
    t0, dt = 12.5, 0.025
    new, index, time, vp = run_crossings(v, node, threshold, v_prev, t0, dt, count)
    j, t = crossings_np(v, node, threshold, v_prev, t0, dt)
    assert new == count + j.size
    np.testing.assert_array_equal(index, j)
    np.testing.assert_allclose(time, t, rtol=1e-14)
    np.testing.assert_array_equal(vp, v[node])  # v_prev now holds the present V
    # independent: the rule and the interpolation written out per detector
    expect = [
        (k, t0 + dt * (threshold[k] - v_prev[k]) / (v[node[k]] - v_prev[k]))
        for k in range(n_det)
        if v_prev[k] < threshold[k] and threshold[k] <= v[node[k]]
    ]
    assert 10 < len(expect) < n_det - 10
    np.testing.assert_array_equal(index, [k for k, _ in expect])
    np.testing.assert_allclose(time, [t for _, t in expect], rtol=1e-14)
    assert np.all((time > t0) & (time <= t0 + dt))
    assert not np.isin(np.arange(10), index).any()
    hit_at_end = np.arange(10, 20)[v_prev[10:20] < threshold[10:20]]
    assert np.isin(hit_at_end, index).all()
    np.testing.assert_array_equal(time[np.isin(index, hit_at_end)], t0 + dt)


def test_crossings_edge_cases():
    threshold = np.zeros(7)
    node = np.arange(7, dtype=np.int32)
    v_prev = np.array([-1.0, 0.0, -1.0, 1.0, -1.0, 1.0, -3.0])
    v = np.array([0.0, 1.0, -0.5, 2.0, 1.0, -1.0, 1.0])
    # 0: ends on threshold: crossing at t0 + dt; 1: starts on it: none; 2: stays below; 3: stays above;
    # 4: halfway up at the middle of the step; 5: downward: none; 6: a quarter of the way at 3/4
    new, index, time, vp = run_crossings(v, node, threshold, v_prev, 1.0, 0.5)
    assert new == 3
    np.testing.assert_array_equal(index, [0, 4, 6])
    np.testing.assert_allclose(time, [1.5, 1.25, 1.375], rtol=1e-15)
    np.testing.assert_array_equal(vp, v)
    # the next step starts from the updated v_prev: no repeated detection while V stays above
    new, index, _, _ = run_crossings(v + 0.5, node, threshold, vp, 1.5, 0.5)
    assert new == 1 and list(index) == [2]


def test_crossings_none():
    node = np.array([0, 0], np.int32)
    new, index, time, vp = run_crossings(
        np.array([5.0]), node, np.array([10.0, 10.0]), np.array([0.0, 20.0]), 0.0, 1.0
    )
    assert new == 0 and index.size == 0 and time.size == 0
    np.testing.assert_array_equal(vp, [5.0, 5.0])
    assert run_crossings(np.zeros(3), np.zeros(0, np.int32), np.zeros(0), np.zeros(0), 0.0, 1.0, 2)[0] == 2


# -- iclamp -----------------------------------------------------------------------------------------


def clamps(rng, n_nodes=30, n=80):
    node = rng.integers(0, n_nodes, n).astype(np.int32)  # nodes repeat: their clamps add up
    delay = rng.choice([0.0, 0.5, 1.0, 2.5], n)
    duration = rng.choice([0.0, 0.25, 1.5, 1e9], n)
    amplitude = rng.uniform(-2.0, 2.0, n)
    return node, delay, duration, amplitude


@pytest.mark.parametrize("t", (0.0, 0.25, 0.5, 0.75, 1.0, 1.4999, 1.5, 2.0, 2.5, 2.75, 3.0, 4.0, 1e9))
def test_iclamp_matches_twin(t):
    rng = np.random.default_rng(1)
    node, delay, duration, amplitude = clamps(rng)
    before = rng.uniform(-1.0, 1.0, 30)  # i_pt already holds point-mechanism currents
    i_pt = before.copy()
    iclamp(t, node, delay, duration, amplitude, i_pt)
    np.testing.assert_allclose(i_pt - before, iclamp_np(t, node, delay, duration, amplitude, 30), atol=1e-14)
    # independent: on for delay <= t < delay + duration, inward (negative) for positive amplitude
    expect = before.copy()
    for j in range(node.size):
        if delay[j] <= t < delay[j] + duration[j]:
            expect[node[j]] -= amplitude[j]
    np.testing.assert_allclose(i_pt, expect, rtol=1e-14, atol=1e-14)


def test_iclamp_edges():
    node = np.array([0, 0, 1, 2], np.int32)  # two clamps on node 0
    delay = np.array([1.0, 1.5, 1.0, 1.0])
    duration = np.array([1.0, 1.0, 0.0, 1.0])
    amplitude = np.array([0.5, 0.25, 7.0, -1.0])

    def at(t):
        i_pt = np.zeros(3)
        iclamp(t, node, delay, duration, amplitude, i_pt)
        return i_pt

    np.testing.assert_array_equal(at(np.nextafter(1.0, 0.0)), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(at(1.0), [-0.5, 0.0, 1.0])  # on at t == delay; zero duration: never
    np.testing.assert_array_equal(at(1.5), [-0.75, 0.0, 1.0])  # the two clamps on node 0 add up
    np.testing.assert_array_equal(at(np.nextafter(2.0, 0.0)), [-0.75, 0.0, 1.0])
    np.testing.assert_array_equal(at(2.0), [-0.25, 0.0, 0.0])  # off at t == delay + duration
    np.testing.assert_array_equal(at(2.5), [0.0, 0.0, 0.0])
    for t in (0.0, 1.0, 1.5, 2.0, 2.5):
        np.testing.assert_array_equal(at(t), iclamp_np(t, node, delay, duration, amplitude, 3))


def test_pulse_train_matches_twin_and_its_edges():
    from brainsim.kernels.stimuli import pulse_edges, pulse_train, pulse_train_np

    node = np.array([0, 2, 2], dtype=np.int32)
    start, stop = np.array([1.0, 0.5, 10.0]), np.array([20.0, 30.0, 12.0])
    period, width, amp = np.array([5.0, 10.0, 0.5]), np.array([1.0, 2.5, 0.25]), np.array([0.5, 1.0, 2.0])
    for t in np.arange(0.0, 35.0, 0.125):
        i_pt = np.full(4, 0.3)
        pulse_train(t, node, start, stop, period, width, amp, i_pt)
        np.testing.assert_allclose(i_pt - 0.3, pulse_train_np(t, node, start, stop, period, width, amp, 4))
    i_pt = np.zeros(4)
    pulse_train(4.5, node, start, stop, period, width, amp, i_pt)
    assert i_pt.tolist() == [0.0, 0.0, 0.0, 0.0]  # between pulses (train 0 is on for 1-2, 6-7, 11-12 ms)
    pulse_train(6.5, node, start, stop, period, width, amp, i_pt)
    assert i_pt.tolist() == [-0.5, 0.0, 0.0, 0.0]
    edges = pulse_edges(start[:1], stop[:1], period[:1], width[:1], 0.0, 12.0)
    assert edges.tolist() == [1.0, 2.0, 6.0, 7.0, 11.0]
