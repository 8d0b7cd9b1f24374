"""The compiled segment of staggered steps (brainsim.engine.stepper) against the step composed of the
NumPy twins, one step at a time: events, currents, the tree solve, the state updates in their two phases
(the calcium shell before SK), spike detection and the region sums at the detectors."""

import numpy as np
import pytest
from support import checked

from brainsim.config.load import resolve_config
from brainsim.engine import group as group_module
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


def unknowns(g):
    """Every unknown's index in u, cell by cell in an order that does not depend on the numbering."""
    return np.concatenate(g.cell_unknowns)


def run_segments(g, u, ev, steps, probe, every, length=37):
    """The compiled segments over steps 0 .. steps - 1 in segments of `length`, drained as the integrator
    does: (spikes [(detector, time)], ∫V dt, ∫dt, each probe's samples)."""
    kernel = StaggeredSteps(g, u, DT, LIMIT)
    events = kernel.chunk_events(*ev)
    room = (length // 2 + 1) * g.detector_node.size
    v_prev, index, time = u[g.detector_node].copy(), np.zeros(room, np.int64), np.zeros(room)
    count = g.detector_node.size
    v_sum, span, found, k = np.zeros(count), np.zeros(count), [], 0
    taken = [[] for _ in probe]
    while k < steps:
        k1 = min(steps, k + length)
        out, counts = np.full((k1 - k, probe.size), np.nan), np.zeros(probe.size, np.int64)
        k, bad, n = kernel.run(k, k1, events, v_prev, index, time, v_sum, span, (probe, every, out, counts))
        assert bad == -1 and k == k1
        assert np.all(np.diff(time[:n]) >= 0)  # in time order
        found += list(zip(index[:n].tolist(), time[:n].tolist()))
        for e in range(probe.size):
            taken[e] += out[: counts[e], e].tolist()
    return found, v_sum, span, taken


@pytest.mark.parametrize("seed, count, chunk", [(0, 3, None), (1, 3, 10), (0, 2 * RUN_LENGTH, 100)])
def test_a_segment_gives_what_its_steps_give(seed, count, chunk, monkeypatch):
    """Whole, or chunk of cells by chunk (chunk: CHUNK_NODES, each chunk through all the segment's steps
    before the next), as the NumPy twins give step after step."""
    gids = tuple(range(count))
    g = group(gids, count)
    assert len(g.state_phases) == 2 and g.iclamp_node.size == count
    assert by_runs(g.block("pas")) and by_runs(g.block("nata")) == (count > 3)
    steps = 400
    ev = events(g, steps, seed)
    u0 = g.initial_state()
    expected, spikes, v_sum_ref, sampled = reference(g, u0.copy(), 0, steps, ev, u0[g.detector_node].copy())

    if chunk is not None:
        monkeypatch.setattr(group_module, "CHUNK_NODES", chunk)
    g2 = group(gids, count)
    assert (g2.chunk_cells.size > 2) == (chunk is not None)
    to2 = np.empty(g.size, np.int64)  # index in g2's u of each unknown of g's
    to2[unknowns(g)] = unknowns(g2)
    u = np.empty(g2.size)
    u[to2] = u0
    probe = to2[[0, g.n_nodes - 1, g.blocks[-1].offset, g.size - 1]]  # two V, two states
    every = np.array([EVERY, EVERY, EVERY, 2 * EVERY])
    found, v_sum, span, taken = run_segments(g2, u, (ev[0], to2[ev[1]], ev[2]), steps, probe, every)
    assert len(spikes) >= 3  # every cell fired under the clamp
    np.testing.assert_allclose(u[to2], expected, rtol=1e-9, atol=1e-12)
    spikes.sort(key=lambda s: (s[1], s[0]))
    assert [j for j, _ in found] == [j for j, _ in spikes]
    np.testing.assert_allclose([t for _, t in found], [t for _, t in spikes], rtol=0, atol=1e-9)
    np.testing.assert_allclose(v_sum, v_sum_ref, rtol=1e-9)
    np.testing.assert_allclose(span, steps * DT, rtol=1e-12)
    at = [0, g.n_nodes - 1, g.blocks[-1].offset, g.size - 1]
    for e in range(probe.size):  # the states at the ends of their steps (mid-spike: 1e-8 apart)
        assert len(taken[e]) == steps // every[e]
        np.testing.assert_allclose(taken[e], sampled[every[e] // EVERY - 1 :: every[e] // EVERY, at[e]],
                                   rtol=1e-8, atol=1e-12)  # fmt: skip


def test_a_segment_stops_at_a_bad_voltage_and_so_do_the_chunks_after_it(monkeypatch):
    monkeypatch.setattr(group_module, "CHUNK_NODES", 10)
    g = group()
    assert g.chunk_cells.size == 4  # a chunk per cell
    u = g.initial_state()
    kernel = StaggeredSteps(g, u, DT, LIMIT)
    none = kernel.chunk_events(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    v_prev = u[g.detector_node].copy()
    room = np.zeros(6 * g.detector_node.size, np.int64), np.zeros(6 * g.detector_node.size)
    assert kernel.run(0, 10, none, v_prev, *room, np.zeros(0), np.zeros(0)) == (10, -1, 0)
    first, second = g.chunk_nodes[1], g.chunk_nodes[2]
    u[first + 5] = np.nan
    before = u.copy()
    k, bad, n = kernel.run(10, 20, none, v_prev, *room, np.zeros(0), np.zeros(0))
    assert k == 10 and first <= bad < second and n == 0
    assert not np.array_equal(u[:first], before[:first])  # the chunk before it ran on
    assert np.array_equal(u[second : g.n_nodes], before[second : g.n_nodes])  # the one after did not start


@pytest.mark.parametrize("chunk", [None, 130])
def test_a_cell_steps_the_same_whatever_else_its_group_holds(chunk, monkeypatch):
    """Bit for bit: what makes a run's results independent of how its cells are spread over ranks (alone,
    cell 1's currents are computed instance by instance; among many, run by run; with chunk, the many
    cells are stepped chunk by chunk)."""
    finals = []
    for gids in (tuple(range(2 * RUN_LENGTH)), (1,)):
        if len(gids) > 1 and chunk is not None:
            monkeypatch.setattr(group_module, "CHUNK_NODES", chunk)
        g = group(gids, 2 * RUN_LENGTH)
        monkeypatch.undo()
        assert g.chunk_cells.size == (3 if len(gids) > 1 and chunk else 2)
        assert by_runs(g.block("nata")) == (len(gids) > 1)
        u = g.initial_state()
        none = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        found, _, _, _ = run_segments(g, u, none, 400, np.zeros(0, np.int64), np.ones(0, np.int64))
        c = list(gids).index(1)
        times = [t for j, t in found if j == c]
        finals.append((u[g.position[g.cell_start[c] : g.cell_start[c + 1]]], times))
    (v3, t3), (v1, t1) = finals
    assert np.array_equal(v3, v1) and t1 and t3 == t1
