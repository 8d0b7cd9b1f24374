"""The Python API: load_config, run and open_run on real runs; Simulation in pieces, state/set_state forks,
and a recipe of one's own."""

import numpy as np
import pytest
import xarray as xr
from support import ROOT

import brainsim
from brainsim.errors import BrainsimError, ConfigError
from brainsim.model.recipe import Incoming

RING = ROOT / "configs/bench/m2_ring.yaml"
SMALL_BRAIN = ROOT / "tests/data/small_brain.yaml"
RING_PROBE = {
    "probes": [
        {
            "name": "soma",
            "variable": "v",
            "cell": "ring",
            "cells": "all",
            "location": "soma(0.5)",
            "sampling": 0.5,
        }
    ]
}


def ring(**changes):
    return brainsim.load_config(
        RING, {"cells.ring.count": 4, "simulation.tstop": 30, **RING_PROBE, **changes}
    )


def test_load_config_validates_like_the_cli():
    with pytest.raises(ConfigError, match="'simulation.tstop'"):
        brainsim.load_config(RING, {"simulation.tstop": -1})
    with pytest.raises(ConfigError, match=r"'probes\[0\].cell'.*'nobody'"):
        brainsim.load_config(RING, {"probes": [{"variable": "v", "cell": "nobody", "location": "soma(0.5)"}]})
    with pytest.raises(ConfigError, match=r"'probes\[0\].location'"):  # found only by building the cell type
        brainsim.load_config(RING, {"probes": [{"variable": "v", "cell": "ring", "location": "axon(0.5)"}]})
    cfg = brainsim.load_config(RING, ["simulation.tstop=12.5"])
    assert cfg["simulation"]["tstop"] == 12.5


def test_run_returns_the_store_with_xarray_views(tmp_path):
    store = brainsim.run(ring(), tmp_path / "ring.zarr", progress=False)
    assert store.status == "complete" and store.t_reached == 30.0
    assert isinstance(store.spikes, xr.Dataset) and store.spikes.sizes["spike"] > 0
    v = store.traces["soma"]
    assert isinstance(v, xr.Dataset) and v["v"].shape == (61, 4)
    again = brainsim.open_run(tmp_path / "ring.zarr")
    assert np.array_equal(again.spikes.gid.values, store.spikes.gid.values)
    assert store.counts == {"cells": 4, "compartments": 4 * 196, "equations": again.counts["equations"]}
    assert store.timing["steps"] == 1200
    with pytest.raises(BrainsimError, match="already exists"):
        brainsim.run(ring(), tmp_path / "ring.zarr", overwrite=False, progress=False)


def simulate(config, pieces=(), record_from=0.0):
    sim = brainsim.Simulation(brainsim.Recipe(config))
    for until in pieces:
        sim.run(until=until)
    sim.record()
    sim.run()
    return sim


def test_pieces_give_the_run_in_one_go():
    whole = simulate(ring())
    parts = brainsim.Simulation(brainsim.Recipe(ring()))
    parts.record()
    for until in (7.5, 7.5, 13.0, 29.975):
        parts.run(until=until)
    parts.run()
    assert whole.spikes().sizes["spike"] >= 4
    xr.testing.assert_identical(whole.spikes(), parts.spikes())
    xr.testing.assert_identical(whole.traces("soma"), parts.traces("soma"))
    assert parts.time == 30.0


def test_until_must_be_ahead_on_the_step_grid_and_within_tstop():
    sim = brainsim.Simulation(brainsim.Recipe(ring()))
    sim.run(until=10.0)
    for bad in (5.0, 10.01, 31.0):
        with pytest.raises(ConfigError, match="'until'"):
            sim.run(until=bad)
    with pytest.raises(BrainsimError, match="record"):
        sim.spikes()


def small_brain(**changes):
    return brainsim.load_config(SMALL_BRAIN, {"simulation.tstop": 60, **changes})


def test_set_state_goes_back_and_forks_a_treatment():
    sim = brainsim.Simulation(brainsim.Recipe(small_brain()))
    sim.record()
    sim.run(until=30.0)
    fork = sim.state()
    sim.run()
    base = sim.spikes()
    sim.set_state(fork)  # back to 30 ms: the same future again, bit for bit
    assert sim.time == 30.0
    sim.run()
    xr.testing.assert_identical(base, sim.spikes())

    lesion = {"kind": "lesion", "at": 30.0, "regions": ["lh-precentral"]}
    treated = brainsim.Simulation(brainsim.Recipe(small_brain(interventions=[lesion])))
    treated.set_state(fork)
    treated.record()
    treated.run()
    spikes = treated.spikes()
    region = treated.recipe.regions_of(spikes.gid.values)
    lh_precentral = treated.recipe.brain.labels.index("lh-precentral")
    after = base.time.values >= 30.0
    base_region = sim.recipe.regions_of(base.gid.values)
    assert np.sum(after & (base_region == lh_precentral)) > 0  # the untreated region fires after 30 ms
    assert np.sum((spikes.time.values >= 35.0) & (region == lh_precentral)) == 0  # cut off: silent
    assert np.sum(region != lh_precentral) > 0


def test_state_of_other_cells_is_refused():
    a = brainsim.Simulation(brainsim.Recipe(ring()))
    b = brainsim.Simulation(brainsim.Recipe(ring(**{"cells.ring.count": 5})))
    with pytest.raises(BrainsimError, match="same cells"):
        b.set_state(a.state())


class Silent(brainsim.Recipe):
    """The ring without its connections: only the stimulated cell fires."""

    def connections_on(self, gid):
        return Incoming(np.zeros(0, np.int64), (), np.zeros(0), np.zeros(0))


class TooFast(brainsim.Recipe):
    """Connections quicker than the recipe's min_delay (5 ms): the epoch would miss them."""

    def connections_on(self, gid):
        inc = super().connections_on(gid)
        return Incoming(inc.source, inc.synapse, inc.weight, inc.delay * 0.1)


def test_a_recipe_of_ones_own():
    sim = brainsim.Simulation(Silent(ring()))
    sim.record()
    sim.run()
    assert set(sim.spikes().gid.values) == {0}
    assert set(simulate(ring()).spikes().gid.values) == {0, 1, 2, 3}
    with pytest.raises(ConfigError, match=r"connections_on\(\d\).*min_delay"):
        brainsim.Simulation(TooFast(ring()))


def test_settings_of_ones_own_are_recorded(tmp_path):
    cfg = ring()
    settings = brainsim.SimulationSettings.from_config(cfg, tstop=10.0, dt=0.05)
    sim = brainsim.Simulation(brainsim.Recipe(cfg), settings=settings)
    assert sim.store_spec().config["simulation"]["dt"] == 0.05
    assert sim.store_spec().trace_sets[0].n_rows == 21
    with pytest.raises(ConfigError, match="'simulation.dt'"):
        brainsim.SimulationSettings.from_config(cfg, dt=-1.0)
    with pytest.raises(ConfigError, match="'simulation.dt'.*delay"):
        brainsim.Simulation(brainsim.Recipe(cfg), settings=brainsim.SimulationSettings(tstop=10.0, dt=6.0))
