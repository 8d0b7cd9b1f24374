"""Treatments forked from one state: N futures continued from the state of a run at time T, without
simulating [0, T] again for each of them.

    fork(SOURCE, at=T, interventions=[a.yaml, b.yaml], out=DIR)   ->  DIR/none.zarr, DIR/a.zarr, DIR/b.zarr
    fork_posterior(FIT_DIR, at=T, ...)                            ->  DIR/member-NNN/<label>.zarr

SOURCE is a run store (its checkpoints, in output.checkpoint or beside it, are used when one is at T or
before it), a checkpoint folder (its config given, or read from the run store beside it) or a config file.
Without a checkpoint at T the prefix [t0, T] is simulated once, in memory, from the latest checkpoint
before T (t0) or from the start. Every future is the source's config with one intervention file laid over
it (label: the file's stem), or none of them (label `none`: the untreated continuation), with the same
seeds; each is run through `run_simulation`, as `brainsim run` runs, into a store that starts at T and
records its parent, fork_time and state_hash. The interventions of a future must start at or after T
(RunConfig.state_hash: what acts before T shaped the state and is the same in every future). The forks
of a posterior's members are tasks of an ensemble runner (runners.make_runner), one member each
(fork_member: run to T once, then its futures), so any scheduler of a fit spreads them.

A future continued without intervention is the uninterrupted run, bit for bit, for one-step methods
(`staggered`, PETSc's one-step TS types); multistep PETSc methods restart their history at T, as they do
at a checkpoint.
"""

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from ..api import load_config
from ..config.load import (
    START_KEYS,
    intervention_start,
    read_yaml,
    resolve_config,
    with_interventions,
    without_nulls,
)
from ..engine.run import ForkStart, StopSignals, check_fork, check_output, default_checkpoint, run_simulation
from ..engine.settings import SimulationSettings
from ..engine.simulation import Simulation, default_progress_stream
from ..errors import BrainsimError, ConfigError, StoreError
from ..io.checkpoint import TIME_TOL, open_checkpoint
from ..io.run_store import RunStore
from ..model.checks import check_model
from ..model.recipe import Recipe
from ..parallel.context import Context, agree
from ..postprocess.summarize import default_output, summarize
from .fit_store import read_record
from .runners import MemberFailure, make_runner

UNTREATED = "none"
"""The label of the future continued without intervention."""


@dataclass(frozen=True)
class _Options:
    """How the futures are run: tstop (ms or None: the source's), overwrite, context, progress, log."""

    tstop: float | None
    overwrite: bool
    context: Context
    progress: bool
    log: object


@dataclass(frozen=True)
class Future:
    """One future of a fork: its label, its config and where its store goes."""

    label: str
    config: object  # RunConfig
    path: Path


def fork(
    source,
    at,
    interventions=(),
    out="forks",
    *,
    tstop=None,
    config=None,
    overrides=(),
    overwrite=False,
    context=None,
    progress=True,
    log=print,
):
    """Fork the futures of `interventions` (files) and the untreated one from the state of `source` at
    `at` (ms) into the folder `out`; returns the Futures, every store written and complete.

    source: a run store, a checkpoint folder or a config file; config: the config of a checkpoint folder
    (default: that of the run store beside it, NAME.zarr for NAME.checkpoint); overrides: --set items
    laid over the source's config; tstop: the futures' stop time (ms; default the source's); context:
    the ranks (default every rank of MPI_COMM_WORLD); log: progress lines (rank 0)."""
    context = Context.world() if context is None else context
    source = Path(source)
    base, checkpoints, required = _source(source, config, overrides)
    options = _Options(tstop, overwrite, context, progress, log)
    return _fork(base, source.resolve(), checkpoints, at, interventions, Path(out), options, required)


def fork_posterior(
    fit_dir,
    at,
    interventions=(),
    out="forks",
    *,
    tstop=None,
    overrides=(),
    overwrite=False,
    summarize=False,
    scheduler="local",
    workers=None,
    profile=None,
    member_time="01:00:00",
    context=None,
    progress=True,
    log=print,
):
    """Fork every member of a fitted posterior: FIT_DIR/posterior/member-NNN.yaml (patient overlays of the
    config named by "config" in FIT_DIR/fit.json, with the fit's --set items, "set", then `overrides`) is
    run once to `at` and its futures are written to OUT/member-NNN/<label>.zarr (and summarised beside
    them, OUT/member-NNN/<label>.summary.zarr, with `summarize`). Each member's fork is one task of the
    ensemble runner of `scheduler` (runners.make_runner: local, dask, tcp://host:port, slurm, slurm-array,
    mpi; workers, profile as there; a slurm-array's task files go to OUT/ensemble, each task limited to
    member_time HH:MM:SS); every scheduler writes the same stores. context: the ranks of a local
    fork (default every rank of MPI_COMM_WORLD). Returns {member name: [(label, store path), ...]}, on the
    driving process (None on the ranks that serve an 'mpi' runner)."""
    from mpi4py import MPI

    context = Context.world() if context is None else context
    fit_dir = Path(fit_dir)
    config_file, fitted, members = posterior_members(fit_dir)
    overrides = [*fitted, *overrides]
    files = tuple(str(Path(f).resolve()) for f in interventions)
    quiet = log is None or not context.is_root
    where = {"profile": profile, "work": Path(out) / "ensemble", "time": member_time}
    with make_runner(scheduler, workers, **where, log=_quiet if quiet else log) as runner:
        if not runner.driver:  # --scheduler mpi: this rank forks members for rank 0
            runner.serve()
            return None
        local = runner.scheduler == "local"
        checks = context if local else Context(MPI.COMM_SELF)  # the other ranks of 'mpi' wait in serve()
        tasks = []
        for k, member in enumerate(members):
            task = MemberFork(
                str(config_file), tuple(overrides), str(member.resolve()), float(at), files,
                str((Path(out) / member.stem).resolve()), tstop, overwrite, summarize,
                progress and local, log if local else None, (k + 1, len(members)),
            )  # fmt: skip
            _check_member(task, checks)
            tasks.append(task)
        _log(context, log, f"fork: {len(tasks)} posterior member(s) on {runner.description}")
        try:
            done = runner.map(fork_member, tasks)
        except MemberFailure as e:
            if local and isinstance(e.__cause__, BrainsimError):
                raise e.__cause__ from None  # in this process: the member's own error and exit status
            raise
    return {m.stem: [(label, Path(path)) for label, path in stores] for m, stores in zip(members, done)}


@dataclass(frozen=True)
class MemberFork:
    """One posterior member's fork, a task of an ensemble runner: config (the fitted config's file),
    overrides (--set items), member (its patient overlay file), at (the fork time, ms), interventions
    (files), out (its folder of futures), tstop (ms or None), overwrite, summarize, progress, log (where
    its progress lines go, or None) and place ((k, n): member k of n, for those lines)."""

    config: str
    overrides: tuple
    member: str
    at: float
    interventions: tuple
    out: str
    tstop: float | None
    overwrite: bool
    summarize: bool
    progress: bool
    log: object
    place: tuple


def fork_member(task: MemberFork, context=None):
    """Run one posterior member to the fork time once and its futures from there (summarised with
    task.summarize); returns [(label, store path), ...]. context: its ranks (default every rank of
    MPI_COMM_WORLD: in a worker process, that process alone)."""
    context = Context.world() if context is None else context
    k, n = task.place
    _log(context, task.log, f"fork: posterior member {Path(task.member).stem} ({k} of {n})")
    options = _Options(task.tstop, task.overwrite, context, task.progress, task.log)
    base = load_config(task.config, list(task.overrides), patient=task.member)
    futures = _fork(base, Path(task.member), [], task.at, task.interventions, Path(task.out), options)
    if task.summarize and context.is_root:
        for future in futures:
            summarize(future.path, scheduler="sync", overwrite=task.overwrite, log=task.log or _quiet)
    return [(future.label, str(future.path)) for future in futures]


def _check_member(task, context):
    """What would stop a member's fork, found before any member runs: its config with each intervention
    file, the fork time, the treatments' start times, and the stores to write (absent, or --overwrite)."""
    base = load_config(task.config, list(task.overrides), patient=task.member)
    _, futures = _futures(base, task.at, task.interventions, Path(task.out), task.tstop)
    _check_outputs([future.path for future in futures], task.overwrite, context, task.summarize)


def posterior_members(fit_dir):
    """(base config file, the fit's --set items, sorted member overlay files) of a fit's folder;
    StoreError naming the file when fit.json or the posterior is missing or malformed."""
    fit_dir = Path(fit_dir)
    record = read_record(fit_dir / "fit.json", ("config",))
    fitted = record.get("set", [])
    config = Path(record["config"])
    if not config.is_absolute() and (fit_dir / config).is_file():
        config = fit_dir / config
    members = sorted((fit_dir / "posterior").glob("member-*.yaml"))
    if not members:
        raise StoreError(fit_dir / "posterior", "no posterior members (member-NNN.yaml) in the fit's folder")
    return config, fitted, members


def is_fit_dir(path):
    """Whether path is a fit's folder (fit.json and a posterior folder)."""
    path = Path(path)
    return (path / "fit.json").is_file() and (path / "posterior").is_dir()


# -- the source --------------------------------------------------------------------------------------


def _source(source, config, overrides):
    """(base config, checkpoint step folders that may hold a state before the fork, whether one of them
    must: the source is a checkpoint) of a source."""
    if (source / "zarr.json").is_file():
        store = RunStore.open(source)
        folder = store.config["output"].get("checkpoint") or default_checkpoint(source)
        return _stored_config(store, overrides), _steps(Path(folder)), False
    if (source / "latest").exists() or (source / "manifest.json").is_file():
        base = (
            _stored_config(_store_beside(source), overrides)
            if config is None
            else load_config(config, overrides)
        )
        steps = [source] if (source / "manifest.json").is_file() else _steps(source)
        if not steps:
            raise StoreError(source, "a checkpoint folder without a complete checkpoint")
        return base, steps, True
    if source.is_file():
        return load_config(source, overrides), [], False
    raise StoreError(source, "not a run store, a checkpoint folder or a config file (nothing there)")


def _store_beside(checkpoint):
    """The run store a checkpoint folder NAME.checkpoint (or one of its steps) belongs to: NAME.zarr."""
    folder = checkpoint.resolve()
    if (folder / "manifest.json").is_file() and not (folder / "latest").exists():
        folder = folder.parent
    store = folder.with_name(folder.name.removesuffix(".checkpoint") + ".zarr")
    if not (store / "zarr.json").is_file():
        raise StoreError(
            checkpoint,
            f"no run store {store.name} beside the checkpoint to take its config from: pass the config "
            "(--config FILE)",
        )
    return RunStore.open(store)


def _stored_config(store, overrides):
    """The config a run store was written with (resolved again, with --set overrides), checked."""
    provenance = store.provenance
    config = resolve_config(without_nulls(store.config), overrides, source=provenance.get("config_file"))
    config = replace(config, overlays=dict(provenance.get("overlay_files") or {}))
    check_model(Recipe(config))
    return config


def _steps(folder):
    """The complete checkpoint steps of a checkpoint folder, oldest first (none if it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / "manifest.json").is_file())


# -- the fork ----------------------------------------------------------------------------------------


def _future(base, label, files, out, tstop):
    """The future `label`: the base config with the intervention files, its tstop and its own store (and
    checkpoints beside it)."""
    path = out / f"{label}.zarr"
    checkpoint = default_checkpoint(path)
    overrides = [
        f"output.{key}={json.dumps(str(value))}"
        for key, value in (("path", path), ("checkpoint", checkpoint))
    ]
    overrides += [] if tstop is None else [f"simulation.tstop={float(tstop)!r}"]
    return Future(label, with_interventions(base, files, overrides), path)


def _fork(base, parent, steps, at, interventions, out, options, required=False):
    """The futures of `interventions` from the state of `base` at `at` (see fork)."""
    tstop, overwrite, context, progress, log = (
        options.tstop,
        options.overwrite,
        options.context,
        options.progress,
        options.log,
    )
    at, futures = _futures(base, at, interventions, out, tstop)
    untreated = futures[0]
    _check_outputs([future.path for future in futures], overwrite, context)
    start, decomposition = _state_at(untreated.config, parent, steps, at, context, progress, log, required)
    for future in futures:
        check_fork(future.config, start, f"the future {future.label!r}")
    for future in futures:
        _log(
            context,
            log,
            f"fork: future {future.label!r}: {at:g} -> {future.config['simulation']['tstop']:g} "
            f"ms into {future.path}",
        )
        run_simulation(
            Recipe(future.config),
            context,
            SimulationSettings.from_config(future.config),
            future.path,
            overwrite=overwrite,
            decomposition=decomposition,
            progress=progress,
            fork=start,
        )
    return futures


def _label(file):
    """The label of an intervention file's future: its stem."""
    return Path(file).stem


def _futures(base, at, interventions, out, tstop):
    """(the fork time, checked; the Futures: the untreated one first, then one per intervention file,
    each checked: distinct labels, treatments from the fork time on, a valid model)."""
    untreated = _future(base, UNTREATED, [], out, tstop)
    at = _fork_time(untreated.config, at)
    futures = [untreated]
    for file in interventions:
        label = _label(file)
        if label == UNTREATED or label in [f.label for f in futures]:
            raise ConfigError(
                "--intervention",
                str(file),
                f"files of distinct stems other than {UNTREATED!r} (the label "
                "of the untreated future); each future's store is named after its file",
            )
        future = _future(base, label, [file], out, tstop)
        _check_onsets(future.config, len(base["interventions"]), at, file)
        check_model(Recipe(future.config))
        futures.append(future)
    return at, futures


def _check_outputs(paths, overwrite, context, summaries=False):
    """The futures' stores (and with `summaries` their summary stores) may be written: absent, or
    brainsim stores with overwrite; the same answer on every rank."""
    error = None
    try:
        if context.is_root:
            for path in paths:
                check_output(path, overwrite)
                summary = default_output(path)
                if summaries and not overwrite and (summary.exists() or summary.is_symlink()):
                    raise StoreError(summary, "already exists; pass --overwrite to replace it")
    except BrainsimError as e:
        error = e
    agree(context, error)


def _fork_time(config, at):
    """The fork time (ms), checked: inside the run, on the step grid and, with a brain, on the region
    bins (a future's region rows start at it)."""
    sim, out = config["simulation"], config["output"]
    at = float(at)
    tstop, dt = float(sim["tstop"]), float(sim["dt"])
    steps = at / dt
    if not (math.isfinite(at) and 0 < at < tstop) or abs(steps - round(steps)) > 1e-6:
        raise ConfigError(
            "--at", at, f"a time (ms) after 0 and before tstop {tstop:g} on the step grid (dt {dt:g})"
        )
    if config["brain"] is not None:
        bins = at / out["region_bin"]
        if abs(bins - round(bins)) > 1e-6:
            raise ConfigError(
                "--at",
                at,
                f"a multiple of output.region_bin ({out['region_bin']:g} ms): the futures' region "
                "rows start at the fork time",
            )
    return round(steps) * dt


def _check_onsets(config, first, at, file):
    """The interventions of `file`, laid over the base config from index `first` on, start at or after
    the fork; the error names the file and the key path in it."""
    for k, item in enumerate(config["interventions"][first:]):
        key = START_KEYS[item["kind"]]
        if intervention_start(item) < at - 1e-9:
            content = read_yaml(file)
            path = (
                key
                if isinstance(content, dict) and "interventions" not in content
                else f"[{k}].{key}"
                if isinstance(content, list)
                else f"interventions[{k}].{key}"
            )
            raise ConfigError(
                path,
                item[key],
                f"a time >= the fork time {at:g} ms (a future's treatment starts at or "
                "after the fork; what acts before it is part of the state it continues)",
                file=file,
            )


def _state_at(config, parent, steps, at, context, progress, log, required=False):
    """(ForkStart at `at`, decomposition to run the futures on): from a checkpoint at `at`, or by
    simulating the prefix once in memory from the latest usable checkpoint before it or from 0. A
    checkpoint is usable when its state hash is the config's up to its time; with `required` (the source
    is a checkpoint) one must be, else StoreError."""
    usable, refused = [], []
    tol = TIME_TOL * config["simulation"]["dt"]
    for step in steps:
        manifest = open_checkpoint(step)
        t = manifest["time"]
        mine = config.state_hash(t)
        if t <= at + tol and manifest.get("state_hash") == mine:
            usable.append(manifest)
        else:
            refused.append(
                f"{manifest['folder']} at {t:g} ms, state hash {manifest.get('state_hash')} (the futures' "
                f"{mine}{'' if t <= at + tol else f'; after the fork time {at:g} ms'})"
            )
    if required and not usable:
        raise StoreError(
            parent,
            f"no checkpoint there can start the futures at {at:g} ms: {'; '.join(refused)}. A state moves "
            "only to runs of the same model whose interventions before the fork are the same",
        )
    for line in refused:
        _log(context, log, f"fork: not using checkpoint {line}")
    state_hash = config.state_hash(at)
    exact = [m for m in usable if abs(m["time"] - at) <= TIME_TOL * config["simulation"]["dt"]]
    if exact:
        _log(context, log, f"fork: the state at {at:g} ms from checkpoint {exact[-1]['folder']}")
        return ForkStart(str(parent), at, state_hash, manifest=exact[-1]), None
    earlier = max(usable, key=lambda m: m["time"], default=None)
    t0 = 0.0 if earlier is None else earlier["time"]
    where = "the start" if earlier is None else f"checkpoint {earlier['folder']}"
    _log(
        context,
        log,
        f"fork: no checkpoint at {at:g} ms: simulating [{t0:g}, {at:g}] ms once, in memory, from {where}",
    )
    settings = SimulationSettings.from_config(config, checkpoint_every=None)
    stream = default_progress_stream(context) if progress else None
    with StopSignals((), settings.stop_grace, announce=context.is_root) as stop:
        sim = Simulation(Recipe(config), context, settings)
        stop.attach(sim)
        try:
            if earlier is not None:
                sim.restore(earlier)
            elif settings.warmup > 0:
                sim.settle(
                    settings.warmup, progress=stream, stop_requested=stop.requested, started=stop.attach
                )
                stop.attach(sim)
            sim.run(until=at, progress=stream, stop_requested=stop.requested, label="to fork")
            state = sim.state()
        finally:
            sim.close()
    return ForkStart(str(parent), at, state_hash, state=state), sim.decomposition


def _log(context, log, line):
    if context.is_root and log is not None:
        log(line)


def _quiet(line):
    """Summaries of forks in worker processes print nothing: the driver reports the members."""
