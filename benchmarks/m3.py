"""Benchmark M3: Blue Brain's L5PC in brainsim (staggered, PETSc default), NEURON and Arbor, side by side.

    .venv/bin/python -m benchmarks.m3 [--reps 1] [--tstop 1000] [--cells 32] [--net-tstop 500] [--out DIR]

Two models, both at dt = 0.025 ms, built from the reference folder (../shared/reference/l5pc or
$BRAINSIM_L5PC): the single cell under Step1 (cut at --tstop; the whole protocol is 3000 ms), and a
network of --cells L5PCs, each with one exp2syn synapse at the soma that receives Poisson events and
random recurrent connections, for --net-tstop ms. The network's table (event times, connections, weights,
delays) is drawn from --seed and written to DIR/network.json; all three simulators read it.

Every run is its own subprocess (peak RSS from os.wait4, pinned to core 0 with one thread, interleaved
round-robin over the reps, as benchmarks/run.py does). Timed: brainsim's `timing.run_s` (the time loop,
spike output included), NEURON's pc.psolve, Arbor's simulation.run; nothing is recorded but spikes. ns per
compartment-step = wall / (compartments × steps); ratios = brainsim wall / peer wall within a rep, then
the median; memory per compartment and per equation = peak RSS / compartments or / brainsim's equation
count of the same model; per cell = (peak RSS of the network − peak RSS of the cell) / (cells − 1).
The peers: NEURON from this interpreter (NEURON 9.0.2 in .venv), Arbor 0.12.2 from benchmarks/.peers-venv
(benchmarks/setup_peers.sh; without it Arbor is left out).
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.l5pc_reference import (
    THRESHOLD,
    brainsim_config,
    compile_mechanisms,
    neuron_cell,
    protocol_stimuli,
    reference_folder,
)
from benchmarks.run import ONE_THREAD, PEERS_PY, machine, med, spawn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DT = 0.025
CONFIGS = ("brainsim staggered", "brainsim petsc", "neuron", "arbor")
SYNAPSE = {"tau1": 0.5, "tau2": 3.0, "e": 0.0}  # ms, ms, mV: an AMPA-like exp2syn at the soma
NET = dict(rate=2000.0, input_weight=0.0012, indegree=8, weight=0.002, delay=1.5)
"""Network defaults: Poisson rate (Hz) and weight (µS) per cell; recurrent in-degree, weight (µS), delay
(ms)."""


TEMPLATE = """begintemplate M3L5PC
public soma, dend, apic, axon, all, somatic, axonal, basal, apical
create soma[1], dend[1], apic[1], axon[1]
objref all, somatic, axonal, basal, apical
proc init() {
    all = new SectionList() somatic = new SectionList() axonal = new SectionList()
    basal = new SectionList() apical = new SectionList()
}
endtemplate M3L5PC
"""
"""The hoc template of one network cell: the section arrays and lists Import3d_GUI fills."""


def network_table(cells, tstop, seed, rate, input_weight, indegree, weight, delay):
    """The network every simulator runs: per cell Poisson event times (ms, on the dt grid), recurrent
    connections [source, target] (indegree distinct sources per target, at most cells − 1; no autapses),
    weights and delay."""
    rng = random.Random(seed)
    poisson = []
    for _ in range(cells):
        t, times = 0.0, []
        while True:
            t += rng.expovariate(rate / 1000.0)
            if t >= tstop:
                break
            times.append(round(round(t / DT) * DT, 6))
        poisson.append(times)
    connections = [
        [s, t]
        for t in range(cells)
        for s in sorted(rng.sample([i for i in range(cells) if i != t], min(indegree, cells - 1)))
    ]
    return dict(
        cells=cells, tstop=tstop, seed=seed, dt=DT, synapse=SYNAPSE, rate_hz=rate, input_weight=input_weight,
        weight=weight, delay=delay, poisson=poisson, connections=connections,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- the workers


def run_brainsim_worker(args):
    """One brainsim run of the cell or the network; returns the result line."""
    import brainsim

    folder = reference_folder()
    if args.model == "cell":
        stimuli, tstop = protocol_stimuli(folder, "Step1", args.tstop)
        cfg = brainsim_config(folder, stimuli, tstop, args.dt, method=args.method)
    else:
        table = json.loads(Path(args.table).read_text())
        tstop = table["tstop"]
        cfg = brainsim_config(folder, [], tstop, args.dt, method=args.method)
        cfg["cells"][0]["count"] = table["cells"]
        cfg["synapses"] = [{"name": "syn", "cell": "l5pc", "mechanism": "exp2syn", "location": "somatic(0.5)",
                            "params": dict(table["synapse"])}]  # fmt: skip
        cfg["connections"] = [{"source": "l5pc", "target": "l5pc", "synapse": "syn",
                               "rule": {"kind": "pairs", "pairs": table["connections"]},
                               "weight": table["weight"], "delay": table["delay"]}]  # fmt: skip
        cfg["stimuli"] = [
            {"kind": "spikes", "cell": "l5pc", "cells": [i], "synapse": "syn", "times": times,
             "weight": table["input_weight"]}
            for i, times in enumerate(table["poisson"]) if times
        ]  # fmt: skip
    cfg["probes"] = []
    with tempfile.TemporaryDirectory() as tmp:
        import yaml

        path = Path(tmp) / "m3.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        store = brainsim.run(
            brainsim.load_config(path), Path(tmp) / "m3.zarr", overwrite=True, progress=False
        )
        spikes = sorted(
            zip(store.spikes["gid"].values.tolist(), store.spikes["time"].values.tolist()),
            key=lambda s: (s[1], s[0]),
        )
        counts, timing = store.counts, store.timing
    return dict(
        cells=counts["cells"], tstop_ms=tstop, steps=int(round(tstop / args.dt)),
        compartments=counts["compartments"], equations=counts["equations"], wall_s=timing["run_s"],
        build_s=timing["build_s"], spikes=spikes,
    )  # fmt: skip


def run_neuron_worker(args):
    """One NEURON run (BluePyOpt's cell; fixed step, or CVODE at --cvode-atol, per cell with --lvardt) of the
    cell or the network; returns the result line."""
    t_build0 = time.perf_counter()
    import neuron
    from neuron import h

    folder = reference_folder()
    h.nrn_load_dll(args.library)
    pc = h.ParallelContext()
    keep = []
    if args.model == "cell":
        stimuli, tstop = protocol_stimuli(folder, "Step1", args.tstop)
        n = 1
        sections = [neuron_cell(folder, h)]
        for delay, duration, amplitude in stimuli:
            clamp = h.IClamp(sections[0]["somatic"][0](0.5))
            clamp.delay, clamp.dur, clamp.amp = delay, duration, amplitude
            keep.append(clamp)
    else:
        table = json.loads(Path(args.table).read_text())
        tstop, n = table["tstop"], table["cells"]
        h(TEMPLATE)
        owners = [h.M3L5PC() for _ in range(n)]
        sections = [neuron_cell(folder, h, owner) for owner in owners]
        keep.append(owners)
    syns = []
    for gid, secs in enumerate(sections):
        soma = secs["somatic"][0]
        det = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
        det.threshold = THRESHOLD
        pc.set_gid2node(gid, 0)
        pc.cell(gid, det)
        keep.append(det)
        if args.model == "net":
            syn = h.Exp2Syn(soma(0.5))
            syn.tau1, syn.tau2, syn.e = (table["synapse"][k] for k in ("tau1", "tau2", "e"))
            syns.append(syn)
    if args.model == "net":
        for s, t in table["connections"]:
            nc = pc.gid_connect(s, syns[t])
            nc.weight[0], nc.delay = table["weight"], table["delay"]
            keep.append(nc)
        feeds = []
        for syn, times in zip(syns, table["poisson"]):
            nc = h.NetCon(None, syn)
            nc.weight[0] = table["input_weight"]
            feeds.append((nc, times))
        keep.append(feeds)

        def schedule():
            for nc, times in feeds:
                for t in times:
                    nc.event(t)

        keep.append(h.FInitializeHandler(schedule))
    tvec, idvec = h.Vector(), h.Vector()
    pc.spike_record(-1, tvec, idvec)
    h.cvode.active(0 if args.cvode_atol is None else 1)
    if args.cvode_atol is not None:
        h.cvode.atol(args.cvode_atol)
        h.cvode.use_local_dt(1 if args.lvardt else 0)
    h.dt, h.steps_per_ms = args.dt, 1.0 / args.dt
    pc.set_maxstep(10)
    h.finitialize(h.v_init)
    build_s = time.perf_counter() - t_build0
    t0 = time.perf_counter()
    pc.psolve(tstop)
    wall = time.perf_counter() - t0
    spikes = sorted(zip(map(int, idvec.to_python()), tvec.to_python()), key=lambda s: (s[1], s[0]))
    return dict(
        version=neuron.__version__, cells=n, tstop_ms=tstop, steps=int(round(tstop / args.dt)),
        compartments=sum(sec.nseg for secs in sections for sec in secs["all"]), wall_s=wall, build_s=build_s,
        spikes=spikes,
    )  # fmt: skip


def worker(argv):
    ap = argparse.ArgumentParser(prog="benchmarks.m3 worker")
    ap.add_argument("simulator", choices=["brainsim", "neuron"])
    ap.add_argument("model", choices=["cell", "net"])
    ap.add_argument("--method", default="staggered")
    ap.add_argument("--tstop", type=float)
    ap.add_argument("--table")
    ap.add_argument("--library", help="NEURON's libnrnmech.so of the L5PC mechanisms")
    ap.add_argument("--dt", type=float, default=DT, help="ms (NEURON under CVODE: its first step)")
    ap.add_argument("--cvode-atol", type=float, help="NEURON: CVODE at this absolute tolerance")
    ap.add_argument("--lvardt", action="store_true", help="NEURON under CVODE: a variable step per cell")
    a = ap.parse_args(argv)
    out = (run_brainsim_worker if a.simulator == "brainsim" else run_neuron_worker)(a)
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------------------------------- the runner


def command(config, model, args, table, library):
    """The command line of one run."""
    me = [sys.executable, "-m", "benchmarks.m3", "worker"]
    part = ["--tstop", f"{args.tstop:g}"] if model == "cell" else ["--table", str(table)]
    if config.startswith("brainsim"):
        return [*me, "brainsim", model, "--method", config.split()[1], *part]
    if config == "neuron":
        return [*me, "neuron", model, "--library", str(library), *part]
    peer = [str(PEERS_PY), str(HERE / "peers" / "l5pc_arbor.py"), model, str(reference_folder())]
    return peer + (["--tstop", f"{args.tstop:g}"] if model == "cell" else ["--table", str(table)])


def run_one(config, model, rep, args, table, library, pin, env):
    """One run in its own process: its result line with config, model, rep and peak RSS (or an error)."""
    rc, out, err, rss = spawn([*pin, *command(config, model, args, table, library)], env)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    rec = dict(config=config, model=model, rep=rep, peak_rss_bytes=rss)
    if rc or not lines:
        return dict(rec, error=(err or out)[-2000:])
    rec.update(json.loads(lines[-1]))
    rec["ns_per_compartment_step"] = rec["wall_s"] * 1e9 / (rec["compartments"] * rec["steps"])
    return rec


def summarize(records):
    """Rows per (model, config): medians, paired ratios, memory per compartment, per equation, per cell."""
    ok = [r for r in records if "error" not in r]
    by = {}
    for r in ok:
        by.setdefault((r["model"], r["config"]), []).append(r)
    equations = {
        m: med([r["equations"] for r in ok if r["model"] == m and "equations" in r]) for m in ("cell", "net")
    }
    rows = []
    for (model, config), rs in sorted(by.items(), key=lambda kv: (kv[0][0], CONFIGS.index(kv[0][1]))):
        walls = {r["rep"]: r["wall_s"] for r in rs}
        ns = [r["ns_per_compartment_step"] for r in rs]
        ratios = {}
        if config.startswith("brainsim"):
            for peer in ("arbor", "neuron"):
                other = {r["rep"]: r["wall_s"] for r in by.get((model, peer), [])}
                ratios[peer] = med([w / other[k] for k, w in walls.items() if k in other])
        peak = med([r["peak_rss_bytes"] for r in rs])
        cell_peak = med([r["peak_rss_bytes"] for r in by.get(("cell", config), [])])
        wall = med(list(walls.values()))
        spikes = sorted({len(r["spikes"]) for r in rs})
        first = med([r["spikes"][0][1] for r in rs if r["spikes"]])
        rows.append(dict(
            model=model, config=config, runs=len(rs), cells=rs[0]["cells"],
            compartments=rs[0]["compartments"], steps=rs[0]["steps"], wall_s=wall,
            build_s=med([r["build_s"] for r in rs]),
            ns=med(ns),
            ns_range=(min(ns), max(ns)),
            spikes=spikes, first_spike_ms=first, ratio=ratios, peak_rss_mb=peak / 2**20,
            bytes_per_compartment=peak / rs[0]["compartments"],
            bytes_per_equation=peak / equations[model] if equations.get(model) else None,
            wall_per_cell_per_s=wall / rs[0]["cells"] / (rs[0]["tstop_ms"] / 1000.0),
            mb_per_cell=(peak - cell_peak) / 2**20 / (rs[0]["cells"] - 1)
            if model == "net" and cell_peak and rs[0]["cells"] > 1 else None,
        ))  # fmt: skip
    return rows, equations


def fmt(x, spec):
    return "" if x is None else format(x, spec)


def report(records, meta):
    rows, equations = summarize(records)
    lines = [
        f"Machine: {meta['machine']}; load average {meta['load']}; {meta['reps']} reps; "
        f"pinned: {meta['pin']}.",
        f"Models: cell = L5PC Step1 cut at {meta['tstop']:g} ms (the protocol runs 3000 ms); net = "
        f"{meta['cells']} L5PCs, {meta['net_tstop']:g} ms, exp2syn at the soma, Poisson {NET['rate']:g} Hz × "
        f"{NET['input_weight']} µS per cell, in-degree {NET['indegree']} × {NET['weight']} µS, delay "
        f"{NET['delay']} ms (table: {meta['table']}). dt {DT} ms. brainsim equations: cell "
        f"{fmt(equations.get('cell'), '.0f')}, net {fmt(equations.get('net'), '.0f')}.",
        "",
        "| model | simulator/config | compartments | steps | wall s (median) | ns/c-step median [min–max] | "
        "spikes | first spike ms | brainsim/Arbor | brainsim/NEURON | peak RSS MB | B/comp | B/eq | "
        "wall s per cell per simulated s | MB per cell |",
        "|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['config']} | {r['compartments']} | {r['steps']} | {r['wall_s']:.3f} | "
            f"{r['ns']:.1f} [{r['ns_range'][0]:.1f}–{r['ns_range'][1]:.1f}] | "
            f"{','.join(map(str, r['spikes']))} | {fmt(r['first_spike_ms'], '.3f')} | "
            f"{fmt(r['ratio'].get('arbor'), '.2f')} | {fmt(r['ratio'].get('neuron'), '.2f')} | "
            f"{r['peak_rss_mb']:.0f} | {r['bytes_per_compartment']:.0f} | "
            f"{fmt(r['bytes_per_equation'], '.0f')} | "
            f"{r['wall_per_cell_per_s']:.3f} | {fmt(r['mb_per_cell'], '.2f')} |"
        )  # fmt: skip
    errors = [r for r in records if "error" in r]
    if errors:
        lines += ["", f"{len(errors)} failed runs:"] + [f"* {r['model']} {r['config']}: {r['error'][-400:]}"
                                                        for r in errors]  # fmt: skip
    return lines, rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        return worker(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1, help="runs of each configuration (medians over them)")
    ap.add_argument("--tstop", type=float, default=1000.0, help="ms, where Step1 is cut (3000: all of it)")
    ap.add_argument("--cells", type=int, default=32, help="cells of the network (0: no network)")
    ap.add_argument("--net-tstop", type=float, default=500.0, help="ms")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "m3", help="folder: table, runs, report")
    a = ap.parse_args(argv)

    a.out.mkdir(parents=True, exist_ok=True)
    configs = [c for c in a.configs if c != "arbor" or PEERS_PY.exists()]
    if "arbor" in a.configs and "arbor" not in configs:
        print(f"Arbor left out: {PEERS_PY} is missing (benchmarks/setup_peers.sh)", flush=True)
    table = a.out / "network.json"
    table.write_text(json.dumps(network_table(a.cells, a.net_tstop, a.seed, **NET)))
    library = (
        compile_mechanisms(reference_folder() / "mechanisms", a.out / "neuron")
        if "neuron" in configs
        else None
    )
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    env = dict(os.environ, **ONE_THREAD)
    models = ["cell"] + (["net"] if a.cells > 0 else [])
    todo = [(m, c) for m in models for c in configs]
    for c in configs:  # numba's on-disk cache warm before the first timed run
        if c.startswith("brainsim"):
            short = argparse.Namespace(**{**vars(a), "tstop": 1.0})
            spawn([*pin, *command(c, "cell", short, table, library)], env)
    records, load0 = [], os.getloadavg()[0]
    for rep in range(a.reps):
        k = rep % len(todo)
        for model, config in todo[k:] + todo[:k]:
            r = run_one(config, model, rep, a, table, library, pin, env)
            records.append(r)
            done = (
                f"ERROR {r['error'][-300:]}"
                if "error" in r
                else f"{r['wall_s']:.2f} s, {r['ns_per_compartment_step']:.1f} ns/c-step, "
                f"{len(r['spikes'])} spikes, {r['peak_rss_bytes'] / 2**20:.0f} MB"
            )
            print(f"[rep {rep}] {model} {config}: {done}", flush=True)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout if shutil.which("lscpu") else ""
    name = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "")
    meta = dict(
        machine=f"{name or machine()}, {os.cpu_count()} CPUs", load=f"{load0:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end", reps=a.reps, pin=" ".join(pin) or "no", tstop=a.tstop,
        cells=a.cells, net_tstop=a.net_tstop, table=table,
    )  # fmt: skip
    lines, rows = report(records, meta)
    print("\n" + "\n".join(lines))
    (a.out / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (a.out / "report.md").write_text("\n".join(lines) + "\n")
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
