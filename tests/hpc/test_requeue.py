"""A self-requeueing job starts again only when its last start advanced the run (brainsim.hpc.requeue, which
slurm/templates/run.sbatch asks before `scontrol requeue`), on the files a real run wrote."""

import time
from pathlib import Path

import pytest

import brainsim
from brainsim.hpc.requeue import Start, decide, latest_time, main, writer_start

ROOT = Path(__file__).resolve().parents[2]
NET = ROOT / "configs/bench/random_net.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run with checkpoints every 10 ms: (store, checkpoint folder, unix s before it started)."""
    folder = tmp_path_factory.mktemp("requeue")
    started = int(time.time())
    cfg = brainsim.load_config(NET, ["cells.net.count=16", "simulation.tstop=20"])
    store = brainsim.run(cfg, folder / "run.zarr", overwrite=True, progress=False, checkpoint_every=10.0)
    return store.path, folder / "run.checkpoint", started


def test_latest_and_writer_start_read_what_the_run_wrote(run, tmp_path):
    store, checkpoint, started = run
    assert latest_time(checkpoint) == 20.0
    assert latest_time(tmp_path / "none") is None
    assert started <= writer_start(store) <= time.time()
    assert writer_start(tmp_path / "none.zarr") is None


def test_a_start_that_wrote_a_newer_checkpoint_requeues(run, capsys):
    store, checkpoint, started = run
    for before in ("none", "10.0"):
        args = ["decide", "--checkpoint", str(checkpoint), "--before", before, "--store", str(store),
                "--started", str(started), "--signalled", str(started + 30), "--limit", "60", "--lead", "30",
                "--job", "77"]  # fmt: skip
        assert main(args) == 0
        was = "none" if before == "none" else "t=10 ms"
        assert capsys.readouterr().out == f"brainsim: job 77: checkpoint at t=20 ms (was {was}); requeueing\n"


def test_a_start_that_advanced_nothing_stops_saying_why(run, capsys):
    store, checkpoint, started = run
    args = ["decide", "--checkpoint", str(checkpoint), "--before", "20.0", "--store", str(store),
            "--started", str(started), "--signalled", str(started + 31), "--limit", "60",
            "--lead", "30"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    took = round(writer_start(store) - started)
    assert err.startswith("brainsim: job ?: not requeued: this start wrote no new checkpoint (the latest is")
    assert f"still t=20 ms); start-up took {took} s, the stop signal came 31 s in" in err, err
    assert "the signal comes 30 s before the 60 s limit, leaving 30 s per start" in err
    assert "(--time)" in err and "signal_seconds" in err and "(--checkpoint-every)" in err


def test_a_start_that_never_began_writing_says_so():
    start = Start("5", None, None, started=1000.0, signalled=1040.0, writing=900.0, limit_s=60, lead_s=30)
    requeue, line = decide(start)
    assert not requeue and "(the latest is still none)" in line
    assert (
        "start-up did not end (the run never began writing its store), the stop signal came 40 s in" in line
    )


def test_latest_prints_the_time_or_none(run, tmp_path, capsys):
    assert main(["latest", str(run[1])]) == 0 and capsys.readouterr().out == "20.0\n"
    assert main(["latest", str(tmp_path)]) == 0 and capsys.readouterr().out == "none\n"
