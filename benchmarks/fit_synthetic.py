"""The fit's known answer at a larger size: a synthetic patient on 16 regions of the synthetic connectome
(configs/twin/patient_brain.yaml's cells, 16 free drive factors drawn in 0.8-1.2, or those of --truth),
its EEG and rates written as EDF and TSV and read back by `brainsim observe`, fitted by `brainsim fit`
with configs/twin/fit.yaml or --fit-file (its method, or --method); prints the wall time, the recovery and the
posterior mean patient's prediction of a held-out window of the recording.

    .venv/bin/python benchmarks/fit_synthetic.py [--regions 16] [--members J] [--iterations 3]
                     [--method eki|cmaes] [--fit-seed S] [--truth PATIENT.yaml] [--fit-file FIT.yaml]
                     [--scheduler local|dask|...] [--workers N] [-o out/bench_fit]

With --regions 8 --truth configs/twin/true_patient.yaml it is the known answer of
tests/twin/test_fit_synthetic.py (its regions in another order).
"""

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
TWIN = ROOT / "configs" / "twin"
sys.path.insert(0, str(TWIN))
from make_patient import make_patient  # noqa: E402

REGIONS = [
    f"{h}-{area}"
    for area in ("precentral", "postcentral", "superiorfrontal", "superiorparietal", "caudalmiddlefrontal",
                 "supramarginal", "paracentral", "precuneus", "rostralmiddlefrontal", "inferiorparietal")
    for h in ("lh", "rh")
]  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--regions", type=int, default=16)
    parser.add_argument("--members", type=int, help="default: the fit file's")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--scheduler", default="local")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--seed", type=int, default=3, help="seed of the drawn truth")
    parser.add_argument("--truth", help="a patient overlay whose background pyr factors are the truth")
    parser.add_argument("--method", choices=("eki", "cmaes"), help="default: the fit file's")
    parser.add_argument("--fit-seed", type=int, help="the fit's seed (default: the fit file's)")
    parser.add_argument("--fit-file", default=str(TWIN / "fit.yaml"), help="default: configs/twin/fit.yaml")
    parser.add_argument("-o", "--output", default="out/bench_fit")
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    regions = REGIONS[: args.regions]
    config = yaml.safe_load((TWIN / "patient_brain.yaml").read_text())
    config["brain"]["regions"] = regions
    config["brain"]["connectome"]["file"] = str(ROOT / "configs" / "connectomes" / "synthetic_68.zip")
    config["name"] = f"patient_brain_{len(regions)}"
    config_file = out / "config.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    if args.truth:
        given = yaml.safe_load(Path(args.truth).read_text())["background"]
        truth = {r: float(given[r]["pyr"]) for r in regions}
    else:
        rng = np.random.default_rng(args.seed)
        truth = dict(zip(regions, np.round(rng.uniform(0.8, 1.2, len(regions)), 3).tolist()))
    patient = {"id": "benchmark-patient", "background": {r: {"pyr": f} for r, f in truth.items()}}
    (out / "truth.yaml").write_text(yaml.safe_dump(patient, sort_keys=False))
    started = time.perf_counter()
    make_patient(out / "recording", config=config_file, patient=out / "truth.yaml", log=lambda line: None)
    recorded = time.perf_counter() - started
    obs = out / "observed.zarr"
    rec = out / "recording"
    brainsim = [sys.executable, "-m", "brainsim.cli"]
    subprocess.run(
        [*brainsim, "observe", rec / "patient_eeg.edf", rec / "patient_rates.tsv", "--connectome",
         config_file, "--kind", "rate", "-o", obs, "--overwrite"], check=True, capture_output=True,
    )  # fmt: skip
    fit_file = Path(args.fit_file)
    if args.method:
        spec = yaml.safe_load(fit_file.read_text())
        spec["method"]["kind"] = args.method
        fit_file = out / "fit.yaml"
        fit_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    command = [*brainsim, "fit", config_file, "--observations", obs, "--parameters", fit_file,
               "--iterations", str(args.iterations), "--scheduler", args.scheduler, "-o", out / "fit",
               "--overwrite"]  # fmt: skip
    if args.members:
        command += ["--members", str(args.members)]
    if args.workers:
        command += ["--workers", str(args.workers)]
    if args.fit_seed is not None:
        command += ["--seed", str(args.fit_seed)]
    began = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - began
    record = json.loads((out / "fit" / "fit.json").read_text())
    names = list(record["posterior"])
    fitted = np.array([record["posterior"][n]["mean"] for n in names])
    sd = np.array([record["posterior"][n]["sd"] for n in names])
    true = np.array([truth[n[len("drive[") : -1]] for n in names])
    inside = np.abs(fitted - true) <= 2 * sd
    rms, prior_rms = np.sqrt(np.mean((fitted - true) ** 2)), np.sqrt(np.mean((0.95 - true) ** 2))
    print(f"recording: {recorded:.1f} s; fit: {wall:.1f} s wall ({record['method']['kind']}, "
          f"{record['members']} members, {record['iterations']} iterations, {record['member_runs']} member "
          f"runs, {args.scheduler})")  # fmt: skip
    print(f"estimate: {record['estimate']}")
    z = (fitted - true) / sd
    outside = 2 * norm_sf(2.0)  # P(|z| > 2) of a calibrated posterior
    print(
        f"parameters: {len(names)}; RMS error {rms:.4f} (prior: {prior_rms:.4f}); "
        f"within 2 sd: {int(inside.sum())} of {len(names)}, largest |error| / sd {np.max(np.abs(z)):.2f}"
    )
    print(f"calibration: RMS of error / sd {np.sqrt(np.mean(z**2)):.2f} (1 for a calibrated posterior, which "
          f"misses 2 sd for {len(names) * outside:.2f} of {len(names)} parameters on average and for none "
          f"with probability {(1 - outside) ** len(names):.2f})")  # fmt: skip
    print(f"misfit median per ensemble: {[round(m['median'], 2) for m in record['misfit']]}; best per "
          f"ensemble: {[round(m['best'], 2) for m in record['misfit']]} (noise level 1)")  # fmt: skip
    for n, t, f, s in zip(names, true, fitted, sd):
        print(
            f"  {n}: truth {t:.3f}  fit {f:.3f} ± {s:.3f}{'' if abs(f - t) <= 2 * s else '  (outside 2 sd)'}"
        )
    for what, theta in (("the posterior mean", fitted), ("the truth itself", true)):
        misfit, worst = held_out(config_file, fit_file, obs, names, theta, out / "fit" / "fit.zarr")
        print(f"held-out {HELD_OUT[0]:g}-{HELD_OUT[1]:g} ms, {what} with a new seed: misfit {misfit:.2f} "
              f"(noise level 1), largest rate error {worst:.2f} noise sd")  # fmt: skip
    return 0


def norm_sf(x):
    """P(Z > x) of a standard normal Z."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


HELD_OUT = [400.0, 800.0]  # ms of the recording the fit never saw (the fit file matches 0-400 ms)


def held_out(config_file, fit_file, obs_path, names, theta, fit_store):
    """(misfit in noise units, largest |error| of a region rate in noise sd) of the patient with the
    parameters theta (of names: the posterior mean, or the truth: the floor that the recording's own
    network realisation and noise set) over HELD_OUT, simulated with a new seed, against the recording's.
    The noise: the fit's noise_covariance where it has one (a window as long as the fit's), else the
    features' noise."""
    import brainsim
    from brainsim.config.load import read_yaml
    from brainsim.twin import eki
    from brainsim.twin.features import feature_vector, pin
    from brainsim.twin.fit_store import open_fit
    from brainsim.twin.member import MemberTask, run_member
    from brainsim.twin.observe import open_observations
    from brainsim.twin.parameters import load_fit, member_config

    raw = read_yaml(config_file)
    spec = load_fit(fit_file, brainsim.load_config(config_file), raw)
    obs = open_observations(obs_path)
    features = pin(obs, [{**f, "window": HELD_OUT} for f in spec.features])
    observed, labels = feature_vector(obs, features)
    values = [float(theta[names.index(n)]) for n in spec.names]
    member = member_config(spec, raw, [f"simulation.tstop={HELD_OUT[1]}"], config_file, values, "held-out")
    predicted = run_member(MemberTask(member.data, str(config_file), 12345, tuple(features), len(labels)))
    noise = np.concatenate([np.full(len(feature_vector(obs, [f])[0]), f["noise"]) for f in features])
    fitted = open_fit(fit_store)
    gamma = fitted["noise_covariance"].values if "noise_covariance" in fitted else noise**2
    z = (predicted - observed) / np.sqrt(np.diag(gamma) if gamma.ndim == 2 else gamma)
    rates = [k for k, label in enumerate(labels) if label.startswith("mean_rate")]
    return float(eki.misfit(predicted, observed, gamma)[0]), float(np.max(np.abs(z[rates])))


if __name__ == "__main__":
    sys.exit(main())
