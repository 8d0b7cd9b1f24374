"""`brainsim plan CONFIG --fit FIT.yaml` (brainsim/twin/plan_fit.py): the figures of a fit follow from
`plan()` of the member config fit.py runs, the allocation's batches and the target-time inverse, and bad
arguments are one `brainsim:` line."""

import math
import shlex
from pathlib import Path

import pytest
import yaml
from support import assert_one_error_line

import brainsim
from brainsim.cli import _parser, main
from brainsim.errors import ConfigError
from brainsim.hpc.plan import plan
from brainsim.twin.plan_fit import describe, plan_fit

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "twin" / "patient_brain.yaml"
FIT = ROOT / "configs" / "twin" / "fit.yaml"  # eki, 40 members, 3 iterations, windows [0, 400] ms


def _fit_file(tmp_path, *, method=None, window=(0, 400), family=None):
    family = family or {
        "name": "drive",
        "key": "patient.background.{region}.pyr",
        "prior": {"kind": "lognormal", "median": 1.0, "sigma": 0.2},
        "bounds": [0.5, 2.0],
    }
    feature = {"variable": "mean_rate", "transform": "log", "noise": 0.05}
    if window is not None:
        feature["window"] = list(window)
    raw = {"parameters": [family], "features": [feature], "method": method or {"members": 6, "iterations": 2}}
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("ranks_per_member", [1, 2, 3])
def test_figures_follow_the_member_plan(ranks_per_member):
    """A member simulates to the windows' end (400 ms of the config's 500) after the warm-up; its wall
    time and memory are plan()'s on R ranks; runs, core-hours, batches and the fit's wall follow."""
    member = plan(brainsim.load_config(CONFIG, ["simulation.tstop=400.0"]), ranks_per_member)
    whole = plan(brainsim.load_config(CONFIG), ranks_per_member)
    assert member["wall_s"] < whole["wall_s"]  # the window end shortens the run
    for ranks in (ranks_per_member, 7, 8, 40, 64):
        if ranks < ranks_per_member:
            continue
        p = plan_fit(CONFIG, FIT, ranks, ranks_per_member=ranks_per_member)
        assert p["tstop_ms"] == 400.0 and p["warmup_ms"] == 100.0 and p["windowed"]
        assert p["member"]["cells"] == member["cells"] == 400
        assert p["member"]["memory_per_rank_gb"] == member["memory_per_rank_gb"]
        assert p["member_wall_s"] == pytest.approx(member["wall_s"], rel=1e-12)
        assert (p["members"], p["iterations"], p["ensembles"]) == (40, 3, 4)
        assert p["member_runs"] == 160 and p["early_stop"]
        assert p["core_hours"] == pytest.approx(160 * member["wall_s"] * ranks_per_member / 3600)
        slots = ranks // ranks_per_member
        assert p["batches"] == math.ceil(40 / slots)
        assert p["fit_wall_s"] == pytest.approx(4 * math.ceil(40 / slots) * member["wall_s"])
        assert p["allocation_core_hours"] == pytest.approx(ranks * p["fit_wall_s"] / 3600)


def test_overrides_and_fit_options(tmp_path):
    """--members and --iterations replace the fit file's; --set reaches the member; without windows a
    member runs the config's tstop; cmaes evaluates exactly K + 1 generations."""
    path = _fit_file(tmp_path, window=None, method={"kind": "cmaes", "members": 6, "iterations": 2})
    p = plan_fit(CONFIG, path, 4, members=10, iterations=5, overrides=["simulation.dt=0.05"])
    assert (p["members"], p["iterations"], p["member_runs"], p["batches"]) == (10, 5, 60, 3)
    assert not p["early_stop"] and not p["windowed"] and p["tstop_ms"] == 500.0
    expected = plan(brainsim.load_config(CONFIG, ["simulation.dt=0.05"]), 1)["wall_s"]
    assert p["member_wall_s"] == pytest.approx(expected, rel=1e-12)
    text = "\n".join(describe(p))
    assert "at most" not in text and "member runs: 60 (10 members x 6 ensembles)" in text


def test_the_member_is_planned_at_the_priors_medians(tmp_path):
    """A fitted cell loss changes the member's cell count: planned at the prior's median (0.25 here)."""
    family = {"name": "loss", "key": "patient.cell_loss.all", "prior": {"kind": "uniform", "low": 0.0,
              "high": 0.5}, "as": "value"}  # fmt: skip
    p = plan_fit(CONFIG, _fit_file(tmp_path, family=family), 2)
    patient = tmp_path / "loss.yaml"
    patient.write_text("id: x\ncell_loss: {all: 0.25}\n")
    lost = plan(brainsim.load_config(CONFIG, ["simulation.tstop=400.0"], patient=patient), 1)
    assert p["member"]["cells"] == lost["cells"] < 400
    assert p["member_wall_s"] == pytest.approx(lost["wall_s"], rel=1e-12)


@pytest.mark.parametrize("ranks_per_member", [1, 4])
def test_target_time_gives_the_fewest_ranks_that_meet_it(ranks_per_member):
    base = plan_fit(CONFIG, FIT, ranks_per_member, ranks_per_member=ranks_per_member)
    wall, floor = base["member_wall_s"], 4 * base["member_wall_s"]
    for target in (floor, 1.5 * floor, 3 * floor, 11 * floor, 40 * floor, 1000 * floor):
        p = plan_fit(CONFIG, FIT, ranks_per_member, ranks_per_member=ranks_per_member, target_s=target)
        need = p["recommended_ranks"]
        assert need % ranks_per_member == 0 and need <= 40 * ranks_per_member
        at = plan_fit(CONFIG, FIT, need, ranks_per_member=ranks_per_member)
        assert at["fit_wall_s"] <= target * (1 + 1e-9)
        assert p["recommended_wall_s"] == pytest.approx(at["fit_wall_s"])
        if need > ranks_per_member:  # one member slot fewer misses the target
            fewer = plan_fit(CONFIG, FIT, need - ranks_per_member, ranks_per_member=ranks_per_member)
            assert fewer["fit_wall_s"] > target
    p = plan_fit(CONFIG, FIT, 8, ranks_per_member=ranks_per_member, target_s=floor)
    assert p["recommended_ranks"] == 40 * ranks_per_member  # every member at once
    short = plan_fit(CONFIG, FIT, 8, ranks_per_member=ranks_per_member, target_s=0.9 * floor)
    assert short["recommended_ranks"] is None
    assert short["floor_s"] == pytest.approx(4 * wall) and short["floor_ranks"] == 40 * ranks_per_member
    text = "\n".join(describe(short, "00:00:01"))
    assert "for 00:00:01: no allocation can" in text and f"({40 * ranks_per_member} ranks)" in text


def test_target_time_on_nodes():
    floor = 4 * plan_fit(CONFIG, FIT, 1)["member_wall_s"]
    p = plan_fit(CONFIG, FIT, 1, cores_per_node=16, target_s=2.5 * floor)  # 2 batches: 20 ranks or more
    assert (p["recommended_nodes"], p["recommended_ntasks_per_node"], p["recommended_ranks"]) == (2, 10, 20)
    p = plan_fit(CONFIG, FIT, 1, cores_per_node=16, target_s=1.2 * floor)  # 1 batch: 40 ranks
    assert (p["recommended_nodes"], p["recommended_ntasks_per_node"], p["recommended_ranks"]) == (3, 14, 42)
    assert p["recommended_wall_s"] == pytest.approx(floor)


def test_the_fit_command_is_one_brainsim_fit_accepts():
    p = plan_fit(CONFIG, FIT, 13, ranks_per_member=3, overrides=["simulation.dt=0.025"])
    line = describe(p)[-1]
    assert line.startswith("run it: mpiexec -n 13 brainsim fit ")
    words = shlex.split(line.removeprefix("run it: "))
    assert words[3] == "brainsim"
    args = _parser().parse_args(words[4:])
    assert args.func.__name__ == "_fit" and args.scheduler == "mpi" and args.workers == 13 // 3
    assert (args.members, args.iterations, args.set) == (40, 3, ["simulation.dt=0.025"])
    assert Path(args.parameters) == FIT and Path(args.config) == CONFIG


def test_fewer_ranks_than_a_member_needs_are_refused():
    with pytest.raises(ConfigError) as e:
        plan_fit(CONFIG, FIT, 3, ranks_per_member=4)
    assert e.value.path == "--ranks" and "--ranks-per-member (4)" in str(e.value)


def test_fit_file_errors_name_the_file_and_key(tmp_path):
    family = {"name": "drive", "key": "patient.background.{region}.pyr", "regions": ["lh-nowhere"],
              "prior": {"kind": "lognormal", "median": 1.0, "sigma": 0.2}}  # fmt: skip
    path = _fit_file(tmp_path, family=family)
    with pytest.raises(ConfigError) as e:
        plan_fit(CONFIG, path, 4)
    assert (
        str(path) in str(e.value) and "parameters[0].regions" in str(e.value) and "lh-nowhere" in str(e.value)
    )
    with pytest.raises(ConfigError) as e:
        plan_fit(CONFIG, FIT, 4, members=1)
    assert e.value.path == "--members" and "a whole number >= 2" in str(e.value)


def test_the_cli_prints_the_plan(capsys):
    args = ["plan", str(CONFIG), "--fit", str(FIT), "--ranks", "16", "--target-time", "00:10:00"]
    assert main(args + ["--profile", "example_hpc"]) == 0
    out = capsys.readouterr().out
    p = plan_fit(CONFIG, FIT, 16, target_s=600, cores_per_node=128)
    assert "member runs: at most 160 (40 members x 4 ensembles" in out
    assert "on 16 ranks: 16 members at once, 3 batches per ensemble" in out
    assert f"core-hours of the member runs: at most {p['core_hours']:.3g} " in out
    assert f"for 00:10:00: {p['recommended_ranks']} ranks = 1 node x {p['recommended_ranks']} tasks" in out
    assert "400 ms simulated (the features' windows' end) after a 100 ms warm-up" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--fit", str(FIT), "--ranks", "4", "--members", "1"],
            "'--members': got 1; allowed: a whole number >= 2",
        ),
        (["--fit", str(FIT), "--ranks", "4", "--iterations", "0"], "'--iterations'"),
        (["--fit", str(FIT), "--ranks", "2", "--ranks-per-member", "4"], "'--ranks'"),
        (["--fit", str(FIT), "--ranks", "4", "--ranks-per-member", "0"], "'--ranks-per-member'"),
        (["--fit", str(FIT), "--ranks", "4", "--patient", str(CONFIG)], "'--patient'"),
        (["--fit", "nowhere.yaml", "--ranks", "4"], "nowhere.yaml"),
        (["--ranks", "4", "--members", "3"], "only with --fit"),
    ],
)
def test_bad_arguments_are_one_line(extra, message, capsys):
    assert main(["plan", str(CONFIG), *extra]) == 2
    assert_one_error_line(capsys.readouterr(), message)
