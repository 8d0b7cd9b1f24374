"""SIGTERM before a time limit: checkpoint, interrupted store, clean exit; a failing rank stops all."""

import os
import signal
import time

import numpy as np
import zarr
from mpi_runs import NET, PROBES, mpipopen, mpirun, read, same

LONG = ["--set", "cells.net.count=64", "--set", PROBES, "--set", "simulation.tstop=1500", "-q"]


def test_sigterm_writes_a_checkpoint_and_the_resumed_run_is_exact(tmp_path):
    store = tmp_path / "run.zarr"
    proc = mpipopen(
        2, "run", NET, "-o", str(store), *LONG, "--set", "output.flush_interval=0.2", cwd=tmp_path
    )
    while proc.poll() is None:  # however long a loaded machine takes to get there
        if (store / "zarr.json").exists() and dict(zarr.open_group(store, mode="r").attrs).get(
            "t_reached", 0
        ) > 50:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be stopped"
    os.killpg(proc.pid, signal.SIGTERM)  # what SLURM does: every process of the job gets it
    _, err = proc.communicate(timeout=600)
    assert proc.returncode != 0
    attrs = dict(zarr.open_group(store, mode="r").attrs)
    assert attrs["status"] == "interrupted" and "SIGTERM" in attrs["error"], err
    t_stop = attrs["t_reached"]
    assert 50 < t_stop < 1500
    folder = tmp_path / "run.checkpoint"
    res = mpirun(1, "run", NET, "-o", str(store), "--resume", str(folder), *LONG, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    full = tmp_path / "full.zarr"
    res = mpirun(2, "run", NET, "-o", str(full), *LONG, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert same(read(store), read(full))


def test_a_blow_up_on_one_rank_stops_every_rank(tmp_path):
    store = tmp_path / "run.zarr"
    blow = "stimuli=[{kind: iclamp, cell: net, cells: [63], delay: 20, duration: 5, amplitude: 1.0e7}]"
    res = mpirun(
        3,
        "run",
        NET,
        "-o",
        str(store),
        "--set",
        "cells.net.count=64",
        "--set",
        blow,
        "-q",
        cwd=tmp_path,
    )
    assert res.returncode != 0  # and no rank went on: t_reached below, every rank's spikes before 20.025
    assert "rank 2 failed" in res.stderr and "gid=63" in res.stderr and "t=20.025 ms" in res.stderr
    attrs = dict(zarr.open_group(store, mode="r").attrs)
    assert attrs["status"] == "failed" and "gid=63" in attrs["error"] and attrs["t_reached"] == 20.0
    gid, spike_time, _ = read(store)
    assert np.all(spike_time <= 20.025)
