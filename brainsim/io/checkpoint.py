"""Checkpoints: the state of a run at an epoch boundary, keyed by gid (never by rank), in HDF5.

A checkpoint is a folder written by every rank at once, each its own part file, then made visible
atomically by renaming it into place and pointing the `latest` link at it:

    PATH/latest -> step-000000002000/    (a symbolic link, replaced atomically)
    PATH/step-000000002000/manifest.json   time, step, config hash, version, the parts and their gids
    PATH/step-000000002000/part-00000.h5   the cells of one writer (datasets below)

A folder without manifest.json is never looked at, so a half-written checkpoint cannot pass for one.
Part datasets: gid (n,), offset (n+1,) and state (Σ) — each cell's unknowns in its canonical order
(`CellGroup.cell_unknowns`) —, the pending events (ev_time, ev_gid, ev_position: an unknown of the target
cell in that order, ev_weight, ev_source) and the Poisson streams (ps_gid, ps_salt, ps_state: the
generator's state as JSON, ps_last, ps_offset, ps_ahead: the times drawn ahead), and each cell's share of
the open bin of the region summaries (rg_open (n, 3): ∫V dt, ∫dt, spikes; the bin is in the manifest).
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import StoreError

FORMAT = "brainsim-checkpoint"
MANIFEST_KEYS = ("time", "step", "config_hash", "ranks", "regions", "parts")
KEEP = 2
"""Checkpoints kept in a checkpoint folder (older ones are removed after a new one is in place)."""


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


def write_part(path, step, rank, part):
    """Write this rank's part into the not yet published folder of checkpoint `step`."""
    folder = _staging(path, step)
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / f"part-{rank:05d}.h5", "w") as f:
        f["gid"], f["offset"], f["state"], f["rg_open"] = part.gid, part.offset, part.state, part.regions
        for key, value in part.events.items():
            f[key] = value
        for key, value in part.poisson.items():
            f.create_dataset(key, data=value, dtype=h5py.string_dtype() if key == "ps_state" else None)


def publish(path, step, *, time, config_hash, ranks, gids_per_part, regions=None):
    """Rank 0, after every part is written: write the manifest, move the folder into place, point
    `latest` at it and remove checkpoints older than the last KEEP. regions: {bin (ms), open (bin index)}
    of the region summaries, or None."""
    path = Path(path)
    staging = _staging(path, step)
    manifest = {
        "format": FORMAT,
        "brainsim_version": __version__,
        "time": time,
        "step": step,
        "config_hash": config_hash,
        "ranks": ranks,
        "regions": regions,
        "parts": [
            {"file": f"part-{r:05d}.h5", "gids": [int(lo), int(hi)]}
            for r, (lo, hi) in enumerate(gids_per_part)
        ],
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    final = step_folder(path, step)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    link = path / "latest"
    tmp = path / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(final.name)
    os.replace(tmp, link)
    steps = sorted(p for p in path.glob("step-*") if (p / "manifest.json").exists())
    for old in steps[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)


def prepare(path, step):
    """Rank 0, before the parts are written: a fresh staging folder for checkpoint `step`."""
    staging = _staging(path, step)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)


def _staging(path, step):
    return Path(path) / f".staging-{step:012d}"


def open_checkpoint(path):
    """The manifest of a checkpoint: PATH may be a checkpoint folder (its `latest` is taken) or one step."""
    path = Path(path)
    folder = path / "latest" if (path / "latest").exists() else path
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise StoreError(path, f"not a complete brainsim checkpoint ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = f"format {manifest.get('format')!r}" if isinstance(manifest, dict) else "not a JSON object"
        raise StoreError(
            folder / "manifest.json", f"not a brainsim checkpoint ({found}, expected {FORMAT!r})"
        )
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise StoreError(folder / "manifest.json", f"checkpoint manifest lacks {', '.join(missing)}")
    manifest["folder"] = str(folder.resolve())
    return manifest


def check_compatible(manifest, config_hash):
    if manifest["config_hash"] != config_hash:
        raise StoreError(
            manifest["folder"],
            f"checkpoint written by a run of another config (hash {manifest['config_hash']}, this run's "
            f"{config_hash}): resume with the config (and --set values) it was written with",
        )


def read_cells(manifest, gids):
    """What the checkpoint holds for `gids` (sorted): (their states, their pending events, their Poisson
    streams, their rows of the region summaries' open bin (n, 3)), in gid order."""
    gids = np.asarray(gids, dtype=np.int64)
    found = []
    for entry in manifest["parts"]:
        lo, hi = entry["gids"]
        if gids.size == 0 or hi < gids[0] or lo > gids[-1]:
            continue
        part = Path(manifest["folder"]) / entry["file"]
        try:
            with h5py.File(part, "r") as f:
                found.append(_select(f, gids))
        except (OSError, KeyError) as e:
            raise StoreError(part, f"unreadable checkpoint part ({type(e).__name__}: {e})") from None
    return _merge(found, gids, manifest["folder"])


def _select(f, gids):
    gid, offset, state, open_bin = f["gid"][:], f["offset"][:], f["state"], f["rg_open"][:]
    rows = np.nonzero(np.isin(gid, gids))[0]
    cells = [(int(gid[r]), (state[offset[r] : offset[r + 1]], open_bin[r])) for r in rows]
    ev = {k: f[k][:] for k in ("ev_time", "ev_gid", "ev_position", "ev_weight", "ev_source")}
    mine = np.isin(ev["ev_gid"], gids)
    events = {k: v[mine] for k, v in ev.items()}
    ps_gid = f["ps_gid"][:]
    ps_offset = f["ps_offset"][:]
    ahead = f["ps_ahead"][:]
    streams = [
        (
            int(ps_gid[i]),
            int(f["ps_salt"][i]),
            f["ps_state"][i].decode() if isinstance(f["ps_state"][i], bytes) else f["ps_state"][i],
            float(f["ps_last"][i]),
            ahead[ps_offset[i] : ps_offset[i + 1]],
        )
        for i in np.nonzero(np.isin(ps_gid, gids))[0]
    ]
    return cells, events, streams


def _merge(found, gids, folder):
    cells = dict(c for part in found for c in part[0])
    missing = [int(g) for g in gids if int(g) not in cells]
    if missing:
        raise StoreError(folder, f"the checkpoint has no state for gids {missing[:5]}... (another model?)")
    keys = ("ev_time", "ev_gid", "ev_position", "ev_weight", "ev_source")
    events = {k: np.concatenate([part[1][k] for part in found]) if found else np.zeros(0) for k in keys}
    streams = [s for part in found for s in part[2]]
    mine = [cells[int(g)] for g in gids]
    return [state for state, _ in mine], events, streams, np.array([row for _, row in mine]).reshape(-1, 3)
