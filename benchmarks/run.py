"""brainsim side by side with NEURON and Arbor on the benchmark models M1 and M2, on one core.

    .venv/bin/python benchmarks/run.py [--reps 3] [--out results.jsonl] [--markdown results.md]

Every run is its own subprocess, pinned to core 0 (taskset) with one thread, and the runs are
interleaved round-robin over the repetitions. The peers come from benchmarks/.peers-venv
(benchmarks/setup_peers.sh); without it only brainsim runs. See benchmarks/README.md.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BRAINSIM = ROOT / ".venv" / "bin" / "brainsim"
PEERS_PY = HERE / ".peers-venv" / "bin" / "python"
M1_TSTOP = 100.0
TINY_N, TINY_TSTOP, TINY_COMPARTMENTS = 1, 1.0, 196  # memory baseline: M2 with one cell, 1 ms
BRAINSIM_METHODS = {"brainsim staggered": "staggered", "brainsim petsc": "petsc"}
PEERS = {
    "neuron": ["neuron_bench.py", "--usetable", "1"],
    "neuron usetable_hh=0": ["neuron_bench.py", "--usetable", "0"],
    "arbor threads=1": ["arbor_bench.py", "--threads", "1"],
}
RATIO_TO = {"Arbor": "arbor threads=1", "NEURON": "neuron", "NEURON exact": "neuron usetable_hh=0"}
ONE_THREAD = {
    k: "1" for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
}
MEMORY_NOTE = (
    "Peak RSS is the `ru_maxrss` of each run's own process, from `os.wait4` in a small `python -S` "
    "parent (Linux carries the RSS high-water mark over fork and exec, so that parent's ≈ 8 MB is a "
    "floor). `B/comp` = (median peak RSS − median peak RSS of the same simulator/config on a tiny "
    f"model: M2 with {TINY_N} cell for {TINY_TSTOP:g} ms) ÷ (compartments − {TINY_COMPARTMENTS}): "
    "memory beyond the interpreter, the libraries and a one-cell model. M1 has only 1001 compartments, "
    "so its figure mostly shows fixed differences from the tiny model (code, buffers), and RSS moves "
    "by ~1 MB from run to run. The better per-compartment figure is the slope on M2 below: "
    "(peak(largest N) − peak(smallest N)) ÷ Δcompartments."
)


@dataclass(frozen=True)
class Job:
    model: str
    N: int
    config: str
    tstop: float
    tiny: bool = False  # a memory-baseline run


def jobs(sizes, tstop, peers):
    """The timed runs and the tiny memory-baseline runs, in a fixed order."""
    configs = list(BRAINSIM_METHODS) + (list(PEERS) if peers else [])
    timed = []
    for model, N, t in [("M1", 1, M1_TSTOP)] + [("M2", n, tstop) for n in sizes]:
        for c in configs:
            if c != "brainsim petsc" or model == "M1" or N == 64:
                timed.append(Job(model, N, c, t))
    return timed, [Job("M2", TINY_N, c, TINY_TSTOP, tiny=True) for c in configs]


PEAK_RSS = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
status, usage = os.wait4(pid, 0)[1:]
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Runs argv[2:] as its child and writes the child's ru_maxrss (KiB) to argv[1]. Linux carries a
process's RSS high-water mark over fork and exec, so a child of the (large) runner would report at
least the runner's RSS: this small `python -S` parent (≈ 8 MB) lowers that floor."""


def spawn(cmd, env):
    """Run cmd to the end; return (exit code, stdout, stderr, peak RSS in bytes of cmd's process)."""
    with tempfile.TemporaryDirectory() as tmp:
        rss = os.path.join(tmp, "rss")
        p = subprocess.run(
            [sys.executable, "-S", "-c", PEAK_RSS, rss, *cmd],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        peak = int(Path(rss).read_text()) * 1024 if os.path.exists(rss) else 0
    return p.returncode, p.stdout, p.stderr, peak


def run_brainsim(job, pin, env):
    """One `brainsim run` into a temporary Zarr store; returns a record like the peer scripts' line."""
    import zarr

    cfg = ROOT / "configs" / "bench" / ("m1_hh_cable.yaml" if job.model == "M1" else "m2_ring.yaml")
    sets = [f"simulation.method={BRAINSIM_METHODS[job.config]}", f"simulation.tstop={job.tstop:g}"]
    if job.model == "M2":
        sets.append(f"cells.ring.count={job.N}")
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "run.zarr")
        cmd = [*pin, str(BRAINSIM), "run", str(cfg), "-o", store, "--overwrite", "-q"]
        rc, _, err, rss = spawn(cmd + [a for s in sets for a in ("--set", s)], env)
        if rc:
            return None, rss, err
        g = zarr.open_group(store, mode="r")
        timing, dt = g.attrs["timing"], json.loads(g.attrs["config"])["simulation"]["dt"]
        spikes = sorted(
            zip(g["spikes"]["gid"][:].tolist(), g["spikes"]["time"][:].tolist()), key=lambda s: (s[1], s[0])
        )
        steps = round(g.attrs["t_reached"] / dt)
        rec = dict(
            simulator="brainsim",
            config=job.config,
            model=job.model,
            N=job.N,
            tstop_ms=job.tstop,
            compartments=g.attrs["counts"]["compartments"],
            steps=steps,
            wall_s=timing["run_s"],
            build_s=timing["build_s"],
            ns_per_compartment_step=timing["ns_per_compartment_step"],
            n_spikes=len(spikes),
            spikes=spikes,
        )
    return rec, rss, err


def run_peer(job, pin, env):
    """One peer script under the peers' virtualenv; returns its JSON line as a dict."""
    script, *args = PEERS[job.config]
    cmd = [
        *pin,
        str(PEERS_PY),
        str(HERE / "peers" / script),
        job.model.lower(),
        "--N",
        str(job.N),
        "--tstop",
        f"{job.tstop:g}",
        *args,
    ]
    rc, out, err, rss = spawn(cmd, env)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return (json.loads(lines[-1]) if rc == 0 and lines else None), rss, err


def run_job(job, rep, pin, env):
    """Run one job and return its record (with rep, peak RSS, load) or an error record."""
    load, t0 = os.getloadavg()[0], time.perf_counter()
    run = run_brainsim if job.config in BRAINSIM_METHODS else run_peer
    rec, rss, err = run(job, pin, env)
    if rec is None:
        rec = dict(asdict(job), error=err[-2000:])
    rec.update(rep=rep, peak_rss_bytes=rss, process_s=time.perf_counter() - t0, loadavg1=load, tiny=job.tiny)
    return rec


def warm_up(pin, env):
    """Untimed brainsim runs of each model and method, so that numba's on-disk cache is filled."""
    for model in ("M1", "M2"):
        for config in BRAINSIM_METHODS:
            run_job(Job(model, 1, config, TINY_TSTOP), -1, pin, env)


def progress(job, r):
    """One line per finished run."""
    head = f"[rep {r['rep']}] {job.model} N={job.N} t={job.tstop:g} {job.config}: "
    if "error" in r:
        return head + "ERROR " + r["error"].strip()[-300:]
    return head + (
        f"{r['wall_s']:.3f} s, {r['ns_per_compartment_step']:.1f} ns/c-step, {r['n_spikes']} spikes, "
        f"peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MB (load {r['loadavg1']:.2f})"
    )


def peers_available():
    """Whether the peers' virtualenv imports NEURON and Arbor."""
    if not PEERS_PY.exists():
        return False
    check = subprocess.run([str(PEERS_PY), "-c", "import neuron, arbor"], capture_output=True)
    return check.returncode == 0


def med(xs):
    return statistics.median(xs) if xs else None


def summarize(records):
    """One summary row per (model, N, config): medians, ranges, paired ratios and memory."""
    ok = [r for r in records if "error" not in r]
    tiny = {}
    for r in ok:
        if r["tiny"]:
            tiny.setdefault(r["config"], []).append(r["peak_rss_bytes"])
    by, wall = {}, {}
    for r in ok:
        if not r["tiny"]:
            key = (r["model"], r["N"], r["config"])
            by.setdefault(key, []).append(r)
            wall.setdefault(key, {})[r["rep"]] = r["wall_s"]
    rows = []
    for key, rs in by.items():
        model, N, config = key
        ns = [r["ns_per_compartment_step"] for r in rs]
        peak = med([r["peak_rss_bytes"] for r in rs])
        base = med(tiny.get(config, []))
        extra = max(1, rs[0]["compartments"] - TINY_COMPARTMENTS)
        ratios = {}
        if config in BRAINSIM_METHODS:
            for name, peer in RATIO_TO.items():
                other = wall.get((model, N, peer), {})
                ratios[name] = med([w / other[k] for k, w in wall[key].items() if k in other])
        rows.append(
            dict(
                model=model,
                N=N,
                config=config,
                compartments=rs[0]["compartments"],
                steps=rs[0]["steps"],
                runs=len(rs),
                wall_s=med([r["wall_s"] for r in rs]),
                build_s=med([r["build_s"] for r in rs]),
                ns=med(ns),
                ns_min=min(ns),
                ns_max=max(ns),
                spikes=sorted({r["n_spikes"] for r in rs}),
                peak_rss_mb=peak / 2**20,
                rss_tiny_mb=None if base is None else base / 2**20,
                bytes_per_compartment=None if base is None else (peak - base) / extra,
                ratio=ratios,
            )
        )
    order = [*BRAINSIM_METHODS, *PEERS]
    return sorted(rows, key=lambda r: (r["model"], r["N"], order.index(r["config"])))


def rss_slopes(rows):
    """Incremental bytes per compartment on M2 between the smallest and the largest N, per config."""
    m2 = {}
    for r in rows:
        if r["model"] == "M2":
            m2.setdefault(r["config"], []).append(r)
    out = {}
    for config, rs in m2.items():
        lo, hi = min(rs, key=lambda r: r["N"]), max(rs, key=lambda r: r["N"])
        if hi["N"] > lo["N"]:
            dmb = hi["peak_rss_mb"] - lo["peak_rss_mb"]
            out[config] = (lo["N"], hi["N"], dmb * 2**20 / (hi["compartments"] - lo["compartments"]))
    return out


def compare(a, b):
    """Spike lists a, b of (gid, t): counts, same gid sequence, max |Δt| over the common prefix."""
    n = min(len(a), len(b))
    same = len(a) == len(b) and [g for g, _ in a] == [g for g, _ in b]
    dt = max((abs(x[1] - y[1]) for x, y in zip(a[:n], b[:n])), default=0.0)
    return dict(n=[len(a), len(b)], same_gid_sequence=same, max_abs_dt_ms=dt)


def agreement(records):
    """brainsim vs the peer with its event and spike-time convention, run by run in the same rep."""
    runs = {
        (r["model"], r["N"], r["config"], r["rep"]): r["spikes"]
        for r in records
        if "error" not in r and not r["tiny"]
    }
    out = []
    order = list(BRAINSIM_METHODS)
    mine = sorted((k for k in runs if k[2] in order), key=lambda k: (k[0], k[1], order.index(k[2]), k[3]))
    for model, N, config, rep in mine:
        spikes = runs[model, N, config, rep]
        peers = ["neuron usetable_hh=0", "arbor threads=1"] if model == "M1" else ["arbor threads=1"]
        for peer in peers:
            other = runs.get((model, N, peer, rep))
            if other is not None:
                out.append(
                    dict(model=model, N=N, config=config, peer=peer, rep=rep, **compare(spikes, other))
                )
    return out


def fmt(x, spec):
    return "" if x is None else format(x, spec)


def table(rows):
    head = (
        "| model | N | simulator/config | compartments | steps | wall s (median) | ns/c-step median "
        "[min–max] | spikes | peak RSS MB | B/comp | brainsim/Arbor | brainsim/NEURON | "
        "brainsim/NEURON exact |"
    )
    lines = [head, "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = [fmt(r["ratio"].get(k), ".2f") for k in RATIO_TO]
        lines.append(
            f"| {r['model']} | {r['N']} | {r['config']} | {r['compartments']} | {r['steps']} | "
            f"{r['wall_s']:.3f} | {r['ns']:.1f} [{r['ns_min']:.1f}–{r['ns_max']:.1f}] | "
            f"{','.join(map(str, r['spikes']))} | {r['peak_rss_mb']:.0f} | "
            f"{fmt(r['bytes_per_compartment'], '.0f')} | " + " | ".join(ratio) + " |"
        )
    return lines


def agreement_lines(agree):
    """Group per (model, N, config, peer) over the reps."""
    groups = {}
    for a in agree:
        groups.setdefault((a["model"], a["N"], a["config"], a["peer"]), []).append(a)
    lines = [
        "| model | N | brainsim | vs | spikes (brainsim, peer) | same gid sequence | max \\|Δt\\| ms |",
        "|---|---:|---|---|---|---|---:|",
    ]
    for (model, N, config, peer), gs in groups.items():
        counts = sorted({tuple(g["n"]) for g in gs})
        same = all(g["same_gid_sequence"] for g in gs)
        dt = max(g["max_abs_dt_ms"] for g in gs)
        lines.append(
            f"| {model} | {N} | {config} | {peer} | {' '.join(f'{a},{b}' for a, b in counts)} | "
            f"{'yes' if same else 'NO'} | {dt:.2e} |"
        )
    return lines


def report(records, meta):
    """The whole report as markdown lines: conditions, table, memory, agreement."""
    rows, agree = summarize(records), agreement(records)
    lines = [
        f"Machine: {meta['machine']}; load average {meta['load']}; {meta['reps']} reps, "
        f"pinned: {meta['pin']}; peers: {meta['peers']}.",
        "",
        "Wall = timed region only (brainsim: `timing.run_s`; NEURON: `pc.psolve`; Arbor: "
        "`simulation.run`). Ratios are brainsim wall ÷ peer wall within each rep, then the median "
        "(> 1: brainsim slower). NEURON exact = `usetable_hh=0`.",
        "",
        *table(rows),
        "",
        "Memory: " + MEMORY_NOTE,
        "",
    ]
    for config, (lo, hi, b) in rss_slopes(rows).items():
        lines.append(f"* {config}: M2 N={lo}→{hi}: {b:.0f} B per compartment")
    lines += [
        "",
        "Agreement (spike lists of the same rep; max over reps). M1 spike times are linearly "
        "interpolated −20 mV crossings; M2 brainsim follows Arbor's event convention.",
        "",
        *(agreement_lines(agree) if agree else ["(no peer runs to compare with)"]),
    ]
    errors = [r for r in records if "error" in r]
    if errors:
        lines += ["", f"{len(errors)} failed runs: " + ", ".join(sorted({r["config"] for r in errors}))]
    return lines, rows, agree


def machine():
    """CPU model with family/model (which tell e.g. Zen 1 from Zen 3), CPU count and Python version."""
    first = Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
    info = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in first)}
    name, family, model = (info.get(k, "?") for k in ("model name", "cpu family", "model"))
    return (
        f"{name} (family {family} model {model}), {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256], help="M2 ring sizes N")
    ap.add_argument("--tstop", type=float, default=200.0, help="M2 stop time, ms (M1 runs 100 ms)")
    ap.add_argument("--out", help="write every run and the summary as JSON lines here")
    ap.add_argument("--markdown", help="write the report as markdown here")
    a = ap.parse_args()

    peers = peers_available()
    if not peers:
        print("NEURON/Arbor not found: run benchmarks/setup_peers.sh. Running brainsim alone.", flush=True)
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    env = dict(os.environ, **ONE_THREAD)
    timed, tiny = jobs(a.sizes, a.tstop, peers)
    warm_up(pin, env)
    records, load0, todo = [], os.getloadavg()[0], timed + tiny
    for rep in range(a.reps):
        k = (rep * 7) % len(todo)  # rotate so that no job always runs first
        for job in todo[k:] + todo[:k]:
            records.append(run_job(job, rep, pin, env))
            print(progress(job, records[-1]), flush=True)
    meta = dict(
        machine=machine(),
        load=f"{load0:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        reps=a.reps,
        pin=" ".join(pin) or "no (taskset missing)",
        peers="NEURON and Arbor" if peers else "missing (brainsim only)",
    )
    lines, rows, agree = report(records, meta)
    print("\n" + "\n".join(lines))
    if a.out:
        with open(a.out, "w") as f:
            for r in records:
                f.write(json.dumps(dict(kind="run", **r)) + "\n")
            for r in rows:
                f.write(json.dumps(dict(kind="summary", **r)) + "\n")
            for r in agree:
                f.write(json.dumps(dict(kind="agreement", **r)) + "\n")
    if a.markdown:
        Path(a.markdown).write_text("\n".join(lines) + "\n")
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
