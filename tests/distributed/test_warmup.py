"""simulation.warmup: the recorded window continues a settled brain exactly, on any rank count, across a
resume (which does not warm up again), and a stop during the warm-up marks the store without a checkpoint."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import zarr
from mpi_runs import MPI_ENV, mpirun, read, same
from support import ROOT

import brainsim

SMALL = str(ROOT / "tests/data/small_brain.yaml")
WARMUP, TSTOP = 50.0, 40.0
ARGS = ["-q", "--set", f"simulation.warmup={WARMUP}", "--set", f"simulation.tstop={TSTOP}"]


def spikes_of(sim):
    s = sim.spikes()
    return s.gid.values, s.time.values


def test_the_recorded_window_continues_the_warm_up_exactly():
    plain_cfg = brainsim.load_config(SMALL, {"simulation.tstop": WARMUP + TSTOP, "probes": []})
    plain = brainsim.Simulation(brainsim.Recipe(plain_cfg))
    plain.record()
    plain.run()
    gid, time = spikes_of(plain)
    later = time >= WARMUP
    cfg = brainsim.load_config(SMALL, {"simulation.tstop": TSTOP, "simulation.warmup": WARMUP})
    warm = brainsim.Simulation(brainsim.Recipe(cfg))
    warm.settle(WARMUP)
    assert warm.time == 0.0
    warm.record()
    warm.run()
    w_gid, w_time = spikes_of(warm)
    assert later.sum() > 20
    assert np.array_equal(gid[later], w_gid)
    assert np.allclose(time[later] - WARMUP, w_time, rtol=0, atol=1e-9)


def test_warm_up_on_two_ranks_equals_one_and_a_resume_does_not_warm_up_again(tmp_path):
    one, two = tmp_path / "one.zarr", tmp_path / "two.zarr"
    res = mpirun(1, "run", SMALL, "-o", str(one), *ARGS, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = mpirun(2, "run", SMALL, "-o", str(two), "--checkpoint-every", "20ms", *ARGS, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert same(read(one), read(two))
    attrs = dict(zarr.open_group(one, mode="r").attrs)
    assert json.loads(attrs["config"])["simulation"]["warmup"] == WARMUP and attrs["t_reached"] == TSTOP
    step = tmp_path / "two.checkpoint" / "step-000000000800"  # t = 20 ms of the recorded window
    res = mpirun(2, "run", SMALL, "-o", str(two), "--resume", str(step), *ARGS, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert same(read(one), read(two))


def test_a_stop_during_the_warm_up_marks_the_store_without_a_checkpoint(tmp_path):
    out = tmp_path / "w.zarr"
    cmd = [sys.executable, "-m", "brainsim.cli", "run", SMALL, "-o", str(out)]
    cmd += ["--set", "simulation.warmup=100000", "--set", "simulation.progress_interval=0.05"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env={**os.environ, **MPI_ENV}, stderr=subprocess.PIPE, text=True
    )
    for line in proc.stderr:  # wait until the warm-up is under way
        if line.startswith("[brainsim] warm-up ="):
            break
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait() == 75, err
    assert "no checkpoint was written" in err
    attrs = dict(zarr.open_group(out, mode="r").attrs)
    assert attrs["status"] == "interrupted" and "during the warm-up" in attrs["error"]
    assert attrs["t_reached"] == 0.0 and not (tmp_path / "w.checkpoint" / "latest").exists()
