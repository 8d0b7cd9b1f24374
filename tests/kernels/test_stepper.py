"""The compiled segment of staggered steps (brainsim.engine.stepper) against the step composed of the
NumPy twins, one step at a time: events, currents, the tree solve, the state updates in their two phases
(the calcium shell before SK), spike detection and the region sums at the detectors."""

import numpy as np
import pytest
from support import checked

from brainsim.config.load import resolve_config
from brainsim.engine.group import CellGroup
from brainsim.engine.stepper import RUN_LENGTH, StaggeredSteps, by_runs
from brainsim.kernels import cable
from brainsim.kernels.detect import crossings_np
from brainsim.kernels.ions import CAI
from brainsim.kernels.states import exp_euler_np

DT, LIMIT = 0.025, 1000.0
EVERY = 3  # steps between the samples of the segment test
SOMA = {
    "nata": {"gbar": 3.0}, "kv31": {"gbar": 1.0}, "cahva": {"gbar": 0.002}, "calva": {"gbar": 0.004},
    "cadyn": {"gamma": 0.05, "decay": 80.0}, "sk": {"gbar": 0.05}, "pas": {"g": 3e-5, "e": -75.0},
}  # fmt: skip


def group(gids=(0, 1, 2), count=3):
    """A group of the ball-and-stick cells; with count >= RUN_LENGTH cells, the nodes of one depth and
    mechanisms form runs long enough for the density currents to be computed run by run."""
    raw = {
        "name": "stepper",
        "simulation": {"tstop": 10.0, "dt": DT, "celsius": 34.0},
        "cells": [{"name": "c", "count": count, "morphology": {"kind": "ball_and_stick", "dend_length": 200},
                   "discretization": {"per_branch": 4}, "v_init": -70.0,
                   "spike_detector": {"location": "soma(0.5)", "threshold": -20.0},
                   "regions": {"soma": {"mechanisms": SOMA}, "dend": {"mechanisms": {"pas": {"g": 3e-5}}}}}],
        "synapses": [{"name": "ampa", "cell": "c", "mechanism": "exp2syn", "location": "dend[0](0.5)",
                      "params": {"tau1": 0.5, "tau2": 3.0, "e": 0.0}}],
        "stimuli": [{"kind": "iclamp", "cell": "c", "location": "soma(0.5)", "delay": 1.0, "duration": 4.0,
                     "amplitude": 0.8}],
        "output": {"path": "out/s.zarr"},
    }  # fmt: skip
    return CellGroup(checked(resolve_config(raw)), list(gids))


def events(g, steps, seed):
    """Events onto the cells' synapses (each onto the synapse's states with its scales), sorted by step."""
    rng = np.random.default_rng(seed)
    step = np.sort(rng.integers(0, steps, 40))
    cell, weight = rng.integers(0, 3, step.size), rng.uniform(0.0, 0.02, step.size)
    targets = [g.event_target(int(gid), "ampa") for gid in cell]
    index = np.concatenate([i for i, _ in targets])
    scaled = np.concatenate([w * scale for w, (_, scale) in zip(weight, targets)])
    return np.repeat(step, [i.size for i, _ in targets]).astype(np.int64), index.astype(np.int64), scaled


def reference(g, u, k0, k1, ev, v_prev, every=EVERY):
    """Steps k0..k1-1 from the NumPy twins: (u, spikes [(detector, time)], ∫V dt at the detectors, u at the
    end of every step k with k + 1 a multiple of every)."""
    n, spikes, v_sum, sampled = g.n_nodes, [], np.zeros(g.detector_node.size), []
    ev_step, ev_index, ev_weight = ev
    for k in range(k0, k1):
        due = ev_step == k
        np.add.at(u, ev_index[due], ev_weight[due])
        g.currents(u, (k + 0.5) * DT)
        u[:n] = cable.staggered_solve_np(
            u[:n], g.cap, g.dax, g.gax, g.parent, g.area, g.i_dens, g.g_dens, g.i_pt, g.g_pt, DT
        )
        for p, phase in enumerate(g.state_phases):
            for b in phase:
                s = u[b.offset : b.offset + b.size].reshape(b.n_states, b.n)
                xinf, tau = b.module.rates_np(u[b.node], b.node, b.params, g.ion, g.celsius)
                s[:] = exp_euler_np(s, xinf, tau, DT)
            if p == 0 and len(g.state_phases) > 1:
                g.ion[CAI, g.nernst_node] = u[g.nernst_index]
        t0 = k * DT
        h = (k + 1) * DT - t0
        j, t = crossings_np(u, g.detector_node, g.threshold, v_prev, t0, h)
        spikes += list(zip(j.tolist(), t.tolist()))
        v_prev[:] = u[g.detector_node]
        v_sum += v_prev * h
        if (k + 1) % every == 0:
            sampled.append(u.copy())
    return u, spikes, v_sum, np.array(sampled)


@pytest.mark.parametrize("seed, count", [(0, 3), (1, 3), (0, 2 * RUN_LENGTH)])
def test_a_segment_gives_what_its_steps_give(seed, count):
    gids = tuple(range(count))
    g = group(gids, count)
    assert len(g.state_phases) == 2 and g.iclamp_node.size == count
    assert by_runs(g.block("pas")) and by_runs(g.block("nata")) == (count > 3)
    steps = 400
    ev = events(g, steps, seed)
    u0 = g.initial_state()
    expected, spikes, v_sum_ref, sampled = reference(g, u0.copy(), 0, steps, ev, u0[g.detector_node].copy())

    g2 = group(gids, count)
    u = u0.copy()
    kernel = StaggeredSteps(g2, u, DT, LIMIT)
    room = 4 * g2.detector_node.size
    v_prev, index, time = u[g2.detector_node].copy(), np.zeros(room, np.int64), np.zeros(room)
    v_sum, span, found, k, nxt = np.zeros(count), np.zeros(count), [], 0, 0
    probe = np.array([0, g2.n_nodes - 1, g2.blocks[-1].offset, g2.size - 1])  # two V, two states
    every = np.array([EVERY, EVERY, EVERY, 2 * EVERY])
    taken = [[] for _ in probe]
    while k < steps:  # segments of uneven lengths, each drained as the integrator does
        k1 = min(steps, k + 37)
        out, counts = np.full((k1 - k, probe.size), np.nan), np.zeros(probe.size, np.int64)
        k, bad, n, nxt = kernel.run(
            k, k1, ev, nxt, v_prev, index, time, v_sum, span, (probe, every, out, counts)
        )
        assert bad == -1
        found += list(zip(index[:n].tolist(), time[:n].tolist()))
        for e in range(probe.size):
            taken[e] += out[: counts[e], e].tolist()
    assert len(spikes) >= 3  # every cell fired under the clamp
    np.testing.assert_allclose(u, expected, rtol=1e-9, atol=1e-12)
    assert [j for j, _ in found] == [j for j, _ in spikes]
    np.testing.assert_allclose([t for _, t in found], [t for _, t in spikes], rtol=0, atol=1e-9)
    np.testing.assert_allclose(v_sum, v_sum_ref, rtol=1e-9)
    np.testing.assert_allclose(span, steps * DT, rtol=1e-12)
    for e in range(probe.size):  # the states at the ends of their steps (mid-spike: 1e-8 apart)
        assert len(taken[e]) == steps // every[e]
        np.testing.assert_allclose(taken[e], sampled[every[e] // EVERY - 1 :: every[e] // EVERY, probe[e]],
                                   rtol=1e-8, atol=1e-12)  # fmt: skip


def test_a_segment_stops_at_a_bad_voltage_and_when_the_spike_buffers_are_full():
    g = group()
    u = g.initial_state()
    kernel = StaggeredSteps(g, u, DT, LIMIT)
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    v_prev = u[g.detector_node].copy()
    full = np.zeros(g.detector_node.size + 2, np.int64), np.zeros(g.detector_node.size + 2)
    k, bad, n, _ = kernel.run(0, 10, none, 0, v_prev, *full, np.zeros(0), np.zeros(0))
    assert (k, bad, n) == (10, -1, 0)  # room for one step's crossings: it runs on while none come
    u[5] = np.nan
    k, bad, n, _ = kernel.run(10, 20, none, 0, v_prev, *full, np.zeros(0), np.zeros(0))
    assert k == 10 and bad >= 0 and n == 0


def test_a_cell_steps_the_same_whatever_else_its_group_holds():
    """Bit for bit: what makes a run's results independent of how its cells are spread over ranks (alone,
    cell 1's currents are computed instance by instance; among many, run by run)."""
    finals = []
    for gids in (tuple(range(2 * RUN_LENGTH)), (1,)):
        g = group(gids, 2 * RUN_LENGTH)
        assert by_runs(g.block("nata")) == (len(gids) > 1)
        u = g.initial_state()
        kernel = StaggeredSteps(g, u, DT, LIMIT)
        room = 4 * g.detector_node.size
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        v_prev = u[g.detector_node].copy()
        index, time = np.zeros(room, np.int64), np.zeros(room)
        _, _, n, _ = kernel.run(0, 400, none, 0, v_prev, index, time, np.zeros(0), np.zeros(0))
        c = list(gids).index(1)
        finals.append((u[g.position[g.cell_start[c] : g.cell_start[c + 1]]], time[:n][index[:n] == c]))
    (v3, t3), (v1, t1) = finals
    assert np.array_equal(v3, v1) and t1.size and np.array_equal(t3, t1)
