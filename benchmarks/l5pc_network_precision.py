"""Accuracy per cost on a Poisson-driven network of Blue Brain's L5PC: brainsim against NEURON's fixed step,
CVODE and local variable time step, on the first 100 ms of spikes.

The network is benchmark M3's (benchmarks/m3.py: 32 L5PCs, an exp2syn at each soma, Poisson input on
the 0.025-ms grid, in-degree 8, 1.5-ms delay), cut at --tstop. Every configuration runs once, in its own
process pinned to one core (m3's workers). Its error is the largest |Δt| between the k-th spike of a cell
and the k-th spike of the same cell in the reference (brainsim's PETSc default at --reference-dt); a
configuration whose spike counts differ from the reference's has not reached any error, and is shown
with the number of spikes it gained or lost.

    .venv/bin/python -m benchmarks.l5pc_network_precision            # needs ../shared/reference/l5pc
    .venv/bin/python -m benchmarks.l5pc_network_precision --cells 4 --tstop 30 --fixed-dts 0.025 \
        --brainsim-dts 0.025 --lvardt-atols 1e-3 --reference-dt 0.0125      # a check of the script

Prints a table (wall s, error ms, per configuration) and the cheapest configuration of each simulator
that reaches each of the target errors; writes runs.jsonl and report.md to --out.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.l5pc_reference import compile_mechanisms, reference_folder
from benchmarks.m3 import NET, network_table
from benchmarks.run import ONE_THREAD, spawn

ROOT = Path(__file__).resolve().parent.parent
TARGETS = (1.0, 0.1)
"""Spike-time errors (ms) at which the cheapest configurations are compared."""


def configurations(a):
    """(label, simulator, worker options) of every configuration asked for."""
    out = [(f"brainsim PETSc default dt {dt:g}", "brainsim", ["--method", "petsc", "--dt", f"{dt:g}"])
           for dt in a.brainsim_dts]  # fmt: skip
    out += [(f"brainsim staggered dt {dt:g}", "brainsim", ["--method", "staggered", "--dt", f"{dt:g}"])
            for dt in a.fixed_dts]  # fmt: skip
    out += [(f"NEURON fixed dt {dt:g}", "neuron", ["--dt", f"{dt:g}"]) for dt in a.fixed_dts]
    out += [(f"NEURON CVODE atol {x:g}", "neuron", ["--cvode-atol", f"{x:g}"]) for x in a.cvode_atols]
    out += [
        (f"NEURON lvardt atol {x:g}", "neuron", ["--cvode-atol", f"{x:g}", "--lvardt"])
        for x in a.lvardt_atols
    ]
    return out


def run(simulator, options, table, library, pin, env):
    """One m3 worker run of the network: its result line, or {"error": ...}."""
    cmd = [*pin, sys.executable, "-m", "benchmarks.m3", "worker", simulator, "net", "--table", str(table)]
    cmd += (["--library", str(library)] if simulator == "neuron" else []) + options
    rc, out, err, _ = spawn(cmd, env)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if rc == 0 and lines else {"error": (err or out)[-1500:]}


def spike_error(spikes, reference):
    """(largest |Δt| over the k-th spikes of each cell, spikes gained or lost against the reference)."""

    def by_cell(s):
        cells = {}
        for gid, t in s:
            cells.setdefault(gid, []).append(t)
        return cells

    mine, ref = by_cell(spikes), by_cell(reference)
    worst, off = 0.0, 0
    for gid in set(mine) | set(ref):
        a, b = mine.get(gid, []), ref.get(gid, [])
        off += abs(len(a) - len(b))
        worst = max([worst] + [abs(x - y) for x, y in zip(a, b)])
    return worst, off


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=32)
    ap.add_argument("--tstop", type=float, default=100.0, help="ms of network activity compared")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reference-dt", type=float, default=0.003125, help="ms, brainsim's PETSc default")
    ap.add_argument("--brainsim-dts", type=float, nargs="*", default=[0.05, 0.025, 0.0125],
                    help="ms, brainsim's PETSc default (at 0.05 its one Newton step blows up)")  # fmt: skip
    ap.add_argument("--fixed-dts", type=float, nargs="*", default=[0.05, 0.025, 0.0125, 0.00625],
                    help="ms, brainsim's staggered scheme and NEURON's fixed step")  # fmt: skip
    ap.add_argument("--cvode-atols", type=float, nargs="*", default=[1e-3], help="NEURON's CVODE")
    ap.add_argument("--lvardt-atols", type=float, nargs="*", default=[1e-3, 1e-4, 1e-5],
                    help="NEURON's local variable time step")  # fmt: skip
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "l5pc_network_precision")
    a = ap.parse_args(argv)

    a.out.mkdir(parents=True, exist_ok=True)
    table = a.out / "network.json"
    table.write_text(json.dumps(network_table(a.cells, a.tstop, a.seed, **NET)))
    library = compile_mechanisms(reference_folder() / "mechanisms", a.out / "neuron")
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    env = dict(os.environ, **ONE_THREAD)
    for method in ("petsc", "staggered"):  # numba's cache warm before the timed runs
        run("brainsim", ["--method", method, "--dt", "0.1"], table, library, pin, env)
    print(f"reference: brainsim PETSc default at dt {a.reference_dt:g} ms ...", flush=True)
    reference = run(
        "brainsim", ["--method", "petsc", "--dt", f"{a.reference_dt:g}"], table, library, pin, env
    )
    if "error" in reference:
        print(reference["error"], file=sys.stderr)
        return 1
    records = [
        dict(
            label=f"reference: brainsim PETSc default dt {a.reference_dt:g}",
            simulator="brainsim",
            wall_s=reference["wall_s"],
            error_ms=0.0,
            spikes_off=0,
            spikes=len(reference["spikes"]),
        )
    ]
    for label, simulator, options in configurations(a):
        r = run(simulator, options, table, library, pin, env)
        if "error" in r:
            print(f"{label}: ERROR {r['error'][-300:]}", flush=True)
            continue
        worst, off = spike_error(r["spikes"], reference["spikes"])
        records.append(dict(label=label, simulator=simulator, wall_s=r["wall_s"], error_ms=worst,
                            spikes_off=off, spikes=len(r["spikes"])))  # fmt: skip
        print(f"{label}: {r['wall_s']:.2f} s, error {worst:.3g} ms, spikes {len(r['spikes'])} ({off} off)",
              flush=True)  # fmt: skip

    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout if shutil.which("lscpu") else ""
    name = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "?")
    lines = [
        f"{a.cells} L5PCs (M3's network), first {a.tstop:g} ms, {len(reference['spikes'])} spikes in the "
        f"reference; {name}, one core per run.",
        "",
        "| configuration | wall s | max spike-time error, ms | spikes off |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['label']} | {r['wall_s']:.2f} | {r['error_ms']:.3g} | {r['spikes_off']} |" for r in records
    ]
    lines += ["", "Cheapest configuration reaching each error (every spike count as the reference's):", ""]
    for target in TARGETS:
        for who in ("brainsim", "neuron"):
            ok = [
                r
                for r in records[1:]
                if r["simulator"] == who and not r["spikes_off"] and r["error_ms"] <= target
            ]
            best = min(ok, key=lambda r: r["wall_s"], default=None)
            lines.append(
                f"* {target:g} ms, {who}: " + (f"{best['label']}, {best['wall_s']:.2f} s" if best else "none")
            )
    print("\n" + "\n".join(lines))
    (a.out / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (a.out / "report.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
