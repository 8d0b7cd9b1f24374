"""Every subcommand against a catalogue of bad inputs: each ends with one `brainsim:` line saying what is
wrong (exit code 1, 2 or argparse's 2), never a traceback.

The catalogue runs in this process through `brainsim.cli.main` (a traceback there is an exception escaping
main), and so does a run under a file-size limit (a full disk); PETSc command-line options, taken when
PETSc starts, need a fresh process: those few run as subprocesses, started together.
"""

import os
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import TINY, edited

from brainsim.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL_BRAIN = ROOT / "tests" / "data" / "small_brain.yaml"
BRAINSIM = Path(sys.executable).with_name("brainsim")
TIMEOUT = 300


def tiny(**edits):
    """The tiny config with top-level dotted edits, as YAML text."""
    return yaml.safe_dump(edited(TINY, **edits))


def free_port():
    """A TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder with what the catalogue points at: configs, a run store, its summary, a checkpoint whose
    store is gone, a plain file standing where a folder should be, an empty folder."""
    folder = tmp_path_factory.mktemp("bad-inputs")
    (folder / "tiny.yaml").write_text(tiny())
    (folder / "garbage.yaml").write_text("simulation: {tstop: [1, 2\n  : : :\n")
    (folder / "afile").write_text("not a folder\n")
    (folder / "empty").mkdir()
    (folder / "swcdir.yaml").write_text(tiny(**{"cells.0.morphology": {"kind": "swc", "file": "empty"}}))
    (folder / "campaign.yaml").write_text(
        yaml.safe_dump({"name": "c", "config": "tiny.yaml", "grid": {"simulation.tstop": [1.0, 2.0]}})
    )
    for name, edit in {"badtime": {"time": "2h"}, "badevery": {"checkpoint_every": "50parsecs"}}.items():
        raw = yaml.safe_load((folder / "campaign.yaml").read_text())
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({**raw, **edit}))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert main(["run", str(SMALL_BRAIN), "-q", "-o", "brain.zarr", "--set", "simulation.tstop=5"]) == 0
        assert main(["summarize", "brain.zarr", "--scheduler", "sync"]) == 0
        assert main(["run", "tiny.yaml", "-q", "-o", "gone.zarr", "--checkpoint-every", "0.5ms"]) == 0
    finally:
        os.chdir(cwd)
    return folder


CATALOGUE = {  # name: (arguments, what the brainsim: line says)
    "run-missing-config": (["run", "nowhere.yaml"], "nowhere.yaml"),
    "run-config-is-a-folder": (["run", "empty"], "empty"),
    "run-garbage-yaml": (["run", "garbage.yaml"], "garbage.yaml"),
    "run-bad-number": (["run", "tiny.yaml", "--set", "simulation.tstop=abc"], "simulation.tstop"),
    "run-swc-is-a-folder": (["run", "swcdir.yaml"], "cells[0].morphology.file"),
    "run-output-under-a-file": (["run", "tiny.yaml", "-o", "afile/x.zarr"], "afile is a file, not a folder"),
    "run-output-in-proc": (["run", "tiny.yaml", "-o", "/proc/brainsim/x.zarr"], "cannot write the run store"),
    "run-checkpoint-every": (["run", "tiny.yaml", "--checkpoint-every", "50parsecs"], "--checkpoint-every"),
    "run-resume-no-checkpoint": (["run", "tiny.yaml", "--resume", "empty"], "empty"),
    "run-resume-no-store": (
        ["run", "tiny.yaml", "--resume", "gone.checkpoint", "-o", "elsewhere.zarr"],
        "no run store here to continue",
    ),
    "run-partition-missing": (["run", "tiny.yaml", "--partition", "nowhere.json"], "nowhere.json"),
    "validate-missing": (["validate", "nowhere.yaml"], "nowhere.yaml"),
    "validate-swc-is-a-folder": (["validate", "swcdir.yaml"], "is a folder"),
    "validate-petsc-type": (
        ["validate", "tiny.yaml", "--set", "simulation.petsc={ts_type: nonsense}"],
        "simulation.petsc.ts_type",
    ),
    "validate-petsc-unused": (
        ["validate", "tiny.yaml", "--set", "simulation.petsc={ts_tpye: cn}"],
        "PETSc never read",
    ),
    "partition-ranks": (["partition", "tiny.yaml", "--ranks", "0"], "--ranks"),
    "partition-output": (["partition", "tiny.yaml", "--ranks", "2", "-o", "afile/d.json"], "afile/d.json"),
    "summarize-missing": (["summarize", "nowhere.zarr"], "nowhere.zarr"),
    "summarize-a-file": (["summarize", "afile"], "afile"),
    "summarize-a-summary": (["summarize", "brain.summary.zarr", "--scheduler", "sync"], "not a run store"),
    "summarize-negative-bin": (["summarize", "brain.zarr", "--bin", "-1", "--overwrite"], "'--bin'"),
    "summarize-zero-workers": (["summarize", "brain.zarr", "--workers", "0", "--overwrite"], "'--workers'"),
    "summarize-scheduler": (["summarize", "brain.zarr", "--scheduler", "nowhere"], "--scheduler"),
    "summarize-unreachable": (
        ["summarize", "brain.zarr", "--scheduler", f"tcp://127.0.0.1:{free_port()}", "--overwrite"],
        "cannot reach a Dask scheduler",
    ),
    "summarize-output": (
        ["summarize", "brain.zarr", "-o", "afile/s.zarr", "--scheduler", "sync"],
        "cannot write the summary store",
    ),
    "report-missing": (["report", "nowhere.zarr"], "nowhere.zarr"),
    "report-a-run-store": (["report", "brain.zarr"], "not a summary"),
    "report-output": (["report", "brain.summary.zarr", "-o", "afile/r.html"], "cannot write the report"),
    "compare-missing": (["compare", "nowhere.zarr", "brain.summary.zarr"], "nowhere.zarr"),
    "compare-output": (
        ["compare", "brain.summary.zarr", "brain.summary.zarr", "-o", "afile/c"],
        "cannot write the comparison",
    ),
    "compare-one-summary": (["compare", "brain.summary.zarr"], "a baseline and at least one treated"),
    "observe-missing": (["observe", "nowhere.edf", "-o", "obs.zarr"], "nowhere.edf: no such file"),
    "observe-not-a-recording": (["observe", "afile", "-o", "obs.zarr"], "afile: not a readable EEG"),
    "observe-bin": (["observe", "afile", "--bin", "-1", "-o", "obs.zarr"], "'--bin'"),
    "observe-no-connectome": (["observe", "empty.tsv", "--tr", "2000", "-o", "obs.zarr"], "'--connectome'"),
    "fork-missing": (["fork", "nowhere.zarr", "--at", "1", "-o", "forks"], "nowhere.zarr"),
    "fork-at": (["fork", "brain.zarr", "--at", "50", "-o", "forks"], "'--at'"),
    "fork-output": (["fork", "brain.zarr", "--at", "2", "-o", "afile/f"], "cannot write the run store"),
    "fork-intervention-missing": (
        ["fork", "brain.zarr", "--at", "2", "-o", "forks", "--intervention", "nowhere.yaml"],
        "nowhere.yaml",
    ),
    "fork-scheduler": (
        ["fork", "brain.zarr", "--at", "2", "-o", "forks", "--scheduler", "dask"],
        "only with a fit's folder",
    ),
    "plan-ranks": (["plan", "tiny.yaml", "--ranks", "0"], "--ranks"),
    "plan-target-time": (["plan", "tiny.yaml", "--ranks", "1", "--target-time", "soon"], "--target-time"),
    "plan-profile": (["plan", "tiny.yaml", "--ranks", "1", "--profile", "nowhere"], "--profile"),
    "plan-fit-members": (["plan", "tiny.yaml", "--ranks", "1", "--members", "3"], "--members"),
    "plan-fit-missing": (["plan", "tiny.yaml", "--ranks", "1", "--fit", "nowhere.yaml"], "nowhere.yaml"),
    "calibrate-output": (["calibrate", "tiny.yaml", "-o", "afile/cal.json"], "cannot write the calibration"),
    "calibrate-missing": (["calibrate", "nowhere.yaml", "-o", "cal.json"], "nowhere.yaml"),
    "submit-nodes": (["submit", "tiny.yaml", "--nodes", "0", "--jobs-dir", "jobs", "--dry-run"], "--nodes"),
    "submit-ntasks": (
        ["submit", "tiny.yaml", "--ntasks-per-node", "-4", "--jobs-dir", "jobs", "--dry-run"],
        "--ntasks-per-node",
    ),
    "submit-checkpoint-every": (
        ["submit", "tiny.yaml", "--checkpoint-every", "50parsecs", "--jobs-dir", "jobs", "--dry-run"],
        "--checkpoint-every",
    ),
    "submit-time": (
        ["submit", "tiny.yaml", "--time", "00:99:00", "--jobs-dir", "jobs", "--dry-run"],
        "--time",
    ),
    "submit-petsc": (
        [
            "submit",
            "tiny.yaml",
            "--set",
            "simulation.petsc={ts_type: nonsense}",
            "--jobs-dir",
            "jobs",
            "--dry-run",
        ],
        "simulation.petsc.ts_type",
    ),
    "submit-jobs-dir": (
        ["submit", "tiny.yaml", "--jobs-dir", "afile/jobs", "--dry-run"],
        "cannot write the job",
    ),
    "sweep-missing": (["sweep", "nowhere.yaml", "--jobs-dir", "jobs", "--dry-run"], "nowhere.yaml"),
    "sweep-garbage": (["sweep", "garbage.yaml", "--jobs-dir", "jobs", "--dry-run"], "garbage.yaml"),
    "sweep-time": (["sweep", "badtime.yaml", "--jobs-dir", "jobs", "--dry-run"], "'time'"),
    "sweep-checkpoint-every": (
        ["sweep", "badevery.yaml", "--jobs-dir", "jobs", "--dry-run"],
        "checkpoint_every",
    ),
    "sweep-jobs-dir": (
        ["sweep", "campaign.yaml", "--jobs-dir", "afile/jobs", "--dry-run"],
        "cannot write the job",
    ),
    "collect-missing": (["collect", "nowhere"], "nowhere"),
    "collect-a-file": (["collect", "afile"], "afile"),
    "status-a-file": (["status", "afile"], None),
    "info-extra": (["info", "--bogus"], "unrecognised arguments"),
}

SUBCOMMANDS = {
    "run",
    "validate",
    "partition",
    "summarize",
    "report",
    "compare",
    "observe",
    "fork",
    "plan",
    "calibrate",
    "submit",
}
SUBCOMMANDS |= {"sweep", "collect", "status", "info"}


def test_the_catalogue_covers_every_subcommand():
    assert {args[0] for args, _ in CATALOGUE.values()} == SUBCOMMANDS


@pytest.mark.parametrize("name", CATALOGUE)
def test_bad_input_gives_one_brainsim_line(world, name, capsys, monkeypatch):
    args, message = CATALOGUE[name]
    monkeypatch.chdir(world)
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors ("brainsim: error: ...")
        code = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if message is None:  # only: no traceback
        return
    assert code in (1, 2), (code, err)
    lines = [line for line in err.splitlines() if line.startswith("brainsim: ")]
    assert lines and message in lines[-1], err
    assert not (world / "jobs").exists()  # submit and sweep refuse before writing anything


def test_a_full_disk_is_named(world, capsys, monkeypatch):
    """Files may not grow beyond a few bytes while the run starts (writes fail with EFBIG, as on a full
    disk with ENOSPC): the store it could not write is named, with the system's reason."""
    monkeypatch.chdir(world)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, hard))
    try:
        code = main(["run", "tiny.yaml", "-q", "-o", "full.zarr"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("brainsim: ") and "full.zarr" in err and "File too large" in err, (
        err
    )


SUBPROCESS = {  # name: (arguments, what the brainsim: line says)
    "petsc-type": (["run", "tiny.yaml", "-q", "-ts_type", "nonsense"], "'-ts_type': got 'nonsense'"),
    "petsc-misspelt": (["run", "tiny.yaml", "-q", "-ts_tpye", "cn"], "'-ts_tpye'"),
}


@pytest.fixture(scope="module")
def processes(world):
    started = {
        name: subprocess.Popen(
            [str(BRAINSIM), *args],
            cwd=world,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, _) in SUBPROCESS.items()
    }
    results = {}
    try:
        for name, proc in started.items():
            results[name] = (*proc.communicate(timeout=TIMEOUT), proc.returncode)
    finally:
        for proc in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


@pytest.mark.parametrize("name", SUBPROCESS)
def test_in_a_fresh_process(processes, name):
    out, err, code = processes[name]
    assert "Traceback" not in err, err
    assert code in (1, 2), (code, err)
    assert err.strip().splitlines()[-1].startswith("brainsim: ") and SUBPROCESS[name][1] in err, err
