"""The fit's known answer at a larger size: a synthetic patient on 16 regions of the synthetic connectome
(configs/twin/patient_brain.yaml's cells, 16 free drive factors drawn in 0.8-1.2, or those of --truth),
its EEG and rates written as EDF and TSV and read back by `brainsim observe`, fitted by `brainsim fit`
with configs/twin/fit.yaml (its method, or --method); prints the wall time and the recovery.

    .venv/bin/python benchmarks/fit_synthetic.py [--regions 16] [--members 32] [--iterations 3]
                     [--method eki|cmaes] [--fit-seed S] [--truth PATIENT.yaml]
                     [--scheduler local|dask|...] [--workers N] [-o out/bench_fit]

With --regions 8 --truth configs/twin/true_patient.yaml it is the known answer of
tests/twin/test_fit_synthetic.py (its regions in another order).
"""

import argparse
import json
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
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--scheduler", default="local")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--seed", type=int, default=3, help="seed of the drawn truth")
    parser.add_argument("--truth", help="a patient overlay whose background pyr factors are the truth")
    parser.add_argument("--method", choices=("eki", "cmaes"), help="default: the fit file's")
    parser.add_argument("--fit-seed", type=int, help="the fit's seed (default: the fit file's)")
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
    fit_file = TWIN / "fit.yaml"
    if args.method:
        spec = yaml.safe_load(fit_file.read_text())
        spec["method"]["kind"] = args.method
        fit_file = out / "fit.yaml"
        fit_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    command = [*brainsim, "fit", config_file, "--observations", obs, "--parameters", fit_file,
               "--members", str(args.members), "--iterations", str(args.iterations), "--scheduler",
               args.scheduler, "-o", out / "fit", "--overwrite"]  # fmt: skip
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
          f"{args.members} members, {record['iterations']} iterations, {record['member_runs']} member runs, "
          f"{args.scheduler})")  # fmt: skip
    print(f"estimate: {record['estimate']}")
    print(f"parameters: {len(names)}; RMS error {rms:.4f} (prior: {prior_rms:.4f}); "
          f"within 2 sd: {int(inside.sum())} of {len(names)}")  # fmt: skip
    print(f"misfit median per ensemble: {[round(m['median'], 2) for m in record['misfit']]}; best per "
          f"ensemble: {[round(m['best'], 2) for m in record['misfit']]} (noise level 1)")  # fmt: skip
    for n, t, f, s in zip(names, true, fitted, sd):
        print(
            f"  {n}: truth {t:.3f}  fit {f:.3f} ± {s:.3f}{'' if abs(f - t) <= 2 * s else '  (outside 2 sd)'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
