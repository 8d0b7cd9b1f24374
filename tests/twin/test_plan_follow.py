"""`brainsim plan CONFIG --follow` (brainsim/twin/plan_follow.py): a follower's real-time factor follows
from `plan()` of its member config (CONFIG with the patient overlay) per window of advance and forecast,
the allocation that meets a factor is the fewest ranks that do, and bad arguments are one `brainsim:`
line."""

import json
import math
import shlex
from pathlib import Path

import pytest
from support import assert_one_error_line

import brainsim
from brainsim.cli import _parser, main
from brainsim.errors import ConfigError
from brainsim.hpc.plan import EXCHANGE_OVERHEAD, cost_ns, plan
from brainsim.model.recipe import Recipe
from brainsim.twin.plan_follow import describe, plan_follow

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "twin" / "patient_brain.yaml"  # 400 cells, dt 0.025 ms, region_bin 1 ms
PATIENT = ROOT / "configs" / "twin" / "true_patient.yaml"
W, H, J = 1000.0, 2000.0, 8


def _plan(ranks, **options):
    return plan_follow(CONFIG, ranks, window=options.pop("window", W), horizon=options.pop("horizon", H),
                       members=options.pop("members", J), **options)  # fmt: skip


@pytest.mark.parametrize("ranks_per_member", [1, 2, 3])
def test_figures_follow_the_member_plan(ranks_per_member):
    """Per window a member simulates W then H ms at plan()'s wall time per simulated second on R ranks
    (simulation.tstop does not enter); N // R members at once; the factor is the window's wall over W."""
    member = plan(brainsim.load_config(CONFIG, patient=PATIENT), ranks_per_member)
    per_s = member["wall_s_per_simulated_s"]
    for ranks in (ranks_per_member, 5, 8, 16, 30):
        if ranks < ranks_per_member:
            continue
        p = _plan(ranks, patient=PATIENT, ranks_per_member=ranks_per_member)
        assert p["member"]["cells"] == member["cells"] == 400
        assert p["member"]["memory_per_rank_gb"] == member["memory_per_rank_gb"]
        assert p["advance_s"] == pytest.approx(per_s * 1.0, rel=1e-12)
        assert p["forecast_s"] == pytest.approx(per_s * 2.0, rel=1e-12)
        assert p["warmup_s"] == pytest.approx(per_s * 0.1, rel=1e-12)  # the config's 100 ms, once
        slots = ranks // ranks_per_member
        assert (p["slots"], p["batches"]) == (slots, math.ceil(J / slots))
        assert p["window_wall_s"] == pytest.approx(math.ceil(J / slots) * 3 * per_s)
        assert p["factor"] == pytest.approx(p["window_wall_s"] / 1.0)
        assert p["core_hours_per_patient_hour"] == pytest.approx(J * ranks_per_member * 3 * per_s)
        assert p["allocation_core_hours_per_patient_hour"] == pytest.approx(ranks * max(1.0, p["factor"]))
    # windows of 500 ms and forecasts of 500: each window's wall over half a patient second
    p = _plan(8, window=500.0, horizon=500.0, patient=PATIENT, ranks_per_member=ranks_per_member)
    assert p["factor"] == pytest.approx(math.ceil(J / (8 // ranks_per_member)) * per_s * 1.0 / 0.5)


def test_the_patient_overlay_reaches_the_member(tmp_path):
    """A patient's cell loss changes the member's cells and so its wall time."""
    patient = tmp_path / "loss.yaml"
    patient.write_text("id: x\ncell_loss: {all: 0.25}\n")
    lost = plan(brainsim.load_config(CONFIG, patient=patient), 1)
    p = _plan(4, patient=patient)
    assert p["member"]["cells"] == lost["cells"] < 400
    assert p["advance_s"] == pytest.approx(lost["wall_s_per_simulated_s"], rel=1e-12)
    assert p["advance_s"] < _plan(4)["advance_s"]


def test_a_fit_folders_patient_brings_the_fits_set_items(tmp_path):
    """As brainsim follow does, a FIT_DIR/patient.yaml applies fit.json's --set items; the command then
    needs no --parameters."""
    fit_dir = tmp_path / "fit"
    (fit_dir / "fit.zarr").mkdir(parents=True)
    record = {"parameters_file": str(ROOT / "configs" / "twin" / "fit.yaml"), "set": ["simulation.dt=0.05"]}
    (fit_dir / "fit.json").write_text(json.dumps(record))
    patient = fit_dir / "patient.yaml"
    patient.write_text(PATIENT.read_text())
    p = _plan(4, patient=patient)
    coarse = plan(brainsim.load_config(CONFIG, ["simulation.dt=0.05"], patient=PATIENT), 1)
    assert p["advance_s"] == pytest.approx(coarse["wall_s_per_simulated_s"], rel=1e-12)
    assert p["set"] == ["simulation.dt=0.05"] and "with the fit's --set simulation.dt=0.05" in describe(p)[0]
    assert "--parameters" not in describe(p)[-1]
    assert "--parameters FOLLOW.yaml" in describe(_plan(4, patient=PATIENT))[-1]


@pytest.mark.parametrize("ranks_per_member", [1, 2])
def test_the_recommended_ranks_are_the_fewest_that_meet_the_factor(ranks_per_member):
    floor = _plan(ranks_per_member, ranks_per_member=ranks_per_member)["floor_factor"]
    for target in (floor, 1.5 * floor, 2 * floor, 3.3 * floor, 8 * floor, 100 * floor):
        p = _plan(ranks_per_member, ranks_per_member=ranks_per_member, target_factor=target)
        need = p["recommended_ranks"]
        assert need % ranks_per_member == 0 and ranks_per_member <= need <= J * ranks_per_member
        at = _plan(need, ranks_per_member=ranks_per_member)
        assert at["factor"] <= target * (1 + 1e-9) and p["recommended_factor"] == pytest.approx(at["factor"])
        if need > ranks_per_member:  # one member slot fewer misses it
            assert _plan(need - ranks_per_member, ranks_per_member=ranks_per_member)["factor"] > target
    assert _plan(ranks_per_member, ranks_per_member=ranks_per_member, target_factor=floor)[
        "recommended_ranks"
    ] == (J * ranks_per_member)  # every member at once


def test_below_the_floor_it_names_the_ranks_per_member_that_would():
    """Under one batch's factor no allocation can at R ranks per member; about R' ranks per member would
    (the fewest: R' - 1 misses it), found on the cost model."""
    floor = _plan(1)["floor_factor"]
    p = _plan(4, target_factor=floor / 3)
    assert p["recommended_ranks"] is None and p["floor_ranks"] == J
    need = p["ranks_per_member_needed"]
    assert need["meets"] and need["ranks"] > 1
    r = need["ranks"]
    assert _plan(J * r, ranks_per_member=r)["factor"] == pytest.approx(need["factor"])
    assert need["factor"] <= floor / 3 * (1 + 1e-9)
    assert _plan(J * (r - 1), ranks_per_member=r - 1)["factor"] > floor / 3
    text = "\n".join(describe(p))
    assert (
        "no allocation can at 1 rank per member" in text and f"about {need['ranks']} ranks per member" in text
    )
    assert "EXCHANGE_OVERHEAD" in text


def test_a_cell_is_never_divided():
    """Past one cell per rank the factor stops falling: the largest cell's compartments set the floor."""
    p = _plan(8, target_factor=1e-6)
    need = p["ranks_per_member_needed"]
    assert not need["meets"]
    config = brainsim.load_config(CONFIG)
    recipe = Recipe(config)
    largest = max(recipe.cell_type(q.name).geometry.n_compartments for q in recipe.populations if q.count)
    steps = 1000.0 / config["simulation"]["dt"]
    per_s = largest * steps * cost_ns(config["simulation"]["method"])[0] * 1e-9 * EXCHANGE_OVERHEAD
    assert need["factor"] == pytest.approx(per_s * (W + H) / W, rel=1e-9)
    assert "no number of ranks per member does" in "\n".join(describe(p))


def test_nodes_and_tasks():
    floor = _plan(1)["floor_factor"]
    p = _plan(1, cores_per_node=3, target_factor=2.5 * floor)  # 2 batches: 4 ranks or more
    assert (p["recommended_nodes"], p["recommended_ntasks_per_node"], p["recommended_ranks"]) == (2, 2, 4)
    p = _plan(1, cores_per_node=3, target_factor=floor)  # 1 batch: 8 ranks, as 3 nodes x 3
    assert (p["recommended_nodes"], p["recommended_ntasks_per_node"], p["recommended_ranks"]) == (3, 3, 9)
    assert p["recommended_factor"] == pytest.approx(floor)
    assert "mpiexec -n 8 " in describe(p)[-1]  # the follower uses J x R ranks at most


def test_the_follow_command_is_one_brainsim_follow_accepts():
    floor = _plan(1)["floor_factor"]
    p = _plan(1, patient=PATIENT, target_factor=2 * floor)
    line = describe(p)[-1]
    assert line.startswith("run it: mpiexec -n 4 brainsim follow ")
    words = shlex.split(line.removeprefix("run it: "))
    args = _parser().parse_args(words[4:])
    assert args.func.__name__ == "_follow" and args.scheduler == "mpi" and args.workers == 4
    assert (args.window, args.horizon, args.members) == (W, H, J)
    assert Path(args.config) == CONFIG and Path(args.patient) == PATIENT


def test_fewer_ranks_than_a_member_needs_are_refused():
    with pytest.raises(ConfigError) as e:
        _plan(3, ranks_per_member=4)
    assert e.value.path == "--ranks" and "--ranks-per-member (4)" in str(e.value)


def test_the_cli_prints_the_plan(capsys):
    args = ["plan", str(CONFIG), "--follow", "--window", "1000", "--horizon", "2000", "--members", "8"]
    assert main(args + ["--ranks", "2", "--patient", str(PATIENT)]) == 0
    out = capsys.readouterr().out
    p = _plan(2, patient=PATIENT)
    assert "on 2 ranks: 2 members at once, 4 batches per phase: " in out
    assert f"real-time factor {p['factor']:.3g} (wall s per patient s; at most 1 keeps up)" in out
    assert "not counted: each window's Simulation build per member and per phase" in out
    assert "to keep up (factor 1): no allocation can at 1 rank per member" in out
    assert "run it: mpiexec -n 2 brainsim follow " in out


def test_a_keeping_up_plan_says_so(capsys):
    """With a factor to meet above the floor (here 40), the fewest ranks that do."""
    floor = _plan(1)["floor_factor"]
    x = f"{math.ceil(2 * floor)}"
    args = ["plan", str(CONFIG), "--follow", "--window", "1000", "--horizon", "2000", "--members", "8"]
    assert main(args + ["--ranks", "1", "--target-factor", x]) == 0
    out = capsys.readouterr().out
    assert f"to factor {x}: 4 ranks (4 members at once)" in out and "mpiexec -n 4 " in out


FOLLOW = ["--follow", "--window", "1000", "--horizon", "2000", "--members", "8", "--ranks", "4"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--follow", "--window", "1000", "--horizon", "2000", "--ranks", "4"], "'--members'"),
        ([*FOLLOW, "--members", "1"], "'--members': got 1; allowed: a whole number >= 2"),
        ([*FOLLOW, "--window", "0"], "'--window': got 0.0"),
        ([*FOLLOW, "--window", "1000.01"], "a multiple of the step dt (0.025 ms)"),
        ([*FOLLOW, "--horizon", "-5"], "'--horizon'"),
        ([*FOLLOW, "--target-factor", "0"], "'--target-factor'"),
        ([*FOLLOW, "--ranks", "2", "--ranks-per-member", "4"], "'--ranks'"),
        ([*FOLLOW, "--ranks-per-member", "0"], "'--ranks-per-member'"),
        ([*FOLLOW, "--target-time", "00:10:00"], "'--target-time'"),
        ([*FOLLOW, "--set", "simulation.dt=0.05"], "'--set'"),
        ([*FOLLOW, "--iterations", "3"], "'--iterations'"),
        ([*FOLLOW, "--fit", str(ROOT / "configs" / "twin" / "fit.yaml")], "'--follow'"),
        ([*FOLLOW, "--patient", "nowhere.yaml"], "nowhere.yaml"),
        (["--ranks", "4", "--window", "1000"], "only with --follow"),
        (["--ranks", "4", "--target-factor", "2"], "only with --follow"),
    ],
)
def test_bad_arguments_are_one_line(extra, message, capsys):
    assert main(["plan", str(CONFIG), *extra]) == 2
    assert_one_error_line(capsys.readouterr(), message)
