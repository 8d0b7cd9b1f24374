"""Damaged stores read by `summarize`, `status` and `report` (subprocesses): one `brainsim:` line naming
the store and the array or node that is damaged, exit status 1, never a traceback nor a result computed
from fill values; and `--overwrite` never deletes files that are not part of a store of the same kind.

A real run writes the store once (in this process); every command is started at once by one fixture."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

import brainsim
from brainsim.postprocess.summarize import summarize

BRAINSIM = Path(sys.executable).with_name("brainsim")
CONFIG = ROOT / "tests/data/small_brain.yaml"
TIMEOUT = 300


def damaged(good, folder, name, damage):
    """A copy of the store `good` named `name`, damaged by damage(copy)."""
    copy = shutil.copytree(good, folder / name)
    damage(copy)
    return copy


def truncate(file):
    file.write_bytes(file.read_bytes()[:10])


def break_consolidated(store, node):
    meta = json.loads((store / "zarr.json").read_text())
    meta["consolidated_metadata"]["metadata"][node] = {"broken": True}
    (store / "zarr.json").write_text(json.dumps(meta))


def prepare(folder):
    """{case: (arguments, the path named, what the message says)}."""
    good = folder / "good.zarr"
    brainsim.run(brainsim.load_config(CONFIG, {"simulation.tstop": 20.0}), good, progress=False)
    summary = summarize(good, scheduler="sync", log=lambda line: None).path

    def store(name, damage):
        return damaged(good, folder, name, damage)

    cases = {}
    for name, damage, message, commands in (
        (
            "gid-lost",
            lambda s: (s / "spikes/gid/c/0").unlink(),
            "array spikes/gid lacks 1 of its 1 chunks",
            "SZ",
        ),
        (
            "time-truncated",
            lambda s: truncate(s / "spikes/time/c/0"),
            "array spikes/time: unreadable chunk",
            "S",
        ),
        (
            "gid-truncated",
            lambda s: truncate(s / "spikes/gid/c/0"),
            "array spikes/gid: unreadable chunk",
            "L",
        ),
        (
            "rate-lost",
            lambda s: (s / "regions/rate/c/0/0").unlink(),
            "array regions/rate lacks 1 of its",
            "S",
        ),
        (
            "v-mean-truncated",
            lambda s: truncate(s / "regions/v_mean/c/0/0"),
            "array regions/v_mean: unreadable chunk",
            "S",
        ),
        ("labels-lost", lambda s: (s / "regions/region/c/0").unlink(), "array regions/region lacks", "S"),
        (
            "node-metadata",
            lambda s: (s / "spikes/gid/zarr.json").write_text('{"zarr_format": 3,'),
            "node spikes/gid: unreadable zarr.json .JSONDecodeError",
            "SZ",
        ),
        (
            "consolidated",
            lambda s: break_consolidated(s, "spikes/gid"),
            "consolidated metadata of the store's nodes is damaged",
            "SZ",
        ),
    ):
        path = store(name, damage)
        for command in commands:
            if command == "Z":
                cases[f"status-{name}"] = (["status", str(path)], path, message)
            else:
                scheduler = "local" if command == "L" else "sync"
                args = ["summarize", str(path), "--scheduler", scheduler, "--workers", "1"]
                cases[f"summarize-{name}"] = (args, path, message)
    bad_summary = damaged(summary, folder, "truncated.summary.zarr", lambda s: truncate(s / "rate/c/0/0"))
    cases["report-truncated"] = (["report", str(bad_summary)], bad_summary, "array rate: unreadable chunk")
    # --overwrite: only what is recognisably a store of the kind written, and nothing else in it
    foreign = folder / "foreign"
    foreign.mkdir()
    (foreign / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    (foreign / "thesis.tex").write_text("mine")
    run = ["run", str(CONFIG), "-q", "--overwrite", "-o"]
    cases["run-overwrite-foreign"] = (
        [*run, str(foreign)],
        foreign,
        "will not overwrite it: not a Zarr store of format 'brainsim-run' .format None",
    )
    extra = store("extra.zarr", lambda s: (s / "notes.txt").write_text("mine"))
    cases["run-overwrite-extra"] = ([*run, str(extra)], extra, "it holds notes.txt, which are not part of")
    kept = damaged(summary, folder, "kept.summary.zarr", lambda s: (s / "keep.txt").write_text("mine"))
    cases["summarize-overwrite-extra"] = (
        ["summarize", str(good), "-o", str(kept), "--overwrite", "--scheduler", "sync"],
        kept,
        "besides the 'brainsim-summary' store it holds keep.txt",
    )
    cases["summarize-onto-a-run-store"] = (
        ["summarize", str(good), "-o", str(extra), "--overwrite", "--scheduler", "sync"],
        extra,
        "not a Zarr store of format 'brainsim-summary' .format 'brainsim-run'",
    )
    return cases


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corrupt")
    cases = prepare(folder)
    started = {
        name: subprocess.Popen(
            [str(BRAINSIM), *args], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, (args, _, _) in cases.items()
    }
    out = {}
    try:
        for name, process in started.items():
            stdout, stderr = process.communicate(timeout=TIMEOUT)
            out[name] = (process.returncode, stdout, stderr, *cases[name][1:])
    finally:
        for process in started.values():
            process.kill()
    return out


CASES = [
    "summarize-gid-lost",
    "status-gid-lost",
    "summarize-time-truncated",
    "summarize-gid-truncated",
    "summarize-rate-lost",
    "summarize-v-mean-truncated",
    "summarize-labels-lost",
    "summarize-node-metadata",
    "status-node-metadata",
    "summarize-consolidated",
    "status-consolidated",
    "report-truncated",
    "run-overwrite-foreign",
    "run-overwrite-extra",
    "summarize-overwrite-extra",
    "summarize-onto-a-run-store",
]


@pytest.mark.parametrize("case", CASES)
def test_one_brainsim_line_naming_the_store_and_what_is_damaged(results, case):
    code, stdout, stderr, path, message = results[case]
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("brainsim:")]
    assert code == 1 and len(lines) == 1, (code, stderr)
    assert lines[0].startswith(f"brainsim: {path}") or lines[0].startswith(f"brainsim: {path.resolve()}")
    assert re.search(message, lines[0]), lines[0]


def test_nothing_is_left_of_a_summary_that_failed(results):
    for case in ("summarize-v-mean-truncated", "summarize-gid-truncated", "summarize-time-truncated"):
        path = results[case][3]
        assert not path.with_name(path.name + ".summary.zarr").exists(), case
        assert not path.with_name(path.name + ".summary.zarr.counts").exists(), case


def test_overwrite_refused_keeps_every_file(results):
    for case, file in (
        ("run-overwrite-foreign", "thesis.tex"),
        ("run-overwrite-extra", "notes.txt"),
        ("summarize-overwrite-extra", "keep.txt"),
    ):
        path = results[case][3]
        assert (path / file).read_text() == "mine" and (path / "zarr.json").is_file(), case
    assert (results["summarize-onto-a-run-store"][3] / "spikes").is_dir()
