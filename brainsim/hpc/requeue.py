"""Whether a self-requeueing SLURM job may start again: only when its last start advanced the run.

slurm/templates/run.sbatch notes the latest checkpoint's time when a start begins (`latest`) and, when the
run step was told to stop (the time-limit signal), asks `decide` before `scontrol requeue`. A start that
wrote no newer checkpoint would be followed by another that spends its budget the same way: it is not
requeued, and the message says why (how long start-up took, how long before the limit the signal comes)
and what to change.

    python -m brainsim.hpc.requeue latest CHECKPOINT_FOLDER        # prints the time (ms) or "none"
    python -m brainsim.hpc.requeue decide --checkpoint DIR --before T|none --store STORE \\
        --started UNIX_S --signalled UNIX_S --limit S --lead S [--job ID]   # exit 0: requeue
"""

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

NONE = "none"


def latest_time(folder):
    """Simulated time (ms) of the latest checkpoint in folder, or None when there is none (or it cannot be
    read: then a resume could not use it either)."""
    try:
        return float(json.loads((Path(folder) / "latest" / "manifest.json").read_text())["time"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def writer_start(store):
    """Unix time (s) at which the store's last writer started writing (after its start-up), or None."""
    try:
        attrs = json.loads((Path(store) / "zarr.json").read_text())["attributes"]
        return datetime.fromisoformat(attrs["progress"]["since"]).timestamp()
    except (OSError, ValueError, TypeError, KeyError):
        return None


@dataclass(frozen=True)
class Start:
    """One start of the job: what its run was at (checkpoint times, ms) and when (unix s)."""

    job: str
    before: float | None  # the latest checkpoint when the start began
    after: float | None  # ... when its run step ended
    started: float  # the start began
    signalled: float | None  # the stop signal came (None: not told to stop)
    writing: float | None  # the store's writer started (None: not during this start)
    limit_s: float  # the job's time limit
    lead_s: float  # the signal comes this long before it

    @property
    def advanced(self):
        return self.after is not None and (self.before is None or self.after > self.before)


def decide(start):
    """(requeue?, the line to log)."""
    was = "none" if start.before is None else f"t={start.before:g} ms"
    if start.advanced:
        return True, f"job {start.job}: checkpoint at t={start.after:g} ms (was {was}); requeueing"
    budget = start.limit_s - start.lead_s
    told = (
        ""
        if start.signalled is None
        else f", the stop signal came {start.signalled - start.started:.0f} s in"
    )
    if start.writing is not None and start.writing >= start.started:
        took = f"start-up took {start.writing - start.started:.0f} s"
    else:
        took = "start-up did not end (the run never began writing its store)"
    return False, (
        f"job {start.job}: not requeued: this start wrote no new checkpoint (the latest is still {was}); "
        f"{took}{told}, and the signal comes {start.lead_s:g} s before the {start.limit_s:g} s limit, "
        f"leaving {budget:g} s per start. Another start would spend its time the same way: give each start "
        "more time (--time), a longer signal lead (signal_seconds in the site profile) or, for long epochs, "
        "periodic checkpoints (--checkpoint-every)"
    )


def _time_or_none(text):
    return None if text == NONE else float(text)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m brainsim.hpc.requeue", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    latest = sub.add_parser("latest", help="print the latest checkpoint's time (ms), or none")
    latest.add_argument("checkpoint")
    check = sub.add_parser("decide", help="exit 0 if the job should requeue itself; log why (not)")
    check.add_argument("--checkpoint", required=True)
    check.add_argument("--before", required=True, type=_time_or_none, help="`latest` at the start (ms)")
    check.add_argument("--store", required=True)
    check.add_argument("--started", required=True, type=float, help="unix s")
    check.add_argument("--signalled", type=_time_or_none, default=None, help="unix s, or none")
    check.add_argument("--limit", required=True, type=float, help="the time limit, s")
    check.add_argument("--lead", required=True, type=float, help="s the signal comes before the limit")
    check.add_argument("--job", default="?")
    args = parser.parse_args(argv)
    if args.command == "latest":
        time = latest_time(args.checkpoint)
        print(NONE if time is None else repr(time))
        return 0
    start = Start(
        args.job,
        args.before,
        latest_time(args.checkpoint),
        args.started,
        args.signalled,
        writer_start(args.store),
        args.limit,
        args.lead,
    )
    requeue, line = decide(start)
    print(f"brainsim: {line}", file=sys.stdout if requeue else sys.stderr)
    return 0 if requeue else 1


if __name__ == "__main__":
    sys.exit(main())
