"""The run-output store's writer: layout, xarray round trip, ordering rules, several writers, failure and
resume."""

import json
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr

from brainsim.errors import StoreError
from brainsim.io import zarr_store
from brainsim.io.run_store import RunStore
from brainsim.io.zarr_store import RunWriter, probe_chunk_for

pytestmark = pytest.mark.filterwarnings("error")  # writing must be warning-free too

COUNTS = {"cells": 3, "compartments": 300, "equations": 1200}
TIMING = {"build_s": 1.5, "run_s": 20.0, "ns_per_compartment_step": 12.5}
TIMES = np.arange(41) * 0.025  # the sampling grid of a 1 ms run


def open_xr(path, group=None) -> xr.Dataset:
    """Open and load with xarray the way analysts do, failing on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(path, group=group).load()


CONFIG = {"simulation": {"dt": 0.025, "tstop": 1.0}}


def make_store(path, **kwargs) -> RunWriter:
    return RunWriter.create(path, config=CONFIG, counts=COUNTS, config_hash="abc", **kwargs)


def add_voltage(store, n_probe=3, probe_chunk=None):
    gid = np.arange(n_probe)
    locations = [f"dend[{i}](0.25)" if i % 2 else "soma(0.5)" for i in range(n_probe)]
    store.add_trace_set(
        "v_soma",
        variable="v",
        units="mV",
        times=TIMES,
        gid=gid,
        compartment=np.arange(n_probe) * 7,
        location=locations,
        probe_chunk=probe_chunk,
    )
    return gid, locations


def test_round_trip_through_xarray(tmp_path):
    path = tmp_path / "run.zarr"
    store = make_store(path)
    gid, locations = add_voltage(store, n_probe=3)
    store.add_trace_set(
        "m_dend",
        variable="hh.m",
        units="1",
        times=np.arange(11) * 0.1,
        gid=np.zeros(300, int),
        compartment=np.arange(300),
        location=[f"dend[{i}](0.5)" for i in range(300)],
    )
    rng = np.random.default_rng(0)
    v = rng.normal(-65.0, 5.0, (30, 3))
    m = rng.uniform(0.0, 1.0, (4, 300))
    store.write_samples("v_soma", 0, v[:10])
    store.write_samples("v_soma", 10, v[10:])  # two blocks of consecutive rows
    store.write_samples("m_dend", 0, m)
    store.append_spikes([2, 0], [0.5, 0.25])
    store.finish("complete", timing=TIMING, t_reached=0.725)

    root = open_xr(path)
    assert root.attrs["format"] == "brainsim-run" and root.attrs["format_version"] == 1
    assert root.attrs["status"] == "complete" and "error" not in root.attrs
    assert root.attrs["t_reached"] == 0.725 and root.attrs["config_hash"] == "abc"
    assert root.attrs["counts"] == COUNTS and root.attrs["timing"] == TIMING
    assert json.loads(root.attrs["config"]) == CONFIG
    assert root.attrs["brainsim_version"] == zarr_store.__version__

    spikes = open_xr(path, "spikes")
    assert spikes.gid.dims == ("spike",) and spikes.gid.dtype == np.int64
    np.testing.assert_array_equal(spikes.gid, [0, 2])
    np.testing.assert_array_equal(spikes.time, [0.25, 0.5])
    assert spikes.time.dtype == np.float64 and spikes.time.attrs["units"] == "ms"

    ds = open_xr(path, "traces/v_soma")
    assert list(ds.data_vars) == ["v"] and ds.v.dims == ("time", "probe") and ds.v.dtype == np.float32
    assert set(ds.coords) == {"time", "gid", "compartment", "location"}
    assert ds.v.attrs["units"] == "mV" and ds.time.attrs["units"] == "ms" and ds.time.dtype == np.float64
    np.testing.assert_array_equal(ds.time, TIMES)  # the whole grid, written up front
    np.testing.assert_array_equal(ds.v[:30], v.astype(np.float32))
    assert np.isnan(ds.v[30:]).all()  # rows not reached yet
    np.testing.assert_array_equal(ds.gid, gid)
    assert [type(x) for x in ds.location.values] == [str] * 3 and list(ds.location.values) == locations
    m_ds = open_xr(path, "traces/m_dend")
    np.testing.assert_array_equal(m_ds["hh.m"][:4], m.astype(np.float32))
    assert zarr.open_array(path / "traces/m_dend/hh.m", mode="r").chunks[1] == 256

    read = RunStore.open(path)
    assert read.status == "complete" and read.trace_sets == ("v_soma", "m_dend")


def test_spike_batches_sorted_and_in_order(tmp_path):
    store = make_store(tmp_path / "run.zarr")
    store.append_spikes([5, 1, 3, 2], [1.0, 1.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="before the last spike appended"):
        store.append_spikes([0], [1.0])  # same time as the last, smaller gid
    store.append_spikes([9], [1.0])
    store.finish("complete")
    spikes = RunStore.open(tmp_path / "run.zarr").spikes
    gid, time = spikes.gid.values, spikes.time.values
    assert gid.tolist() == [3, 1, 2, 5, 9] and time.tolist() == [0.5, 1.0, 1.0, 1.0, 1.0]


def test_overwrite_only_when_asked_and_only_stores(tmp_path):
    path = tmp_path / "run.zarr"
    make_store(path).finish("complete")
    with pytest.raises(StoreError, match="--overwrite"):
        make_store(path)
    make_store(path, overwrite=True)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(StoreError, match="not a Zarr store"):
        make_store(other, overwrite=True)
    assert (other / "keep.txt").read_text() == "x"


def test_failed_and_interrupted_runs_keep_what_was_published(tmp_path):
    for status in ("failed", "interrupted"):
        path = tmp_path / f"{status}.zarr"
        store = make_store(path)
        add_voltage(store)
        store.write_samples("v_soma", 0, np.full((8, 3), -60.0))
        store.append_spikes([1], [0.1])
        store.flush()
        store.publish(0.175)
        mid = open_xr(path)
        assert mid.attrs["status"] == "running" and mid.attrs["t_reached"] == 0.175
        store.write_samples("v_soma", 8, np.full((4, 3), -50.0))
        store.finish(status, error=f"{status} on purpose", t_reached=0.275)
        root = open_xr(path)
        assert root.attrs["status"] == status and root.attrs["error"] == f"{status} on purpose"
        v = open_xr(path, "traces/v_soma").v.values
        assert (v[:8] == -60).all() and (v[8:12] == -50).all() and np.isnan(v[12:]).all()
        assert open_xr(path, "spikes").gid.values.tolist() == [1]


def test_two_writers_own_disjoint_chunk_aligned_columns(tmp_path):
    """What ranks do: one creates, the others attach; each writes its own probes' columns."""
    path = tmp_path / "run.zarr"
    chunk = probe_chunk_for([0, 4, 10])  # writer 0: probes 0..3, writer 1: probes 4..9
    assert chunk == 2
    store = make_store(path)
    add_voltage(store, n_probe=10, probe_chunk=chunk)
    store.publish(0.0)
    other = RunWriter.attach(path)
    store.write_samples("v_soma", 0, np.full((41, 4), 1.0), first_probe=0)
    other.write_samples("v_soma", 0, np.full((41, 6), 2.0), first_probe=4)
    other.flush()
    store.finish("complete", t_reached=1.0)
    v = open_xr(path, "traces/v_soma").v.values
    assert (v[:, :4] == 1).all() and (v[:, 4:] == 2).all()
    assert probe_chunk_for([0, 128, 256]) == 128 and probe_chunk_for([0, 85, 171, 256]) == 1
    assert probe_chunk_for([0, 512, 1024]) == 256


def test_resume_drops_later_spikes_and_checks_the_run(tmp_path):
    path = tmp_path / "run.zarr"
    store = make_store(path)
    add_voltage(store)
    store.append_spikes([0, 1, 2], [0.2, 0.5, 0.7])
    store.finish("interrupted", error="interrupted by SIGTERM", t_reached=0.5)
    with pytest.raises(StoreError, match="not the output of this run"):
        RunWriter.resume(path, "another-hash", 0.5)
    with pytest.raises(StoreError, match="no run store here to continue"):
        RunWriter.resume(tmp_path / "elsewhere.zarr", "abc", 0.5)
    resumed = RunWriter.resume(path, "abc", 0.5)
    root = open_xr(path)
    assert root.attrs["status"] == "running" and "error" not in root.attrs and root.attrs["t_reached"] == 0.5
    assert open_xr(path, "spikes").time.values.tolist() == [0.2, 0.5]
    with pytest.raises(ValueError, match="before the last spike"):
        resumed.append_spikes([0], [0.4])
    resumed.append_spikes([2], [0.7])
    resumed.finish("complete", t_reached=1.0)
    assert open_xr(path, "spikes").gid.values.tolist() == [0, 1, 2]


def test_buffer_flushes_itself_past_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(zarr_store, "AUTO_FLUSH_BYTES", 100)
    path = tmp_path / "run.zarr"
    store = make_store(path)
    add_voltage(store)
    store.write_samples("v_soma", 0, np.zeros((20, 3)))  # 240 bytes: written at once
    assert (zarr.open_array(path / "traces/v_soma/v", mode="r")[:20] == 0).all()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda s: s.write_samples("nope", 0, np.zeros((1, 3))), StoreError, "no trace set 'nope'"),
        (lambda s: s.write_samples("v_soma", 40, np.zeros((2, 3))), StoreError, "cannot hold"),
        (lambda s: s.write_samples("v_soma", 0, np.zeros((2, 4))), StoreError, "cannot hold"),
        (lambda s: s.append_spikes([1.5], [0.1]), ValueError, "must be integers"),
        (lambda s: s.append_spikes([1], [np.nan]), ValueError, "finite"),
        (lambda s: s.finish("done"), ValueError, "status must be one of"),
        (lambda s: s.finish("failed"), ValueError, "error text is required"),
        (lambda s: s.finish("complete", error="x"), ValueError, "not allowed"),
        (lambda s: s.publish(-1.0), StoreError, "before the last t_reached"),
        (lambda s: add_voltage(s), StoreError, "already exists"),
        (lambda s: s.write_regions(0, np.zeros((1, 1)), np.zeros((1, 1))), StoreError, "no regions group"),
    ],
)
def test_invalid_calls_raise(tmp_path, call, error, message):
    """Refusals that concern the store name it (StoreError); malformed arguments are ValueErrors."""
    store = make_store(tmp_path / "run.zarr")
    add_voltage(store)
    with pytest.raises(error, match=message) as raised:
        call(store)
    if error is StoreError:
        assert raised.value.path == tmp_path / "run.zarr" and str(tmp_path / "run.zarr") in str(raised.value)


def test_no_writes_after_finish(tmp_path):
    store = make_store(tmp_path / "run.zarr")
    store.finish("complete")
    with pytest.raises(StoreError, match="finished"):
        store.append_spikes([0], [0.1])
