"""The run store's reader: a store the writer made, read back typed and lazily; stores of another kind,
of a newer format or damaged are StoreErrors naming the store and what is wrong."""

import json
import shutil
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.errors import ZarrUserWarning

from brainsim.errors import BrainsimError, StoreError
from brainsim.io.run_store import PopulationRow, RunStore
from brainsim.io.zarr_store import SPIKE_CHUNK, RunWriter

pytestmark = pytest.mark.filterwarnings("error")  # reading must be warning-free too

CONFIG = {"name": "tiny", "simulation": {"dt": 0.025, "tstop": 2.0}}
COUNTS = {"cells": 4, "compartments": 40, "equations": 160}
TIMING = {"build_s": 0.5, "run_s": 2.0, "ns_per_compartment_step": 10.0}
POPULATIONS = [
    {"name": "ctx.e", "region": "ctx", "cell_type": "pyr", "first_gid": 0, "count": 3, "kind": "excitatory"},
    {"name": "free", "region": None, "cell_type": "fs", "first_gid": 3, "count": 1, "kind": ""},
]
N_SPIKES = SPIKE_CHUNK + 10  # two chunks of spikes/time


def write(path, status="complete"):
    """A store with two chunks of spikes, two trace sets and a regions group, as a run writes one."""
    store = RunWriter.create(
        path,
        config=CONFIG,
        counts=COUNTS,
        config_hash="h1",
        provenance={"patient_id": "P-1"},
        populations=POPULATIONS,
    )
    times = np.arange(9) * 0.25
    for name, variable in (("v_soma", "v"), ("m", "hh.m")):
        store.add_trace_set(
            name, variable=variable, units="mV", times=times, gid=[0, 3], compartment=[0, 0],
            location=["soma(0.5)", "soma(0.5)"],
        )  # fmt: skip
    store.add_regions(
        bin_ms=0.5, n_bins=4, labels=["ctx"], hemisphere=["left"], centres=[[1.0, 2.0, 3.0]], n_cells=[3]
    )
    store.write_samples("v_soma", 0, np.full((9, 2), -65.0))
    store.write_regions(0, np.full((4, 1), 5.0), np.full((4, 1), -64.0))
    store.append_spikes(np.arange(N_SPIKES) % 4, np.linspace(0.0, 1.9, N_SPIKES))
    if status == "running":
        store.flush()
        store.publish(1.0)
    else:
        store.finish("complete", timing=TIMING, t_reached=2.0)
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write(tmp_path_factory.mktemp("store") / "run.zarr")


@pytest.fixture
def copy(written, tmp_path):
    """A fresh copy of the written store, to damage."""
    path = tmp_path / "copy.zarr"
    shutil.copytree(written, path)
    return path


def test_reads_back_what_the_writer_wrote(written):
    store = RunStore.open(written)
    assert store.path == written and store.status == "complete" and store.error is None
    assert store.t_reached == 2.0 and store.tstop == 2.0 and store.config == CONFIG
    assert store.config_hash == "h1" and store.counts == COUNTS and store.timing == TIMING
    assert store.provenance == {"patient_id": "P-1"} and store.progress["t_from"] == 0.0
    assert store.attrs["format"] == "brainsim-run" and json.loads(store.attrs["config"]) == CONFIG
    assert store.populations == (
        PopulationRow("ctx.e", "ctx", "pyr", 0, 3, "excitatory"),
        PopulationRow("free", None, "fs", 3, 1, ""),
    )
    with pytest.raises(AttributeError):
        store.populations[0].count = 5  # frozen rows
    spikes = store.spikes
    assert isinstance(spikes, xr.Dataset) and spikes.sizes["spike"] == N_SPIKES
    assert spikes.gid.chunks is not None  # lazy: dask-backed until asked for
    np.testing.assert_array_equal(spikes.gid.values, np.arange(N_SPIKES) % 4)
    assert store.trace_sets == ("v_soma", "m") and list(store.traces) == ["v_soma", "m"]
    assert len(store.traces) == 2 and "m" in store.traces and "nope" not in store.traces
    v = store.traces["v_soma"]
    assert (
        v.v.dims == ("time", "probe") and (v.v.values == -65.0).all() and v.location.values[0] == "soma(0.5)"
    )
    assert np.isnan(store.traces["m"]["hh.m"].values).all()
    with pytest.raises(TypeError):
        store.traces["v_soma"] = v  # read-only
    with pytest.raises(KeyError):
        store.traces["nope"]
    regions = store.regions
    assert regions.attrs["bin"] == 0.5 and list(regions.region.values) == ["ctx"]
    np.testing.assert_array_equal(regions.rate.values[:, 0], [5.0] * 4)


def test_a_running_store_reads_as_of_its_last_publish(tmp_path):
    store = RunStore.open(write(tmp_path / "run.zarr", status="running"))
    assert store.status == "running" and store.t_reached == 1.0 and store.timing is None


def test_a_store_without_regions(tmp_path):
    path = tmp_path / "run.zarr"
    RunWriter.create(path, config=CONFIG, counts=COUNTS, populations=POPULATIONS).finish("complete")
    store = RunStore.open(path)
    assert store.regions is None and store.trace_sets == () and store.spikes.sizes["spike"] == 0


def test_structural_connectivity_reads_back_with_the_source_axis(tmp_path, written):
    """weights[target, source] on (region, region_source); a store written without it reads as None."""
    path = tmp_path / "run.zarr"
    store = RunWriter.create(path, config=CONFIG, counts=COUNTS, populations=POPULATIONS)
    weights, lengths = np.array([[0.0, 2.0], [0.5, 0.0]]), np.array([[0.0, 40.0], [40.0, 0.0]])
    with pytest.raises(ValueError, match=r"sc_weights must be \(2, 2\) for 2 regions; got \(1, 2\)"):
        store.add_regions(
            bin_ms=1.0, n_bins=2, labels=["a", "b"], hemisphere=["left", "right"], centres=None,
            n_cells=[1, 1], sc_weights=weights[:1],
        )  # fmt: skip
    store.add_regions(
        bin_ms=1.0, n_bins=2, labels=["a", "b"], hemisphere=["left", "right"], centres=None, n_cells=[1, 1],
        sc_weights=weights, sc_tract_lengths=lengths,
    )  # fmt: skip
    store.finish("complete")
    sc = RunStore.open(path).connectivity
    assert sc.sc_weights.dims == ("region", "region_source") and sc.sc_tract_lengths.attrs["units"] == "mm"
    assert float(sc.sc_weights.sel(region="a", region_source="b")) == 2.0  # from b to a
    np.testing.assert_array_equal(sc.sc_tract_lengths.values, lengths)
    assert RunStore.open(written).connectivity is None
    chunk = next((path / "regions" / "sc_weights" / "c").rglob("*"))
    shutil.rmtree(chunk) if chunk.is_dir() else chunk.unlink()
    with pytest.raises(StoreError, match=r"array regions/sc_weights lacks 1 of its 1 chunks"):
        _ = RunStore.open(path).connectivity


def set_attrs(path, **attrs):
    root = zarr.open_group(path, mode="r+")
    root.attrs.update(attrs)
    consolidate(path)


def consolidate(path):
    with warnings.catch_warnings():  # zarr warns that consolidation is outside the v3 spec
        warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
        zarr.consolidate_metadata(path)


def damage_root(path, text):
    (path / "zarr.json").write_text(text)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: shutil.rmtree(p), r"not a run store \(nothing there"),
        (lambda p: (p / "zarr.json").unlink(), r"not a run store \(a folder without zarr.json"),
        (lambda p: damage_root(p, "{broken"), r"unreadable Zarr metadata in zarr.json \(JSONDecodeError"),
        (lambda p: damage_root(p, '{"zarr_format": 3, "node_type": "array"}'), "unreadable Zarr metadata"),
        (lambda p: set_attrs(p, format="brainsim-summary"), "not a run store .format 'brainsim-summary'"),
        (lambda p: set_attrs(p, format_version=2), "format_version 2; this brainsim reads versions 1 to 1"),
        (lambda p: set_attrs(p, config="{not json"), "attribute config is not the JSON text"),
        (lambda p: set_attrs(p, config='{"simulation": {}}'), "with simulation.tstop .KeyError"),
        (lambda p: set_attrs(p, status="done"), "attribute status is 'done'; expected one of"),
        (lambda p: set_attrs(p, populations=[{"name": "x"}]), r"attribute populations\[0\] is"),
        (
            lambda p: (p / "spikes/time/c/1").unlink(),
            "array spikes/time lacks 1 of its 2 chunks .first: chunk 1",
        ),
        (lambda p: shutil.rmtree(p / "spikes/time/c"), "array spikes/time lacks 2 of its 2 chunks"),
    ],
)
def test_damaged_or_foreign_stores_are_store_errors(copy, damage, message):
    damage(copy)
    with pytest.raises(StoreError, match=message) as raised:
        RunStore.open(copy)
    assert raised.value.path == copy and str(raised.value).startswith(f"{copy}: ")
    assert isinstance(raised.value, BrainsimError)


def test_a_missing_attribute_is_named(copy):
    root = zarr.open_group(copy, mode="r+")
    del root.attrs["t_reached"]
    del root.attrs["counts"]
    consolidate(copy)
    with pytest.raises(StoreError, match="lacks the attribute.s. t_reached, counts"):
        RunStore.open(copy)


def test_a_damaged_trace_set_is_named_when_opened(copy):
    """Trace sets open lazily: a damaged one fails on access, naming the store and the group."""
    (copy / "traces/m/time/c/0").write_bytes(b"not zstd")  # the time index is read on opening
    store = RunStore.open(copy)
    assert store.traces["v_soma"].v.shape == (9, 2)
    with pytest.raises(StoreError, match="unreadable group traces/m .RuntimeError") as raised:
        store.traces["m"]
    assert raised.value.path == copy
