"""The drifting patient (configs/twin/make_drift_patient.py), in a shortened recording: its truth run
matches the seizure-like synchrony rule in the drifting region at a time T, after the region's observed
firing rate has risen, and no rule anywhere before; the same patient without the drift (a control)
matches no rule; truth.json, the recordings and the twin's parameter file agree with the drift."""

import importlib.util
import json

import numpy as np
import pytest
import yaml
from support import ROOT

import brainsim
from brainsim.config.load import read_yaml
from brainsim.engine.interventions import drug_factor
from brainsim.postprocess.layout import open_summary
from brainsim.twin.observe import open_observations
from brainsim.twin.parameters import load_fit

TWIN = ROOT / "configs" / "twin"
DRIFT = TWIN / "drift"
TSTOP = 11000.0  # ms: the shortened recording
T_RANGE = {1: (7000.0, 8500.0), 5: (9500.0, TSTOP)}  # seed: where T falls (7750 and 10350 ms here)

pytestmark = pytest.mark.timeout(600)

_spec = importlib.util.spec_from_file_location("make_drift_patient", TWIN / "make_drift_patient.py")
make_drift_patient = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_drift_patient)


def _quiet(line):
    pass


def test_the_drift_watch_rules_are_the_shipped_ones_this_brain_can_hold():
    shipped = yaml.safe_load((ROOT / "configs" / "alerts" / "seizure_watch.yaml").read_text())["alerts"]
    ours = yaml.safe_load((DRIFT / "watch.yaml").read_text())["alerts"]
    regions = set(brainsim.load_config(DRIFT / "brain.yaml")["brain"]["regions"])
    assert ours == [rule for rule in shipped if set(rule.get("regions", regions)) <= regions]
    assert make_drift_patient.SEIZURE_RULE in [rule["name"] for rule in ours]


def test_the_twin_tracks_what_the_drift_ramps():
    item = make_drift_patient.drift_of(DRIFT / "brain.yaml", DRIFT / "drift.yaml", TSTOP)
    region = item["regions"][0]
    config = brainsim.load_config(DRIFT / "brain.yaml")
    spec = load_fit(DRIFT / "follow.yaml", config, read_yaml(DRIFT / "brain.yaml"))
    keys = {"patient." + ".".join(p.path) for p in spec.parameters}
    assert f"patient.factors.{region}.{item['cell_types'][0]}.{item['mechanism']}.{item['parameter']}" in keys
    assert {p.path[1] for p in spec.parameters} == set(config["brain"]["regions"])
    assert item["factor"] > 1 and item["ramp"] > 0  # a rising excitability


@pytest.mark.parametrize("seed", sorted(T_RANGE))
def test_the_drift_run_matches_the_seizure_rule_at_T_after_its_rate_rose(tmp_path, seed):
    truth = make_drift_patient.make_drift_patient(tmp_path, seed=seed, tstop=TSTOP, log=_quiet)
    assert json.loads((tmp_path / "truth.json").read_text()) == truth
    T, region, item = truth["T_ms"], truth["region"], truth["drift"]
    low, high = T_RANGE[seed]
    assert T is not None and low <= T <= high, T
    assert min(m["start"] for m in truth["alerts"]) == T  # no rule matches anywhere before T
    first = [m for m in truth["alerts"] if m["start"] == T]
    assert {(m["rule"], m["region"]) for m in first} == {(make_drift_patient.SEIZURE_RULE, region)}
    assert truth["parameter"] == f"patient.factors.{region}.pyr.nata.gbar" and not truth["control"]
    assert truth["seed"] == seed and truth["tstop"] == TSTOP

    times, factors = np.array(truth["factor_at"]).T
    assert times[0] == 0.0 and times[-1] == TSTOP and np.all(np.diff(times) > 0)
    assert np.all(np.diff(factors) >= 0) and factors[times <= item["onset"]].max() == 1.0
    assert np.allclose(factors, [drug_factor(item, t) for t in times])
    assert 1.5 < drug_factor(item, T) < 3.5  # the excitability at the event

    sync = open_summary(tmp_path / "truth.summary.zarr")["hypersynchrony"].sel(region=region).load()
    before = float(sync.sel(window=slice(50.0, item["onset"])).median())
    rising = float(sync.sel(window=slice(T - 2000.0, T - 1.0)).median())
    assert before < 0.3 and rising > before + 0.1, (before, rising)  # asynchronous, then synchrony grows
    obs = open_observations(tmp_path / "patient_obs.zarr")
    assert {"eeg", "rate"} <= set(obs.data_vars)
    assert (tmp_path / "patient_eeg.edf").stat().st_size > 0 and (tmp_path / "patient_rates.tsv").exists()
    time = obs["time"].values
    base, late = (time >= 500.0) & (time < item["onset"]), (time >= T - 2000.0) & (time < T)
    rise = {str(r): float(obs["rate"].sel(region=r)[late].mean() / obs["rate"].sel(region=r)[base].mean())
            for r in obs["region"].values}  # fmt: skip
    assert rise[region] > 1.8 and max(rise, key=rise.get) == region, rise  # the observations carry the drift


def test_a_control_matches_no_rule(tmp_path, capsys):
    argv = ["-o", str(tmp_path), "--seed", "1", "--control", "--tstop", str(TSTOP)]
    assert make_drift_patient.main(argv) == 0
    assert capsys.readouterr().out.strip() == "T = none (no seizure-like synchrony in lh-precentral)"
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["T_ms"] is None and truth["alerts"] == [] and truth["control"] and truth["drift"] is None
    assert {f for _, f in truth["factor_at"]} == {1.0}
    sync = open_summary(tmp_path / "truth.summary.zarr")["hypersynchrony"].load()
    assert float(sync.sel(window=slice(50.0, None)).median()) < 0.3  # asynchronous throughout
