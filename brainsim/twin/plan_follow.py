"""`brainsim plan CONFIG --follow`: whether `brainsim follow` keeps up with the patient, from the cost model
of one member (hpc/plan.py `plan`).

Per window of W ms of the patient, every one of the J members simulates W ms (the advance) and then H ms
(the forecast), two batches of J members one after the other (follow.py); on N ranks, N // R members run
at once, each on R ranks. A member is CONFIG with the patient overlay (and the fit's --set items when the
overlay is a fit's patient.yaml), planned on R ranks: its wall time per simulated second times W and H
(simulation.tstop does not matter: the plan is per window; the first window adds the warm-up once). The
wall time per window is ceil(J / (N // R)) x (wall_W + wall_H), and the real-time factor that over W / 1000
(wall seconds per patient second; at most 1 keeps up). Not counted: each window's Simulation build per
member and per phase, the members' summaries, the filter's update, the wait for the observations.
"""

import math
import shlex
from pathlib import Path

from brainsim.api import load_config
from brainsim.errors import ConfigError
from brainsim.hpc.plan import EXCHANGE_OVERHEAD, plan
from brainsim.model.recipe import Recipe

from .fit_store import read_record
from .options import whole, window_ms
from .plan_fit import check_ranks, counted, fewest_ranks, wall_time


def plan_follow(
    config,
    ranks,
    *,
    window,
    horizon,
    members,
    patient=None,
    ranks_per_member=1,
    cores_per_node=None,
    target_factor=1.0,
):
    """The plan of `brainsim follow config --patient patient --window W --horizon H --members J` on an
    allocation of `ranks` ranks, each member on ranks_per_member of them, and the fewest ranks whose
    real-time factor is at most target_factor (or, where none is at that many ranks per member, about
    how many ranks per member would do). cores_per_node: a site's, for nodes x tasks. Returns a dict
    (times in s, window and horizon in ms)."""
    check_ranks(ranks, ranks_per_member)
    j = whole("--members", members, 2)
    try:
        target = float(target_factor)
    except (TypeError, ValueError):
        target = math.nan
    if not (math.isfinite(target) and target > 0):
        raise ConfigError("--target-factor", target_factor, "a real-time factor > 0 (wall s per patient s)")
    fitted, fit_dir = [], None
    if patient is not None:
        folder = Path(patient).parent
        if (folder / "fit.json").is_file() and (folder / "fit.zarr").is_dir():  # as brainsim follow reads it
            fit_dir = folder
            fitted = list(read_record(folder / "fit.json").get("set") or [])
    member = load_config(config, fitted, patient=patient)
    w = window_ms("--window", window, member)
    h = window_ms("--horizon", horizon, member)
    recipe = Recipe(member)  # load_config checked it
    p = plan(member, ranks_per_member, recipe=recipe)
    per_s = p["wall_s_per_simulated_s"]
    phase = per_s * (w + h) / 1000.0  # one member's advance and forecast
    slots = ranks // ranks_per_member
    batches = math.ceil(j / slots)
    window_s = batches * phase
    patient_s = w / 1000.0  # the patient's seconds per window
    out = {
        "config": str(config),
        "patient": None if patient is None else str(patient),
        "fit_dir": None if fit_dir is None else str(fit_dir),
        "set": fitted,
        "window_ms": w,
        "horizon_ms": h,
        "members": j,
        "member": p,
        "warmup_ms": member["simulation"]["warmup"],
        "ranks_per_member": ranks_per_member,
        "advance_s": per_s * w / 1000.0,
        "forecast_s": per_s * h / 1000.0,
        "warmup_s": per_s * member["simulation"]["warmup"] / 1000.0,  # once, in the first window
        "ranks": ranks,
        "slots": slots,
        "batches": batches,
        "window_wall_s": window_s,
        "factor": window_s / patient_s,
        # core-hours per patient hour = core-seconds per patient second
        "core_hours_per_patient_hour": j * ranks_per_member * phase / patient_s,
        "allocation_core_hours_per_patient_hour": ranks
        * max(1.0, window_s / patient_s),  # held while waiting
        "target_factor": target,
        "floor_factor": phase / patient_s,  # every member at once
        "floor_ranks": j * ranks_per_member,
    }
    out.update(fewest_ranks(j, ranks_per_member, phase, target * patient_s, cores_per_node))
    need = out["recommended_ranks"]
    if need is not None:
        out["recommended_factor"] = math.ceil(j / (need // ranks_per_member)) * phase / patient_s
    else:
        out["ranks_per_member_needed"] = _ranks_per_member_needed(
            member, recipe, ranks_per_member, w, h, target
        )
    return out


def _ranks_per_member_needed(member, recipe, ranks_per_member, w, h, target):
    """About the fewest ranks per member (more than ranks_per_member) with which one batch of every member
    at once meets the target factor: by doubling, then bisection (the cost model's wall time falls as a
    member's compartments are divided over more ranks, down to its largest cell on a rank of its own).
    Returns {ranks, factor, meets}: where none meets the target, the ranks at which the factor stopped
    falling (a cell is never divided) and that factor, meets False."""

    def factor(r):
        return plan(member, r, recipe=recipe)["wall_s_per_simulated_s"] * (w + h) / w

    most = max(1, recipe.num_cells)  # a rank needs a cell at least
    low, low_factor = ranks_per_member, factor(ranks_per_member)
    high = None
    while low < most:
        r = min(most, 2 * low)
        f = factor(r)
        if f <= target * (1 + 1e-9):
            high = r
            break
        if f >= low_factor * (1 - 1e-12):  # no faster with twice the ranks: one cell sets the pace
            break
        low, low_factor = r, f
    if high is None:
        return {"ranks": low, "factor": low_factor, "meets": False}
    while high - low > 1:
        mid = (low + high) // 2
        if factor(mid) <= target * (1 + 1e-9):
            high = mid
        else:
            low = mid
    return {"ranks": high, "factor": factor(high), "meets": True}


def follow_command(p, ranks):
    """The `mpiexec -n ... brainsim follow ...` line of plan p on `ranks` ranks (at most members x ranks per
    member: more would give a member more ranks than the plan counts); the observations, the alert rules
    and the output left to fill in."""
    used = min(ranks, p["members"] * p["ranks_per_member"])
    words = ["mpiexec", "-n", str(used), "brainsim", "follow", p["config"]]
    words += ["--patient", p["patient"] or "PATIENT.yaml"]
    if p["fit_dir"] is None:
        words += ["--parameters", "FOLLOW.yaml"]  # brainsim follow needs the fit file without a fit's folder
    words += ["--observations", "LIVE.zarr", "--window", f"{p['window_ms']:g}", "--horizon"]
    words += [f"{p['horizon_ms']:g}", "--members", str(p["members"]), "--alerts", "RULES.yaml"]
    words += ["--scheduler", "mpi", "--workers", str(used // p["ranks_per_member"]), "-o", "TWIN.zarr"]
    return " ".join(shlex.quote(w) for w in words)


def describe(p):
    """Plan p as the lines `brainsim plan --follow` prints."""
    m, r, j = p["member"], p["ranks_per_member"], p["members"]
    w, h = p["window_ms"], p["horizon_ms"]
    low, high = m["memory_per_rank_gb"]
    phase = p["advance_s"] + p["forecast_s"]
    patient = f" under {p['patient']}" if p["patient"] else ""
    if p["set"]:
        patient += f" (with the fit's --set {' '.join(p['set'])})"
    lines = [
        f"{p['config']} followed{patient}: {j} members, windows of {w:g} ms, forecasts of {h:g} ms",
        f"member: {m['cells']:,} cells, {m['compartments']:,} compartments, {m['equations']:,} equations, "
        f"{m['synapses']:,} synapses",
        f"  on {counted(r, 'rank')}: memory per rank {low:.2f}-{high:.2f} GB, "
        f"{m['wall_s_per_simulated_s']:.3g} s per simulated second ({m['ns_per_compartment_step']:.3g} ns "
        f"per compartment-step, {m['method']}; {m['cost_source']})",
        f"per window and member: advance {w:g} ms {wall_time(p['advance_s'])} + forecast {h:g} ms "
        f"{wall_time(p['forecast_s'])} = {wall_time(phase)}; the first window adds the "
        f"{p['warmup_ms']:g} ms warm-up ({wall_time(p['warmup_s'])})",
        f"on {counted(p['ranks'], 'rank')}: {counted(min(p['slots'], j), 'member')} at once, "
        f"{counted(p['batches'], 'batch', 'batches')} per phase: {wall_time(p['window_wall_s'])} per "
        f"{w:g} ms window, real-time factor {p['factor']:.3g} (wall s per patient s; at most 1 keeps up): "
        + ("keeps up" if p["factor"] <= 1 + 1e-9 else f"{p['factor']:.3g} times slower than the patient"),
        f"core-hours per patient hour: the member runs {p['core_hours_per_patient_hour']:.3g} ({j} x "
        f"{wall_time(phase)} x {counted(r, 'rank')} per {w / 1000:g} s), the allocation "
        f"{p['allocation_core_hours_per_patient_hour']:.3g} ({counted(p['ranks'], 'rank')} x "
        + (
            f"{p['factor']:.3g} h per patient hour)"
            if p["factor"] > 1
            else "the patient hour: it waits for the observations between windows)"
        ),
    ]
    if p["slots"] > j:
        lines.append(
            f"  room for {p['slots']:,} members: the follower uses {j * r:,} ranks ({j} members x {r}); "
            "more ranks per member shorten the windows"
        )
    lines.append(
        "  not counted: each window's Simulation build per member and per phase, the members' summaries, "
        "the filter's update, the wait for the observations"
    )
    target = f"factor {p['target_factor']:g}" if p["target_factor"] != 1 else "keep up (factor 1)"
    ranks = p["ranks"]
    if p["recommended_ranks"] is None:
        lines.append(
            f"to {target}: no allocation can at {counted(r, 'rank')} per member: one batch of every member "
            f"at once ({p['floor_ranks']:,} ranks) still takes {wall_time(phase)} per {w:g} ms window "
            f"(factor {p['floor_factor']:.3g})"
        )
        need = p["ranks_per_member_needed"]
        if need["meets"]:
            lines.append(
                f"  about {need['ranks']:,} ranks per member would (factor {need['factor']:.3g} on "
                f"{j * need['ranks']:,} ranks, --ranks-per-member {need['ranks']}), once brainsim follow "
                "runs a member on several ranks"
            )
        else:
            lines.append(
                f"  no number of ranks per member does: from about {need['ranks']:,} ranks per member the "
                f"factor stays {need['factor']:.3g}, the largest cell's compartments on one rank (a cell is "
                "never divided)"
            )
        lines.append(
            "  the cost model divides a member's compartments over its ranks: spike exchange and load "
            f"imbalance are in its EXCHANGE_OVERHEAD ({EXCHANGE_OVERHEAD:g}) only, so more ranks per member "
            "gain less than it says"
        )
    else:
        ranks = p["recommended_ranks"]
        where = ""
        if "recommended_nodes" in p:
            where = f" = {counted(p['recommended_nodes'], 'node')} x {p['recommended_ntasks_per_node']} tasks"
        lines.append(
            f"to {target}: {ranks:,} ranks{where} ({counted(min(ranks // r, j), 'member')} at once), "
            f"factor {p['recommended_factor']:.3g}"
        )
    if r > 1:
        lines.append(
            f"  brainsim follow runs each member on one rank for now: the line below is refused at "
            f"--ranks-per-member {r} until a member spans ranks"
        )
    lines.append(f"run it: {follow_command(p, ranks)}")
    return lines
