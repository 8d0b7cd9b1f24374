"""Where a run stands: its store's status and pace, and its SLURM jobs' states."""

import json
import shutil
import subprocess
from pathlib import Path

import zarr

from ..io.zarr_store import FORMAT as RUN_FORMAT


def store_status(path):
    """The run store's attributes that say where it stands (status 'none' when there is no store)."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        return {"status": "none", "path": str(path)}
    attrs = zarr.open_group(path, mode="r").attrs.asdict()
    if attrs.get("format") != RUN_FORMAT:
        raise ValueError(f"{path} is not a run store (format {attrs.get('format')!r})")
    tstop = float(json.loads(attrs["config"])["simulation"]["tstop"])
    out = {
        "path": str(path),
        "status": attrs.get("status", "?"),
        "t_reached": float(attrs.get("t_reached", 0.0)),
        "tstop": tstop,
        "error": attrs.get("error"),
    }
    progress = attrs.get("progress")
    if progress and progress["wall_s"] > 0 and out["t_reached"] > progress["t_from"]:
        pace = (out["t_reached"] - progress["t_from"]) / progress["wall_s"]  # simulated ms per wall second
        out.update(pace=pace, updated=progress["updated"])
        if out["status"] == "running":
            out["eta_s"] = (tstop - out["t_reached"]) / pace
    return out


def slurm_state(job_id):
    """(state, reason or exit code) of a SLURM job from squeue, or scontrol once it left the queue."""
    if shutil.which("squeue") is None:
        return "unknown", "no squeue on PATH"
    done = subprocess.run(
        ["squeue", "-h", "-j", str(job_id), "-o", "%T|%R|%M"], capture_output=True, text=True
    )
    rows = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode == 0 and rows:
        states = sorted({row.split("|")[0] for row in rows})
        return ",".join(states), rows[0].split("|")[1]
    done = subprocess.run(["scontrol", "-o", "show", "job", str(job_id)], capture_output=True, text=True)
    fields = dict(item.split("=", 1) for item in done.stdout.split() if "=" in item)
    if done.returncode == 0 and "JobState" in fields:
        return fields["JobState"], f"exit {fields.get('ExitCode', '?')}"
    return "finished", "no longer known to SLURM"


def describe(target):
    """Lines describing a run store, a job folder (jobs/<name>, with job.json), a campaign folder or a job
    id (searched for in jobs/*/job.json)."""
    path = Path(target)
    if (path / "campaign.json").is_file():
        from .sweep import collect

        return collect(path, write=False).lines()
    if not path.exists() and str(target).isdigit():
        found = [
            f
            for f in Path("jobs").glob("*/job.json")
            if str(target) in json.loads(f.read_text())["jobs"].values()
        ]
        if not found:
            state, detail = slurm_state(target)
            return [f"job {target}: {state} ({detail})"]
        path = found[0].parent
    lines = []
    if (path / "job.json").is_file():
        record = json.loads((path / "job.json").read_text())
        for role, job_id in record["jobs"].items():
            state, detail = slurm_state(job_id)
            lines.append(f"{role} job {job_id}: {state} ({detail})")
        path = Path(record["store"])
    return lines + store_lines(store_status(path))


def store_lines(info):
    if info["status"] == "none":
        return [f"store {info['path']}: not written yet"]
    percent = 100.0 * info["t_reached"] / info["tstop"]
    lines = [
        f"store {info['path']}: {info['status']}, "
        f"{info['t_reached']:g} of {info['tstop']:g} ms ({percent:.0f}%)"
    ]
    if "pace" in info:
        eta = f", ETA {_duration(info['eta_s'])}" if "eta_s" in info else ""
        lines.append(f"  pace {info['pace']:.3g} simulated ms per second (at {info['updated']}){eta}")
    if info["error"]:
        lines.append(f"  error: {info['error']}")
    return lines


def _duration(s):
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
