"""`brainsim run` end to end in a subprocess: the store it writes, a blow-up, an interrupted run."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

ROOT = Path(__file__).resolve().parents[2]
M1, M2 = str(ROOT / "configs/bench/m1_hh_cable.yaml"), str(ROOT / "configs/bench/m2_ring.yaml")


def brainsim(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "brainsim.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def attrs(store):
    return dict(zarr.open_group(store, mode="r").attrs)


def test_run_writes_a_store_xarray_reads(tmp_path):
    out = tmp_path / "ring.zarr"
    probe = "probes=[{name: soma_v, variable: v, cell: ring, cells: all, location: soma(0.5), sampling: 0.5}]"
    res = brainsim(
        "run",
        M2,
        "-o",
        str(out),
        "--set",
        "cells.ring.count=8",
        "--set",
        "simulation.tstop=30",
        "--set",
        probe,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert (
        f"output: {out}" in res.stdout
        and "spikes 6" in res.stdout
        and "ns per compartment-step" in res.stdout
    )
    assert "[brainsim] t =" in res.stderr  # progress
    a = attrs(out)
    assert a["status"] == "complete" and a["brainsim_version"]
    assert json.loads(a["config"])["cells"][0]["count"] == 8 and len(a["config_hash"]) == 16
    assert a["counts"] == {"cells": 8, "compartments": 8 * 196, "equations": 8 * (203 + 3 + 1)}
    assert set(a["timing"]) == {
        "build_s",
        "run_s",
        "ns_per_compartment_step",
        "exchange_s",
        "epochs",
        "steps",
        "ranks",
    }
    assert a["timing"]["run_s"] > 0 and a["timing"]["ranks"] == 1 and a["timing"]["epochs"] == 6
    spikes = xr.open_zarr(out, group="spikes")
    assert spikes.gid.dims == ("spike",) and spikes.gid.dtype == np.int64 and spikes.time.dtype == np.float64
    assert spikes.gid.values.tolist() == [0, 1, 2, 3, 4, 5]
    assert np.all(np.diff(spikes.time.values) > 0)
    traces = xr.open_zarr(out, group="traces/soma_v")
    assert traces["v"].dims == ("time", "probe") and traces["v"].dtype == np.float32
    assert traces.gid.values.tolist() == list(range(8)) and traces.time.values[[0, -1]].tolist() == [
        0.0,
        30.0,
    ]
    assert traces.location.values[0] == "soma[0](0.5)"
    assert traces["v"].values.max() > 20.0  # the spikes are in the traces


@pytest.mark.parametrize("method", ["staggered", "petsc"])
def test_blow_up_names_cell_compartment_and_time(tmp_path, method):
    out = tmp_path / "m1.zarr"
    overrides = ["stimuli[0].amplitude=1e7", "simulation.tstop=20", f"simulation.method={method}"]
    res = brainsim("run", M1, "-o", str(out), *(f"--set={o}" for o in overrides), cwd=tmp_path)
    assert res.returncode == 3, res.stderr
    assert "cell gid=0, compartment" in res.stderr and "t=5" in res.stderr
    a = attrs(out)
    assert a["status"] == "failed" and "gid=0" in a["error"]
    if method == "staggered":  # the step grid of the peers' scheme: the blow-up shows in the first step
        assert "numerical blow-up in cell gid=0, compartment 0, at t=5.025 ms" in res.stderr
        assert a["t_reached"] == 5.0
        traces = xr.open_zarr(out, group="traces/soma_v")
        recorded = np.isfinite(traces["v"].values[:, 0])
        assert traces.time.values[recorded].tolist() == list(np.arange(201) * 0.025)  # up to the blow-up
        assert not recorded[201:].any()  # rows after t_reached are NaN


def _interrupt(tmp_path, sig):
    out = tmp_path / f"l5_{sig.name}.zarr"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "brainsim.cli",
            "run",
            str(ROOT / "configs/l5pc.yaml"),
            "-o",
            str(out),
            "-q",
            "--set",
            "simulation.tstop=5000",
            "--set",
            "output.flush_interval=0.2",
            "--set",
            "simulation.method=staggered",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        if (out / "zarr.json").exists() and attrs(out).get("t_reached", 0) >= 10:
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err, out


def test_interrupted_run_leaves_a_readable_store_and_a_checkpoint(tmp_path):
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 75), (signal.SIGUSR1, 75)):
        exit_code, err, out = _interrupt(tmp_path, sig)
        assert exit_code == code, err
        a = attrs(out)
        assert a["status"] == "interrupted" and a["error"].startswith(f"interrupted by {sig.name}")
        assert (out.parent / out.name.replace(".zarr", ".checkpoint") / "latest" / "manifest.json").exists()
        traces = xr.open_zarr(out, group="traces/soma_v")
        recorded = traces.time.values[np.isfinite(traces["v"].values[:, 0])]
        assert recorded[-1] >= 10.0 and recorded[-1] == a["t_reached"]
        assert np.array_equal(recorded, traces.time.values[: recorded.size])  # no gap
