"""The follower's early-warning known answer: K drifting patients (configs/twin/make_drift_patient.py,
seeds 1..K: one region's excitability ramps up until the seizure-like synchrony rule matches there at T)
and K controls (the same patients without the drift), each followed by `brainsim follow` with the
shipped configs/twin/drift/follow.yaml and watch.yaml, fed the truth's observations and never its
parameters. Prints per patient T, the first warning of the rule (issue time, lead T - issue time, its
probability, whether it came >= --lead ms ahead), the false alarms (a warning naming a region falsely:
any region of a control; before T, another region than the drifting one, or the drifting one more than
the horizon before T), the false-alarm rate per hour of the brain time scored (a control's recording, a
drift patient's up to T),
the tracking error of the excitability (|ensemble mean - truth factor| of the drifting region per
window, against truth.json's factor_at at the window's middle; of the other regions against 1), and
each follow's wall time and real-time factor.

    .venv/bin/python benchmarks/early_warning.py [--seeds 1 2 3 4 5] [--controls 1 2 3 4 5]
                     [--window 1000] [--horizon 4000] [--members 12] [--scheduler local|dask]
                     [--workers 2] [-o out/bench_early_warning]

A drift patient's recording stops a second after T_MAX (the latest T of seeds 1-5: what comes after T
is not scored), a control's at --control-tstop; both are written once into -o and reused, and so is a
follow: an interrupted one continues from its last window, a complete one is read again (a follow of
other inputs there is refused: remove the patient's twin.zarr to run it afresh).
"""

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DRIFT = ROOT / "configs" / "twin" / "drift"
T_MAX = 11250.0  # ms: the latest T of seeds 1-5 (configs/twin/drift/drift.yaml)


def make(folder, seed, control, tstop):
    """The patient's recordings and truth.json in `folder` (made once); returns truth.json's content."""
    truth = folder / "truth.json"
    if not truth.is_file() or json.loads(truth.read_text())["tstop"] != tstop:
        cmd = [sys.executable, str(ROOT / "configs" / "twin" / "make_drift_patient.py"), "-o", str(folder),
               "--seed", str(seed), "--tstop", str(tstop), *(["--control"] if control else [])]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(truth.read_text())


def follow(folder, window, horizon, members, scheduler, workers, params=DRIFT / "follow.yaml"):
    """`brainsim follow` of the patient in `folder` into folder/twin.zarr (resumed where one is there);
    returns the wall time (s) of this call."""
    cmd = [sys.executable, "-m", "brainsim.cli", "follow", str(DRIFT / "brain.yaml"),
           "--patient", str(DRIFT / "patient.yaml"), "--observations", str(folder / "patient_obs.zarr"),
           "--parameters", str(params), "--window", str(window), "--horizon", str(horizon),
           "--members", str(members), "--alerts", str(DRIFT / "watch.yaml"), "--scheduler", scheduler,
           *(["--workers", str(workers)] if workers else []), "-o", str(folder / "twin.zarr")]  # fmt: skip
    begun = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"early_warning: follow of {folder} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - begun


def assess(twin_path, truth, lead=2000.0):
    """What the follow in TWIN.zarr `twin_path` warned and how it tracked, against truth.json's content:
    {T, first (the first warning of the truth's rule naming its region, issued in [T - horizon, T]:
    issued ms, lead ms, probability, ahead), false_alarms (warnings naming a region falsely: any region
    of a control; of a drift patient, before T, another region or the drifting one more than the horizon
    before T; each with those regions under "false"), brain_s (the brain time followed), alarm_s (of it,
    the time scored for false alarms: a control's all, a drift patient's up to T), error_drift and
    error_other (per window: |mean of the members that ran - truth|), rtf}."""

    from brainsim.twin.follow import open_twin

    ds = open_twin(twin_path)
    horizon = json.loads(ds.attrs["inputs"])["horizon"]
    ends = ds["window_end"].values
    rules = [str(r) for r in ds["rule"].values]
    T = truth["T_ms"]
    first, false_alarms = None, []
    for k, t in enumerate(ends):
        for i, rule in enumerate(rules):
            if not bool(ds["warning"].values[k, i]) or (T is not None and t > T):
                continue
            regions = json.loads(str(ds["warning_regions"].values[k, i]))
            p = float(ds["warning_probability"].values[k, i])
            row = {"issued": float(t), "rule": rule, "regions": regions, "probability": p}
            timely = T is not None and t >= T - horizon - 1e-9
            right = timely and rule == truth["rule"]
            wrong = [r for r in regions if not (right and r == truth["region"])]
            if wrong:
                false_alarms.append({**row, "false": wrong})
            if first is None and right and truth["region"] in regions:
                first = {**row, "lead": T - float(t), "ahead": T - float(t) >= lead - 1e-9}
    names = [str(n) for n in ds["parameter"].values]
    ran = ~ds["failed"].values[:, :, None]  # (window, member, 1): members whose run blew up are left out
    mean = np.nansum(np.where(ran, ds["theta"].values, 0.0), axis=1) / ran.sum(axis=1)
    times, factors = np.array(truth["factor_at"]).T
    middle = ds["window_start"].values + (ends - ds["window_start"].values) / 2
    drifting = [i for i, n in enumerate(names) if n.endswith(f"[{truth['region']}]")]
    others = [i for i in range(len(names)) if i not in drifting]
    error_drift = np.abs(mean[:, drifting[0]] - np.interp(middle, times, factors))
    error_other = np.abs(mean[:, others] - 1.0).mean(axis=1)
    followed = float(ends[-1]) if ends.size else 0.0
    return {
        "T": T,
        "first": first,
        "false_alarms": false_alarms,
        "brain_s": followed / 1000.0,
        "alarm_s": (followed if T is None else min(T, followed)) / 1000.0,
        "error_drift": error_drift,
        "error_other": error_other,
        "rtf": ds.attrs.get("real_time_factor"),
        "windows": ends,
    }


def _row(a):
    """One patient's line of the table."""
    f, e = a["first"], a["error_drift"]

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    ahead = "-" if a["control"] else "yes" if f and f["ahead"] else "no"
    return (
        f"{a['name']:>10} {fmt(None if a['T'] is None else a['T'] / 1000, '.2f'):>6} "
        f"{fmt(f and f['issued'] / 1000, '.1f'):>8} {fmt(f and f['lead'] / 1000, '.2f'):>6} "
        f"{fmt(f and f['probability'], '.2f'):>5} {ahead:>4} {len(a['false_alarms']):>5} "
        f"{f'{e[0]:.2f}/{e[e.size // 2]:.2f}/{e[-1]:.2f}':>18} {a['error_other'].mean():>9.2f} "
        f"{a['wall']:>7.0f} {a['rtf'] or math.nan:>6.2f}"
    )


def _cpu():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4, 5], help="drift patients' seeds")
    parser.add_argument("--controls", type=int, nargs="*", default=[1, 2, 3, 4, 5], help="controls' seeds")
    parser.add_argument("--window", type=float, default=1000.0, help="ms (default 1000)")
    parser.add_argument("--horizon", type=float, default=4000.0, help="ms (default 4000)")
    parser.add_argument("--members", type=int, default=12, help="J (default 12)")
    parser.add_argument("--lead", type=float, default=2000.0, help="the lead asked for, ms (default 2000)")
    parser.add_argument("--control-tstop", type=float, default=12000.0, help="a control's recording, ms")
    parser.add_argument("--scheduler", default="dask", help="where the members run (default dask)")
    parser.add_argument("--workers", type=int, default=2, help="(default 2)")
    parser.add_argument("-o", "--output", default="out/bench_early_warning", help="folder of the patients")
    args = parser.parse_args(argv)
    out = Path(args.output)
    print(f"early_warning: J={args.members}, window {args.window:g} ms, horizon {args.horizon:g} ms, "
          f"{args.scheduler} x{args.workers}, CPU {_cpu()}", flush=True)  # fmt: skip
    header = (f"{'patient':>10} {'T s':>6} {'warned s':>8} {'lead s':>6} {'p':>5} {'>=L':>4} {'false':>5} "
              f"{'err drift 1st/mid/end':>18} {'err other':>9} {'wall s':>7} {'rtf':>6}")  # fmt: skip
    print(header, flush=True)
    rows = []
    patients = [(f"drift-{s}", s, False) for s in args.seeds] + [
        (f"control-{s}", s, True) for s in args.controls
    ]
    for name, seed, control in patients:
        tstop = args.control_tstop if control else T_MAX + 1000.0
        folder = out / name
        truth = make(folder, seed, control, tstop)
        wall = follow(folder, args.window, args.horizon, args.members, args.scheduler, args.workers)
        a = assess(folder / "twin.zarr", truth, args.lead)
        a.update(name=name, control=control, wall=wall)
        rows.append(a)
        print(_row(a), flush=True)
    drift = [r for r in rows if not r["control"]]
    ahead = sum(1 for r in drift if r["first"] and r["first"]["ahead"])
    leads = [r["first"]["lead"] / 1000 for r in drift if r["first"]]
    alarms = sum(len(r["false_alarms"]) for r in rows)
    hours = sum(r["alarm_s"] for r in rows) / 3600.0  # the brain time in which a false alarm could come
    rate = alarms / hours if hours else math.nan
    print(f"early_warning: {ahead} of {len(drift)} drift patients warned >= {args.lead / 1000:g} s ahead; "
          f"leads {', '.join(f'{x:.2f}' for x in leads) or '-'} s; {alarms} false alarm(s) in "
          f"{hours * 3600:.0f} s of brain time ({rate:.1f} per hour)")  # fmt: skip
    for r in rows:
        print(f"early_warning: {r['name']} tracking error per window (drifting region): "
              + " ".join(f"{x:.2f}" for x in r["error_drift"]))  # fmt: skip
        for w in r["false_alarms"]:
            print(f"early_warning: {r['name']} false alarm at {w['issued'] / 1000:g} s: {w['rule']} in "
                  f"{', '.join(w['false'])} (p {w['probability']:.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
