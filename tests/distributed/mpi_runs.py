"""Runs of the real CLI under mpiexec with several ranks (oversubscribing the cores is fine)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

ROOT = Path(__file__).resolve().parents[2]
NET = str(ROOT / "configs/bench/random_net.yaml")
MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",  # Open MPI refuses root without these (containers, CI)
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",  # more ranks than cores
}


def mpiexec_command(ranks, *args):
    mpiexec = shutil.which("mpiexec") or pytest.skip("no mpiexec on PATH")
    return [mpiexec, "-n", str(ranks), sys.executable, "-m", "brainsim.cli", *args]


def mpirun(ranks, *args, cwd, timeout=600):
    """Run `brainsim ARGS` on `ranks` ranks; returns the CompletedProcess."""
    env = {**os.environ, **MPI_ENV}
    return subprocess.run(
        mpiexec_command(ranks, *args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def mpipopen(ranks, *args, cwd):
    env = {**os.environ, **MPI_ENV}
    return subprocess.Popen(
        mpiexec_command(ranks, *args),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def read(store):
    """(spike gids, spike times, {trace set: values}) of a store."""
    spikes = xr.open_zarr(store, group="spikes")
    names = zarr.open_group(store, mode="r")["traces"].attrs["trace_sets"]
    traces = {}
    for name in names:
        ds = xr.open_zarr(store, group=f"traces/{name}")
        traces[name] = ds[next(iter(ds.data_vars))].values
    return spikes.gid.values, spikes.time.values, traces


def same(a, b):
    return (
        np.array_equal(a[0], b[0])
        and np.array_equal(a[1], b[1])
        and all(np.array_equal(a[2][k], b[2][k], equal_nan=True) for k in a[2])
        and a[2].keys() == b[2].keys()
    )


PROBES = (
    "probes=[{name: soma, variable: v, cell: net, cells: all, location: soma(0.5), sampling: 0.5}, "
    "{name: tip, variable: v, cell: net, cells: [0, 21, 42, 63], location: 'dend[14](1)'}]"
)
