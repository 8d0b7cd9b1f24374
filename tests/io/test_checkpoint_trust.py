"""Nothing a checkpoint holds is trusted: a manifest or part file that was edited, truncated, damaged
or written by an older brainsim is refused with a StoreError naming the file, before the store is
touched; a checkpoint folder's own clean-up never deletes what a checkpoint did not write."""

import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest
import zarr
from support import ROOT

import brainsim
from brainsim.errors import StoreError
from brainsim.io import checkpoint as ckpt

CONFIG = ROOT / "tests/data/small_brain.yaml"
STEP = "step-000000000200"  # the checkpoint at 5 ms (dt 0.025 ms)


def config(tstop=10.0):
    return brainsim.load_config(CONFIG, {"simulation.tstop": tstop})


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A 10 ms run with checkpoints at 5 and 10 ms: (its store, its checkpoint folder)."""
    folder = tmp_path_factory.mktemp("written")
    store = folder / "run.zarr"
    brainsim.run(config(), store, progress=False, checkpoint_every=5.0)
    return store, folder / "run.checkpoint"


@pytest.fixture
def copy(written, tmp_path):
    """A fresh copy of the store and the checkpoint at 5 ms, to damage: (store, step folder)."""
    store, folder = written
    shutil.copytree(store, tmp_path / "run.zarr")
    shutil.copytree(folder / STEP, tmp_path / "ck" / STEP)
    return tmp_path / "run.zarr", tmp_path / "ck" / STEP


def edit_manifest(folder, **changes):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def rewrite_part(step, change):
    """Change part-00000.h5 with change(h5py.File) and record its new size and checksum in the manifest,
    as a consistent forgery would: what the part holds must still be checked."""
    part = step / "part-00000.h5"
    with h5py.File(part, "r+") as f:
        change(f)
    manifest = json.loads((step / "manifest.json").read_text())
    manifest["parts"][0].update(
        bytes=part.stat().st_size, sha256=hashlib.sha256(part.read_bytes()).hexdigest()
    )
    (step / "manifest.json").write_text(json.dumps(manifest))


def replace_dataset(name, values):
    def change(f):
        del f[name]
        f[name] = values

    return change


def flip_byte(file, at):
    data = bytearray(file.read_bytes())
    data[at] ^= 0xFF
    file.write_bytes(bytes(data))


def moved(step, name):
    """The step folder under another name (a copy a user made), so its name says nothing of its step."""
    return step.rename(step.with_name(name))


MANIFEST = "manifest.json"
PART = "part-00000.h5"
CASES = {
    # the manifest against itself and the run: time, step, folder, cells, parts
    "time edited": (
        lambda s: edit_manifest(s, time=2.0),
        MANIFEST,
        r"time 2 ms is not step 200 × dt 0.025 ms = 5 ms",
    ),
    "time and step edited": (
        lambda s: edit_manifest(s, time=2.0, step=80),
        MANIFEST,
        "step 80 in the folder of step 200",
    ),
    "time and step edited in a renamed folder": (
        lambda s: edit_manifest(moved(s, "copy"), time=2.0, step=80),
        PART,
        r"written at t = 5.0 ms \(step 200\), the manifest says t = 2.0 ms \(step 80\)",
    ),
    "time beyond tstop": (
        lambda s: edit_manifest(moved(s, "copy"), time=50.0, step=2000),
        MANIFEST,
        "at t = 50 ms, after this run's tstop 10 ms",
    ),
    "negative time": (lambda s: edit_manifest(s, time=-1.0), MANIFEST, "time -1.0; expected a time >= 0"),
    "parts leave a gap": (
        lambda s: edit_manifest(s, parts=[{**_part(s), "gids": [1, 119]}]),
        MANIFEST,
        "parts must cover gids from 0 in contiguous blocks",
    ),
    "cells edited": (
        lambda s: edit_manifest(s, cells=121),
        MANIFEST,
        "cover gids 0-119, the manifest says 121",
    ),
    "ranks edited": (lambda s: edit_manifest(s, ranks=2), MANIFEST, "ranks 2 and 1 parts"),
    "open region bin edited": (
        lambda s: edit_manifest(s, regions={"bin": 1.0, "open": 3}),
        MANIFEST,
        "open region bin 3, but t = 5 ms is in bin 5",
    ),
    "older format": (
        lambda s: edit_manifest(s, format_version=None),
        MANIFEST,
        "format_version None .* reads version 2, whose parts carry checksums",
    ),
    # the part files against the manifest
    "part missing": (lambda s: (s / PART).unlink(), PART, "checkpoint part is missing"),
    "part truncated": (
        lambda s: (s / PART).write_bytes((s / PART).read_bytes()[:1000]),
        PART,
        "checkpoint part is 1000 bytes, the manifest says",
    ),
    "part damaged": (
        lambda s: flip_byte(s / PART, 4000),
        PART,
        "does not match the checksum in its manifest",
    ),
    # what a part holds, even with a matching checksum
    "dataset missing": (
        lambda s: rewrite_part(s, lambda f: f.__delitem__("ev_time")),
        PART,
        "lacks the dataset.s. ev_time",
    ),
    "gids of another range": (
        lambda s: rewrite_part(s, replace_dataset("gid", np.arange(1, 121))),
        PART,
        "holds gids 1-120, the manifest says 0-119",
    ),
    "offsets not monotone": (
        lambda s: rewrite_part(s, lambda f: f["offset"].__setitem__(3, 10**6)),
        PART,
        r"offset \(121,\) does not index",
    ),
    "a cell of another size": (
        lambda s: rewrite_part(s, lambda f: f["offset"].__setitem__(1, f["offset"][1] + 1)),
        PART,
        "gid 0 has [0-9]+ unknowns, the model's cell [0-9]+",
    ),
    "event at an unknown the cell lacks": (
        lambda s: rewrite_part(s, replace_dataset("ev_position", np.full(_events(s), 10**6))),
        PART,
        "events at unknowns their target cell does not have",
    ),
    "Poisson state not JSON": (
        lambda s: rewrite_part(s, lambda f: f["ps_state"].__setitem__(0, "{broken")),
        PART,
        r"ps_state\[0\] is not a generator state",
    ),
    "part of another time": (
        lambda s: rewrite_part(s, lambda f: f.attrs.__setitem__("time", 4.0)),
        PART,
        r"written at t = 4.0 ms",
    ),
}


def _part(step):
    return json.loads((step / "manifest.json").read_text())["parts"][0]


def _events(step):
    with h5py.File(step / PART, "r") as f:
        return f["ev_position"].shape[0]


@pytest.mark.parametrize("case", list(CASES))
def test_a_checkpoint_that_does_not_hold_is_refused_naming_the_file(copy, case):
    store, step = copy
    damage, file, message = CASES[case]
    damage(step)
    step = next(step.parent.iterdir())  # (some cases rename it)
    before = dict(zarr.open_group(store, mode="r").attrs)
    with pytest.raises(StoreError, match=message) as raised:
        brainsim.run(config(), store, progress=False, resume=step)
    assert raised.value.path.name == file and raised.value.path.parent.resolve() == step.resolve()
    after = dict(zarr.open_group(store, mode="r").attrs)
    assert after["status"] == before["status"] == "complete" and after["t_reached"] == before["t_reached"]


def test_the_untouched_checkpoint_resumes(copy):
    """The copies the cases damage resume as they are (what each case changes is what is refused)."""
    store, step = copy
    run = brainsim.run(config(), store, progress=False, resume=step)
    assert run.status == "complete" and run.t_reached == 10.0


def test_a_shorter_tstop_than_the_checkpoint_is_refused_naming_both(copy):
    store, step = copy
    with pytest.raises(StoreError, match=r"at t = 5 ms, after this run's tstop 3 ms: .*tstop=5"):
        brainsim.run(config(tstop=3.0), store, progress=False, resume=step)


def test_the_manifest_records_checksums_and_the_parts_their_time(written):
    _, folder = written
    manifest = ckpt.open_checkpoint(folder)
    assert manifest["format_version"] == 2 and manifest["time"] == 10.0 and manifest["cells"] == 120
    (part,) = manifest["parts"]
    file = folder / "latest" / part["file"]
    assert part["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert part["bytes"] == file.stat().st_size
    with h5py.File(file, "r") as f:
        assert f.attrs["time"] == 10.0 and f.attrs["step"] == 400


def test_checkpoint_clean_up_never_deletes_foreign_files(tmp_path):
    """A step or staging folder that holds anything a checkpoint does not write is left alone."""
    step = ckpt.step_folder(tmp_path, 40)
    step.mkdir()
    (step / "manifest.json").write_text("{}")
    (step / "notes.txt").write_text("mine")
    ckpt.prepare(tmp_path, 40)
    with pytest.raises(StoreError, match="will not delete it: it holds notes.txt") as raised:
        ckpt.publish(tmp_path, 40, time=1.0, config_hash="h", ranks=1, gids_per_part=[(0, 0)], files=[{}])
    assert raised.value.path == step
    assert (step / "notes.txt").read_text() == "mine"
