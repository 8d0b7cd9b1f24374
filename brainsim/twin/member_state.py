"""A follower member's simulation state between two windows, as files: the SimulationState
(engine/state.py) of a one-rank member in an .npz (NumPy arrays only, read with allow_pickle=False) and a
small JSON manifest beside it::

    <name>.npz     gid, offset, state, rg_open, ev_*, ps_* (ps_state: the Poisson generators' states as
                   JSON text), region_bin, region_first
    <name>.json    {"format": "brainsim-member-state", "format_version": 1, "time": ms, "member": m,
                    "window": k, "gids": [first, last, count], "state_hash": RunConfig.state_hash(time)
                    of the member config that produced it, "sha256": of the .npz, "npz": its name}

`load_state` checks the manifest against what the caller expects (time, member, window) and the .npz
against its hash: a missing, altered or mismatched file is a StoreError naming it. Both files are
written beside their final names first and moved into place (the manifest last), so a state is either
whole or absent.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from brainsim.engine.state import SimulationState
from brainsim.errors import StoreError
from brainsim.io.checkpoint import Part

FORMAT = "brainsim-member-state"
FORMAT_VERSION = 1
EVENTS = ("ev_time", "ev_gid", "ev_position", "ev_weight", "ev_source")
POISSON = ("ps_gid", "ps_salt", "ps_last", "ps_offset", "ps_ahead")
TIME_TOL = 1e-6
"""ms: how far a state's time may be from the time expected of it."""


def state_paths(folder, member, window):
    """(npz, manifest) of member m's state at the end of window k in `folder`."""
    stem = f"member-{member:03d}.window-{window:05d}"
    return Path(folder) / f"{stem}.npz", Path(folder) / f"{stem}.json"


def save_state(state, folder, member, window, state_hash):
    """Write `state` (a SimulationState) as member m's state at the end of window k, produced by a config of
    state hash `state_hash`; returns the manifest's path."""
    npz, manifest = state_paths(folder, member, window)
    npz.parent.mkdir(parents=True, exist_ok=True)
    part = state.part
    arrays = {
        "gid": part.gid,
        "offset": part.offset,
        "state": part.state,
        "rg_open": np.asarray(part.regions, dtype=float),
        "region_bin": np.array(np.nan if state.region_bin is None else state.region_bin, dtype=float),
        "region_first": np.array(state.region_first, dtype=np.int64),
        "ps_state": np.array(list(part.poisson["ps_state"]), dtype=str),
        **{key: np.asarray(part.events[key]) for key in EVENTS},
        **{key: np.asarray(part.poisson[key]) for key in POISSON},
    }
    scratch = npz.with_name(npz.name + ".writing")
    with open(scratch, "wb") as f:
        np.savez(f, **arrays)
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()
    os.replace(scratch, npz)
    gids = np.asarray(part.gid)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "time": float(state.time),
        "member": int(member),
        "window": int(window),
        "gids": [int(gids.min()), int(gids.max()), int(gids.size)] if gids.size else [0, -1, 0],
        "state_hash": str(state_hash),
        "sha256": digest,
        "npz": npz.name,
    }
    scratch = manifest.with_name(manifest.name + ".writing")
    scratch.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(scratch, manifest)
    return manifest


def load_state(folder, member, window, time):
    """(SimulationState, state hash) of member m at the end of window k, expected at `time` (ms);
    StoreError naming the file when it is missing, unreadable, altered (its hash) or not that member's,
    window's or time's."""
    npz, manifest = state_paths(folder, member, window)
    try:
        record = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        raise StoreError(manifest, f"no readable member state ({type(e).__name__}: {e})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise StoreError(manifest, f"not a member state manifest ({FORMAT!r})")
    if record.get("format_version") != FORMAT_VERSION:
        raise StoreError(manifest, f"format_version {record.get('format_version')!r}, not {FORMAT_VERSION}")
    expected = {"member": member, "window": window, "npz": npz.name}
    wrong = {key: record.get(key) for key, value in expected.items() if record.get(key) != value}
    if wrong or not isinstance(record.get("time"), (int, float)) or abs(record["time"] - time) > TIME_TOL:
        raise StoreError(
            manifest, f"holds {wrong or {'time': record.get('time')}}, expected {expected} at {time:g} ms"
        )
    try:
        data = npz.read_bytes()
    except OSError as e:
        raise StoreError(npz, f"member state missing ({e.strerror or e})") from None
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise StoreError(npz, f"altered: its sha256 is not the one {manifest.name} records")
    try:
        with np.load(npz, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
        part = Part(
            gid=arrays["gid"],
            offset=arrays["offset"],
            state=arrays["state"],
            events={key: arrays[key] for key in EVENTS},
            poisson={
                **{key: arrays[key] for key in POISSON},
                "ps_state": [str(s) for s in arrays["ps_state"]],
            },
            regions=arrays["rg_open"],
        )
        region_bin = float(arrays["region_bin"])
        first = int(arrays["region_first"])
    except (KeyError, ValueError, OSError) as e:
        raise StoreError(npz, f"not a whole member state ({type(e).__name__}: {e})") from None
    gids = part.gid
    span = [int(gids.min()), int(gids.max()), int(gids.size)] if gids.size else [0, -1, 0]
    if span != record.get("gids"):
        raise StoreError(npz, f"holds gids {span}, its manifest records {record.get('gids')}")
    state = SimulationState(float(record["time"]), part, None if np.isnan(region_bin) else region_bin, first)
    return state, str(record.get("state_hash"))


def remove_states(folder, keep):
    """Remove what `folder` holds of windows not in `keep` (window indices): member states, and the run
    and summary stores (folders) named member-MMM.window-KKKKK.*."""
    for path in Path(folder).glob("member-*.window-*"):
        window = path.name.split(".window-")[1].split(".")[0]
        if window.isdigit() and int(window) not in keep:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
