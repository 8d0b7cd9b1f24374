"""One follower member over one stretch of brain time, a task of an ensemble runner (runners.make_runner):
continue its state (member_state files) from t0 to t1 ms with its parameters, summarise the run, and
return its features over the stretch (an advance) or its alert-rule matches and forecast fan (a
forecast). An advance also writes its state at t1 for the next window; a forecast keeps none.

A member's first advance starts from the config's start (its warm-up included); every later stretch is
a fork of the state at t0 (engine.run.ForkStart), declared `parameters_changed` when the member's
parameters are no longer those that produced the state: the same cells and network (the member's seed
draws them and never changes), other patient factors from t0 on. Cell states are continued as they are
(the filter corrects the parameters only); Poisson input times already drawn ahead of t0 (at most
events.PoissonSources.CHUNK intervals per stream) keep the rate they were drawn with.

One member runs on one rank (MPI_COMM_SELF): a member spread over ranks is not supported by the follower.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainsim.config.load import RunConfig
from brainsim.engine.run import ForkStart, run_simulation
from brainsim.engine.settings import SimulationSettings
from brainsim.errors import BrainsimError, NumericalError
from brainsim.model.recipe import Recipe
from brainsim.parallel.context import Context, init_petsc
from brainsim.postprocess.layout import open_summary
from brainsim.postprocess.summarize import summarize

from .features import feature_vector, variables_of
from .member_state import load_state, save_state, state_paths

ADVANCE, FORECAST = "advance", "forecast"


@dataclass(frozen=True)
class FollowTask:
    """Member `member` from t0 to t1 ms: kind (ADVANCE or FORECAST), config (its resolved config data,
    patient overlay included), source (the base config's file), seed (its simulation seed, the same in
    every window), window (the window index k: an advance of k ends window k, a forecast of k starts at
    its end), start (the window whose end state it continues, or None: from the start of the run),
    states (the folder of member states), work (the folder of its run and summary stores), features (the
    fit file's items with their window set to [t0, t1]; an advance's), n_features (their count, 0: not
    known yet), rules (resolved alert rules; a forecast's)."""

    kind: str
    member: int
    window: int
    t0: float
    t1: float
    config: dict
    source: str | None
    seed: int
    start: int | None
    states: str
    work: str
    features: tuple = ()
    n_features: int = 0
    rules: tuple = ()


@dataclass(frozen=True)
class FollowResult:
    """What a member task gives back: features (n_features,) float (NaN: the run blew up), failed (its
    simulation failed with a NumericalError: the message), matches (the rules' matches of a forecast,
    dicts as postprocess.alerts.evaluate), fan ({variable: (lead ms, region-maximum)} of a forecast)."""

    features: np.ndarray
    failed: str | None = None
    matches: tuple = ()
    fan: dict | None = None


def follow_member(task: FollowTask, context=None) -> FollowResult:
    """Run the member task (see FollowTask) on this process alone; a NumericalError of the simulation is
    returned as a failed result, not raised."""
    if context is None:
        from mpi4py import MPI

        context = Context(MPI.COMM_SELF)
    if context.size > 1:
        raise BrainsimError(
            f"a follower member runs on one rank; this one was given {context.size} (use groups of one rank)"
        )
    init_petsc(comm=context.comm)
    data = dict(task.config)
    data["simulation"] = {**data["simulation"], "seed": int(task.seed), "tstop": float(task.t1)}
    data["summary"] = {**data["summary"], "alerts": []}
    config = RunConfig(data, None if task.source is None else Path(task.source))
    work = Path(task.work)
    work.mkdir(parents=True, exist_ok=True)
    stem = f"member-{task.member:03d}.window-{task.window:05d}.{task.kind}"
    run_path = work / f"{stem}.zarr"  # a store's path is never reused by a later window
    fork = None
    if task.start is not None:
        state, state_hash = load_state(task.states, task.member, task.start, task.t0)
        npz, _ = state_paths(task.states, task.member, task.start)
        mine = config.state_hash(task.t0)
        fork = ForkStart(
            str(npz.resolve()), task.t0, state_hash, state=state, parameters_changed=mine != state_hash
        )
    kept = {}

    def keep(sim):
        if task.kind == ADVANCE:
            kept["state"] = sim.state()

    settings = SimulationSettings.from_config(config, checkpoint_every=None)
    try:
        run_simulation(Recipe(config), context, settings, run_path, overwrite=True, progress=False, fork=fork,
                       on_complete=keep)  # fmt: skip
    except NumericalError as e:
        return FollowResult(np.full(task.n_features, np.nan), failed=str(e))
    if task.kind == ADVANCE:
        save_state(kept["state"], task.states, task.member, task.window, config.state_hash(task.t1))
        summary = summarize(
            run_path, work / f"{stem}.summary.zarr", scheduler="sync",
            variables=variables_of(task.features), overwrite=True, log=_quiet,
        )  # fmt: skip
        values, _ = feature_vector(open_summary(summary.path), list(task.features))
        if task.n_features and values.size != task.n_features:
            raise BrainsimError(
                f"member {task.member}'s summary gave {values.size} feature values, expected "
                f"{task.n_features}"
            )
        return FollowResult(values)
    summary = summarize(
        run_path, work / f"{stem}.summary.zarr", scheduler="sync",
        variables=[], alerts=list(task.rules), overwrite=True, log=_quiet,
    )  # fmt: skip
    return FollowResult(
        np.zeros(0), matches=tuple(summary.alerts), fan=_fan(open_summary(summary.path), task)
    )


def _fan(ds, task):
    """{variable: (lead ms, region-maximum over the rule regions)} of each variable the rules watch."""
    fan = {}
    labels = [str(x) for x in ds["region"].values]
    for variable in dict.fromkeys(rule["variable"] for rule in task.rules):
        regions = set()
        for rule in task.rules:
            if rule["variable"] == variable:
                regions |= set(labels if rule["regions"] == "all" else rule["regions"])
        var = ds[variable]
        columns = [labels.index(label) for label in labels if label in regions]
        values = np.asarray(var.values, dtype=np.float64)[:, columns]
        peak = np.max(np.where(np.isnan(values), -np.inf, values), axis=1, initial=-np.inf)
        peak[peak == -np.inf] = math.nan
        times = np.asarray(ds[var.dims[0]].values, dtype=np.float64)
        fan[variable] = (times - task.t0, peak)
    return fan


def _quiet(*args, **kwargs):
    """Member summaries print nothing: the follower reports per window."""
