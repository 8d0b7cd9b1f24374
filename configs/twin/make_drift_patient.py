"""Write the drifting patient's recordings and its known answer: simulate configs/twin/drift/brain.yaml
under the patient overlay drift/patient.yaml with the pre-ictal drift drift/drift.yaml (one region's
sodium conductance rising slowly), or without it for a control, write its EEG (EDF) and region rates
(table) and read them with `brainsim observe`, as configs/twin/make_patient.py does; then evaluate the
seizure-watch rules drift/watch.yaml on the truth's summary and record when the seizure-like synchrony
rule first matches in the drifting region (T).

    .venv/bin/python configs/twin/make_drift_patient.py -o out/drift/s1 --seed 1             # drift
    .venv/bin/python configs/twin/make_drift_patient.py -o out/drift/c1 --seed 1 --control   # control

writes DIR/truth.zarr, DIR/truth.summary.zarr, DIR/patient_eeg.edf, DIR/patient_rates.tsv,
DIR/patient_obs.zarr and DIR/truth.json:

    {"T_ms": first start (ms) of a seizure-like synchrony match in the drifting region, or null,
     "region": the drifting region, "rule": that rule's name,
     "parameter": the patient key that multiplies what the drift ramps
                  (patient.factors.<region>.<type>.<mechanism>.<parameter>),
     "drift": the drift intervention as resolved (null for a control), "seed", "control", "tstop" (ms),
     "factor_at": [[t ms, factor], ...] every 50 ms (all 1 for a control),
     "alerts": every rule match [{rule, variable, region, start, end, peak}]}

and prints T. About 15 s of one core for the default 15 s of brain time.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_patient import make_patient  # noqa: E402

DRIFT = HERE / "drift"
SEIZURE_RULE = "seizure-like synchrony"
FACTOR_STEP = 50.0  # ms between the samples of truth.json's factor_at


def load_rules(path):
    """The alert rules of a rules file (a mapping with one key, `alerts`, holding a list of rules),
    resolved; errors name the file and the key."""
    from brainsim.config.load import read_yaml
    from brainsim.config.schema import ALERT
    from brainsim.errors import ConfigError

    raw = read_yaml(path)
    if not isinstance(raw, dict) or set(raw) != {"alerts"} or not isinstance(raw["alerts"], list):
        allowed = "a mapping with one key, 'alerts', holding a list of rules"
        raise ConfigError("alerts", raw, allowed, file=str(path))
    try:
        return [ALERT.resolve(rule, f"alerts[{i}]") for i, rule in enumerate(raw["alerts"])]
    except ConfigError as e:
        raise e.in_file(str(path)) from None


def drift_of(config, drift, tstop):
    """The drift intervention of the file `drift` as the config resolves it for a run of tstop ms, checked
    to be a drug on one region's one cell type (what one twin parameter tracks)."""
    import brainsim
    from brainsim.errors import ConfigError

    item = brainsim.load_config(config, {"simulation.tstop": tstop}, interventions=[drift])["interventions"][
        -1
    ]
    if item["kind"] != "drug":
        raise ConfigError("kind", item["kind"], "drug (a drift of a mechanism's parameter)", file=str(drift))
    for key in ("regions", "cell_types"):
        if not isinstance(item[key], list) or len(item[key]) != 1:
            raise ConfigError(
                key, item[key], "a list of one (the drift of one region's cells)", file=str(drift)
            )
    return item


def make_drift_patient(
    out, *, seed=1, control=False, tstop=15000.0, config=DRIFT / "brain.yaml", patient=DRIFT / "patient.yaml",
    drift=DRIFT / "drift.yaml", alerts=DRIFT / "watch.yaml", log=print,
):  # fmt: skip
    """Simulate the drifting patient (control: without the drift) for tstop ms with the random streams of
    `seed`, write its recordings and truth.json under `out` and return truth.json's content."""
    from brainsim.engine.interventions import drug_factor
    from brainsim.postprocess.alerts import check_regions, evaluate
    from brainsim.postprocess.layout import open_summary

    out = Path(out)
    rules = load_rules(alerts)
    item = drift_of(config, drift, tstop)
    region, cell_type = item["regions"][0], item["cell_types"][0]
    make_patient(
        out, config=config, patient=patient, tstop=tstop, seed=seed, interventions=() if control else [drift],
        log=log,
    )  # fmt: skip
    ds = open_summary(out / "truth.summary.zarr")
    check_regions(rules, [str(r) for r in ds["region"].values], "alerts")
    matches = evaluate(ds, rules)
    onsets = [m["start"] for m in matches if m["rule"] == SEIZURE_RULE and m["region"] == region]
    times = np.arange(0.0, tstop + FACTOR_STEP / 2, FACTOR_STEP)
    truth = {
        "T_ms": min(onsets) if onsets else None,
        "region": region,
        "rule": SEIZURE_RULE,
        "parameter": f"patient.factors.{region}.{cell_type}.{item['mechanism']}.{item['parameter']}",
        "drift": None if control else item,
        "seed": seed,
        "control": control,
        "tstop": tstop,
        "factor_at": [[float(t), 1.0 if control else float(drug_factor(item, t))] for t in times],
        "alerts": matches,
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    for m in matches:
        log(f"make_drift_patient: {m['rule']} in {m['region']} from {m['start']:g} to {m['end']:g} ms")
    return truth


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", required=True, help="folder of the recordings and truth.json")
    parser.add_argument("--seed", type=int, default=1, help="the patient's own random streams (default 1)")
    parser.add_argument("--control", action="store_true", help="the same patient without the drift")
    parser.add_argument("--tstop", type=float, default=15000.0, help="length of the recording, ms")
    parser.add_argument(
        "--alerts", default=str(DRIFT / "watch.yaml"), help="alert rules evaluated on the truth run"
    )
    args = parser.parse_args(argv)
    from brainsim.errors import BrainsimError

    try:
        truth = make_drift_patient(
            args.output, seed=args.seed, control=args.control, tstop=args.tstop, alerts=args.alerts,
            log=lambda line: print(line, file=sys.stderr),
        )  # fmt: skip
    except BrainsimError as e:
        print(f"make_drift_patient: {e}", file=sys.stderr)
        return 2
    where = f"{truth['rule']} in {truth['region']}"
    print(f"T = {truth['T_ms']:g} ms ({where})" if truth["T_ms"] is not None else f"T = none (no {where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
