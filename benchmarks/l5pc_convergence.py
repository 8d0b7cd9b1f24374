"""Convergence of brainsim's time stepping on Blue Brain's L5PC (configs/l5pc_bbp.yaml): spike times of each
method across dt against a reference solution (the most accurate method at a much smaller dt), the observed
order of each method (log2 of the error ratio of successive halvings of dt), and NEURON's own fixed step at
dt = 0.025 ms measured against the same reference.

    .venv/bin/python -m benchmarks.l5pc_convergence [--tstop 3000] [--dts 0.05 0.025 0.0125 0.00625]
        [--reference-dt 0.0015625] [--methods staggered bdf2 cn] [--no-neuron] [--out DIR]

Methods: staggered (the fixed-step scheme of NEURON and Arbor), bdf2 (PETSc BDF2 at fixed dt), cn (PETSc theta
0.5 with the endpoint variant: Crank-Nicolson), be (PETSc backward Euler), each with Newton to convergence;
midpoint (the PETSc default: theta 0.5, the implicit midpoint rule, one Newton step per step). The reference
is bdf2 at --reference-dt. Errors are the largest |spike time - reference| over the spikes (ms); a different
spike count is reported as such. Prints a table and writes DIR/l5pc_convergence.json.
"""

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from .l5pc_reference import protocol_stimuli, reference_folder, run_neuron, spike_times

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "l5pc_bbp.yaml"
NEWTON = {"snes_type": "newtonls"}  # Newton to convergence (the PETSc default takes one Newton step)
METHODS = {
    "staggered": ("staggered", {}),
    "bdf2": ("petsc", {"ts_type": "bdf", **NEWTON}),
    "cn": ("petsc", {"ts_type": "theta", "ts_theta_theta": 0.5, "ts_theta_endpoint": True, **NEWTON}),
    "be": ("petsc", {"ts_type": "beuler", **NEWTON}),
    "midpoint": ("petsc", {}),
}


def run_brainsim(method, dt, tstop, out):
    """(spike times ms, wall s of the run) of configs/l5pc_bbp.yaml with `method` at dt."""
    import brainsim

    kind, petsc = METHODS[method]
    sets = {"cells.l5pc.bluepyopt.folder": str(reference_folder()), "simulation.tstop": tstop,
            "simulation.dt": dt, "simulation.method": kind, "simulation.petsc": petsc,
            "probes": []}  # fmt: skip
    config = brainsim.load_config(CONFIG, sets)
    start = time.perf_counter()
    store = brainsim.run(config, out / f"{method}_{dt:g}.zarr", overwrite=True, progress=False)
    wall = time.perf_counter() - start
    return np.sort(np.asarray(store.spikes["time"].values, dtype=float)), wall


def error(spikes, reference):
    """Largest |spike - reference| (ms) over the spikes, or None where the counts differ."""
    if len(spikes) != len(reference):
        return None
    return float(np.max(np.abs(spikes - reference))) if len(spikes) else 0.0


def _row(method, dt, spikes, e, order, wall):
    last = float(spikes[-1]) if len(spikes) else None
    return {"method": method, "dt": dt, "spikes": len(spikes), "error_ms": e, "order": order, "wall_s": wall,
            "last_spike": last}  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tstop", type=float, default=3000.0, help="ms (Step1 runs to 3000)")
    parser.add_argument("--dts", type=float, nargs="+", default=[0.05, 0.025, 0.0125, 0.00625])
    parser.add_argument("--reference-dt", type=float, default=0.0015625)
    parser.add_argument("--methods", nargs="+", default=["staggered", "bdf2", "cn"], choices=sorted(METHODS))
    parser.add_argument("--no-neuron", action="store_true", help="leave NEURON out")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "l5pc_convergence")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    reference, ref_wall = run_brainsim("bdf2", args.reference_dt, args.tstop, args.out)
    print(f"L5PC Step1 to {args.tstop:g} ms; CPU {cpu}; reference bdf2 at dt {args.reference_dt:g} ms: "
          f"{len(reference)} spikes, last {reference[-1] if len(reference) else float('nan'):.3f} ms "
          f"({ref_wall:.0f} s)")  # fmt: skip
    rows = []
    for method in args.methods:
        previous = None
        for dt in sorted(args.dts, reverse=True):
            spikes, wall = run_brainsim(method, dt, args.tstop, args.out)
            e = error(spikes, reference)
            order = math.log2(previous / e) if previous and e else None
            rows.append(_row(method, dt, spikes, e, order, wall))
            previous = e
    if not args.no_neuron:
        stimuli, tstop = protocol_stimuli(reference_folder(), "Step1", args.tstop)
        runs, _, _ = run_neuron(reference_folder(), stimuli, tstop, 0.025, build=args.out / "neuron")
        t, v, wall = runs["NEURON fixed step"]
        spikes = spike_times(t, v["soma"])
        rows.append(_row("NEURON fixed step", 0.025, spikes, error(spikes, reference), None, wall))
    print(f"{'method':18} {'dt ms':>9} {'spikes':>6} {'error ms':>10} {'order':>6} {'last spike':>11} "
          f"{'wall s':>7}")  # fmt: skip
    for r in rows:
        e = "count" if r["error_ms"] is None else f"{r['error_ms']:.4f}"
        order = "" if r["order"] is None else f"{r['order']:.2f}"
        last = "" if r["last_spike"] is None else f"{r['last_spike']:.3f}"
        print(f"{r['method']:18} {r['dt']:9.5g} {r['spikes']:6d} {e:>10} {order:>6} {last:>11} "
              f"{r['wall_s']:7.1f}")  # fmt: skip
    record = {"cpu": cpu, "tstop": args.tstop, "reference_dt": args.reference_dt,
              "reference_spikes": reference.tolist(), "rows": rows}  # fmt: skip
    (args.out / "l5pc_convergence.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out / 'l5pc_convergence.json'}")


if __name__ == "__main__":
    main()
