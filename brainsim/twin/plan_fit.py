"""`brainsim plan CONFIG --fit FIT.yaml`: what a fit needs before it is started, from the cost model of one
member run (hpc/plan.py `plan`).

A fit evaluates K + 1 ensembles of J members one after another (fit.py): EKI at most (it stops when its
adaptive steps complete the data assimilation), CMA-ES exactly. Each member simulates the member config
fit.py builds (the fit's --set items, the features' windows' end as simulation.tstop, the patient overlay
of its parameters) on R ranks; planned at the prior's median of every parameter. On an allocation of N
ranks, N // R members run at once, so an ensemble takes ceil(J / (N // R)) batches of one member's wall
time. Not counted: each member's summary and features, the runner's start-up (a cluster, jobs waiting
in a queue) and the fit's own updates.
"""

import math
import shlex

from brainsim.api import load_config
from brainsim.config.load import read_yaml
from brainsim.errors import ConfigError
from brainsim.hpc.plan import plan

from .fit import fit_method, member_overrides
from .options import whole
from .parameters import load_fit, member_config


def plan_fit(
    config,
    parameters,
    ranks,
    *,
    members=None,
    iterations=None,
    ranks_per_member=1,
    cores_per_node=None,
    target_s=None,
    overrides=(),
):
    """The plan of `brainsim fit config --parameters parameters [--members] [--iterations] [--set
    overrides]` on an allocation of `ranks` ranks, each member on ranks_per_member of them; with target_s
    (wall seconds for the whole fit), the allocation that meets it (None where none can). cores_per_node:
    a site's, for nodes x tasks. Returns a dict (times in s)."""
    check_ranks(ranks, ranks_per_member)
    base = load_config(config, overrides)
    raw = read_yaml(config) or {}
    spec = load_fit(parameters, base, raw, list(overrides))
    method = fit_method(spec, members, iterations)
    j, k = method["members"], method["iterations"]
    ensembles = k + 1
    median = [p.median for p in spec.parameters]
    member = member_config(
        spec, raw, member_overrides(spec.features, overrides), base.source, median, "plan-median"
    )
    p = plan(member, ranks_per_member)
    wall = p["wall_s"]
    slots = ranks // ranks_per_member
    batches = math.ceil(j / slots)
    replicates = (spec.representation or {}).get("replicates", 0)  # run once, before the first ensemble
    runs = j * ensembles + replicates
    out = {
        "config": str(config),
        "parameters_file": str(parameters),
        "overrides": list(overrides),
        "method": method,
        "n_parameters": len(spec.parameters),
        "members": j,
        "iterations": k,
        "ensembles": ensembles,
        "early_stop": method["kind"] == "eki",  # EKI may stop before K iterations: the figures are at most
        "member": p,
        "tstop_ms": member["simulation"]["tstop"],
        "warmup_ms": member["simulation"]["warmup"],
        "windowed": all(f["window"] is not None for f in spec.features),  # tstop: the windows' end
        "member_wall_s": wall,
        "ranks_per_member": ranks_per_member,
        "member_runs": runs,
        "replicates": replicates,
        "core_hours": runs * wall * ranks_per_member / 3600.0,
        "ranks": ranks,
        "slots": slots,
        "batches": batches,
        "fit_wall_s": (ensembles * batches + math.ceil(replicates / slots)) * wall,
    }
    out["allocation_core_hours"] = ranks * out["fit_wall_s"] / 3600.0
    if target_s is not None:
        out["target_s"] = target_s
        out["floor_s"] = ensembles * wall  # every member at once: the ensembles still run one after another
        out["floor_ranks"] = j * ranks_per_member
        out.update(fewest_ranks(j, ranks_per_member, ensembles * wall, target_s, cores_per_node))
        need = out["recommended_ranks"]
        if need is not None:
            out["recommended_wall_s"] = ensembles * math.ceil(j / (need // ranks_per_member)) * wall
    return out


def check_ranks(ranks, ranks_per_member):
    """Refuse (ConfigError) --ranks or --ranks-per-member that are not whole numbers >= 1, or fewer ranks
    than one member runs on."""
    for key, value in (("--ranks", ranks), ("--ranks-per-member", ranks_per_member)):
        whole(key, value, 1, "a whole number of ranks")
    if ranks < ranks_per_member:
        raise ConfigError(
            "--ranks", ranks, f"at least --ranks-per-member ({ranks_per_member}): a member runs on that many"
        )


def fewest_ranks(j, ranks_per_member, batch_s, budget_s, cores_per_node=None):
    """The fewest ranks on which j members of ranks_per_member ranks each, run in batches of batch_s wall
    seconds (every batch as long as the slowest member), take at most budget_s: {recommended_ranks (None:
    not even one batch fits)} and, with cores_per_node, recommended_nodes and recommended_ntasks_per_node
    (nodes x tasks, at least that many ranks in all)."""
    # batches that fit (a budget of a whole number of batches, to rounding, meets it)
    fits = j if batch_s == 0 else min(j, math.floor(budget_s / batch_s * (1 + 1e-9)))
    if fits < 1:
        return {"recommended_ranks": None}
    need = math.ceil(j / fits) * ranks_per_member
    out = {}
    if cores_per_node:
        nodes = math.ceil(need / cores_per_node)
        out["recommended_nodes"] = nodes
        out["recommended_ntasks_per_node"] = math.ceil(need / nodes)
        need = nodes * out["recommended_ntasks_per_node"]
    out["recommended_ranks"] = need
    return out


def fit_command(p, ranks):
    """The `mpiexec -n ranks brainsim fit ...` line of plan p's fit on `ranks` ranks (the observations and
    FIT_DIR left to fill in)."""
    words = ["mpiexec", "-n", str(ranks), "brainsim", "fit", p["config"], "--observations", "OBS.zarr"]
    words += ["--parameters", p["parameters_file"], "--members", str(p["members"])]
    words += ["--iterations", str(p["iterations"])]
    for item in p["overrides"]:
        words += ["--set", item]
    words += ["--scheduler", "mpi", "--workers", str(ranks // p["ranks_per_member"]), "-o", "FIT_DIR"]
    return " ".join(shlex.quote(w) for w in words)


def describe(p, target_text=None):
    """Plan p as the lines `brainsim plan --fit` prints; target_text: the --target-time as given."""
    m, r, j = p["member"], p["ranks_per_member"], p["members"]
    most = "at most " if p["early_stop"] else ""
    low, high = m["memory_per_rank_gb"]
    until = "the features' windows' end" if p["windowed"] else "simulation.tstop"
    wall = wall_time(p["member_wall_s"])
    lines = [
        f"{p['config']} fitted with {p['parameters_file']}: {p['method']['kind']}, {p['n_parameters']} "
        f"parameters, {j} members, {most}{p['iterations']} iterations ({p['ensembles']} ensembles)",
        f"member run (at the priors' medians): {m['cells']:,} cells, {m['compartments']:,} compartments, "
        f"{m['equations']:,} equations, {m['synapses']:,} synapses; {p['tstop_ms']:g} ms simulated "
        f"({until}) after a {p['warmup_ms']:g} ms warm-up",
        f"  on {counted(r, 'rank')}: memory per rank {low:.2f}-{high:.2f} GB, wall time {wall} "
        f"({m['ns_per_compartment_step']:.3g} ns per compartment-step, {m['method']}; {m['cost_source']})",
        f"member runs: {most}{p['member_runs']:,} ({j} members x {p['ensembles']} ensembles"
        + (f" + {p['replicates']} replicates" if p["replicates"] else "")
        + ("; EKI stops early when its steps complete the data assimilation)" if p["early_stop"] else ")"),
        f"core-hours of the member runs: {most}{p['core_hours']:.3g} ({p['member_runs']:,} x {wall} x "
        f"{counted(r, 'rank')})",
        f"on {p['ranks']:,} ranks: {counted(min(p['slots'], j), 'member')} at once, "
        f"{counted(p['batches'], 'batch', 'batches')} per ensemble, the fit in "
        f"{most}{wall_time(p['fit_wall_s'])} ({p['ensembles']} x {p['batches']} x {wall}"
        + (f" + {math.ceil(p['replicates'] / p['slots'])} x {wall} of replicates" if p["replicates"] else "")
        + f"); the allocation's core-hours {most}{p['allocation_core_hours']:.3g}",
    ]
    if p["slots"] > j:
        group = f"{p['ranks'] // j:,}-{-(-p['ranks'] // j):,}" if p["ranks"] % j else f"{p['ranks'] // j:,}"
        lines.append(
            f"  room for {p['slots']:,} members: --scheduler mpi makes {j} groups of {group} ranks, one per "
            f"member; the figures count {r} per member (the fit takes that long or less)"
        )
    lines.append(
        "  not counted: each member's summary and features, the runner's start-up (a cluster, jobs waiting "
        "in a queue), the fit's own updates"
    )
    ranks = p["ranks"]
    if "target_s" in p:
        if p["recommended_ranks"] is None:
            lines.append(
                f"for {target_text}: no allocation can: the ensembles run one after another, so the fit "
                f"takes at least {p['ensembles']} x {wall} = {wall_time(p['floor_s'])} even with every "
                f"member at once ({p['floor_ranks']:,} ranks); members on more ranks (--ranks-per-member) "
                "are shorter"
            )
        else:
            ranks = p["recommended_ranks"]
            where = ""
            if "recommended_nodes" in p:
                where = (
                    f" = {counted(p['recommended_nodes'], 'node')} x {p['recommended_ntasks_per_node']} tasks"
                )
            lines.append(
                f"for {target_text}: {ranks:,} ranks{where} ({counted(min(ranks // r, j), 'member')} at "
                f"once), the fit in {most}{wall_time(p['recommended_wall_s'])}"
            )
    lines.append(f"run it: {fit_command(p, ranks)}")
    return lines


def counted(count, word, plural=None):
    """'1 rank', '4 ranks'."""
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


def wall_time(seconds):
    """A wall time: 1.13 s, 12.4 min, 3.2 h."""
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min" if seconds < 7200 else f"{seconds / 3600:.3g} h"
