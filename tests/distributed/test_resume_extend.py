"""A run continued past its tstop: resuming with a longer simulation.tstop grows the store's arrays laid
out on time and ends exactly as a run to the new tstop from the start would (fixed-step method), on one
rank and on two; a tstop before the checkpoint, or a region bin cut short by the old tstop, is refused."""

import shutil

import numpy as np
import pytest
import xarray as xr
from mpi_runs import mpirun, read, same
from support import ROOT

import brainsim
from brainsim.errors import StoreError

CONFIG = ROOT / "tests/data/small_brain.yaml"  # fixed-step (staggered), regions in 1 ms bins, a trace set


def run(tmp, name, tstop, **options):
    cfg = brainsim.load_config(CONFIG, {"simulation.tstop": tstop})
    return brainsim.run(cfg, tmp / f"{name}.zarr", progress=False, **options)


def regions(store):
    ds = xr.open_zarr(store, group="regions")
    return ds.time.values, ds.rate.values, ds.v_mean.values


def same_regions(a, b):
    return all(np.array_equal(x, y, equal_nan=True) for x, y in zip(regions(a), regions(b), strict=True))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs to 15 and 20 ms, and a 10 ms run with checkpoints at 5 and 10 ms."""
    tmp = tmp_path_factory.mktemp("reference")
    run(tmp, "full15", 15.0)
    run(tmp, "full20", 20.0)
    run(tmp, "short", 10.0, checkpoint_every=5.0)
    return tmp


@pytest.mark.parametrize(
    "step, tstop", [("step-000000000400", 20.0), ("step-000000000200", 20.0), ("step-000000000400", 15.0)]
)
def test_resuming_with_a_longer_tstop_equals_the_longer_run(reference, tmp_path, step, tstop):
    store = shutil.copytree(reference / "short.zarr", tmp_path / "resumed.zarr")
    resumed = run(tmp_path, "resumed", tstop, resume=reference / "short.checkpoint" / step)
    full = reference / f"full{tstop:g}.zarr"
    assert resumed.status == "complete" and resumed.t_reached == tstop and resumed.tstop == tstop
    assert same(read(store), read(full)) and same_regions(store, full)
    assert resumed.config["simulation"]["tstop"] == tstop


def test_a_tstop_before_the_checkpoint_is_refused_naming_both(reference, tmp_path):
    shutil.copytree(reference / "short.zarr", tmp_path / "resumed.zarr")
    with pytest.raises(StoreError, match=r"checkpoint is at t = 10 ms, after this run's tstop 7 ms"):
        run(tmp_path, "resumed", 7.0, resume=reference / "short.checkpoint")
    assert brainsim.open_run(tmp_path / "resumed.zarr").tstop == 10.0  # the store is left as it was


def test_a_region_bin_cut_short_at_the_old_tstop_is_refused(tmp_path):
    run(tmp_path, "odd", 2.5, checkpoint_every=2.5)
    with pytest.raises(StoreError, match="last region bin was cut short at that tstop"):
        run(tmp_path, "odd", 5.0, resume=tmp_path / "odd.checkpoint")


def test_resuming_on_two_ranks_with_a_longer_tstop(reference, tmp_path):
    args = ["-q", "--set", "simulation.tstop=10", "--checkpoint-every", "10ms"]
    res = mpirun(2, "run", str(CONFIG), "-o", str(tmp_path / "two.zarr"), *args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for ranks in (2, 1):
        store = shutil.copytree(tmp_path / "two.zarr", tmp_path / f"resumed{ranks}.zarr")
        res = mpirun(
            ranks,
            "run",
            str(CONFIG),
            "-o",
            str(store),
            "-q",
            "--set",
            "simulation.tstop=20",
            "--resume",
            str(tmp_path / "two.checkpoint"),
            cwd=tmp_path,
        )
        assert res.returncode == 0, res.stderr
        full = reference / "full20.zarr"
        assert same(read(store), read(full)) and same_regions(store, full), (
            f"resumed on {ranks} ranks differs"
        )
        assert brainsim.open_run(store).status == "complete"
