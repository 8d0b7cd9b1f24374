"""brainsim's MPI scaling, with NEURON under MPI beside it, printed as medians and paired ratios.

Strong scaling (1 vs 2 ranks), spike-exchange overhead, weak scaling (1, 2, 4 ranks), NEURON on the
same ring at 1 and 2 ranks, and the rank invariance of brainsim's spike lists.

    .venv/bin/python benchmarks/scaling.py [--reps 3] [--out scaling.jsonl] [--markdown scaling.md]

Every run is its own subprocess, and the runs are interleaved round-robin over the repetitions.
brainsim runs under the `mpiexec` on PATH (Open MPI), NEURON under the mpich wheel's own mpiexec from
benchmarks/.peers-venv (benchmarks/setup_peers.sh); without it only brainsim runs. See
benchmarks/README.md, "Scaling (MPI)".
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from run import BRAINSIM, HERE, ONE_THREAD, PEERS_PY, ROOT, machine, med, spawn

PEERS_BIN = PEERS_PY.parent
PEERS_LIBMPI = PEERS_BIN.parent / "lib" / "libmpi.so.12"
MODELS = {"M2": ("m2_ring.yaml", "cells.ring.count"), "net": ("random_net.yaml", "cells.net.count")}
NAMES = {"M2": "M2 ring", "net": "random net"}
STRONG = [("M2", 256), ("net", 1024)]  # (model, N) at 1 and 2 ranks
WEAK_PER_RANK, WEAK_RANKS = 256, (1, 2, 4)  # random net, cells ∝ ranks
NEURON_N = 256  # M2 ring, NEURON at 1 and 2 ranks
OPEN_MPI = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
}
CORES = os.cpu_count()


@dataclass(frozen=True)
class Job:
    code: str  # brainsim or neuron
    model: str  # M2 or net
    N: int
    ranks: int
    tstop: float


def jobs(tstop, neuron):
    """Every distinct run, in a fixed order (the weak-scaling 4-rank run is the strong net size)."""
    todo = [Job("brainsim", m, N, r, tstop) for m, N in STRONG for r in (1, 2)]
    todo += [Job("brainsim", "net", WEAK_PER_RANK * r, r, tstop) for r in WEAK_RANKS]
    if neuron:
        todo += [Job("neuron", "M2", NEURON_N, r, tstop) for r in (1, 2)]
    return list(dict.fromkeys(todo))


def run_brainsim(job, env):
    """`mpiexec -n ranks brainsim run` into a temporary store; returns (record or None, stderr)."""
    import zarr

    config, count = MODELS[job.model]
    sets = [f"{count}={job.N}", f"simulation.tstop={job.tstop:g}"]
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "run.zarr")
        cmd = [
            "mpiexec",
            "-n",
            str(job.ranks),
            str(BRAINSIM),
            "run",
            str(ROOT / "configs" / "bench" / config),
        ]
        cmd += ["-o", store, "--overwrite", "-q", *(a for s in sets for a in ("--set", s))]
        rc, _, err, rss = spawn(cmd, env)
        if rc:
            return None, err
        g = zarr.open_group(store, mode="r")
        spikes = sorted(
            zip(g["spikes"]["gid"][:].tolist(), g["spikes"]["time"][:].tolist()), key=lambda s: s[::-1]
        )
        steps = round(g.attrs["t_reached"] / json.loads(g.attrs["config"])["simulation"]["dt"])
        timing, compartments = dict(g.attrs["timing"]), g.attrs["counts"]["compartments"]
    ranks = timing.pop("ranks")
    if ranks != job.ranks:
        return None, f"brainsim ran on {ranks:g} rank(s), not {job.ranks}"
    rec = dict(timing, wall_s=timing["run_s"], compartments=compartments, steps=steps, n_spikes=len(spikes))
    return dict(rec, spikes=spikes, peak_rss_bytes=rss), err


def run_neuron(job, env):
    """NEURON's M2: one rank serially on core 0, more under the mpich wheel's mpiexec with --mpi."""
    script = [str(PEERS_PY), str(HERE / "peers" / "neuron_bench.py"), "m2", "--N", str(job.N)]
    script += ["--tstop", f"{job.tstop:g}"]
    if job.ranks == 1:
        cmd = ["taskset", "-c", "0", *script] if shutil.which("taskset") else script
    else:
        mpiexec = [str(PEERS_BIN / "mpiexec"), "-genv", "LD_PRELOAD", str(PEERS_LIBMPI), "-bind-to", "core"]
        cmd = [*mpiexec, "-n", str(job.ranks), *script, "--mpi"]
    rc, out, err, rss = spawn(cmd, env)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if rc or not lines:
        return None, err + out
    rec = json.loads(lines[-1])
    if rec["mpi_ranks"] != job.ranks:
        return None, f"NEURON ran on {rec['mpi_ranks']} rank(s), not {job.ranks}"
    return dict(rec, spikes=[tuple(s) for s in rec["spikes"]], peak_rss_bytes=rss), err


def run_job(job, rep, env):
    """Run one job; its record (with rep, load and process time) or an error record."""
    load, t0 = os.getloadavg()[0], time.perf_counter()
    rec, err = (run_brainsim if job.code == "brainsim" else run_neuron)(job, env)
    if rec is None:
        rec = dict(error=err[-2000:])
    return dict(rec, **asdict(job), rep=rep, process_s=time.perf_counter() - t0, loadavg1=load)


def progress(r):
    """One line per finished run."""
    head = f"[rep {r['rep']}] {r['code']} {r['model']} N={r['N']} ranks={r['ranks']}: "
    if "error" in r:
        return head + "ERROR " + r["error"].strip()[-300:]
    exchange = f", exchange {r['exchange_s']:.3f} s" if "exchange_s" in r else ""
    return head + f"{r['wall_s']:.3f} s{exchange}, {r['n_spikes']} spikes (load {r['loadavg1']:.2f})"


def by_rep(records, code, model, N, ranks):
    """{rep: record} of one configuration's successful runs."""
    key = (code, model, N, ranks)
    return {
        r["rep"]: r
        for r in records
        if "error" not in r and (r["code"], r["model"], r["N"], r["ranks"]) == key
    }


def paired(a, b, f):
    """Median over the reps present in both a and b of f(a[rep], b[rep])."""
    return med([f(a[k], b[k]) for k in a if k in b])


def wall(runs):
    return med([r["wall_s"] for r in runs.values()])


def spikes_of(runs):
    return ",".join(map(str, sorted({r["n_spikes"] for r in runs.values()})))


def fmt(x, spec):
    return "" if x is None else format(x, spec)


def strong_table(records):
    head = [
        "| model | N | compartments | run s, 1 rank | run s, 2 ranks | speed-up T1/T2 | "
        "efficiency T1/(2·T2) | spikes | peak RSS per process MB (1, 2 ranks) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows = []
    for model, N in STRONG:
        one, two = (by_rep(records, "brainsim", model, N, r) for r in (1, 2))
        if not one or not two:
            continue
        rss = [med([r["peak_rss_bytes"] for r in x.values()]) / 2**20 for x in (one, two)]
        speedup = paired(one, two, lambda a, b: a["wall_s"] / b["wall_s"])
        r = dict(model=model, N=N, t1=wall(one), t2=wall(two), speedup=speedup, efficiency=speedup / 2)
        rows.append(r)
        head.append(
            f"| {NAMES[model]} | {N} | {next(iter(one.values()))['compartments']} | {r['t1']:.3f} | "
            f"{r['t2']:.3f} | {r['speedup']:.2f} | {100 * r['efficiency']:.0f}% | {spikes_of(one)}, "
            f"{spikes_of(two)} | {rss[0]:.0f}, {rss[1]:.0f} |"
        )
    return head, rows


def exchange_table(records):
    """Every brainsim configuration: time in the spike exchange per epoch and as a share of run_s."""
    lines = [
        "| model | N | ranks | epochs | run s | exchange s | µs per epoch | exchange / run [max] |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for key in dict.fromkeys((r["model"], r["N"], r["ranks"]) for r in records if r["code"] == "brainsim"):
        runs = by_rep(records, "brainsim", *key)
        if not runs:
            continue
        rs = runs.values()
        row = dict(
            model=key[0],
            N=key[1],
            ranks=key[2],
            epochs=med([r["epochs"] for r in rs]),
            run_s=wall(runs),
            exchange_s=med([r["exchange_s"] for r in rs]),
            us_per_epoch=med([1e6 * r["exchange_s"] / r["epochs"] for r in rs]),
            share=med([r["exchange_s"] / r["run_s"] for r in rs]),
            share_max=max(r["exchange_s"] / r["run_s"] for r in rs),
        )
        rows.append(row)
        lines.append(
            f"| {NAMES[key[0]]} | {key[1]} | {key[2]} | {row['epochs']:.0f} | {row['run_s']:.3f} | "
            f"{row['exchange_s']:.3f} | {row['us_per_epoch']:.0f} | "
            f"{row['share']:.1%} [{row['share_max']:.1%}] |"
        )
    return lines, rows


def weak_table(records):
    lines = [
        "| ranks | cells | compartments | run s | ns/c-step × ranks | efficiency T1/TN | spikes |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = by_rep(records, "brainsim", "net", WEAK_PER_RANK, 1)
    rows = []
    for ranks in WEAK_RANKS:
        runs = by_rep(records, "brainsim", "net", WEAK_PER_RANK * ranks, ranks)
        if not runs:
            continue
        eff = paired(base, runs, lambda a, b: a["wall_s"] / b["wall_s"])
        ns = med([r["ns_per_compartment_step"] * ranks for r in runs.values()])
        rows.append(dict(ranks=ranks, cells=WEAK_PER_RANK * ranks, run_s=wall(runs), efficiency=eff))
        over = " (oversubscribed)" if ranks > CORES else ""
        lines.append(
            f"| {ranks}{over} | {WEAK_PER_RANK * ranks} | {next(iter(runs.values()))['compartments']} | "
            f"{wall(runs):.3f} | {ns:.1f} | {fmt(eff, '.0%')} | {spikes_of(runs)} |"
        )
    return lines, rows


def neuron_table(records):
    """brainsim and NEURON on the M2 ring at 1 and 2 ranks; brainsim/NEURON paired within each rep."""
    lines = [
        "| simulator | run s, 1 rank | run s, 2 ranks | speed-up T1/T2 | efficiency T1/(2·T2) | spikes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    runs = {(c, r): by_rep(records, c, "M2", NEURON_N, r) for c in ("brainsim", "neuron") for r in (1, 2)}
    if not all(runs.values()):
        return ["(NEURON did not run: see benchmarks/setup_peers.sh)"], []
    rows = []
    for code in ("brainsim", "neuron"):
        one, two = runs[code, 1], runs[code, 2]
        speedup = paired(one, two, lambda a, b: a["wall_s"] / b["wall_s"])
        rows.append(dict(simulator=code, t1=wall(one), t2=wall(two), speedup=speedup, efficiency=speedup / 2))
        lines.append(
            f"| {code} | {wall(one):.3f} | {wall(two):.3f} | {speedup:.2f} | {50 * speedup:.0f}% | "
            f"{spikes_of(one)}, {spikes_of(two)} |"
        )
    ratio = [
        paired(runs["brainsim", r], runs["neuron", r], lambda a, b: a["wall_s"] / b["wall_s"]) for r in (1, 2)
    ]
    rows.append(dict(simulator="brainsim/neuron", t1=ratio[0], t2=ratio[1]))
    lines += [
        "",
        f"brainsim/NEURON run time: **{ratio[0]:.2f}** at 1 rank, **{ratio[1]:.2f}** at 2 ranks "
        "(< 1: brainsim faster).",
    ]
    return lines, rows


def invariance(records):
    """Each run's spike list (gid, time) against the 1-rank run of the same configuration and rep."""
    lines = [
        "| simulator | model | N | ranks vs 1 rank | runs compared | spikes | identical |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    rows = []
    for code, model, N in dict.fromkeys((r["code"], r["model"], r["N"]) for r in records):
        one = by_rep(records, code, model, N, 1)
        for ranks in sorted(
            {r["ranks"] for r in records if (r["code"], r["model"], r["N"]) == (code, model, N)} - {1}
        ):
            other = by_rep(records, code, model, N, ranks)
            pairs = [(one[k]["spikes"], other[k]["spikes"]) for k in other if k in one]
            if not pairs:
                continue
            same = all(a == b for a, b in pairs)
            rows.append(dict(code=code, model=model, N=N, ranks=ranks, pairs=len(pairs), identical=same))
            lines.append(
                f"| {code} | {NAMES[model]} | {N} | {ranks} | {len(pairs)} | {spikes_of(other)} | "
                f"{'yes' if same else 'NO'} |"
            )
    return lines, rows


def report(records, meta):
    """The whole report as markdown lines, and the summary rows for --out."""
    strong, s_rows = strong_table(records)
    exchange, x_rows = exchange_table(records)
    weak, w_rows = weak_table(records)
    neuron, n_rows = neuron_table(records)
    same, i_rows = invariance(records)
    lines = [
        f"Machine: {meta['machine']}; load average {meta['load']}; {meta['reps']} reps, tstop "
        f"{meta['tstop']:g} ms; brainsim under {meta['mpi']}, NEURON under {meta['neuron_mpi']}.",
        "",
        "Run time = the time loop only (brainsim: `timing.run_s` of rank 0, spike exchange included; "
        "NEURON: `pc.psolve`, the maximum over the ranks). Speed-ups, efficiencies and ratios are taken "
        "per repetition, then the median.",
        "",
        f"**Strong scaling** (brainsim, {CORES} cores):",
        "",
        *strong,
        "",
        "**Spike exchange** (rank 0's wall time in the exchange, waiting for the other ranks included):",
        "",
        *exchange,
        "",
        f"**Weak scaling** (random net, {WEAK_PER_RANK} cells per rank; efficiency = T1/TN). With "
        f"{CORES} cores, more than {CORES} ranks share cores: at 4 ranks about 50% is the ceiling.",
        "",
        *weak,
        "",
        f"**brainsim and NEURON** on the M2 ring, N = {NEURON_N} (NEURON: 1 rank = serial on core 0, "
        "2 ranks = ParallelContext under MPI):",
        "",
        *neuron,
        "",
        "**Rank invariance** (spike lists (gid, time) compared exactly with the 1-rank run of the same rep):",
        "",
        *same,
    ]
    errors = [r for r in records if "error" in r]
    if errors:
        lines += ["", f"{len(errors)} failed runs: " + ", ".join(sorted({progress(r) for r in errors}))]
    summary = dict(strong=s_rows, exchange=x_rows, weak=w_rows, neuron=n_rows, invariance=i_rows)
    return lines, summary


def version(cmd):
    """The first line of cmd's output (an MPI's version)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
    except OSError:
        return "?"
    return " ".join((out.splitlines() or ["?"])[0].split())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tstop", type=float, default=200.0, help="stop time of every run, ms")
    ap.add_argument("--out", help="write every run and the summary as JSON lines here")
    ap.add_argument("--markdown", help="write the report as markdown here")
    a = ap.parse_args()

    neuron = PEERS_LIBMPI.exists() and (PEERS_BIN / "mpiexec").exists()
    if not neuron:
        print(
            "NEURON with mpich not found: run benchmarks/setup_peers.sh. Running brainsim alone.", flush=True
        )
    env = dict(os.environ, **ONE_THREAD, **OPEN_MPI)
    todo = jobs(a.tstop, neuron)
    for ranks in (1, 2):  # untimed: fills numba's on-disk cache
        for model in MODELS:
            run_job(Job("brainsim", model, 4, ranks, 1.0), -1, env)
    records, load0 = [], os.getloadavg()[0]
    for rep in range(a.reps):
        k = (rep * 4) % len(todo)  # rotate so that no job always runs first
        for job in todo[k:] + todo[:k]:
            records.append(run_job(job, rep, env))
            print(progress(records[-1]), flush=True)
    meta = dict(
        machine=machine(),
        load=f"{load0:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        reps=a.reps,
        tstop=a.tstop,
        mpi=version(["mpiexec", "--version"]),
        neuron_mpi=version([str(PEERS_BIN / "mpichversion")]) if neuron else "-",
    )
    lines, summary = report(records, meta)
    print("\n" + "\n".join(lines))
    if a.out:
        with open(a.out, "w") as f:
            for r in records:
                f.write(json.dumps(dict(kind="run", **r)) + "\n")
            for kind, rows in summary.items():
                for row in rows:
                    f.write(json.dumps(dict(kind=kind, **row)) + "\n")
    if a.markdown:
        Path(a.markdown).write_text("\n".join(lines) + "\n")
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
