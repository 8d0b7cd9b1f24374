"""The follower's early-warning known answer, reduced: the drifting patient of seed 3
(configs/twin/make_drift_patient.py: the left precentral sodium conductance ramps up from 3 s until the
seizure-like synchrony rule matches there at T = 10.9 s) followed by `brainsim follow` with the shipped
configs/twin/drift/follow.yaml (a random walk with a trend) and watch.yaml, fed the truth's observations
up to 7 s (`brainsim feed --stop`) and never its parameters, warns of the rule in the drifting region,
and there only, with probability >= 0.5 at least 2 s before T and within the 4 s horizon of it; the same
patient without the drift (a control), followed as long, never warns. The recordings are as long as
benchmarks/early_warning.py's (the recorded rates depend on a recording's length), so that these are the
first 7 windows of its follows of drift-3 and control-3. Fewer members are no cheaper variant of this
answer: with 6 or 8 the forecast from 6 s already warns in lh-precentral (p = 0.5), 4.9 s before T,
outside the horizon."""

import importlib.util
import json
import subprocess
import sys

import pytest
from support import ROOT

from brainsim.twin.follow import open_twin

TWIN = ROOT / "configs" / "twin"
DRIFT = TWIN / "drift"
SEED, LEAD = 3, 2000.0  # the patient's seed; the lead asked for, ms
TSTOP, CONTROL_TSTOP = 12250.0, 12000.0  # ms: the recordings of benchmarks/early_warning.py
FED = 7000.0  # ms: what the follower is fed, the first window's end within the horizon (4 s) of T
WINDOW, HORIZON, MEMBERS = 1000.0, 4000.0, 12

pytestmark = pytest.mark.timeout(1800)

_spec = importlib.util.spec_from_file_location("make_drift_patient", TWIN / "make_drift_patient.py")
make_drift_patient = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_drift_patient)


def _brainsim(*args):
    return subprocess.run([sys.executable, "-m", "brainsim.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)  # fmt: skip


def _follow(folder, observations):
    out = folder / "twin.zarr"
    done = _brainsim(
        "follow", DRIFT / "brain.yaml", "--patient", DRIFT / "patient.yaml", "--observations", observations,
        "--parameters", DRIFT / "follow.yaml", "--window", WINDOW, "--horizon", HORIZON, "--members", MEMBERS,
        "--alerts", DRIFT / "watch.yaml", "--scheduler", "dask", "--workers", 2, "-o", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return open_twin(out)


def _feed(folder):
    """The patient's observations up to FED ms, as a finished live store."""
    live = folder / "live.zarr"
    fed = _brainsim("feed", folder / "patient_obs.zarr", "--to", live, "--speed", 0, "--stop", FED)
    assert fed.returncode == 0, fed.stderr[-3000:]
    return live


def _quiet(line):
    pass


def test_warns_two_seconds_before_the_event_and_not_in_a_control(tmp_path):
    drift = make_drift_patient.make_drift_patient(tmp_path / "drift", seed=SEED, tstop=TSTOP, log=_quiet)
    T, region, rule = drift["T_ms"], drift["region"], drift["rule"]
    assert T == 10900.0 and T - HORIZON <= FED <= T - LEAD  # configs/twin/drift/drift.yaml's T of seed 3
    ds = _follow(tmp_path / "drift", _feed(tmp_path / "drift"))
    assert ds.attrs["status"] == "complete" and ds["window_end"].values[-1] == FED
    warnings = [
        json.loads(line) for line in (tmp_path / "drift" / "twin.warnings.jsonl").read_text().splitlines()
    ]
    hits = [w for w in warnings if w["rule"] == rule and region in w["regions"] and w["probability"] >= 0.5]
    assert hits and min(w["time"] for w in hits) <= T - LEAD, warnings
    assert all(w["regions"] == [region] and w["time"] >= T - HORIZON for w in warnings), warnings
    assert ds["rate"].sel(parameter=f"excitability[{region}]").notnull().all()  # the trend is estimated

    control = make_drift_patient.make_drift_patient(
        tmp_path / "control", seed=SEED, control=True, tstop=CONTROL_TSTOP, log=_quiet
    )
    assert control["T_ms"] is None
    ds = _follow(tmp_path / "control", _feed(tmp_path / "control"))
    assert ds.attrs["status"] == "complete" and ds.sizes["window"] == FED / WINDOW
    assert not ds["warning"].values.any(), ds["warning_probability"].values
    assert (tmp_path / "control" / "twin.warnings.jsonl").read_text() == ""
