"""The README's twin walk-through in miniature: the synthetic patient's recordings
(configs/twin/make_patient.py), `brainsim fit` of configs/twin/fit.yaml with few members and one update,
`brainsim fork FIT_DIR` of the twin's interventions (configs/twin/interventions/) and `brainsim compare`
of the futures, with intervals."""

import importlib.util
import json

import pandas as pd
import pytest
import yaml
from support import ROOT

import brainsim
from brainsim.cli import main

TWIN = ROOT / "configs" / "twin"
INTERVENTIONS = sorted((TWIN / "interventions").glob("*.yaml"))
MEMBERS, AT, TSTOP = 3, 200.0, 300.0

pytestmark = pytest.mark.timeout(900)

_spec = importlib.util.spec_from_file_location("make_patient", TWIN / "make_patient.py")
make_patient = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_patient)


def test_twin_interventions_are_the_three_kinds_aimed_at_the_twin_brain():
    config = brainsim.load_config(TWIN / "patient_brain.yaml")
    regions = set(config["brain"]["regions"])
    kinds = {}
    for file in INTERVENTIONS:
        item = yaml.safe_load(file.read_text())
        kinds[item["kind"]] = file.stem
        assert set(item["regions"]) <= regions, file
        assert file.read_text().startswith("# "), f"{file} is documented in its first lines"
        brainsim.load_config(TWIN / "patient_brain.yaml", interventions=[file])  # checked
    assert kinds == {"drug": "sodium_block", "stimulation": "stimulation", "lesion": "lesion"}


def test_the_twin_example_from_recordings_to_ranked_treatments(tmp_path, capsys):
    obs = make_patient.make_patient(tmp_path, tstop=1000.0, log=lambda line: None)
    fit = tmp_path / "fit"
    argv = ["fit", TWIN / "patient_brain.yaml", "--observations", obs, "--parameters", TWIN / "fit.yaml"]
    argv += ["--members", MEMBERS, "--iterations", 1, "-o", fit]
    assert main([str(a) for a in argv]) == 0
    record = json.loads((fit / "fit.json").read_text())
    assert record["status"] == "complete" and len(record["posterior"]) == 8
    for name in ("fit.zarr", "patient.yaml", "report.html"):
        assert (fit / name).exists(), name
    assert len(list((fit / "posterior").glob("member-*.yaml"))) == MEMBERS

    forks = tmp_path / "forks"
    argv = ["fork", fit, "--at", AT, "--tstop", TSTOP, "-o", forks, "--summarize", "-q"]
    for file in INTERVENTIONS:
        argv += ["--intervention", file]
    assert main([str(a) for a in argv]) == 0
    labels = ["none", *(f.stem for f in INTERVENTIONS)]
    for k in range(MEMBERS):
        member = fit / "posterior" / f"member-{k:03d}.yaml"
        for label in labels:
            store = brainsim.open_run(forks / f"member-{k:03d}" / f"{label}.zarr")
            assert store.status == "complete" and store.fork_time == AT and store.parent == str(member)
            assert (forks / f"member-{k:03d}" / f"{label}.summary.zarr").is_dir()

    capsys.readouterr()
    compared = tmp_path / "compare"
    argv = ["compare", forks, "--regions", "lh-precentral", "rh-precentral", "--goal", "lower"]
    assert main([str(a) for a in [*argv, "-o", compared]]) == 0
    text = capsys.readouterr().out
    assert f"over {MEMBERS} member(s): median [2.5 %, 97.5 %]" in text
    lines = text.splitlines()
    ranked = lines[lines.index(next(x for x in lines if x.startswith("rank"))) + 1 :][: len(labels) - 1]
    assert sorted(row.split()[1] for row in ranked) == sorted(labels[1:])
    for row in ranked:
        assert row.count("[") == 1 and row.rstrip().endswith("]"), row  # its score and interval
    assert ranked[-1].split()[1] != "lesion"  # it silences rh-precentral: never the worst at lowering it
    assert "P(row beats column)" in text
    intervals = pd.read_csv(compared / "intervals.csv")
    rates = intervals[(intervals.region == "all") & (intervals.feature == "mean_rate")].set_index("treatment")
    assert (rates.low <= rates["median"]).all() and (rates["median"] <= rates.high).all()
    assert (rates.members == MEMBERS).all()
    scores = pd.read_csv(compared / "scores.csv")
    lesion = scores[scores.treatment == "lesion"].score
    assert (lesion < 0).all()  # the right precentral cortex falls silent in every member
    beats = pd.read_csv(compared / "beats.csv", index_col=0)
    assert beats.loc["lesion", "none"] == 1.0 and beats.loc["none", "lesion"] == 0.0
    assert (compared / "effects.png").stat().st_size > 0
