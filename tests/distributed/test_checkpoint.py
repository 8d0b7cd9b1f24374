"""Checkpoints: a resumed run (on another rank count too) ends exactly as an uninterrupted one."""

import shutil

import numpy as np
import zarr
from mpi_runs import NET, PROBES, mpirun, read, same

ARGS = ["--set", "cells.net.count=64", "--set", PROBES, "-q", "--set", "simulation.tstop=200"]


def test_resume_on_other_rank_counts_equals_the_uninterrupted_run(tmp_path):
    full = tmp_path / "full.zarr"
    res = mpirun(2, "run", NET, "-o", str(full), "--checkpoint-every", "50ms", *ARGS, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    folder = tmp_path / "full.checkpoint"
    kept = sorted(p.name for p in folder.glob("step-*"))
    assert kept == ["step-000000006000", "step-000000008000"]  # the last two are kept
    assert (folder / "latest").resolve().name == "step-000000008000"
    reference = read(full)
    for ranks in (1, 3):
        copy = tmp_path / f"resumed{ranks}.zarr"
        shutil.copytree(full, copy)
        root = zarr.open_group(copy, mode="r+")
        root["traces/soma/v"][300:] = np.nan  # what the resumed run must write again (from 150 ms)
        res = mpirun(
            ranks,
            "run",
            NET,
            "-o",
            str(copy),
            "--resume",
            str(folder / "step-000000006000"),
            *ARGS,
            cwd=tmp_path,
        )
        assert res.returncode == 0, res.stderr
        assert same(read(copy), reference), f"resumed on {ranks} ranks differs"
        assert dict(zarr.open_group(copy, mode="r").attrs)["status"] == "complete"


def test_resume_with_another_config_is_a_clear_error(tmp_path):
    res = mpirun(
        1, "run", NET, "-o", str(tmp_path / "a.zarr"), "--checkpoint-every", "50ms", *ARGS, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    res = mpirun(
        2,
        "run",
        NET,
        "-o",
        str(tmp_path / "a.zarr"),
        "--resume",
        str(tmp_path / "a.checkpoint"),
        *ARGS,
        "--set",
        "connections[0].weight=0.002",
        cwd=tmp_path,
    )
    assert res.returncode == 1 and "another config" in res.stderr and "hash" in res.stderr


def test_half_written_checkpoints_are_never_taken(tmp_path):
    from brainsim.errors import BrainsimError
    from brainsim.io.checkpoint import open_checkpoint

    staging = tmp_path / "c" / ".staging-000000000040"
    staging.mkdir(parents=True)
    (staging / "part-00000.h5").write_bytes(b"")
    try:
        open_checkpoint(staging)
    except BrainsimError as e:
        assert "not a complete brainsim checkpoint" in str(e)
    else:
        raise AssertionError("a folder without a manifest was taken for a checkpoint")
