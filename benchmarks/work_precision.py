"""Work–precision of brainsim, NEURON and Arbor: spike-time error against a converged reference versus wall
time, for every time-stepping configuration, on M1, the M2 ring and Blue Brain's L5PC.

    benchmarks/setup_peers.sh                      # Arbor (and NEURON) in benchmarks/.peers-venv
    .venv/bin/pip install neuron==9.0.2            # NEURON in .venv too (the L5PC's NEURON runs there)
    .venv/bin/python -m benchmarks.work_precision [--models m1 ring l5pc] [--reps 3] [--l5pc-tstop 1200]
        [--ring-n 16] [--ring-tstop 196.5] [--dts 0.2 0.1 0.05 0.025 0.0125 0.00625] [--tols 1e-3 ... 1e-6]
        [--atols 1e-2 ... 1e-6] [--reuse-reference] [--out out/work_precision]
    .venv/bin/python -m benchmarks.work_precision --models m1 --reps 1 --dts 0.1 0.025   # a quick look

Models: M1 (configs/bench/m1_hh_cable.yaml, 100 ms, 8 spikes), the M2 ring (configs/bench/m2_ring.yaml,
--ring-n cells, --ring-tstop ms: by default halfway between the 36th and 37th spike of the converged
solution, so that an error below ~2.7 ms cannot change the spike count), the L5PC (configs/l5pc_bbp.yaml
read from $BRAINSIM_L5PC or ../shared/reference/l5pc, Step1 cut at --l5pc-tstop).

Configurations: brainsim staggered, midpoint (the PETSc default: theta 0.5, snes ksponly), bdf2-newton
({ts_type: bdf, snes_type: newtonls}), cn ({ts_type: cn}) across --dts; brainsim adaptive bdf
({ts_type: bdf, snes_type: newtonls, ts_adapt_type: basic, ts_rtol = ts_atol = tol}) across --tols;
NEURON 9.0.2 (usetable_hh=0: the exact hh rates, so that it converges to the same model) fixed step across
--dts and CVODE across --atols; Arbor 0.12.2 across --dts.

Reference (untimed runs): M1 and L5PC: Richardson extrapolation of brainsim midpoint at h = min(dts) /
--ref-factor and 2h (order 2), with the observed order from 4h, 2h, h; the ring: brainsim adaptive bdf at
--ring-ref-tol (its spike arrivals are not on any step grid, so fixed steps converge only to first order
with a sawtooth), checked against 10x that tolerance. Also (M1, L5PC) each peer's own converged solution:
NEURON CVODE at --neuron-ref-atol, Arbor's fixed step at min(dts)/8 and /4 extrapolated to order 1: the
"error vs own ref" column and the third summary table (Arbor's L5PC is not quite the same model).

Error = the largest |spike time - reference| over the spikes, the spikes matched per gid in order; a
different spike count (or a blow-up, a solver failure) is reported as such. Wall time = the timed region
only (brainsim: the store's timing.run_s; NEURON: pc.psolve; Arbor: simulation.run), median of --reps runs,
every run a fresh subprocess under `taskset -c 0` with one thread, interleaved round-robin over the reps.
Writes OUT/work_precision.json, OUT/work_precision.png (error vs wall, log-log, one panel per model),
OUT/report.md and OUT/runs.jsonl (every run as it finishes).
"""

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_PY = HERE / ".peers-venv" / "bin" / "python"
ONE_THREAD = {
    k: "1" for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
}
FAST_START = {"OMPI_MCA_ess_singleton_isolated": "1"}
"""Open MPI 4.1 starts a helper daemon for a singleton (one process, no mpiexec): 2.4 s of every brainsim
process here, outside the timed region. Isolated singletons skip it."""

DTS = [0.2, 0.1, 0.05, 0.025, 0.0125, 0.00625]
TOLS = [1e-3, 1e-4, 1e-5, 1e-6]
ATOLS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
TARGETS = [1.0, 0.1, 0.01]
GAP_SHOWN = 0.01  # ms: the plot adds a peer's errors against its own converged solution above this gap
ADAPTIVE_DT0 = 0.025  # ms, the first step of the adaptive method
BDF_NEWTON = {"ts_type": "bdf", "snes_type": "newtonls"}
CONFIGS = {
    "brainsim staggered": dict(simulator="brainsim", sweep="dt", method="staggered", petsc={}),
    "brainsim midpoint": dict(simulator="brainsim", sweep="dt", method="petsc", petsc={}),
    "brainsim bdf2-newton": dict(simulator="brainsim", sweep="dt", method="petsc", petsc=BDF_NEWTON),
    "brainsim cn": dict(simulator="brainsim", sweep="dt", method="petsc", petsc={"ts_type": "cn"}),
    "brainsim adaptive bdf": dict(
        simulator="brainsim", sweep="tol", method="petsc", petsc={**BDF_NEWTON, "ts_adapt_type": "basic"}
    ),
    "neuron fixed": dict(simulator="neuron", sweep="dt"),
    "neuron cvode": dict(simulator="neuron", sweep="atol"),
    "arbor": dict(simulator="arbor", sweep="dt"),
}
SIMULATORS = ("brainsim", "neuron", "arbor")
MODEL_NAMES = {"m1": "M1 hh-cable", "ring": "M2 ring", "l5pc": "L5PC Step1"}


@dataclass(frozen=True)
class Point:
    model: str  # m1, ring, l5pc
    config: str  # a key of CONFIGS
    x: float  # dt (ms) or tolerance


def label(point):
    sweep = CONFIGS[point.config]["sweep"]
    return f"{point.config} {sweep} {point.x:g}"


# ------------------------------------------------------------------------------------------- the workers


def brainsim_worker(a):
    """One brainsim run in this process: {status, spikes [[gid, t]], wall_s (timing.run_s), steps}."""
    import brainsim
    from brainsim.errors import BrainsimError, NumericalError

    from .l5pc_reference import reference_folder

    cfg = CONFIGS[a.config]
    petsc, dt = dict(cfg["petsc"]), a.x
    if cfg["sweep"] == "tol":
        petsc.update(ts_rtol=a.x, ts_atol=a.x)
        dt = ADAPTIVE_DT0
    sets = {"simulation.method": cfg["method"], "simulation.petsc": petsc, "simulation.dt": dt}
    if a.model == "m1":
        path = ROOT / "configs" / "bench" / "m1_hh_cable.yaml"  # keeps its soma probe, as in run.py
    elif a.model == "ring":
        path = ROOT / "configs" / "bench" / "m2_ring.yaml"
        sets.update({"cells.ring.count": a.ring_n, "simulation.tstop": a.ring_tstop})
    else:
        path = ROOT / "configs" / "l5pc_bbp.yaml"
        sets.update({"cells.l5pc.bluepyopt.folder": str(reference_folder()), "simulation.tstop": a.l5pc_tstop,
                     "probes": []})  # fmt: skip
    if a.tstop is not None:  # warm-up runs
        sets["simulation.tstop"] = a.tstop
    try:
        config = brainsim.load_config(path, sets)
        with tempfile.TemporaryDirectory() as tmp:
            store = brainsim.run(config, Path(tmp) / "run.zarr", overwrite=True, progress=False)
            spikes = sorted(
                zip(store.spikes["gid"].values.tolist(), store.spikes["time"].values.tolist()),
                key=lambda s: (s[1], s[0]),
            )
            timing = dict(store.timing)
    except NumericalError as e:
        return dict(status="blew up", message=str(e)[-500:])
    except BrainsimError as e:
        return dict(status="error", message=f"{type(e).__name__}: {e}"[-500:])
    return dict(status="ok", spikes=spikes, wall_s=timing["run_s"], build_s=timing["build_s"],
                steps=int(timing.get("steps", 0)))  # fmt: skip


def neuron_l5pc_worker(a):
    """One NEURON run of BluePyOpt's L5PC (benchmarks/l5pc_reference.py's build) under Step1, fixed step or
    CVODE. Spike times: the -20 mV crossings of the soma trace, recorded at every step, linearly
    interpolated (NEURON's own lie at the end of the crossing step, CVODE's too). Timed: pc.psolve."""
    t_build0 = time.perf_counter()
    import numpy as np
    from neuron import h

    from .l5pc_reference import neuron_cell, protocol_stimuli, reference_folder, spike_times

    folder = reference_folder()
    h.nrn_load_dll(a.library)
    pc = h.ParallelContext()
    soma = neuron_cell(folder, h)["somatic"][0]
    stimuli, tstop = protocol_stimuli(folder, "Step1", a.tstop or a.l5pc_tstop)
    clamps = []
    for delay, duration, amplitude in stimuli:
        clamps.append(h.IClamp(soma(0.5)))
        clamps[-1].delay, clamps[-1].dur, clamps[-1].amp = delay, duration, amplitude
    cvode = CONFIGS[a.config]["sweep"] == "atol"
    h.cvode.active(1 if cvode else 0)
    tvec, vvec = h.Vector(), h.Vector()
    tvec.record(h._ref_t)  # every step, fixed or CVODE's
    vvec.record(soma(0.5)._ref_v)
    if cvode:
        h.cvode.atol(a.x)
    else:
        h.dt, h.steps_per_ms = a.x, 1.0 / a.x
    pc.set_maxstep(10)
    h.finitialize(h.v_init)
    build_s = time.perf_counter() - t_build0
    t0 = time.perf_counter()
    pc.psolve(tstop)
    wall = time.perf_counter() - t0
    times = spike_times(np.array(tvec), np.array(vvec)).tolist()
    return dict(status="ok", spikes=[[0, float(t)] for t in times], wall_s=wall, build_s=build_s)


def worker(argv):
    ap = argparse.ArgumentParser(prog="benchmarks.work_precision worker")
    ap.add_argument("simulator", choices=["brainsim", "neuron"])
    ap.add_argument("model", choices=list(MODEL_NAMES))
    ap.add_argument("config", choices=list(CONFIGS))
    ap.add_argument("x", type=float)
    ap.add_argument("--ring-n", type=int, default=16)
    ap.add_argument("--ring-tstop", type=float, default=196.5)
    ap.add_argument("--l5pc-tstop", type=float, default=1200.0)
    ap.add_argument("--tstop", type=float, default=None, help="override every model's stop time (warm-up)")
    ap.add_argument("--library", help="NEURON's libnrnmech.so of the L5PC mechanisms")
    a = ap.parse_args(argv)
    out = (brainsim_worker if a.simulator == "brainsim" else neuron_l5pc_worker)(a)
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------------------------------- the runner


def command(point, a, library, tstop=None):
    """The command line of one run of point."""
    cfg, x = CONFIGS[point.config], f"{point.x!r}"
    model_args = ["--ring-n", str(a.ring_n), "--ring-tstop", f"{a.ring_tstop!r}", "--l5pc-tstop",
                  f"{a.l5pc_tstop!r}"] + ([] if tstop is None else ["--tstop", f"{tstop!r}"])  # fmt: skip
    me = [sys.executable, "-m", "benchmarks.work_precision", "worker"]
    if cfg["simulator"] == "brainsim":
        return [*me, "brainsim", point.model, point.config, x, *model_args]
    if point.model == "l5pc":
        from .l5pc_reference import reference_folder

        if cfg["simulator"] == "neuron":
            return [*me, "neuron", "l5pc", point.config, x, *model_args, "--library", str(library)]
        return [str(PEERS_PY), str(HERE / "peers" / "l5pc_arbor.py"), "cell", str(reference_folder()),
                "--tstop", f"{tstop or a.l5pc_tstop!r}", "--dt", x]  # fmt: skip
    peer = ["m1"] if point.model == "m1" else ["m2", "--N", str(a.ring_n), "--tstop", f"{a.ring_tstop!r}"]
    if cfg["simulator"] == "neuron":
        step = ["--cvode-atol", x, "--condition-order", "2"] if cfg["sweep"] == "atol" else ["--dt", x]
        return [str(PEERS_PY), str(HERE / "peers" / "neuron_bench.py"), *peer, "--usetable", "0", *step]
    return [str(PEERS_PY), str(HERE / "peers" / "arbor_bench.py"), *peer, "--dt", x]


def run_point(point, a, library, pin, env, tstop=None):
    """Run point once in its own process: {status, spikes, wall_s, ...} (status ok, blew up, error,
    timeout)."""
    cmd = [*pin, *command(point, a, library, tstop)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=a.run_timeout)
    except subprocess.TimeoutExpired:
        return dict(status="timeout", message=f"killed after {a.run_timeout:g} s")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        return dict(status="error", message=(p.stderr or p.stdout)[-800:])
    out = json.loads(lines[-1])
    out.setdefault("status", "ok")
    keys = ("status", "spikes", "wall_s", "build_s", "message")
    keys += ("steps",) if CONFIGS[point.config]["simulator"] == "brainsim" else ()  # the peers': tstop / dt
    return {k: out[k] for k in keys if k in out}


def per_gid(spikes):
    out = {}
    for gid, t in sorted(spikes, key=lambda s: (s[0], s[1])):
        out.setdefault(int(gid), []).append(float(t))
    return out


def spike_error(spikes, reference):
    """(largest |Δt| ms over the spikes matched per gid in order, None) or (None, why not)."""
    a, b = per_gid(spikes), per_gid(reference)
    if sorted(a) != sorted(b) or any(len(a[g]) != len(b[g]) for g in b):
        return None, f"{len(spikes)} spikes, reference {len(reference)}"
    return max((abs(x - y) for g in b for x, y in zip(a[g], b[g])), default=0.0), None


def versus(spikes, reference):
    """The error of spikes against reference, or why there is none (a string)."""
    e, why = spike_error(spikes, reference)
    return e if why is None else why


def richardson(fine, coarse, order):
    """Spike list extrapolated from fine (step h) and coarse (2h) solutions of the given order."""
    f, c = per_gid(fine), per_gid(coarse)
    if sorted(f) != sorted(c) or any(len(f[g]) != len(c[g]) for g in f):
        return None
    k = 1.0 / (2**order - 1)
    return sorted(([g, x + (x - y) * k] for g in f for x, y in zip(f[g], c[g])), key=lambda s: (s[1], s[0]))


def reference_runs(model, a):
    """{name: Point} of the untimed runs behind model's reference and its checks."""
    h = min(a.dts) / a.ref_factor
    if model == "ring":
        runs = {"ref": Point(model, "brainsim adaptive bdf", a.ring_ref_tol),
                "ref check": Point(model, "brainsim adaptive bdf", a.ring_ref_tol * 10)}  # fmt: skip
    else:
        runs = {
            f"ref {k}h" if k > 1 else "ref h": Point(model, "brainsim midpoint", h * k) for k in (1, 2, 4)
        }
        if a.peers and (model != "l5pc" or a.neuron_here):
            runs["neuron own"] = Point(model, "neuron cvode", a.neuron_ref_atol)
        if a.arbor:
            runs["arbor h"] = Point(model, "arbor", min(a.dts) / 8)
            runs["arbor 2h"] = Point(model, "arbor", min(a.dts) / 4)
    if model == "ring" and a.peers:
        runs["neuron check"] = Point(model, "neuron cvode", a.neuron_ref_atol)
    return runs


def build_reference(model, runs, results):
    """The reference spike list of model and what checks it: a dict (reference None if it failed)."""
    got = {name: results[name].get("spikes") if results[name]["status"] == "ok" else None for name in runs}
    out = dict(runs={name: dict(asdict(p), status=results[name]["status"]) for name, p in runs.items()})
    checks = {}
    if model == "ring":
        ref = got["ref"]
        out["how"] = f"brainsim adaptive bdf at tol {runs['ref'].x:g}"
        if ref and got["ref check"]:
            checks[f"brainsim adaptive bdf tol {runs['ref check'].x:g} vs reference"] = versus(
                got["ref check"], ref
            )
    else:
        h = runs["ref h"].x
        ref = richardson(got["ref h"], got["ref 2h"], 2) if got["ref h"] and got["ref 2h"] else None
        out["how"] = f"Richardson extrapolation (order 2) of brainsim midpoint at dt {h:g} and {2 * h:g}"
        if ref:
            e1 = spike_error(got["ref h"], got["ref 2h"])[0]
            e2 = spike_error(got["ref 2h"], got["ref 4h"])[0] if got["ref 4h"] else None
            checks[f"|midpoint dt {h:g} - reference| (its error estimate)"] = versus(got["ref h"], ref)
            if e1 and e2:
                checks[f"observed order of midpoint from dt {4 * h:g}, {2 * h:g}, {h:g}"] = math.log2(e2 / e1)
        own = {}
        if got.get("neuron own"):
            own["neuron"] = got["neuron own"]
        if got.get("arbor h") and got.get("arbor 2h"):
            own["arbor"] = richardson(got["arbor h"], got["arbor 2h"], 1)
            if own["arbor"] and ref:
                checks[f"|arbor dt {runs['arbor h'].x:g} - arbor extrapolated| (its error estimate)"] = (
                    versus(got["arbor h"], own["arbor"])
                )
        out["own"] = {k: v for k, v in own.items() if v}
        out["gap"] = {}
        for sim, spikes in out["own"].items():
            if ref:
                out["gap"][sim] = versus(spikes, ref)
                checks[f"{sim} own converged solution vs reference (model gap)"] = out["gap"][sim]
    if model == "ring" and got.get("neuron check") and ref:
        checks[f"neuron cvode atol {runs['neuron check'].x:g} vs reference"] = versus(
            got["neuron check"], ref
        )
    out["reference"], out["checks"] = ref, checks
    return out


def timed_points(a):
    """Every timed point in a fixed order."""
    points = []
    for model in a.models:
        for config in a.configs:
            cfg = CONFIGS[config]
            if cfg["simulator"] == "neuron" and not (a.peers and (model != "l5pc" or a.neuron_here)):
                continue
            if cfg["simulator"] == "arbor" and not a.arbor:
                continue
            xs = {"dt": a.dts, "tol": a.tols, "atol": a.atols}[cfg["sweep"]]
            points += [Point(model, config, x) for x in xs]
    return points


def med(xs):
    return statistics.median(xs) if xs else None


def summarize_points(points, runs, refs):
    """Per point: spikes, error vs the reference (and vs the simulator's own), wall median and range."""
    rows = []
    for p in points:
        rs = runs.get(p, [])
        ok = [r for r in rs if r["status"] == "ok"]
        first = rs[0] if rs else dict(status="not run")
        row = dict(asdict(p), simulator=CONFIGS[p.config]["simulator"], sweep=CONFIGS[p.config]["sweep"],
                   runs=len(rs), status=first["status"], message=first.get("message"))  # fmt: skip
        walls = [r["wall_s"] for r in ok]
        row.update(wall_s=med(walls), wall_min=min(walls, default=None), wall_max=max(walls, default=None))
        row["walls"] = walls
        ref = refs.get(p.model, {})
        if ok:
            row["spikes"] = ok[0]["spikes"]
            row["n_spikes"] = len(ok[0]["spikes"])
            row["steps"] = ok[0].get("steps")
            if ref.get("reference"):
                row["error_ms"], row["why"] = spike_error(ok[0]["spikes"], ref["reference"])
            own = ref.get("own", {}).get(row["simulator"])
            if own:
                row["error_own_ms"], row["why_own"] = spike_error(ok[0]["spikes"], own)
        rows.append(row)
    return rows


def curve(rows, model, config, key):
    """The points of one configuration, cheapest first (largest dt / tolerance first), with an error."""
    rs = [r for r in rows if r["model"] == model and r["config"] == config]
    return [r for r in sorted(rs, key=lambda r: -r["x"]) if r.get(key) is not None and r["wall_s"]]


def cheapest_measured(rows, model, sim, target, key="error_ms"):
    """The row of sim's cheapest measured point with error <= target, or None."""
    hits = [r for r in rows if r["model"] == model and r["simulator"] == sim and r.get(key) is not None
            and r["wall_s"] and r[key] <= target]  # fmt: skip
    return min(hits, key=lambda r: r["wall_s"], default=None)


def cheapest_interpolated(rows, model, sim, target, key="error_ms"):
    """(wall s, config, note) of sim's cheapest configuration at error = target, interpolated log-log
    between the two measured points of its curve that bracket the target (the first crossing from the
    cheap end), or its cheapest point where that one is already below the target; None if none reaches it."""
    best = None
    for config in CONFIGS:
        if CONFIGS[config]["simulator"] != sim:
            continue
        c = curve(rows, model, config, key)
        found = None
        if c and c[0][key] <= target:
            found = (c[0]["wall_s"], config, f"its cheapest point ({c[0]['x']:g}) is below")
        for lo, hi in zip(c, c[1:]):
            if found:
                break
            if lo[key] > target >= hi[key]:
                e0, e1 = math.log(lo[key]), math.log(max(hi[key], 1e-300))
                w0, w1 = math.log(lo["wall_s"]), math.log(hi["wall_s"])
                f = (math.log(target) - e0) / (e1 - e0) if e1 != e0 else 1.0
                found = (math.exp(w0 + f * (w1 - w0)), config, f"between {lo['x']:g} and {hi['x']:g}")
        if found and (best is None or found[0] < best[0]):
            best = found
    return best


def summary(rows, models, targets, peers_present):
    """Rows per (model, target): the cheapest per simulator, measured and interpolated, against the common
    reference and (peers) against their own converged solutions, and brainsim / the best peer."""
    out = []
    for model in models:
        for target in targets:
            row = dict(model=model, target_ms=target)
            kinds = [("measured", "error_ms"), ("interpolated", "error_ms")]
            if model != "ring":  # the ring's peers have no own reference: the same model, events aside
                kinds.append(("own", "error_own_ms"))
            for kind, key in kinds:
                best = {}
                for sim in SIMULATORS:
                    if sim != "brainsim" and sim not in peers_present:
                        continue
                    k = "error_ms" if sim == "brainsim" else key
                    if kind == "interpolated":
                        got = cheapest_interpolated(rows, model, sim, target, k)
                        best[sim] = got and dict(wall_s=got[0], config=got[1], note=got[2])
                    else:
                        r = cheapest_measured(rows, model, sim, target, k)
                        best[sim] = r and dict(
                            wall_s=r["wall_s"], config=r["config"], x=r["x"], error_ms=r[k]
                        )
                peer = [v for s, v in best.items() if s != "brainsim" and v]
                ratio = None
                if best.get("brainsim") and peer:
                    ratio = best["brainsim"]["wall_s"] / min(v["wall_s"] for v in peer)
                row[kind] = dict(best=best, ratio=ratio)
            out.append(row)
    return out


# ------------------------------------------------------------------------------------------- reporting


def fmt(x, spec):
    return "" if x is None else format(x, spec)


def point_table(rows, model):
    lines = ["| configuration | dt ms / tol | spikes | error ms | wall s (median) [min–max] | steps | "
             "error vs own ref ms |", "|---|---:|---:|---:|---|---:|---:|"]  # fmt: skip
    for r in rows:
        if r["model"] != model:
            continue
        if r["status"] != "ok":
            err, spikes = r["status"].upper(), ""
        else:
            spikes = str(r["n_spikes"])
            err = (
                f"{r['error_ms']:.3g}" if r.get("error_ms") is not None else (r.get("why") or "no reference")
            )
            if r.get("error_ms") is None and r.get("why"):
                err = "COUNT " + r["why"]
        own = ""
        if r.get("error_own_ms") is not None:
            own = f"{r['error_own_ms']:.3g}"
        elif r.get("why_own"):
            own = "count"
        wall = "" if r["wall_s"] is None else f"{r['wall_s']:.4g} [{r['wall_min']:.4g}–{r['wall_max']:.4g}]"
        sweep = {"dt": "dt", "tol": "tol", "atol": "atol"}[r["sweep"]]
        lines.append(f"| {r['config']} | {sweep} {r['x']:g} | {spikes} | {err} | {wall} | "
                     f"{fmt(r.get('steps') or None, 'd')} | {own} |")  # fmt: skip
    return lines


def summary_lines(summ, kind, peers_present):
    sims = ["brainsim", *[s for s in ("neuron", "arbor") if s in peers_present]]
    head = "| model | target ms | " + " | ".join(sims) + " | brainsim ÷ best peer |"
    lines = [head, "|---|---:|" + "---|" * len(sims) + "---:|"]
    for row in summ:
        if kind not in row:
            continue
        cells = []
        for s in sims:
            b = row[kind]["best"].get(s)
            if not b:
                cells.append("not reached")
            elif kind == "interpolated":
                cells.append(f"{b['config']}: {b['wall_s']:.3g} s ({b['note']})")
            else:
                cells.append(f"{b['config']} {b['x']:g}: {b['wall_s']:.3g} s (err {b['error_ms']:.2g})")
        ratio = row[kind]["ratio"]
        lines.append(f"| {MODEL_NAMES[row['model']]} | {row['target_ms']:g} | " + " | ".join(cells)
                     + f" | {fmt(ratio, '.2f')} |")  # fmt: skip
    return lines


def reference_lines(model, ref):
    n = len(ref["reference"]) if ref.get("reference") else 0
    lines = [f"Reference: {ref['how']}: {n} spikes" + ("" if n else " — FAILED: " + json.dumps(ref["runs"]))]
    for name, value in ref["checks"].items():
        lines.append(f"  * {name}: " + (value if isinstance(value, str) else fmt(value, ".3g")))
    return lines


def plot(rows, models, refs, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    styles = {
        "brainsim staggered": ("tab:blue", "o", "-"), "brainsim midpoint": ("tab:green", "s", "-"),
        "brainsim bdf2-newton": ("tab:olive", "^", "-"), "brainsim cn": ("tab:cyan", "v", "-"),
        "brainsim adaptive bdf": ("tab:purple", "D", "-"), "neuron fixed": ("tab:red", "o", "--"),
        "neuron cvode": ("tab:orange", "D", "--"), "arbor": ("tab:brown", "o", ":"),
    }  # fmt: skip
    fig, axes = plt.subplots(1, len(models), figsize=(6.2 * len(models), 5.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        for config, (colour, marker, line) in styles.items():
            c = curve(rows, model, config, "error_ms")
            if not c:
                continue
            walls = [r["wall_s"] for r in c]
            errs = [max(r["error_ms"], 1e-9) for r in c]
            ax.plot(walls, errs, line, color=colour, marker=marker, ms=4, label=config)
            for r, w, e in zip(c, walls, errs):
                ax.annotate(f"{r['x']:g}", (w, e), fontsize=6, color=colour, xytext=(3, 2),
                            textcoords="offset points")  # fmt: skip
            gap = refs.get(model, {}).get("gap", {}).get(CONFIGS[config]["simulator"], 0.0)
            if not isinstance(gap, float) or gap > GAP_SHOWN:  # a peer whose own solution differs
                own = curve(rows, model, config, "error_own_ms")
                if own:
                    walls, errs = [r["wall_s"] for r in own], [max(r["error_own_ms"], 1e-9) for r in own]
                    ax.plot(walls, errs, line, color=colour, marker=marker, ms=3, alpha=0.35,
                            label=f"{config} (vs own ref)")  # fmt: skip
        for t in TARGETS:
            ax.axhline(t, color="grey", lw=0.5, ls=":")
        failed = [f"{r['config']} {r['x']:g}: {r['status'] if r['status'] != 'ok' else 'spike count'}"
                  for r in rows if r["model"] == model and r.get("error_ms") is None]  # fmt: skip
        if failed:
            ax.text(0.99, 0.01, "not shown:\n" + "\n".join(failed), transform=ax.transAxes, fontsize=6,
                    ha="right", va="bottom", color="dimgrey")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("wall time of the timed region, s (median)")
        ax.set_ylabel("max |spike time − reference|, ms")
        ax.set_title(MODEL_NAMES[model])
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=7)
    fig.suptitle("\n".join(textwrap.wrap(title, 60 * len(models))), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def cpu_name():
    """The CPU model name from /proc/cpuinfo with its family and model (which tell Zen 1 from Zen 3)."""
    first = Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
    info = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in first)}
    if "model name" not in info:
        return platform.processor() or "unknown CPU"
    return f"{info['model name']} (family {info.get('cpu family', '?')} model {info.get('model', '?')})"


def neuron_in_this_python():
    check = subprocess.run([sys.executable, "-c", "import neuron"], capture_output=True)
    return check.returncode == 0


def peers_available():
    if not PEERS_PY.exists():
        return False, False
    neuron = subprocess.run([str(PEERS_PY), "-c", "import neuron"], capture_output=True).returncode == 0
    arbor = subprocess.run([str(PEERS_PY), "-c", "import arbor"], capture_output=True).returncode == 0
    return neuron, arbor


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        return worker(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=list(MODEL_NAMES), default=list(MODEL_NAMES))
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    ap.add_argument("--reps", type=int, default=3, help="timed runs of each point (the median is shown)")
    ap.add_argument("--dts", type=float, nargs="+", default=DTS, help="ms, fixed-step configurations")
    ap.add_argument("--tols", type=float, nargs="+", default=TOLS, help="brainsim adaptive ts_rtol = ts_atol")
    ap.add_argument("--atols", type=float, nargs="+", default=ATOLS, help="NEURON CVODE atol")
    ap.add_argument("--ring-n", type=int, default=16, help="cells of the ring")
    ap.add_argument("--ring-tstop", type=float, default=196.5, help="ms")
    ap.add_argument("--l5pc-tstop", type=float, default=1200.0, help="ms, where Step1 is cut (3000: all)")
    ap.add_argument("--ref-factor", type=float, default=4.0, help="reference h = min(dts) / this (M1, L5PC)")
    ap.add_argument("--ring-ref-tol", type=float, default=1e-10, help="the ring's reference tolerance")
    ap.add_argument("--neuron-ref-atol", type=float, default=1e-8, help="NEURON's own converged CVODE run")
    ap.add_argument("--targets", type=float, nargs="+", default=TARGETS, help="ms, for the summary")
    ap.add_argument("--run-timeout", type=float, default=900.0, help="s, a run killed after this")
    ap.add_argument("--reuse-reference", action="store_true",
                    help="reference runs from OUT/reference.json where their settings match")  # fmt: skip
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "work_precision")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    has_neuron, has_arbor = peers_available()
    a.peers, a.arbor = has_neuron, has_arbor
    a.neuron_here = neuron_in_this_python()
    if not has_neuron or not has_arbor:
        print(f"peers missing in {PEERS_PY} (NEURON {has_neuron}, Arbor {has_arbor}): run "
              "benchmarks/setup_peers.sh", flush=True)  # fmt: skip
    if "l5pc" in a.models and has_neuron and not a.neuron_here:
        print(f"NEURON is not in {sys.executable}: the L5PC runs without NEURON "
              "(.venv/bin/pip install neuron==9.0.2)", flush=True)  # fmt: skip
    peers_present = [s for s, ok in (("neuron", has_neuron), ("arbor", has_arbor)) if ok]
    library = None
    if "l5pc" in a.models and a.neuron_here and has_neuron:
        from .l5pc_reference import compile_mechanisms, reference_folder

        library = compile_mechanisms(reference_folder() / "mechanisms", a.out / "neuron")
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    env = dict(os.environ, **ONE_THREAD, **FAST_START)
    cpu, load0 = cpu_name(), os.getloadavg()
    print(f"CPU: {cpu} ({os.cpu_count()} CPUs); load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; "
          f"pinned: {' '.join(pin) or 'no'}; reps {a.reps}", flush=True)  # fmt: skip
    log = (a.out / "runs.jsonl").open("w")

    def record(kind, point, rep, r):
        log.write(json.dumps(dict(kind=kind, rep=rep, **asdict(point), **r)) + "\n")
        log.flush()

    # numba's and the NMODL translation's on-disk caches warm before anything is timed
    for model in a.models:
        for config in ("brainsim staggered", "brainsim midpoint"):
            r = run_point(Point(model, config, 0.025), a, library, pin, env, tstop=1.0)
            if r["status"] != "ok":
                print(f"warm-up {model} {config}: {r['status']} {r.get('message', '')}", flush=True)

    # the references (untimed)
    ref_file = a.out / "reference.json"
    old = json.loads(ref_file.read_text()) if a.reuse_reference and ref_file.exists() else {}
    key = dict(ring_n=a.ring_n, ring_tstop=a.ring_tstop, l5pc_tstop=a.l5pc_tstop)
    refs, stored = {}, {}
    for model in a.models:
        runs = reference_runs(model, a)
        results = {}
        for name, p in runs.items():
            prev = old.get(model, {}).get(name)
            if (
                prev
                and prev["point"] == asdict(p)
                and prev["key"] == key
                and prev["result"]["status"] == "ok"
            ):
                results[name] = prev["result"]
                continue
            t0 = time.perf_counter()
            results[name] = run_point(p, a, library, pin, env)
            record("reference", p, -1, results[name])
            print(f"[reference] {MODEL_NAMES[model]} {name}: {label(p)}: {results[name]['status']} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
        stored[model] = {
            name: dict(point=asdict(p), key=key, result=results[name]) for name, p in runs.items()
        }
        refs[model] = build_reference(model, runs, results)
        for line in reference_lines(model, refs[model]):
            print(f"{MODEL_NAMES[model]}: {line}", flush=True)
    ref_file.write_text(json.dumps({**old, **stored}))

    # the timed runs, round-robin over the reps
    points = timed_points(a)
    runs = {}
    for rep in range(a.reps):
        k = (rep * 7) % len(points) if points else 0
        for p in points[k:] + points[:k]:
            if rep and runs.get(p) and runs[p][0]["status"] in ("blew up", "error", "timeout"):
                continue  # a failure is not timed again
            r = run_point(p, a, library, pin, env)
            runs.setdefault(p, []).append(r)
            record("timed", p, rep, r)
            note = f"{r['wall_s']:.4g} s, {len(r['spikes'])} spikes" if r["status"] == "ok" else r["status"]
            print(f"[rep {rep}] {MODEL_NAMES[p.model]} {label(p)}: {note}", flush=True)
    load1 = os.getloadavg()
    rows = summarize_points(points, runs, refs)
    summ = summary(rows, a.models, a.targets, peers_present)

    meta = dict(
        cpu=cpu, cpus=os.cpu_count(), python=platform.python_version(),
        load_start=list(load0), load_end=list(load1), reps=a.reps, pinned=" ".join(pin) or "no",
        command=" ".join([Path(sys.executable).name, "-m", "benchmarks.work_precision", *argv]),
        total_s=time.perf_counter() - started, ring_n=a.ring_n, ring_tstop=a.ring_tstop,
        l5pc_tstop=a.l5pc_tstop, peers=peers_present, neuron_l5pc=bool(library),
    )  # fmt: skip
    title = (f"{cpu}; load {load0[0]:.2f} at start, {load1[0]:.2f} at end; median of {a.reps} reps; "
             f"ring N={a.ring_n} {a.ring_tstop:g} ms; L5PC Step1 {a.l5pc_tstop:g} ms")  # fmt: skip
    lines = [f"Machine: {cpu}, {os.cpu_count()} CPUs, Python {meta['python']}; load average "
             f"{load0[0]:.2f} at start, {load1[0]:.2f} at end; {a.reps} reps; pinned: {meta['pinned']}; "
             f"total {meta['total_s'] / 60:.1f} min.", ""]  # fmt: skip
    for model in a.models:
        extra = {"ring": f", N = {a.ring_n}, {a.ring_tstop:g} ms", "l5pc": f", cut at {a.l5pc_tstop:g} ms"}
        lines += [f"### {MODEL_NAMES[model]}{extra.get(model, '')}", ""]
        lines += reference_lines(model, refs[model]) + [""]
        lines += point_table(rows, model) + [""]
    titles = {
        "measured": "cheapest measured point at or below the target (error vs the common reference)",
        "interpolated": "interpolated log-log along each configuration's curve (vs the common reference)",
        "own": "cheapest measured point, each peer against its own converged solution (M1, L5PC)",
    }
    for kind, text in titles.items():
        lines += [f"Summary: {text}. brainsim ÷ best peer < 1: brainsim cheaper.", ""]
        lines += summary_lines(summ, kind, peers_present) + [""]
    print("\n" + "\n".join(lines), flush=True)
    (a.out / "report.md").write_text("\n".join(lines) + "\n")
    record_out = dict(meta=meta, references=refs, points=rows, summary=summ)
    (a.out / "work_precision.json").write_text(json.dumps(record_out, indent=1))
    plot(rows, a.models, refs, a.out / "work_precision.png", title)
    print(f"wrote {a.out / 'work_precision.json'}, {a.out / 'work_precision.png'}, {a.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
