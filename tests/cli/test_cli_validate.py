"""The `brainsim` command end to end (subprocesses): `validate`, `run` refusing bad configs and existing
outputs without writing anything, and `info`.

Every command is started at once by one module fixture (each in its own empty working folder) and the
tests then read their results, so the module costs about as long as its slowest command.
"""

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from support import edited

ROOT = Path(__file__).resolve().parents[2]
M1 = ROOT / "configs" / "bench" / "m1_hh_cable.yaml"
M2 = ROOT / "configs" / "bench" / "m2_ring.yaml"
SMALL_BRAIN = ROOT / "tests" / "data" / "small_brain.yaml"
TIMEOUT = 120

SENTINEL = "an earlier run's results\n"


def m2_with(**edits):
    """The M2 config text with top-level dotted edits, e.g. m2_with(**{"simulation.tstop": -1})."""
    return yaml.safe_dump(edited(yaml.safe_load(M2.read_text()), **edits))


SCHEMA_ERROR = m2_with(**{"simulation.tstop": -1})
MODEL_ERROR = m2_with(**{"cells.0.regions.apical": {"cm": 2.0}})


@dataclass(frozen=True)
class Case:
    args: tuple
    files: dict  # name -> text, written into the working folder first


CASES = {  # the slowest first
    "info": Case(("info",), {}),
    "validate-m1": Case(("validate", str(M1)), {}),
    "validate-m2": Case(("validate", str(M2)), {}),
    "validate-schema-error": Case(("validate", "bad.yaml"), {"bad.yaml": SCHEMA_ERROR}),
    "validate-model-error": Case(("validate", "bad.yaml"), {"bad.yaml": MODEL_ERROR}),
    "run-schema-error": Case(("run", "bad.yaml"), {"bad.yaml": SCHEMA_ERROR}),
    "run-model-error": Case(("run", "bad.yaml"), {"bad.yaml": MODEL_ERROR}),
    "validate-overlays": Case(
        (
            "validate",
            str(SMALL_BRAIN),
            "--patient",
            "p.yaml",
            "--intervention",
            "drug.yaml",
            "--intervention",
            "lesion.yaml",
        ),
        {
            "p.yaml": "id: P-9\nlesions: {regions: [rh-postcentral]}\n",
            "drug.yaml": "kind: drug\nmechanism: nata\nfactor: 0.5\nregions: [lh-precentral]\nonset: 20\n",
            "lesion.yaml": "kind: lesion\nat: 50\nregions: [lh-postcentral]\n",
        },
    ),
    "run-bad-intervention": Case(
        ("run", str(SMALL_BRAIN), "--intervention", "drug.yaml", "--intervention", "bad.yaml"),
        {
            "drug.yaml": "kind: drug\nmechanism: nata\nfactor: 0.5\n",
            "bad.yaml": "kind: stimulation\nregions: [lh-precentral, V9]\namplitude: 1\nfrequency: 10\n",
        },
    ),
    "run-existing-output": Case(
        ("run", str(M2), "--set", "output.overwrite=false", "--set", "simulation.tstop=1", "-q"),
        {"out/m2_ring.zarr/zarr.json": SENTINEL},
    ),
}


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path
    before: dict  # relative path -> bytes of every file before the command

    def files(self):
        return snapshot(self.cwd)


def snapshot(folder):
    """Every file and folder under folder: relative path -> bytes (None for a folder)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k != "PETSC_OPTIONS"}
    started = {}
    for name, case in CASES.items():
        cwd = tmp_path_factory.mktemp(name)
        for rel, text in case.files.items():
            (cwd / rel).parent.mkdir(parents=True, exist_ok=True)
            (cwd / rel).write_text(text)
        before = snapshot(cwd)
        proc = subprocess.Popen(
            [sys.executable, "-m", "brainsim.cli", *case.args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[name] = (proc, cwd, before)
    out = {}
    try:
        for name, (proc, cwd, before) in started.items():
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
            out[name] = Result(proc.returncode, stdout, stderr, cwd, before)
    finally:
        for proc, *_ in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


def no_traceback(result):
    assert "Traceback" not in result.stderr, result.stderr


# --- validate ------------------------------------------------------------------------------------


def test_validate_with_patient_and_interventions(results):
    r = results["validate-overlays"]
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].startswith("  size: 500 compartments, 1,200 synapses; memory 0.25 GB (at most ")
    assert lines[:1] + lines[2:] == [
        f"{SMALL_BRAIN}: valid (100 cells, 1680 equations)",
        "  brain: 5 regions of " + str(ROOT / "configs/connectomes/synthetic_68.zip"),
        "  patient: P-9",
        "  drug: nata.gbar x 0.5 in regions lh-precentral, all types, from 20 ms",
        "  lesion at 50 ms: regions lh-postcentral cut off, 0 tract(s) scaled",
    ]
    assert r.files() == r.before


def test_a_bad_intervention_file_is_named_and_nothing_runs(results):
    r = results["run-bad-intervention"]
    assert r.returncode == 2
    assert r.stderr.startswith("brainsim: config error at 'interventions[1].regions' (from ")
    assert str(r.cwd / "bad.yaml") in r.stderr and "got 'V9'" in r.stderr and "'lh-precentral'" in r.stderr
    assert r.files() == r.before
    no_traceback(r)


@pytest.mark.parametrize(
    "name, config, cells",
    [("validate-m1", M1, 1), ("validate-m2", M2, 64)],
)
def test_validate_bench_config(results, name, config, cells):
    r = results[name]
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{config}: valid ({cells} cells, ")
    assert r.stderr == ""
    assert r.files() == r.before, "validate writes nothing"


@pytest.mark.parametrize(
    "name, path, value",
    [
        ("validate-schema-error", "simulation.tstop", "-1"),
        ("validate-model-error", "cells[0].regions.apical", "'apical'"),
        ("run-schema-error", "simulation.tstop", "-1"),
        ("run-model-error", "cells[0].regions.apical", "'apical'"),
    ],
)
def test_bad_config_exits_2_naming_the_key(results, name, path, value):
    r = results[name]
    assert r.returncode == 2, r.stderr
    assert f"config error at '{path}': got {value}; allowed: " in r.stderr
    assert r.stderr.startswith("brainsim: ")
    assert r.stdout == ""
    no_traceback(r)


def test_messages_say_what_is_allowed(results):
    assert "allowed: a finite number > 0 ms" in results["validate-schema-error"].stderr
    assert "a region of the morphology: ['soma', 'dend']" in results["validate-model-error"].stderr


def test_run_with_a_bad_config_writes_nothing(results):
    r = results["run-schema-error"]
    assert r.returncode == 2
    assert r.files() == r.before
    assert not (r.cwd / "out").exists()


def test_run_with_a_model_error_writes_nothing(results):
    r = results["run-model-error"]
    assert r.returncode == 2
    assert r.files() == r.before
    assert not (r.cwd / "out").exists()


# --- run refuses to overwrite --------------------------------------------------------------------


def test_run_refuses_to_overwrite(results):
    r, store = results["run-existing-output"], "out/m2_ring.zarr"
    assert r.returncode == 1, r.stderr
    assert f"output {store} already exists" in r.stderr
    assert "--overwrite" in r.stderr
    assert r.files() == r.before, "the existing store is untouched and nothing else is written"
    assert (r.cwd / store / "zarr.json").read_text() == SENTINEL
    no_traceback(r)


# --- info ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "package",
    ["brainsim", "python", "numpy", "numba", "PETSc", "petsc4py", "MPI", "mpi4py", "zarr", "h5py", "dask"],
)
def test_info_lists(results, package):
    r = results["info"]
    assert r.returncode == 0, r.stderr
    rows = info_rows(r.stdout)
    assert package in rows, r.stdout
    assert rows[package].strip(), f"no version for {package}"


def info_rows(stdout):
    """`info` prints 'name<padding>  version' lines (names may contain single spaces: 'MPI standard')."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines() if line.strip())


def test_info_versions(results):
    import numpy

    from brainsim import __version__

    r = results["info"]
    rows = info_rows(r.stdout)
    assert list(rows)[:2] == ["brainsim", "python"]
    assert rows["brainsim"] == __version__
    assert rows["python"] == platform.python_version()
    assert rows["numpy"] == numpy.__version__
    assert r.files() == r.before
