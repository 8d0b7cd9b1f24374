"""Checkpoints: the state of a run at an epoch boundary, keyed by gid (never by rank), in HDF5.

A checkpoint is a folder written by every rank at once, each its own part file, then made visible
atomically by renaming it into place and pointing the `latest` link at it:

    PATH/latest -> step-000000002000/    (a symbolic link, replaced atomically)
    PATH/step-000000002000/manifest.json   format_version, time, step, config hash, state hash (of what
                                            determined the state up to its time: RunConfig.state_hash),
                                            the cells, the parts (file, gid range, size in bytes, sha256)
                                            and the region bin
    PATH/step-000000002000/part-00000.h5   the cells of one writer (datasets below; attrs time, step)

A folder without manifest.json is never looked at, so a half-written checkpoint cannot pass for one.
Nothing read back is trusted: the manifest must be consistent (its step folder, parts covering gids
0..cells-1 in contiguous blocks, each part file of the recorded size), each part file must match its
checksum and hold what the manifest says (time, step, gids, array shapes), and the resuming run checks
time against step × dt, tstop and its model (`check_compatible`).
Part datasets: gid (n,), offset (n+1,) and state (Σ) — each cell's unknowns in its canonical order
(`CellGroup.cell_unknowns`) —, the pending events (ev_time, ev_gid, ev_position: an unknown of the target
cell in that order, ev_weight, ev_source) and the Poisson streams (ps_gid, ps_salt, ps_state: the
generator's state as JSON, ps_last, ps_offset, ps_ahead: the times drawn ahead), and each cell's share of
the open bin of the region summaries (rg_open (n, 3): ∫V dt, ∫dt, spikes; the bin is in the manifest).
"""

import hashlib
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import StoreError

FORMAT = "brainsim-checkpoint"
FORMAT_VERSION = 2
"""2: part checksums and sizes, the cell count and part attributes time and step."""
MANIFEST_KEYS = ("time", "step", "config_hash", "cells", "ranks", "regions", "parts")
EVENT_KEYS = ("ev_time", "ev_gid", "ev_position", "ev_weight", "ev_source")
STREAM_KEYS = ("ps_gid", "ps_salt", "ps_state", "ps_last", "ps_offset", "ps_ahead")
PART_KEYS = ("gid", "offset", "state", "rg_open", *EVENT_KEYS, *STREAM_KEYS)
KEEP = 2
"""Checkpoints kept in a checkpoint folder (older ones are removed after a new one is in place)."""
TIME_TOL = 1e-6
"""Largest mismatch, in steps, between a checkpoint's time and its step × dt."""
_STEP_NAME = re.compile(r"step-(\d{12})")
_PART_NAME = re.compile(r"part-\d{5}\.h5")


@dataclass
class Part:
    """One writer's share of a checkpoint (arrays as described in the module docstring)."""

    gid: np.ndarray
    offset: np.ndarray
    state: np.ndarray
    events: dict  # ev_time, ev_gid, ev_position, ev_weight, ev_source
    poisson: dict  # ps_gid, ps_salt, ps_state (list of str), ps_last, ps_offset, ps_ahead
    regions: np.ndarray  # rg_open (n, 3)


def step_folder(path, step):
    return Path(path) / f"step-{step:012d}"


def write_part(path, step, rank, part, time):
    """Write this rank's part (at `time`, ms) into the not yet published folder of checkpoint `step`;
    returns what the manifest records of the file: {bytes, sha256}."""
    folder = _staging(path, step)
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"part-{rank:05d}.h5"
    with h5py.File(file, "w") as f:
        f.attrs["time"], f.attrs["step"] = float(time), int(step)
        f["gid"], f["offset"], f["state"], f["rg_open"] = part.gid, part.offset, part.state, part.regions
        for key, value in part.events.items():
            f[key] = value
        for key, value in part.poisson.items():
            f.create_dataset(key, data=value, dtype=h5py.string_dtype() if key == "ps_state" else None)
    return {"bytes": file.stat().st_size, "sha256": _sha256(file)}


def publish(path, step, *, time, config_hash, ranks, gids_per_part, files, regions=None, state_hash=None):
    """Rank 0, after every part is written: write the manifest, move the folder into place, point
    `latest` at it and remove checkpoints older than the last KEEP. files: each part's {bytes, sha256}
    (from write_part); regions: {bin (ms), open (bin index)} of the region summaries, or None;
    state_hash: the writing run's RunConfig.state_hash(time)."""
    path = Path(path)
    staging = _staging(path, step)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "brainsim_version": __version__,
        "time": time,
        "step": step,
        "config_hash": config_hash,
        "state_hash": state_hash,
        "cells": int(gids_per_part[-1][1]) + 1,
        "ranks": ranks,
        "regions": regions,
        "parts": [
            {"file": f"part-{r:05d}.h5", "gids": [int(lo), int(hi)], **files[r]}
            for r, (lo, hi) in enumerate(gids_per_part)
        ],
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    final = step_folder(path, step)
    if final.exists():
        _remove(final)
    os.replace(staging, final)
    link = path / "latest"
    tmp = path / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(final.name)
    os.replace(tmp, link)
    steps = sorted(p for p in path.glob("step-*") if (p / "manifest.json").exists())
    for old in steps[:-KEEP]:
        _remove(old, missing_ok=True)


def prepare(path, step):
    """Rank 0, before the parts are written: a fresh staging folder for checkpoint `step`."""
    staging = _staging(path, step)
    if staging.exists():
        _remove(staging)
    staging.mkdir(parents=True)


def _staging(path, step):
    return Path(path) / f".staging-{step:012d}"


def _remove(folder, missing_ok=False):
    """Delete a checkpoint step (or staging) folder, refusing one that holds anything a checkpoint does
    not write (a folder of the same name made by someone else)."""
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    foreign = [e.name for e in entries if not (e.is_file() and _is_own_file(e.name))]
    if foreign:
        raise StoreError(
            folder,
            f"will not delete it: it holds {', '.join(sorted(foreign)[:5])}, which a checkpoint does not "
            "write (only manifest.json and part-NNNNN.h5)",
        )
    shutil.rmtree(folder, ignore_errors=missing_ok)


def _is_own_file(name):
    return name == "manifest.json" or _PART_NAME.fullmatch(name) is not None


def _sha256(file):
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_checkpoint(path):
    """The manifest of a checkpoint, checked (see the module docstring): PATH may be a checkpoint folder
    (its `latest` is taken) or one step. StoreError naming the file where anything does not hold."""
    path = Path(path)
    folder = path / "latest" if (path / "latest").exists() else path
    file = folder / "manifest.json"
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise StoreError(path, f"not a complete brainsim checkpoint ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = f"format {manifest.get('format')!r}" if isinstance(manifest, dict) else "not a JSON object"
        raise StoreError(file, f"not a brainsim checkpoint ({found}, expected {FORMAT!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreError(
            file,
            f"checkpoint format_version {version!r} (written by brainsim "
            f"{manifest.get('brainsim_version', '?')}); this brainsim reads version {FORMAT_VERSION}, whose "
            "parts carry checksums: resume with the brainsim that wrote it, or run again",
        )
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise StoreError(file, f"checkpoint manifest lacks {', '.join(missing)}")
    _check_manifest(manifest, folder, file)
    manifest["folder"] = str(folder.resolve())
    return manifest


def _check_manifest(m, folder, file):
    def bad(message):
        raise StoreError(file, f"inconsistent checkpoint manifest: {message}")

    time, step = m["time"], m["step"]
    if not _number(time) or not math.isfinite(time) or time < 0:
        bad(f"time {time!r}; expected a time >= 0 (ms)")
    if not _whole(step) or step < 0:
        bad(f"step {step!r}; expected a whole number >= 0")
    name = _STEP_NAME.fullmatch(folder.resolve().name)
    if name is not None and int(name.group(1)) != step:
        bad(f"step {step} in the folder of step {int(name.group(1))}")
    if not _whole(m["cells"]) or m["cells"] < 1:
        bad(f"cells {m['cells']!r}; expected a whole number >= 1")
    parts = m["parts"]
    if not isinstance(parts, list) or not parts or m["ranks"] != len(parts):
        bad(f"ranks {m['ranks']!r} and {len(parts) if isinstance(parts, list) else parts!r} parts")
    regions = m["regions"]
    if regions is not None and not (
        isinstance(regions, dict)
        and _number(regions.get("bin"))
        and regions["bin"] > 0
        and _whole(regions.get("open"))
        and regions["open"] >= 0
    ):
        bad(f"regions {regions!r}; expected null or {{bin: ms > 0, open: bin index >= 0}}")
    first = 0
    for i, entry in enumerate(parts):
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("file"), str)
            and _PART_NAME.fullmatch(entry["file"]) is not None
            and isinstance(entry.get("gids"), list)
            and len(entry["gids"]) == 2
            and all(_whole(g) for g in entry["gids"])
            and _whole(entry.get("bytes"))
            and isinstance(entry.get("sha256"), str)
        )
        if not ok:
            bad(
                f"parts[{i}] is {entry!r}; expected "
                "{file: part-NNNNN.h5, gids: [first, last], bytes, sha256}"
            )
        lo, hi = entry["gids"]
        if lo != first or hi < lo - 1:
            bad(
                f"parts[{i}] holds gids {lo}-{hi}; the parts must cover gids from 0 in contiguous blocks "
                f"(this one should start at {first})"
            )
        first = hi + 1
        part = folder / entry["file"]
        try:
            size = part.stat().st_size
        except OSError as e:
            raise StoreError(part, f"checkpoint part is missing ({e.strerror})") from None
        if size != entry["bytes"]:
            raise StoreError(
                part,
                f"checkpoint part is {size} bytes, the manifest says {entry['bytes']}: truncated or changed",
            )
    if first != m["cells"]:
        bad(f"the parts cover gids 0-{first - 1}, the manifest says {m['cells']} cells")


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _whole(x):
    return isinstance(x, int) and not isinstance(x, bool)


def check_compatible(manifest, *, config_hash, dt, tstop, cells, state_hash=None):
    """Refuse a checkpoint this run cannot continue from: another model (config hash, cell count), a time
    that is not its step × dt (ms), or one after this run's tstop (ms). state_hash: this run's
    RunConfig.state_hash at the checkpoint's time; when the manifest records the same one, a run of
    another config whose differences act only after that time (a fork) may continue from it."""
    file = Path(manifest["folder"]) / "manifest.json"
    same_state = state_hash is not None and manifest.get("state_hash") == state_hash
    if manifest["config_hash"] != config_hash and not same_state:
        raise StoreError(
            manifest["folder"],
            f"checkpoint written by a run of another config (hash {manifest['config_hash']}, this run's "
            f"{config_hash}): resume with the config (and --set values) it was written with",
        )
    if manifest["cells"] != cells:
        raise StoreError(file, f"checkpoint of {manifest['cells']} cells; this model has {cells}")
    time, step = manifest["time"], manifest["step"]
    if abs(time - step * dt) > TIME_TOL * dt:
        raise StoreError(
            file,
            f"inconsistent checkpoint manifest: time {time:g} ms is not step {step} × dt {dt:g} ms "
            f"= {step * dt:g} ms",
        )
    if time > tstop + TIME_TOL * dt:
        raise StoreError(
            file,
            f"the checkpoint is at t = {time:g} ms, after this run's tstop {tstop:g} ms: resume with a "
            f"tstop of at least {time:g} ms (--set simulation.tstop={time:g})",
        )


def read_cells(manifest, gids, sizes):
    """What the checkpoint holds for `gids` (sorted), each with sizes[i] unknowns in this model: (their
    states, their pending events, their Poisson streams, their rows of the region summaries' open bin
    (n, 3)), in gid order. Each part read is checked against its checksum and the manifest first."""
    gids = np.asarray(gids, dtype=np.int64)
    expected = dict(zip(gids.tolist(), np.asarray(sizes, dtype=np.int64).tolist()))
    found = []
    for entry in manifest["parts"]:
        lo, hi = entry["gids"]
        if gids.size == 0 or hi < gids[0] or lo > gids[-1] or hi < lo:
            continue
        part = Path(manifest["folder"]) / entry["file"]
        try:
            if _sha256(part) != entry["sha256"]:
                raise StoreError(
                    part,
                    "checkpoint part does not match the checksum in its manifest: the file is damaged or was "
                    "changed after the checkpoint was written",
                )
            with h5py.File(part, "r") as f:
                found.append(_select(f, part, entry, manifest, gids, expected))
        except (OSError, KeyError) as e:
            raise StoreError(part, f"unreadable checkpoint part ({type(e).__name__}: {e})") from None
    return _merge(found, gids, manifest["folder"])


def _select(f, file, entry, manifest, gids, expected):
    """This part's cells among `gids` (cells, events, streams), after checking it holds what the manifest
    says in arrays of consistent shapes."""

    def bad(message):
        raise StoreError(file, f"inconsistent checkpoint part: {message}")

    missing = [key for key in PART_KEYS if key not in f]
    if missing:
        bad(f"lacks the dataset(s) {', '.join(missing)}")
    if f.attrs.get("time") != manifest["time"] or f.attrs.get("step") != manifest["step"]:
        bad(
            f"written at t = {f.attrs.get('time')} ms (step {f.attrs.get('step')}), the manifest says "
            f"t = {manifest['time']} ms (step {manifest['step']})"
        )
    for key in PART_KEYS:
        if f[key].ndim != (2 if key == "rg_open" else 1):
            bad(f"dataset {key} has shape {f[key].shape}")
    lo, hi = entry["gids"]
    gid, offset = f["gid"][:], f["offset"][:]
    if not np.array_equal(gid, np.arange(lo, hi + 1)):
        bad(f"holds gids {_span(gid)}, the manifest says {lo}-{hi}")
    n, state = gid.size, f["state"]
    if (
        offset.shape != (n + 1,)
        or offset[0] != 0
        or np.any(np.diff(offset) < 0)
        or offset[-1] != state.shape[0]
    ):
        bad(f"offset {offset.shape} does not index the {state.shape[0]} unknowns of {n} cells")
    if f["rg_open"].shape != (n, 3):
        bad(f"rg_open has shape {f['rg_open'].shape}, expected ({n}, 3)")
    size = np.diff(offset)
    rows = np.nonzero(np.isin(gid, gids))[0]
    wrong = [int(gid[r]) for r in rows if size[r] != expected[int(gid[r])]]
    if wrong:
        g = wrong[0]
        bad(f"gid {g} has {size[g - lo]} unknowns, the model's cell {expected[g]} (another model?)")
    ev = {k: f[k][:] for k in EVENT_KEYS}
    if len({v.shape for v in ev.values()}) != 1:
        bad(f"event datasets of different lengths {[v.shape for v in ev.values()]}")
    mine = np.isin(ev["ev_gid"], gids)
    events = {k: v[mine] for k, v in ev.items()}
    if np.any((events["ev_gid"] < lo) | (events["ev_gid"] > hi)):
        bad(f"events for gids outside {lo}-{hi}")
    if np.any((events["ev_position"] < 0) | (events["ev_position"] >= size[events["ev_gid"] - lo])):
        bad("events at unknowns their target cell does not have")
    if not np.all(events["ev_time"] >= manifest["time"] - 1e-9 * max(1.0, manifest["time"])):
        bad(f"pending events before the checkpoint time {manifest['time']} ms")
    ps = {k: f[k][:] for k in STREAM_KEYS}
    m = ps["ps_gid"].size
    if (
        any(ps[k].shape != (m,) for k in ("ps_salt", "ps_state", "ps_last"))
        or ps["ps_offset"].shape != (m + 1,)
        or ps["ps_offset"][0] != 0
        or np.any(np.diff(ps["ps_offset"]) < 0)
        or ps["ps_offset"][-1] != ps["ps_ahead"].size
    ):
        bad("Poisson stream datasets of inconsistent lengths")
    if np.any((ps["ps_gid"] < lo) | (ps["ps_gid"] > hi)):
        bad(f"Poisson streams of gids outside {lo}-{hi}")
    if rows.size:
        block = state[offset[rows[0]] : offset[rows[-1] + 1]]
        base = offset[rows[0]]
        cells = [
            (int(gid[r]), (block[offset[r] - base : offset[r + 1] - base], f["rg_open"][r])) for r in rows
        ]
    else:
        cells = []
    streams = []
    for i in np.nonzero(np.isin(ps["ps_gid"], gids))[0]:
        text = ps["ps_state"][i]
        text = text.decode() if isinstance(text, bytes) else text
        try:
            generator = json.loads(text)
        except ValueError:
            generator = None
        if not isinstance(generator, dict) or "bit_generator" not in generator:
            bad(f"ps_state[{i}] is not a generator state (JSON with bit_generator)")
        a, b = ps["ps_offset"][i], ps["ps_offset"][i + 1]
        streams.append(
            (int(ps["ps_gid"][i]), int(ps["ps_salt"][i]), text, float(ps["ps_last"][i]), ps["ps_ahead"][a:b])
        )
    return cells, events, streams


def _span(gids):
    return f"{int(gids[0])}-{int(gids[-1])}" if len(gids) else "none"


def _merge(found, gids, folder):
    cells = dict(c for part in found for c in part[0])
    missing = [int(g) for g in gids if int(g) not in cells]
    if missing:
        raise StoreError(folder, f"the checkpoint has no state for gids {missing[:5]}... (another model?)")
    events = {k: np.concatenate([part[1][k] for part in found]) if found else np.zeros(0) for k in EVENT_KEYS}
    streams = [s for part in found for s in part[2]]
    mine = [cells[int(g)] for g in gids]
    return [state for state, _ in mine], events, streams, np.array([row for _, row in mine]).reshape(-1, 3)
