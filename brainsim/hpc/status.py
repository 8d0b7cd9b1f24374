"""Where a run stands: its store's status and pace, and its SLURM jobs' states."""

import json
import shutil
import subprocess
from pathlib import Path

from ..errors import BrainsimError, StoreError
from ..io.run_store import RunStore
from .sweep import collect


def store_status(path):
    """Where the run store at path stands: status (as stored, except "dead" or "stale" for a running store
    whose writer is gone or silent: see RunStore.liveness), t_reached and tstop (ms), error, liveness, and
    from the writer's progress its pace (simulated ms per wall second) and, while it runs, the ETA (s).
    StoreError if there is no store, something else, or a damaged store."""
    path = Path(path)
    store = RunStore.open(path)
    tstop = store.tstop
    live = store.liveness()
    out = {
        "path": str(path),
        "status": store.status if live is None or live.state == "alive" else live.state,
        "t_reached": store.t_reached,
        "tstop": tstop,
        "error": store.error,
        "liveness": live,
    }
    progress = store.progress
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
    if shutil.which("sacct") is not None:
        command = ["sacct", "-n", "-X", "-P", "-j", str(job_id), "-o", "State,ExitCode"]
        done = subprocess.run(command, capture_output=True, text=True)
        rows = [line.split("|") for line in done.stdout.splitlines() if line.count("|") == 1]
        if done.returncode == 0 and rows:
            return rows[-1][0], f"exit {rows[-1][1]} (from SLURM's accounting)"
    return (
        UNKNOWN,
        "neither squeue, scontrol nor sacct knows it: it ended long ago or was never submitted here",
    )


UNKNOWN = "unknown to SLURM"


def describe(target, jobs_dir="jobs"):
    """Lines describing a run store, a job folder (<jobs_dir>/<name>, with job.json), a campaign folder or
    a job id (searched for in <jobs_dir>/*/job.json)."""
    path = Path(target)
    if (path / "campaign.json").is_file():
        return collect(path, write=False).lines()
    if not path.exists() and str(target).isdigit():
        found = [
            f
            for f in sorted(Path(jobs_dir).glob("*/job.json"))
            if str(target) in _job_record(f)["jobs"].values()
        ]
        if not found:
            state, detail = slurm_state(target)
            if state == UNKNOWN:
                raise BrainsimError(f"job {target}: {state} ({detail}); no job folder in {jobs_dir} has it")
            return [f"job {target}: {state} ({detail})"]
        path = found[0].parent
    if not path.exists():
        expected = "a run store, a job folder (job.json), a campaign folder or a job id"
        raise StoreError(path, f"nothing there: expected {expected}")
    lines = []
    if (path / "job.json").is_file():
        record = _job_record(path / "job.json")
        for role, job_id in record["jobs"].items():
            state, detail = slurm_state(job_id)
            lines.append(f"{role} job {job_id}: {state} ({detail})")
        path = Path(record["store"])
        if not path.exists():
            return [*lines, f"store {path}: not written yet"]
    return lines + store_lines(store_status(path))


def _job_record(file):
    """A job folder's job.json (written by `brainsim submit`): its jobs {role: id} and its store."""
    try:
        record = json.loads(Path(file).read_text())
        if isinstance(record["jobs"], dict) and isinstance(record["store"], str):
            return record
    except (OSError, ValueError, TypeError, KeyError):
        pass
    raise StoreError(
        file, "not a job record (JSON with jobs {role: job id} and store; `brainsim submit` writes it)"
    )


def store_lines(info):
    percent = 100.0 * info["t_reached"] / info["tstop"]
    live = info["liveness"]
    state = info["status"]
    if state == "stale" and live.heartbeat is not None:
        state = f"stale since {live.heartbeat.isoformat(timespec='seconds')}"
    lines = [f"store {info['path']}: {state}, {info['t_reached']:g} of {info['tstop']:g} ms ({percent:.0f}%)"]
    if live is not None and live.state != "alive":
        age = "no heartbeat" if live.age_s is None else f"last heartbeat {live.age_s:.0f} s ago"
        if live.state == "dead":
            why = f"no longer exists ({age}); run it again (with --resume if it wrote a checkpoint)"
        else:
            why = f"renews its heartbeat every {live.interval_s:g} s, {age}: it died or hangs"
        lines.append(f"  its status says running, but its writer ({live.who}) {why}")
    if "pace" in info:
        eta = f", ETA {_duration(info['eta_s'])}" if "eta_s" in info else ""
        lines.append(f"  pace {info['pace']:.3g} simulated ms per second (at {info['updated']}){eta}")
    if info["error"]:
        lines.append(f"  error: {info['error']}")
    return lines


def _duration(s):
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
