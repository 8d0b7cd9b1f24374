"""A small brain under treatment on 1, 2 and 3 ranks: the same spikes, traces and region summaries; and a
resumed run continues a region bin that a checkpoint cut in two."""

import shutil

import numpy as np
import xarray as xr
import zarr
from mpi_runs import ROOT, mpirun, read, same

SMALL = str(ROOT / "tests/data/small_brain.yaml")
INTERVENTIONS = {
    "drug.yaml": "kind: drug\nmechanism: nata\nfactor: 0.3\nregions: [lh-precentral]\nonset: 40\nramp: 20\n",
    "stim.yaml": "kind: stimulation\nregions: [rh-postcentral]\ncell_types: [pyr]\nlocation: soma(0.5)\n"
    "amplitude: 0.5\nfrequency: 40\npulse_width: 2\nstart: 30\n",
    "lesion.yaml": "kind: lesion\nat: 60\nregions: [lh-superiorfrontal]\n"
    "tracts: [{source: rh-precentral, target: lh-precentral, scale: 0.1}]\n",
}
ARGS = ["--set", "simulation.tstop=120", "-q"]


def overlays(folder):
    args = []
    for name, text in INTERVENTIONS.items():
        (folder / name).write_text(text)
        args += ["--intervention", str(folder / name)]
    return args


def region_summaries(store):
    ds = xr.open_zarr(store, group="regions")
    return ds.rate.values, ds.v_mean.values


def test_treated_brain_is_the_same_on_any_rank_count(tmp_path):
    args = overlays(tmp_path)
    results = {}
    for ranks in (1, 2, 3):
        store = tmp_path / f"np{ranks}.zarr"
        res = mpirun(ranks, "run", SMALL, "-o", str(store), *args, *ARGS, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        results[ranks] = (read(store), region_summaries(store))
    (gid, time, _), (rate, v_mean) = results[1]
    assert gid.size > 300 and np.isfinite(v_mean).all()
    assert np.all(rate[65:, 2] == 0)  # the lesioned region is silent
    for ranks in (2, 3):
        spikes_traces, (rate_n, v_mean_n) = results[ranks]
        assert same(spikes_traces, results[1][0]), f"{ranks} ranks differ from 1 rank"
        assert np.array_equal(rate_n, rate)
        assert np.allclose(v_mean_n, v_mean, rtol=0, atol=1e-4)  # sums over ranks in another order


def test_resume_inside_a_region_bin(tmp_path):
    args = [*overlays(tmp_path), *ARGS, "--set", "output.region_bin=7"]
    full = tmp_path / "full.zarr"
    res = mpirun(2, "run", SMALL, "-o", str(full), "--checkpoint-every", "50ms", *args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    step = tmp_path / "full.checkpoint" / "step-000000002000"  # t = 50 ms, inside the bin [49, 56)
    reference = region_summaries(full)
    for ranks in (1, 3):
        copy = tmp_path / f"resumed{ranks}.zarr"
        shutil.copytree(full, copy)
        root = zarr.open_group(copy, mode="r+")
        root["regions/rate"][7:] = np.nan  # what the resumed run must write again
        root["regions/v_mean"][7:] = np.nan
        res = mpirun(ranks, "run", SMALL, "-o", str(copy), "--resume", str(step), *args, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        rate, v_mean = region_summaries(copy)
        assert np.array_equal(rate, reference[0]), f"resumed on {ranks} ranks differs"
        assert np.allclose(v_mean, reference[1], rtol=0, atol=1e-4)
    res = mpirun(1, "run", SMALL, "-o", str(copy), "--resume", str(step), *ARGS, cwd=tmp_path)
    assert res.returncode != 0 and "config" in res.stderr  # without the interventions: another model
