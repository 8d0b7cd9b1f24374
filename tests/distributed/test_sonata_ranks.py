"""The SONATA spike report of a run (output.sonata): it holds exactly the store's spikes, and is the same
on two ranks as on one and after a resume from a checkpoint; a replaced store discards a stale report."""

import shutil

import h5py
import libsonata
import numpy as np
import pytest
import xarray as xr
from mpi_runs import mpirun
from support import ROOT

import brainsim

CONFIG = ROOT / "tests/data/small_brain.yaml"  # fixed-step, twelve populations (six regions, two types)
TSTOP = 20.0


def run(path, sonata=True, tstop=TSTOP, **options):
    cfg = brainsim.load_config(CONFIG, {"simulation.tstop": tstop, "output.sonata": sonata})
    return brainsim.run(cfg, path, progress=False, **options)


def datasets(path):
    """{dataset path: values} of an HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, node: out.update({name: node[()]}) if isinstance(node, h5py.Dataset) else None
        )
    return out


def same_report(a, b):
    x, y = datasets(a), datasets(b)
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """A run with a report and checkpoints at 10 and 20 ms; returns its store."""
    tmp = tmp_path_factory.mktemp("full")
    return run(tmp / "full.zarr", checkpoint_every=10.0)


def test_the_report_holds_exactly_the_stores_spikes(full):
    spikes = xr.open_zarr(full.path, group="spikes")
    gid, time = spikes.gid.values, spikes.time.values
    assert gid.size > 50  # the network fires
    reader = libsonata.SpikeReader(str(full.path.with_name("full.spikes.h5")))
    assert reader.get_population_names() == sorted(p.name for p in full.populations)
    total = 0
    for p in full.populations:
        population = reader[p.name]
        assert population.sorting == "by_time" and population.time_units == "ms"
        data = population.get_dict()
        mine = (gid >= p.first_gid) & (gid < p.first_gid + p.count)  # in the store's (time, gid) order
        np.testing.assert_array_equal(data["node_ids"], gid[mine] - p.first_gid)
        np.testing.assert_array_equal(data["timestamps"], time[mine])
        assert data["node_ids"].max(initial=0) < p.count
        total += data["node_ids"].size
    assert total == gid.size


def test_two_ranks_write_the_report_of_one(full, tmp_path):
    out = tmp_path / "two.zarr"
    args = ["--set", f"simulation.tstop={TSTOP}", "--set", "output.sonata=true", "-q"]
    res = mpirun(2, "run", str(CONFIG), "-o", str(out), *args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"spike report: {tmp_path / 'two.spikes.h5'}" in res.stdout
    assert same_report(tmp_path / "two.spikes.h5", full.path.with_name("full.spikes.h5"))


def test_a_resumed_run_rewrites_the_report_of_the_uninterrupted_run(full, tmp_path):
    store = shutil.copytree(full.path, tmp_path / "resumed.zarr")
    stale = shutil.copy(full.path.with_name("full.spikes.h5"), tmp_path / "resumed.spikes.h5")
    with h5py.File(stale, "r+") as f:
        f["spikes/lh-precentral.pyr/timestamps"][0] = -1.0  # what the resumed run must not keep
    resumed = run(store, resume=full.path.with_name("full.checkpoint") / "step-000000000400")
    assert resumed.status == "complete"
    assert same_report(stale, full.path.with_name("full.spikes.h5"))


def test_a_store_replaced_without_a_report_discards_the_stale_one(full, tmp_path):
    store = shutil.copytree(full.path, tmp_path / "again.zarr")
    report = shutil.copy(full.path.with_name("full.spikes.h5"), tmp_path / "again.spikes.h5")
    run(store, sonata=False, tstop=2.0, overwrite=True)
    assert not (tmp_path / "again.spikes.h5").exists(), report
