"""Synaptic events under PETSc's fixed-step methods: added at the start of the step that holds them (TS
prestep), at no extra solve for the default one-step method; a multistep method restarts at each."""

import numpy as np

import brainsim
from brainsim.engine.simulation import Simulation
from brainsim.model.recipe import Recipe

NET = "configs/bench/random_net.yaml"


def simulation(petsc=None):
    sets = {"simulation.method": "petsc", "simulation.petsc": petsc or {}, "cells.net.count": 16,
            "stimuli[0].rate": 2000.0, "probes": []}  # fmt: skip
    return Simulation(Recipe(brainsim.load_config(NET, sets)))


def test_events_in_every_step_cost_the_default_no_extra_solve():
    sim = simulation()
    sim.record()
    sim.run(10.0)
    ts = sim.integrator.ts
    steps = ts.getStepNumber()
    assert steps == 400
    # 16 cells x 2000 Hz of Poisson input: 0.8 events per step on average; each step is one linear solve
    assert ts.getSNESIterations() == steps
    assert sim.spikes()["gid"].size > 0
    sim.close()


def test_bdf_restarts_where_events_arrive():
    sim = simulation({"ts_type": "bdf"})
    sim.run(10.0)
    ts = sim.integrator.ts
    assert ts.getStepNumber() == 400 and ts.getSNESIterations() > 1.3 * 400  # restarts take extra solves
    sim.close()


def test_events_land_where_the_staggered_scheme_puts_them():
    """Both fixed-step integrators add an event at the start of its step: the first spikes agree to the
    discretisation's difference, not to an event's step."""
    runs = []
    for method in ("petsc", "staggered"):
        sets = {"simulation.method": method, "cells.net.count": 16, "stimuli[0].rate": 2000.0, "probes": []}
        sim = Simulation(Recipe(brainsim.load_config(NET, sets)))
        sim.record()
        sim.run(10.0)
        spikes = sim.spikes()
        gid, time = spikes["gid"].values, spikes["time"].values
        order = np.lexsort((time, gid))
        runs.append((gid[order], time[order]))
        sim.close()
    (g1, t1), (g2, t2) = runs
    assert g1.size > 0 and np.array_equal(g1, g2)
    assert np.max(np.abs(t1 - t2)) < 0.2
