"""The HPC workflow on a real one-node SLURM: submit and complete with a chained summary, a time limit
that signals, checkpoints, requeues and resumes to the same raster, scancel leaving the store
interrupted, and a campaign as a job array, collected."""

import json
import time
from pathlib import Path

import numpy as np
import xarray as xr
import yaml
import zarr

from brainsim.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "tests/data/small_brain.yaml"
NET = ROOT / "configs/bench/random_net.yaml"


def submit(tmp_path, *args, name="run"):
    code = main(["submit", str(SMALL), "--name", name, "--profile", "local", "--jobs-dir", str(tmp_path),
                 "--nodes", "1", "--ntasks-per-node", "2", *args])  # fmt: skip
    assert code == 0
    return json.loads((tmp_path / name / "job.json").read_text())


def spikes(store):
    ds = xr.open_zarr(store, group="spikes")
    return ds.gid.values, ds.time.values


def attrs(store):
    return zarr.open_group(store, mode="r").attrs.asdict()


def test_submit_runs_on_two_ranks_and_chains_the_summary(slurm, tmp_path, capsys):
    record = submit(tmp_path, "--set", "simulation.tstop=100", "--time", "00:05:00")
    run = slurm.wait(record["jobs"]["run"], timeout=600)
    summary = slurm.wait(record["jobs"]["summarize"], timeout=600)
    assert run.ok and summary.ok, (run, summary, (tmp_path / "run").glob("slurm-*.out"))
    assert attrs(record["store"])["status"] == "complete"
    assert attrs(record["store"])["timing"]["ranks"] == 2
    ds = xr.open_zarr(record["summary"])
    assert ds.attrs["source"] == record["store"] and ds.sizes["region"] == 6
    assert main(["status", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert f"run job {record['jobs']['run']}" in out and "complete, 100 of 100 ms (100%)" in out


def test_time_limit_signals_checkpoints_requeues_and_resumes(slurm, tmp_path):
    """The time-limit signal (--signal=B:USR1@S: USR1 to the batch shell S s before the limit) reaches a
    run that is writing: the run checkpoints, the job requeues itself and the next start resumes; the
    raster equals that of a run without interruption. The signal is sent as the limit sends it (scancel
    --signal=USR1 --batch) once the run writes its store, so start-up may take as long as it takes here."""
    args = ["--set", "simulation.tstop=16000", "--time", "00:10:00"]
    options = ["--name", "limited", "--profile", "local", "--jobs-dir", str(tmp_path), "--no-summary"]
    argv = [str(SMALL), *options, "--nodes", "1", "--ntasks-per-node", "2", *args]
    job, store, result, log = submit_and_signal(slurm, tmp_path / "limited", argv, timeout=600)
    assert result.ok, log
    assert result.restarts == 1 and "run step ended with 75" in log and "--resume" in log, log
    assert f"brainsim: job {job}: checkpoint at t=" in log and "(was none); requeueing" in log, log
    assert attrs(store)["status"] == "complete"
    reference = submit(tmp_path, *args, "--no-summary", name="reference")
    assert slurm.wait(reference["jobs"]["run"], timeout=600).ok
    gid, t = spikes(store)
    ref_gid, ref_t = spikes(reference["store"])
    assert gid.size > 1000 and np.array_equal(gid, ref_gid) and np.array_equal(t, ref_t)


def test_a_start_that_checkpoints_nothing_is_not_requeued(slurm, tmp_path):
    """A start told to stop whose run reaches no epoch boundary (steps of 1e-6 ms, 10 ms epochs: millions of
    steps) within its stop grace writes no checkpoint: the job does not requeue itself into a loop but
    fails, saying why and what to change."""
    sets = ["connections=[]", "cells.net.count=2", "simulation.dt=1e-6", "simulation.tstop=20",
            "output.stop_grace=1"]  # fmt: skip
    args = [str(NET), "--name", "stuck", "--profile", "local", "--jobs-dir", str(tmp_path), "--no-summary",
            "--time", "00:10:00", *(x for item in sets for x in ("--set", item))]  # fmt: skip
    job, store, result, log = submit_and_signal(slurm, tmp_path / "stuck", args, timeout=300)
    assert result.state == "FAILED" and result.exit_code == 1 and result.restarts == 0, (result, log)
    assert "brainsim: stopped by SIGUSR1 at t=" in log and "run step ended with 1" in log, log
    assert f"brainsim: job {job}: not requeued: this start wrote no new checkpoint" in log, log
    assert "(the latest is still none)" in log, log
    assert "start-up took " in log and "the signal comes 30 s before the 600 s limit" in log, log
    assert attrs(store)["status"] == "interrupted"


def submit_and_signal(slurm, folder, argv, timeout):
    """`brainsim submit ARGV` (its job folder: folder), then USR1 to the batch shell, as SLURM sends it
    before the time limit, once the run has written its store; (job id, store, the job's end, its log)."""
    assert main(["submit", *argv]) == 0
    record = json.loads((folder / "job.json").read_text())
    job, store = record["jobs"]["run"], Path(record["store"])
    wait_until_writing(job, store)
    slurm.run("scancel", "--signal=USR1", "--batch", job)
    result = slurm.wait(job, timeout=timeout)
    return job, store, result, "\n".join(p.read_text() for p in folder.glob("slurm-*.out"))


def wait_until_writing(job, store, timeout=300):
    """Wait until the job's run has published its store (its start-up is over); fail if the run ends."""
    deadline = time.monotonic() + timeout
    while not ((store / "zarr.json").is_file() and "progress" in attrs(store)):
        log = "\n".join(p.read_text() for p in store.parent.glob("slurm-*.out"))
        assert "run step ended" not in log, f"job {job} ended before its run wrote {store}:\n{log}"
        assert time.monotonic() < deadline, f"job {job} wrote no store in {timeout} s:\n{log}"
        time.sleep(0.25)


def test_scancel_leaves_the_store_interrupted(slurm, tmp_path, capsys):
    record = submit(tmp_path, "--set", "simulation.tstop=100000", "--time", "00:10:00")
    store = record["store"]
    deadline = time.monotonic() + 120
    while not ((tmp_path / "run/run.zarr/zarr.json").is_file() and attrs(store).get("t_reached", 0) > 0):
        assert time.monotonic() < deadline, "the run did not start writing"
        time.sleep(0.5)
    time.sleep(2)  # a second publish: the pace is known
    assert main(["status", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "RUNNING" in out and "store" in out and ": running, " in out, out
    assert "simulated ms per second" in out and "ETA" in out, out
    slurm.run("scancel", record["jobs"]["run"])
    result = slurm.wait(record["jobs"]["run"], timeout=600)
    assert result.state == "CANCELLED"
    final = attrs(store)
    assert final["status"] == "interrupted" and "SIGTERM" in final["error"], final.get("error")
    assert (tmp_path / "run/run.checkpoint/latest/manifest.json").is_file()
    slurm.run("scancel", record["jobs"]["summarize"], check=False)  # its dependency can never be met


def test_campaign_job_array_and_collect(slurm, tmp_path, capsys):
    campaign = tmp_path / "trial.yaml"
    campaign.write_text(yaml.safe_dump({
        "name": "trial", "config": str(SMALL), "set": ["simulation.tstop=60"], "profile": "local",
        "ntasks_per_node": 1, "time": "00:05:00",
        "grid": {"brain.background.pyr.rate": [500.0, 1500.0],
                 "brain.cell_types.pyr.v_init": [-70.0, 5000.0]},
    }))  # fmt: skip
    assert main(["sweep", str(campaign), "--jobs-dir", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "trial/campaign.json").read_text())
    result = slurm.wait(record["job"], timeout=300)
    assert sorted(result.tasks) == [0, 1, 2, 3]
    assert [result.tasks[i].ok for i in range(4)] == [True, False, True, False]  # v_init 5000 mV blows up
    assert main(["collect", str(tmp_path / "trial")]) == 1  # not every task completed
    out = capsys.readouterr().out
    assert "4 tasks, 2 complete, 2 failed" in out and "numerical blow-up in cell gid=0" in out
    rows = (tmp_path / "trial/collect.csv").read_text().splitlines()
    assert rows[0].startswith(
        "task,brain.background.pyr.rate,brain.cell_types.pyr.v_init,status,mean_rate_hz"
    )
    rates = {int(r.split(",")[0]): float(r.split(",")[4]) for r in rows[1:] if ",complete," in r}
    assert set(rates) == {0, 2} and rates[2] > rates[0] > 0  # more background drive, more firing
    (tmp_path / "trial/collect.csv").unlink()
    assert main(["status", str(tmp_path / "trial")]) == 0
    assert "4 tasks, 2 complete, 2 failed" in capsys.readouterr().out
    assert not (tmp_path / "trial/collect.csv").exists()  # status only reads


def test_summarize_with_dask_workers_as_slurm_jobs(slurm, tmp_path):
    """--scheduler slurm: dask-jobqueue submits the workers as SLURM jobs; the same summary."""
    import sys

    sys.path.insert(0, str(ROOT / "tests/postprocess"))
    from test_summarize import write_run

    from brainsim.postprocess.summarize import summarize

    run, _, _ = write_run(tmp_path / "run.zarr")
    reference = xr.open_zarr(
        summarize(run, tmp_path / "sync.zarr", scheduler="sync", log=lambda line: None).path
    )
    code = main(
        ["summarize", str(run), "-o", str(tmp_path / "slurm.zarr"), "--scheduler", "slurm", "--workers", "2"]
    )
    assert code == 0
    ds = xr.open_zarr(tmp_path / "slurm.zarr")
    for name in ("rate", "cv_isi", "hypersynchrony", "band_power", "bold"):
        np.testing.assert_allclose(ds[name].values, reference[name].values, rtol=1e-12, err_msg=name)
