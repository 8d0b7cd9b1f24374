"""Tests of the run-output store: layout, xarray round trip, ordering rules, failure and append behaviour."""

import json
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr

from brainsim.io import zarr_store
from brainsim.io.zarr_store import RunStore, open_run

pytestmark = pytest.mark.filterwarnings("error")  # writing must be warning-free too

COUNTS = {"cells": 3, "compartments": 300, "equations": 1200}
TIMING = {"build_s": 1.5, "run_s": 20.0, "ns_per_compartment_step": 12.5}


def open_xr(path, group=None) -> xr.Dataset:
    """Open and load with xarray the way analysts do, failing on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(path, group=group).load()


def make_store(path, **kwargs) -> RunStore:
    return RunStore.create(path, config={"dt": 0.025, "tstop": 10.0}, counts=COUNTS, **kwargs)


def add_voltage(store, n_probe=3):
    gid = np.arange(n_probe) % 3
    locations = [f"dend[{i}](0.25)" if i % 2 else "soma(0.5)" for i in range(n_probe)]
    store.add_trace_set(
        "v_soma", variable="v", units="mV", gid=gid, compartment=np.arange(n_probe) * 7, location=locations
    )
    return gid, locations


def test_round_trip_through_xarray(tmp_path):
    path = tmp_path / "run.zarr"
    store = make_store(path)
    gid, locations = add_voltage(store, n_probe=3)
    dend_locations = [f"dend[{i}](0.5)" for i in range(300)]
    store.add_trace_set(
        "m_dend",
        variable="hh.m",
        units="1",
        gid=np.zeros(300, int),
        compartment=np.arange(300),
        location=dend_locations,
    )
    rng = np.random.default_rng(0)
    v = rng.normal(-65.0, 5.0, (5, 3))
    m = rng.uniform(0.0, 1.0, (4, 300))
    store.append_samples("v_soma", np.arange(5) * 0.025, v)
    store.append_samples("m_dend", np.arange(4) * 0.1, m)
    store.append_spikes([2, 0], [1.25, 0.5])
    store.finish("complete", timing=TIMING, t_reached=0.4)

    root = open_xr(path)
    assert root.attrs["format"] == "brainsim-run" and root.attrs["format_version"] == 1
    assert root.attrs["status"] == "complete" and "error" not in root.attrs
    assert root.attrs["t_reached"] == 0.4
    assert root.attrs["counts"] == COUNTS and root.attrs["timing"] == TIMING
    assert json.loads(root.attrs["config"]) == {"dt": 0.025, "tstop": 10.0}
    assert root.attrs["brainsim_version"] == zarr_store.__version__

    spikes = open_xr(path, "spikes")
    assert spikes.gid.dims == ("spike",) and spikes.gid.dtype == np.int64
    np.testing.assert_array_equal(spikes.gid, [0, 2])
    np.testing.assert_array_equal(spikes.time, [0.5, 1.25])
    assert spikes.time.dtype == np.float64 and spikes.time.attrs["units"] == "ms"

    ds = open_xr(path, "traces/v_soma")
    assert list(ds.data_vars) == ["v"] and ds.v.dims == ("time", "probe") and ds.v.dtype == np.float32
    assert set(ds.coords) == {"time", "gid", "compartment", "location"}
    assert ds.v.attrs["units"] == "mV" and ds.time.attrs["units"] == "ms" and ds.time.dtype == np.float64
    np.testing.assert_array_equal(ds.v, v.astype(np.float32))
    np.testing.assert_array_equal(ds.time, np.arange(5) * 0.025)
    np.testing.assert_array_equal(ds.gid, gid)
    np.testing.assert_array_equal(ds.compartment, [0, 7, 14])
    assert ds.gid.dtype == ds.compartment.dtype == np.int64
    assert list(ds.location.values) == locations and all(type(s) is str for s in ds.location.values)

    ds = open_xr(path, "traces/m_dend")
    assert list(ds.data_vars) == ["hh.m"] and ds["hh.m"].shape == (4, 300)
    np.testing.assert_array_equal(ds["hh.m"], m.astype(np.float32))
    assert ds.location.values[299] == "dend[299](0.5)"

    assert zarr.open_group(path, mode="r")["traces"].attrs["trace_sets"] == ["v_soma", "m_dend"]
    assert zarr.open_array(path / "traces/m_dend/hh.m", mode="r").chunks == (1024, 256)
    assert zarr.open_array(path / "spikes/time", mode="r").chunks == (65536,)

    run = open_run(path)
    assert run["attrs"]["status"] == "complete"
    np.testing.assert_array_equal(run["spikes"][0], [0, 2])
    times, values, run_gid, compartment, location = run["traces"]["v_soma"]
    np.testing.assert_array_equal(times, np.arange(5) * 0.025)
    np.testing.assert_array_equal(values, v.astype(np.float32))
    np.testing.assert_array_equal(run_gid, gid)
    np.testing.assert_array_equal(compartment, [0, 7, 14])
    assert list(location) == locations


def test_spike_batch_sorted_by_time_then_gid(tmp_path):
    store = make_store(tmp_path / "run.zarr")
    store.append_spikes([5, 3, 9, 1, 3], [2.0, 1.0, 1.0, 2.0, 0.5])
    store.append_spikes([8, 6], [2.0, 2.0])  # same time as the last spike (gid 5), larger gids: allowed
    store.flush(3.0)
    spikes = open_xr(store.path, "spikes")
    np.testing.assert_array_equal(spikes.time, [0.5, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    np.testing.assert_array_equal(spikes.gid, [3, 3, 9, 1, 5, 6, 8])


def test_out_of_order_batch_rejected(tmp_path):
    store = make_store(tmp_path / "run.zarr")
    store.append_spikes([1, 7], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"before the last spike appended \(t=2 ms, gid 7\)"):
        store.append_spikes([0, 1], [3.0, 1.5])
    with pytest.raises(ValueError, match="before the last spike"):
        store.append_spikes([6], [2.0])  # a tie in time must not undo the (time, gid) order
    store.flush(3.0)
    np.testing.assert_array_equal(open_run(store.path)["spikes"][1], [1.0, 2.0])


def test_overwrite_refused_unless_asked(tmp_path):
    path = tmp_path / "run.zarr"
    store = make_store(path)
    store.append_spikes([1], [1.0])
    store.finish("complete")
    with pytest.raises(FileExistsError, match="pass -o or --overwrite"):
        make_store(path)
    assert open_run(path)["attrs"]["status"] == "complete"
    make_store(path, overwrite=True)
    run = open_run(path)
    assert run["attrs"]["status"] == "running" and run["spikes"][0].size == 0

    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("data")
    with pytest.raises(FileExistsError, match="not a Zarr store"):
        make_store(other, overwrite=True)
    assert (other / "keep.txt").read_text() == "data"


def test_failed_run_keeps_flushed_data(tmp_path):
    path = tmp_path / "run.zarr"
    store = make_store(path)
    add_voltage(store)
    store.append_samples("v_soma", [0.0, 0.1], np.ones((2, 3)))
    store.append_spikes([0], [0.05])
    store.flush(0.1)
    store.append_samples("v_soma", [0.2], np.full((1, 3), 2.0))

    # Interrupted before any further flush: the flushed part is readable, unflushed samples are not visible.
    ds = open_xr(path, "traces/v_soma")
    np.testing.assert_array_equal(ds.time, [0.0, 0.1])
    root = open_xr(path).attrs
    assert root["status"] == "running" and root["t_reached"] == 0.1

    store.finish("failed", error="NumericalError: V=nan mV in gid 0 at t=0.2 ms")
    root = open_xr(path).attrs
    assert root["status"] == "failed" and root["error"].startswith("NumericalError")
    assert root["t_reached"] == 0.1  # the failure did not reach further
    ds = open_xr(path, "traces/v_soma")
    np.testing.assert_array_equal(ds.v, [[1, 1, 1], [1, 1, 1], [2, 2, 2]])
    np.testing.assert_array_equal(open_xr(path, "spikes").time, [0.05])
    with pytest.raises(ValueError, match="is finished"):
        store.append_spikes([0], [1.0])


def test_many_small_appends_equal_one_big_append(tmp_path):
    rng = np.random.default_rng(1)
    n_sample, n_probe, n_spike = 2600, 2, 70_000  # past the first trace chunk and the first spike chunk
    times = np.arange(n_sample) * 0.025
    values = rng.normal(size=(n_sample, n_probe))
    spike_time = np.sort(rng.uniform(0, times[-1], n_spike))
    spike_gid = rng.integers(0, 3, n_spike)

    big = make_store(tmp_path / "big.zarr")
    add_voltage(big, n_probe)
    big.append_samples("v_soma", times, values)
    big.append_spikes(spike_gid, spike_time)
    big.finish("complete")

    small = make_store(tmp_path / "small.zarr")
    add_voltage(small, n_probe)
    first_chunk = tmp_path / "small.zarr/traces/v_soma/v/c/0/0"
    edges = np.unique(np.r_[0, rng.integers(0, n_sample, 40), 1100, n_sample])
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        batch = (spike_time >= times[start]) & (spike_time < (times[stop] if stop < n_sample else np.inf))
        small.append_spikes(spike_gid[batch], spike_time[batch])
        small.append_samples("v_soma", times[start:stop], values[start:stop])
        small.flush(times[stop - 1])
        if stop == 1100:
            inode = first_chunk.stat().st_ino  # chunk 0 is full now; later appends must leave it alone
    assert first_chunk.stat().st_ino == inode
    small.finish("complete")

    a, b = open_run(big.path), open_run(small.path)
    arrays_a, arrays_b = (*a["spikes"], *a["traces"]["v_soma"]), (*b["spikes"], *b["traces"]["v_soma"])
    for x, y in zip(arrays_a, arrays_b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert arrays_a[0].size == n_spike and arrays_a[3].shape == (n_sample, n_probe)


def test_buffer_flushes_itself_past_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(zarr_store, "AUTO_FLUSH_BYTES", 100)
    store = make_store(tmp_path / "run.zarr")
    add_voltage(store)
    store.append_samples("v_soma", np.arange(5.0), np.zeros((5, 3)))  # 5*8 + 5*3*4 = 100 bytes: kept
    assert open_xr(store.path, "traces/v_soma").sizes["time"] == 0
    store.append_samples("v_soma", [5.0], np.zeros((1, 3)))
    assert open_xr(store.path, "traces/v_soma").sizes["time"] == 6
    assert open_run(store.path)["attrs"]["t_reached"] == 0.0  # only the caller advances t_reached


def test_invalid_calls_raise(tmp_path):
    store = make_store(tmp_path / "run.zarr")
    add_voltage(store)
    with pytest.raises(ValueError, match="already exists"):
        add_voltage(store)
    with pytest.raises(ValueError, match="no trace set 'cai'"):
        store.append_samples("cai", [0.0], [[1.0]])
    with pytest.raises(ValueError, match=r"values \(k, 3\)"):
        store.append_samples("v_soma", [0.0, 1.0], np.zeros((2, 2)))
    store.append_samples("v_soma", [1.0], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="increase past the last appended time"):
        store.append_samples("v_soma", [1.0], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="must be integers"):
        store.append_spikes([1.5], [1.0])
    with pytest.raises(ValueError, match="status must be one of"):
        store.finish("done")
    with pytest.raises(ValueError, match='error text is required with status "failed"'):
        store.finish("failed")
    assert open_run(store.path)["attrs"]["status"] == "running"
