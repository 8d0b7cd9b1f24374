"""Peak memory of the whole brain against its size: what each equation, synapse and cell costs.

    .venv/bin/python -m benchmarks.memory [--scales 1 4] [--reps 2] [--method staggered] [--out FILE]

Runs `brainsim run configs/whole_brain.yaml` for 5 ms (no warm-up), each run in its own process (after
one untimed run, so that no measured run compiles), at each brain.scale and once more at the largest
scale without long-range input (brain.long_range.indegree = 0: the same cells and equations, fewer
synapses), and reads each process's peak RSS. From the medians:

* per equation, all in: the slope of peak RSS between the smallest and largest scale over the equations';
* per synapse: the difference the long-range synapses make at the largest scale, over their number;
* per equation beyond the synapses (each cell's own part included): the slope less the synapses' share;
* `brainsim plan`'s memory for the same configurations beside the measured peaks.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.run import machine, med, spawn

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "whole_brain.yaml"
BRAINSIM = Path(sys.executable).with_name("brainsim")
NO_LONG_RANGE = "brain.long_range.indegree=0"


def planned(sets):
    """(equations, synapses, cells, planned GB on one rank) of the whole brain with --set sets."""
    from brainsim.config.load import load_config
    from brainsim.hpc.plan import plan

    p = plan(load_config(CONFIG, sets), 1)
    return p["equations"], p["synapses"], p["cells"], p["memory_per_rank_gb"][1]


def peak_rss(sets, method):
    """Peak RSS (bytes) of one 5-ms run of the whole brain with --set sets."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [*sets, "simulation.tstop=5", "simulation.warmup=0", f"simulation.method={method}"]
        cmd = [str(BRAINSIM), "run", str(CONFIG), "-o", os.path.join(tmp, "run.zarr"), "--overwrite", "-q"]
        rc, _, err, rss = spawn(cmd + [a for s in args for a in ("--set", s)], dict(os.environ))
    if rc:
        raise SystemExit(f"brainsim run {' '.join(sets)} failed:\n{err[-2000:]}")
    return rss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=float, nargs=2, default=[1.0, 4.0], help="brain.scale, small and large")
    ap.add_argument("--reps", type=int, default=2, help="runs of each configuration (medians over them)")
    ap.add_argument("--method", default="staggered", choices=["staggered", "petsc"])
    ap.add_argument("--out", help="write the figures as JSON here")
    a = ap.parse_args(argv)
    small, large = ([f"brain.scale={s:g}"] for s in a.scales)
    cases = {"small": small, "large": large, "large, no long-range": large + [NO_LONG_RANGE]}
    peak_rss(small, a.method)  # numba's on-disk cache filled (compiling takes memory of its own)
    rows = {}
    for name, sets in cases.items():
        peaks = []
        for rep in range(a.reps):
            peaks.append(peak_rss(sets, a.method))
            print(f"[rep {rep}] {name}: {peaks[-1] / 1e9:.3f} GB", file=sys.stderr, flush=True)
        equations, synapses, cells, plan_gb = planned(sets)
        rows[name] = dict(sets=sets, equations=equations, synapses=synapses, cells=cells, plan_gb=plan_gb,
                          peak_gb=med(peaks) / 1e9, peaks_gb=[p / 1e9 for p in peaks])  # fmt: skip
    s, b, n = rows["small"], rows["large"], rows["large, no long-range"]
    d_eq = b["equations"] - s["equations"]
    per_equation = (b["peak_gb"] - s["peak_gb"]) * 1e9 / d_eq
    per_synapse = (b["peak_gb"] - n["peak_gb"]) * 1e9 / (b["synapses"] - n["synapses"])
    beyond = per_equation - per_synapse * (b["synapses"] - s["synapses"]) / d_eq
    summary = dict(machine=machine(), method=a.method, rows=rows, bytes_per_equation_all_in=per_equation,
                   bytes_per_synapse=per_synapse, bytes_per_equation_beyond_synapses=beyond)  # fmt: skip
    print(f"{machine()}; {a.method}; medians of {a.reps} runs")
    print("| configuration | cells | equations | synapses | peak RSS GB | plan GB |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows.values():
        print(f"| {' '.join(r['sets'])} | {r['cells']:,} | {r['equations']:,} | {r['synapses']:,} | "
              f"{r['peak_gb']:.3f} | {r['plan_gb']:.3f} |")  # fmt: skip
    print(f"per equation, all in: {per_equation:.0f} B; per synapse: {per_synapse:.1f} B; "
          f"per equation beyond the synapses: {beyond:.0f} B")  # fmt: skip
    if a.out:
        Path(a.out).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
