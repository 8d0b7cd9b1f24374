"""SONATA spike reports: a store's spikes written in the layout libsonata reads (read back with libsonata's
SpikeReader), one population per population of the store with node ids 0-based within it, in (time, id)
order; a taken report path is refused unless it may be replaced; bad config values are ConfigErrors."""

import h5py
import libsonata
import numpy as np
import pytest
from support import ROOT

import brainsim
from brainsim.engine.run import check_output
from brainsim.errors import ConfigError, StoreError
from brainsim.io import sonata
from brainsim.io.run_store import RunStore
from brainsim.io.sonata import check_report, discard_report, report_path, write_spike_report
from brainsim.io.zarr_store import RunWriter

POPULATIONS = [
    {"name": "ctx.e", "region": "ctx", "cell_type": "pyr", "first_gid": 0, "count": 3, "kind": "excitatory"},
    {"name": "none", "region": None, "cell_type": "fs", "first_gid": 3, "count": 0, "kind": ""},
    {"name": "free", "region": None, "cell_type": "fs", "first_gid": 3, "count": 2, "kind": ""},
    {"name": "quiet", "region": None, "cell_type": "fs", "first_gid": 5, "count": 4, "kind": ""},
]
GID = np.array([4, 0, 2, 3, 1, 4, 0, 3, 2, 2, 0])
TIME = np.array([0.5, 1.0, 1.0, 1.0, 2.25, 2.25, 3.0, 3.0, 4.0, 7.5, 9.0])  # ms, ties across populations


def store(path, gid=GID, time=TIME, populations=POPULATIONS):
    """A complete run store holding the spikes (gid, time) of the populations."""
    writer = RunWriter.create(
        path,
        config={"name": "t", "simulation": {"tstop": 10.0}},
        counts={"cells": 9, "compartments": 9, "equations": 36},
        populations=populations,
    )
    writer.append_spikes(gid, time)
    writer.finish("complete")
    return RunStore.open(path)


def read_report(path):
    """{population: (node_ids, timestamps)} of a spike report, read with libsonata."""
    reader = libsonata.SpikeReader(str(path))
    out = {}
    for name in reader.get_population_names():
        population = reader[name]
        assert population.sorting == "by_time" and population.time_units == "ms"
        data = population.get_dict()
        out[name] = (data["node_ids"], data["timestamps"])
    return out


def test_report_path_is_beside_the_store():
    assert report_path("out/run.zarr").as_posix() == "out/run.spikes.h5"
    assert report_path("out/run").as_posix() == "out/run.spikes.h5"


@pytest.mark.parametrize("block", [3, sonata.BLOCK])
def test_each_population_holds_its_spikes_by_time_with_ids_from_zero(tmp_path, monkeypatch, block):
    monkeypatch.setattr(sonata, "BLOCK", block)  # 3: the spikes are read and written in four blocks
    run = store(tmp_path / "run.zarr")
    path = write_spike_report(tmp_path / "run.spikes.h5", run)
    report = read_report(path)
    assert list(report) == ["ctx.e", "free", "quiet"]  # every population with cells, none without
    ids, times = report["ctx.e"]
    assert ids.dtype == np.uint64 and times.dtype == np.float64
    np.testing.assert_array_equal(ids, [0, 2, 1, 0, 2, 2, 0])
    np.testing.assert_array_equal(times, [1.0, 1.0, 2.25, 3.0, 4.0, 7.5, 9.0])
    np.testing.assert_array_equal(report["free"][0], [1, 0, 1, 0])  # gids 4, 3, 4, 3
    np.testing.assert_array_equal(report["free"][1], [0.5, 1.0, 2.25, 3.0])
    assert report["quiet"][0].size == 0 and report["quiet"][1].size == 0
    with h5py.File(path, "r") as f:
        sorting = f["spikes/ctx.e"].attrs.get_id("sorting").dtype
        assert h5py.check_enum_dtype(sorting) == {"none": 0, "by_id": 1, "by_time": 2}
        assert f["spikes/ctx.e/timestamps"].attrs["units"] == "ms"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.spikes.h5", "run.zarr"]  # no staging file


def test_a_population_name_that_is_no_group_name_is_refused(tmp_path):
    run = store(tmp_path / "run.zarr", populations=[{**POPULATIONS[0], "name": "a/b", "count": 9}])
    with pytest.raises(StoreError, match=r"population 'a/b' cannot name an HDF5 group"):
        write_spike_report(tmp_path / "run.spikes.h5", run)
    assert not (tmp_path / "run.spikes.h5").exists()


def test_a_taken_report_path_is_refused_unless_it_holds_a_report_to_replace(tmp_path):
    run = store(tmp_path / "run.zarr")
    report = write_spike_report(tmp_path / "run.spikes.h5", run)
    with pytest.raises(StoreError, match=r"run.spikes.h5: the SONATA spike report .* already exists"):
        check_report(report, overwrite=False)
    check_report(report, overwrite=True)
    other = tmp_path / "other.spikes.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(StoreError, match=r"will not overwrite it: not a SONATA spike report"):
        check_report(other, overwrite=True)
    with pytest.raises(StoreError, match=r"other.spikes.h5: the SONATA spike report"):
        check_output(tmp_path / "other.zarr", False, sonata=True)  # the store is not there, its report is
    discard_report(other)  # not a report: left alone
    discard_report(report)
    assert other.exists() and not report.exists()


def test_a_bad_sonata_value_or_population_name_is_a_config_error():
    net = ROOT / "configs/bench/random_net.yaml"
    with pytest.raises(ConfigError, match=r"'output.sonata': got 'yes'"):
        brainsim.load_config(net, {"output.sonata": "yes"})
    with pytest.raises(ConfigError, match=r"'cells\[0\].name': got 'net/a'; allowed: a name without '/'"):
        brainsim.load_config(net, {"output.sonata": True, "cells[0].name": "net/a"})
