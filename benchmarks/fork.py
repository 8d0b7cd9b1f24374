"""What forking costs: N futures from one state at T against full runs to tstop.

    .venv/bin/python benchmarks/fork.py [--config tests/data/small_brain.yaml] [--tstop 400] [--at 200]
                                        [--futures 1 2 4] [--reps 1] [--out benchmarks/fork.json]

In one process (numba compiled by an untimed run first): a full run to tstop (wall time of
`brainsim.run`), then for each N a fork of N futures (`none` and N - 1 sodium blocks of different
strength, from T on) twice: from the run's checkpoint at T (no prefix simulated) and from the config (the
prefix [0, T] simulated once in memory). Expected: from the checkpoint, N × (tstop - T) / tstop full runs;
from the config, that plus T / tstop of one. Each figure is the median over --reps of the wall time of
the whole call (building every future included).
"""

import argparse
import functools
import json
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

import brainsim
from brainsim.twin.fork import fork

ROOT = Path(__file__).resolve().parents[1]


def cpu():
    """The CPU's model name (lscpu), or the platform's processor."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "tests" / "data" / "small_brain.yaml"))
    parser.add_argument("--tstop", type=float, default=400.0, help="ms")
    parser.add_argument("--at", type=float, default=200.0, help="the fork time, ms")
    parser.add_argument("--futures", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--out", help="JSON file of the figures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="brainsim-fork-bench-"))
    cfg = brainsim.load_config(args.config, {"simulation.tstop": args.tstop})
    brainsim.run(
        brainsim.load_config(args.config, {"simulation.tstop": 5.0}),
        work / "warm.zarr",
        overwrite=True,
        progress=False,
    )
    full = statistics.median(
        timed(lambda: brainsim.run(cfg, work / "full.zarr", overwrite=True, progress=False))
        for _ in range(args.reps)
    )
    source = work / "source.zarr"
    brainsim.run(cfg, source, overwrite=True, progress=False, checkpoint_every=args.at)
    files = []
    for k in range(max(args.futures) - 1):
        item = {"kind": "drug", "mechanism": "nata", "parameter": "gbar", "factor": 0.9 - 0.2 * k}
        item.update(regions="all", cell_types="all", onset=args.at)
        files.append(work / f"block{k}.yaml")
        files[-1].write_text(yaml.safe_dump(item))
    share = (args.tstop - args.at) / args.tstop
    rows = []
    step = source.with_name("source.checkpoint") / f"step-{round(args.at / cfg['simulation']['dt']):012d}"
    for n in args.futures:
        for kind, where, prefix in (("checkpoint", step, 0.0), ("config", Path(args.config), args.at)):
            options = dict(tstop=args.tstop, overwrite=True, progress=False, log=None)
            if kind == "checkpoint":
                options["config"] = args.config
            call = functools.partial(fork, where, args.at, files[: n - 1], work / f"{kind}-{n}", **options)
            wall = statistics.median(timed(call) for _ in range(args.reps))
            expected = (n * share + prefix / args.tstop) * full
            rows.append({"from": kind, "futures": n, "wall_s": wall, "expected_s": expected})
    record = {
        "cpu": cpu(),
        "config": args.config,
        "tstop_ms": args.tstop,
        "at_ms": args.at,
        "full_run_s": full,
        "forks": rows,
    }
    print(f"CPU: {record['cpu']}; {args.config}, tstop {args.tstop:g} ms, fork at {args.at:g} ms")
    print(f"full run: {full:.2f} s")
    print(f"{'from':<11} {'futures':>7} {'wall s':>8} {'N x (tstop-T) [+T] s':>21} {'ratio':>6}")
    for r in rows:
        ratio = r["wall_s"] / r["expected_s"]
        print(f"{r['from']:<11} {r['futures']:>7} {r['wall_s']:>8.2f} {r['expected_s']:>21.2f} {ratio:>6.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
