"""Stop signals are honoured in bounded wall time, floods are refused, and `status` tells a dead or silent
run from a live one; a write that fails (a full disk) marks the store failed. Real runs of the CLI."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zarr

import brainsim
from brainsim.errors import ConfigError
from brainsim.hpc.status import store_status

ROOT = Path(__file__).resolve().parents[2]
NET = ROOT / "configs/bench/random_net.yaml"
SMALL = ROOT / "tests/data/small_brain.yaml"
BRAINSIM = [sys.executable, "-m", "brainsim.cli"]
EPOCH_MS = 10.0  # a model without connections advances in epochs of MAX_EPOCH
GRACE = 1.0  # s: output.stop_grace of the stopped runs
MARGIN = 40  # the first epoch takes at least this many graces of wall time (measured below)
LONG = 600  # s: a bound that only a hang reaches


def attrs(store):
    return zarr.open_group(store, mode="r").attrs.asdict()


def brainsim_run(tmp_path, store, *sets, **kw):
    args = [*BRAINSIM, "run", str(NET), "-o", str(store), "--overwrite", "-q"]
    for item in sets:
        args += ["--set", item]
    return subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def wait_for(condition, what, proc=None, timeout=LONG):
    """Poll condition() until it is true (the run is still going, if proc is given)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.1)


def published(store):
    return (store / "zarr.json").is_file() and attrs(store).get("progress") is not None


@pytest.fixture(scope="module")
def slow_epoch(tmp_path_factory):
    """--set items of a model whose first epoch takes at least MARGIN × GRACE s of wall time here: a few
    cells without connections (10 ms epochs) at a step measured on this machine now."""
    folder = tmp_path_factory.mktemp("calibrate")
    proc = brainsim_run(
        folder, folder / "cal.zarr", "connections=[]", "cells.net.count=4", "simulation.tstop=20"
    )
    _, err = proc.communicate(timeout=LONG)
    assert proc.returncode == 0, err
    timing = attrs(folder / "cal.zarr")["timing"]
    per_step = timing["run_s"] / timing["steps"]
    dt = float(f"{EPOCH_MS * per_step / (MARGIN * GRACE):.2g}")  # EPOCH_MS / dt steps take MARGIN × GRACE s
    return [
        "connections=[]",
        "cells.net.count=4",
        f"simulation.dt={min(dt, 0.025)}",
        f"simulation.tstop={2 * EPOCH_MS}",
        f"output.stop_grace={GRACE}",
        "output.flush_interval=0.5",
    ]


def test_sigterm_without_an_epoch_boundary_in_sight_stops_within_the_grace(tmp_path, slow_epoch):
    store = tmp_path / "slow.zarr"
    proc = brainsim_run(tmp_path, store, *slow_epoch)
    wait_for(lambda: published(store), "store", proc)  # built, in its first epoch
    proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    _, err = proc.communicate(timeout=LONG)
    waited = time.monotonic() - signalled
    assert proc.returncode == 1 and "Traceback" not in err, err
    notice, last = err.strip().splitlines()
    assert notice.startswith("brainsim: SIGTERM received: stopping at the next epoch boundary"), err
    assert last.startswith("brainsim: stopped by SIGTERM at t=") and "output.stop_grace = 1 s" in last, err
    assert "the next one is at t=10 ms" in last and "no checkpoint was written" in last, err
    assert waited < MARGIN * GRACE / 2, (waited, err)  # far less than the epoch would have taken
    a = attrs(store)
    assert a["status"] == "interrupted" and a["error"].startswith("stopped by SIGTERM"), a
    assert 0 < a["t_reached"] < EPOCH_MS and f"t_reached={a['t_reached']:g} ms" in err, err
    assert not (tmp_path / "slow.checkpoint" / "latest").exists()


def test_a_second_ctrl_c_still_stops_at_once(tmp_path, slow_epoch):
    store = tmp_path / "slow.zarr"
    proc = brainsim_run(tmp_path, store, *slow_epoch[:-2], "output.stop_grace=600")
    wait_for(lambda: published(store), "store", proc)
    proc.send_signal(signal.SIGINT)
    notice = proc.stderr.readline()  # handled (two signals sent at once would be taken as one)
    assert notice.startswith("brainsim: SIGINT received: "), notice
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=LONG)
    assert proc.returncode == 130 and "interrupted at once (SIGINT)" in err, err
    assert attrs(store)["status"] == "failed"


@pytest.mark.parametrize(
    "config, item, path",
    [
        (NET, "stimuli[0].rate=1e10", "stimuli[0].rate"),
        (SMALL, "brain.background.pyr.rate=5e6", "brain.background.pyr.rate"),
        (
            SMALL,
            "brain.region_overrides={lh-precentral: {background: {fs: {rate: 1e9}}}}",
            "brain.region_overrides.lh-precentral.background.fs.rate",
        ),
    ],
)
def test_a_poisson_rate_that_floods_every_step_is_refused(config, item, path):
    with pytest.raises(ConfigError) as caught:
        brainsim.load_config(config, [item])
    assert caught.value.path == path
    assert "at most 100 expected events per step of dt = 0.025 ms, i.e. <= 4e+06 Hz" in str(caught.value)
    brainsim.load_config(config, [item.replace("1e10", "4e6").replace("5e6", "4e6").replace("1e9", "4e6")])


def test_status_tells_a_silent_run_stale_and_a_killed_one_dead(tmp_path):
    store = tmp_path / "run.zarr"
    proc = brainsim_run(
        tmp_path, store, "cells.net.count=16", "simulation.tstop=1e6", "output.flush_interval=1"
    )
    try:
        wait_for(lambda: published(store), "first publish", proc)
        assert store_status(store)["status"] == "running"
        writer = attrs(store)["writer"]
        assert writer["pid"] == proc.pid and writer["heartbeat_s"] == 1.0 and writer["host"]
        os.kill(proc.pid, signal.SIGSTOP)  # alive, but silent
        wait_for(lambda: store_status(store)["status"] == "stale", "stale status")
        out = subprocess.run([*BRAINSIM, "status", str(store)], capture_output=True, text=True, timeout=LONG)
        assert out.returncode == 0 and f"store {store}: stale since " in out.stdout, out
        assert f"its writer (pid {proc.pid} on " in out.stdout and "ETA" not in out.stdout, out.stdout
        proc.kill()
        proc.communicate(timeout=LONG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = subprocess.run([*BRAINSIM, "status", str(store)], capture_output=True, text=True, timeout=LONG)
    assert out.returncode == 0 and f"store {store}: dead, " in out.stdout, out
    assert "no longer exists" in out.stdout and "ETA" not in out.stdout, out.stdout
    field = subprocess.run(
        [*BRAINSIM, "status", str(store), "--field", "status"], capture_output=True, text=True, timeout=LONG
    )
    assert field.stdout.strip() == "dead", field
    assert attrs(store)["status"] == "running"  # what the store says; status reads its heartbeat


def test_status_of_an_unknown_job_id_says_so(tmp_path):
    (tmp_path / "jobs").mkdir()
    out = subprocess.run(
        [*BRAINSIM, "status", "987654321", "--jobs-dir", str(tmp_path / "jobs")],
        capture_output=True,
        text=True,
        timeout=LONG,
        cwd=tmp_path,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out
    assert out.stderr.startswith("brainsim: job 987654321: unknown to SLURM"), out.stderr
    assert "finished" not in out.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (needs the right to mount, e.g. root in a container with CAP_SYS_ADMIN)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_full_disk_marks_the_store_failed(tmp_path, small_disk):
    """The disk fills mid-run whatever the machine's speed: the outputs are written after every epoch (a
    flush interval of 1 ms of wall time), 20 MB of samples in all."""
    store = small_disk / "run.zarr"
    probes = "probes=[{name: soma, variable: v, cell: net, cells: all, location: soma(0.5)}]"
    proc = brainsim_run(
        tmp_path, store, "cells.net.count=64", probes, "simulation.tstop=1000", "output.flush_interval=0.001"
    )
    _, err = proc.communicate(timeout=LONG)
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert err.strip() == f"brainsim: {store}: cannot write the run store there (No space left on device)"
    info = store_status(store)
    # The store says failed, with the error, when its metadata still fits; else its writer is gone.
    assert info["status"] == "dead" or (
        info["status"] == "failed" and "No space left on device" in info["error"]
    ), info
    assert 0 < info["t_reached"] < 1000
