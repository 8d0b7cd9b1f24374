"""The `brainsim` command on stored files that are missing, damaged or of another kind (subprocesses):
one `brainsim:` line naming the file and what is wrong, exit status 1, never a traceback; and `status`
finding job folders under --jobs-dir.

The stores are written by the run writer; every command is started at once by one module fixture."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brainsim.io.zarr_store import RunWriter

BRAINSIM = Path(sys.executable).with_name("brainsim")
TIMEOUT = 120
CONFIG = {
    "name": "stored",
    "simulation": {"tstop": 20.0},
    "summary": {"bin": None, "window": 5.0, "tr": 10.0, "alerts": []},
}
POPULATIONS = [
    {"name": "e", "region": None, "cell_type": "e", "first_gid": 0, "count": 4, "kind": "excitatory"}
]


def write_store(path):
    store = RunWriter.create(
        path, config=CONFIG, counts={"cells": 4, "compartments": 4, "equations": 16}, populations=POPULATIONS
    )
    store.append_spikes(np.arange(40) % 4, np.linspace(0.0, 19.0, 40))
    store.finish("complete", t_reached=20.0)
    return path


def prepare(folder):
    """The stores and folders the commands read; returns {name: (arguments, path they concern)}."""
    good = write_store(folder / "good.zarr")
    broken = shutil.copytree(good, folder / "broken.zarr")
    (broken / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": ')
    chunkless = shutil.copytree(good, folder / "chunkless.zarr")
    (chunkless / "spikes" / "time" / "c" / "0").unlink()
    jobs = folder / "elsewhere"
    (jobs / "stored").mkdir(parents=True)
    (jobs / "stored" / "job.json").write_text(json.dumps({"jobs": {"run": "424242"}, "store": str(good)}))
    missing = folder / "missing.zarr"
    return {
        "summarize-broken": (["summarize", str(broken), "--scheduler", "sync"], broken),
        "summarize-chunkless": (["summarize", str(chunkless), "--scheduler", "sync"], chunkless),
        "summarize-missing": (["summarize", str(missing), "--scheduler", "sync"], missing),
        "status-broken": (["status", str(broken)], broken),
        "status-field-chunkless": (["status", str(chunkless), "--field", "status"], chunkless),
        "status-missing": (["status", str(missing)], missing),
        "status-good": (["status", str(good), "--field", "status"], good),
        "status-job": (["status", "424242", "--jobs-dir", str(jobs)], good),
        "report-missing": (["report", str(missing)], missing),
        "report-run-store": (["report", str(good)], good),
        "compare-missing": (["compare", str(missing), str(good)], missing),
        "collect-not-a-campaign": (["collect", str(folder)], folder),
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stores")
    cases = prepare(folder)
    started = {
        name: (
            subprocess.Popen(
                [str(BRAINSIM), *args], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ),
            path,
        )
        for name, (args, path) in cases.items()
    }
    out = {}
    try:
        for name, (proc, path) in started.items():
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
            out[name] = (proc.returncode, stdout, stderr, path)
    finally:
        for proc, _ in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


@pytest.mark.parametrize(
    "name, message",
    [
        ("summarize-broken", "unreadable Zarr metadata in zarr.json (JSONDecodeError"),
        ("summarize-chunkless", "array spikes/time lacks 1 of its 1 chunks"),
        ("summarize-missing", "not a run store (nothing there"),
        ("status-broken", "unreadable Zarr metadata in zarr.json"),
        ("status-field-chunkless", "array spikes/time lacks 1 of its 1 chunks"),
        ("status-missing", "nothing there: expected a run store, a job folder"),
        ("report-missing", "no Zarr store there"),
        ("report-run-store", "a run store (format 'brainsim-run'), not a summary"),
        ("compare-missing", "no Zarr store there"),
        ("collect-not-a-campaign", "not a campaign folder (no campaign.json"),
    ],
)
def test_one_line_naming_the_file_and_no_traceback(results, name, message):
    code, stdout, stderr, path = results[name]
    assert "Traceback" not in stderr, stderr
    assert code == 1, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("brainsim: ")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"brainsim: {path}: ") and message in lines[0], stderr


def test_status_field_of_a_good_store(results):
    code, stdout, stderr, _ = results["status-good"]
    assert code == 0 and stdout.strip() == "complete", stderr


def test_status_finds_a_job_id_under_jobs_dir(results):
    code, stdout, stderr, store = results["status-job"]
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].startswith("run job 424242: ")
    assert lines[1] == f"store {store}: complete, 20 of 20 ms (100%)"
