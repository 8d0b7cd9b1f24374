"""The simulation: build the local cells of a recipe, then advance them epoch by epoch.

Each epoch is at most the minimum network delay long, so every spike of an epoch is delivered in a
later one: advance all local cells to the epoch end with the TS, detect spikes, exchange them (with
every rank's flags: failed, stop requested, outputs due), turn them into events for the local targets,
write outputs. Every rank learns of a failure or a stop request at the same epoch boundary, so ranks
never wait for one that has stopped.
"""

import math
import sys
import time as clock
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import BrainsimError, ConfigError, Interrupted, StoreError
from ..io import checkpoint as ckpt
from ..io.spec import RegionSpec, StoreSpec, TraceSetSpec
from ..model.checks import check_model
from ..parallel.context import Context, agree, init_petsc
from ..parallel.exchange import FAILED, FLUSH, STOP, exchange_spikes
from ..parallel.partition import Decomposition, cost_runs
from . import state as snapshot
from .events import ConnectionTable, EventQueue, PoissonSources, spike_stimulus_events, warm_up
from .group import CellGroup, units_of
from .integrators import make_integrator
from .interventions import Interventions
from .observe import StepObserver
from .regions import RegionRecorder
from .settings import SimulationSettings

MAX_EPOCH = 10.0
"""Longest epoch (ms) when no connection delay is shorter: bounds output and progress latency."""


@dataclass
class RunSummary:
    cells: int
    compartments: int
    equations: int
    spikes: int
    build_s: float
    run_s: float
    steps: int
    t_end: float
    exchange_s: float = 0.0
    epochs: int = 0

    @property
    def ns_per_compartment_step(self):
        return self.run_s * 1e9 / max(1, self.compartments * self.steps)

    def timing(self, ranks):
        """The store's `timing` attribute (s, ns; exchange_s includes waiting for other ranks)."""
        return {
            "build_s": self.build_s,
            "run_s": self.run_s,
            "ns_per_compartment_step": self.ns_per_compartment_step,
            "exchange_s": self.exchange_s,
            "epochs": self.epochs,
            "steps": self.steps,
            "ranks": ranks,
        }


def epoch_length(min_delay, dt):
    """The largest whole number of steps not longer than the minimum delay (and MAX_EPOCH)."""
    limit = MAX_EPOCH if min_delay is None else min(min_delay, MAX_EPOCH)
    return max(1, math.floor(limit / dt + 1e-9)) * dt


class Simulation:
    """A recipe's cells on the ranks of a context, advanced with the PETSc TS (Arbor's simulation).

    `run(until)` advances in pieces; `state()` and `set_state()` capture and restore this rank's state
    (for forks), `write_checkpoint()` and `restore()` do the same through files on any rank count."""

    def __init__(self, recipe, context=None, settings=None, decomposition=None):
        """Build this rank's cells (every rank, collectively: a failure on one rank stops all).

        recipe: a Recipe, or a subclass of one answering per gid; context: the ranks taking part (default:
        every rank of MPI_COMM_WORLD); settings: SimulationSettings (default: the recipe config's);
        decomposition: a Decomposition, the file of one (`brainsim partition -o`), or None for the
        cost-balanced default. Every model-level check runs here."""
        start = clock.perf_counter()
        context = Context.world() if context is None else context
        if not isinstance(context, Context):
            raise TypeError(f"context must be a brainsim Context, not {type(context).__name__}")
        settings = SimulationSettings.from_config(recipe.config) if settings is None else settings
        self.recipe, self.context, self.settings = recipe, context, settings
        self.dt, self.tstop = settings.dt, settings.tstop
        self.config = replace(recipe.config, data=settings.config_sections(recipe.config))
        """The recipe's config with these settings: what the store and checkpoints record."""
        self._recorded = None  # in-memory spikes and samples, once record() is called
        error = None
        try:
            PETSc = init_petsc(comm=context.comm)
            check_model(recipe)
            self.epoch = epoch_length(recipe.min_delay, self.dt)
            if recipe.min_delay is not None and recipe.min_delay < self.dt:
                raise ConfigError(
                    "simulation.dt",
                    self.dt,
                    f"a step <= the shortest connection delay ({recipe.min_delay} ms)",
                )
            if isinstance(decomposition, (str, Path)):
                decomposition = Decomposition.load(decomposition, context.size, recipe.num_cells)
            self.decomposition = decomposition or Decomposition.balanced(cost_runs(recipe), context.size)
            self.group = group = CellGroup(recipe, self.decomposition.gids_on(context.rank))
            self.probes = group.probe_sets(recipe)
            self.sampling = {p["name"]: p["sampling"] or self.dt for p in recipe.config["probes"]}
            self.observer = StepObserver(group, self.probes, self.sampling, self.dt, settings.voltage_limit)
            self.regions = None
            if recipe.brain is not None:
                self.regions = RegionRecorder(recipe, group, settings.region_bin, self.tstop)
                self.observer.regions = self.regions
            self.connections = ConnectionTable(recipe, group)
            self._check_delays()
            self.queue = EventQueue()
            self.queue.push(spike_stimulus_events(recipe, group))
            self.poisson = PoissonSources(recipe, group)
            self.interventions = Interventions(recipe, group, self.connections, self.poisson)
            self.integrator = make_integrator(
                PETSc, settings.method, group, self.observer, self.dt, settings.petsc
            )
            self.integrator.set_state(group.initial_state(), 0.0)
            self.integrator.warm_up()
            warm_up(self.connections, self.poisson)
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(context, error)
        local = np.array([group.gids.size, group.n_compartments, group.size], dtype=np.int64)
        self.cells, self.compartments, self.equations = (int(x) for x in context.comm.allreduce(local))
        self.build_s = clock.perf_counter() - start

    def _check_delays(self):
        """Every connection the recipe gave is at least one epoch long (a spike must not arrive in the
        epoch it was sent in): catches recipes whose connections_on answers shorter delays than min_delay."""
        delay = self.connections.delay
        if delay.size and delay.min() < self.epoch - 1e-9 * self.dt:
            k = int(np.argmin(delay))
            owner = self.connections.slot_cell[self.connections.target[k]]
            raise ConfigError(
                f"connections_on({int(self.group.gids[owner])})",
                float(delay[k]),
                f"delays >= recipe.min_delay ({self.recipe.min_delay} ms), the epoch length "
                f"{self.epoch:g} ms (from source gid {int(self.connections.source_of(k))})",
            )

    @property
    def counts(self):
        return {"cells": self.cells, "compartments": self.compartments, "equations": self.equations}

    @property
    def provenance(self):
        """Where the model came from: config and overlay files, patient, connectome (for the store)."""
        config, brain = self.config, self.recipe.brain
        patient = config["patient"]
        return {
            "config_file": None if config.source is None else str(config.source.resolve()),
            "overlay_files": config.overlays,
            "patient_id": None if patient is None else patient["id"],
            "interventions": [item["kind"] for item in config["interventions"]],
            "connectome": None if brain is None else brain.connectome.source,
            "connectome_notes": [] if brain is None else list(brain.connectome.notes),
        }

    def store_spec(self, fork=None):
        """What the run's store needs (collective: the probe layout is gathered from every rank). fork: a
        future's {parent, fork_time (ms), state_hash}: its store starts at fork_time."""
        start = 0.0 if fork is None else fork["fork_time"]
        layout = self.context.comm.allgather(
            {p.name: (p.gid, p.compartment, p.location) for p in self.probes}
        )
        trace_sets = []
        for probe in self.recipe.config["probes"]:
            name = probe["name"]
            parts = [rank_layout[name] for rank_layout in layout if name in rank_layout]
            offsets = np.cumsum(
                [0] + [rank_layout[name][0].size if name in rank_layout else 0 for rank_layout in layout]
            )
            if offsets[-1] == 0:
                continue
            sampling = self.sampling[name]
            first_row = math.ceil(start / sampling - 1e-9)
            trace_sets.append(
                TraceSetSpec(
                    name,
                    probe["variable"],
                    units_of(probe["variable"]),
                    sampling,
                    int(np.floor(self.tstop / sampling + 1e-9)) + 1 - first_row,
                    np.concatenate([part[0] for part in parts]),
                    np.concatenate([part[1] for part in parts]),
                    tuple(loc for part in parts for loc in part[2]),
                    offsets.astype(np.int64),
                    first_row,
                )
            )
        regions = None
        if self.regions is not None:
            r, connectome = self.regions, self.recipe.brain.connectome
            first_bin = math.floor(start / r.bin + 1e-9)
            regions = RegionSpec(
                r.bin,
                r.n_bins - first_bin,
                tuple(r.labels),
                tuple(r.hemisphere),
                r.centres,
                r.n_cells,
                sc_weights=connectome.weights,
                sc_tract_lengths=connectome.tract_lengths,
                first_bin=first_bin,
            )
        return StoreSpec(
            self.config.data,
            self.config.hash(),
            self.counts,
            self.tstop,
            tuple(trace_sets),
            regions,
            self.provenance,
            self.recipe.population_table(),
            fork,
        )

    @property
    def time(self):
        """Simulated time reached (ms)."""
        return self.integrator.time

    # -- running ------------------------------------------------------------------------------------

    def run(
        self,
        until=None,
        *,
        output=None,
        progress=None,
        stop_requested=lambda: None,
        checkpoint=None,
        label="t",
    ):
        """Advance to `until` (ms, on the step grid; default tstop), writing spikes and samples to output
        (an Output) as it goes; returns a RunSummary of this piece. Collective.

        progress: a stream for progress lines, or None; stop_requested() is asked at every epoch boundary:
        when any rank's answer is a name (e.g. of a signal) every rank stops there, a checkpoint is written
        (when checkpoint names a folder) and Interrupted is raised. With a checkpoint folder, a checkpoint
        is also written at the first epoch boundary at or after each multiple of settings.checkpoint_every.
        """
        t = self.time
        until = self.tstop if until is None else self._check_until(until, t)
        self.epoch_end = t  # ms: the end of the epoch being advanced (named when a stop cannot wait for it)
        flush_every, every = self.settings.flush_interval, self.settings.checkpoint_every
        n_spikes, epochs, exchange_s = 0, 0, 0.0
        meter = Progress(self.tstop, self.settings.progress_interval, progress, start_time=t, label=label)
        start = last_flush = clock.perf_counter()
        first_step = self.integrator.steps
        pending = None  # a failure to report at the next exchange (from writing the last epoch's outputs)
        try:
            while t < until - 1e-9 * self.dt:
                t_end = self.epoch_end = min(t + self.epoch, until)
                error, flags, pending = pending, (0 if pending is None else FAILED), None
                try:
                    if error is None:
                        if self.interventions.apply(t):
                            self.integrator.restart()  # the right-hand side changed
                        due = self.queue.pop_before(t_end, self.poisson.events_before(t_end))
                        self.integrator.advance(t_end, due.time, due.index, due.weight)
                except Exception as e:  # noqa: BLE001 - reported to every rank by the exchange
                    error, flags = e, FAILED
                local_gid, local_time = self.observer.drain_spikes()
                if self.regions is not None:
                    self.regions.add_spikes(np.searchsorted(self.group.gids, local_gid), local_time)
                if stop_requested():
                    flags |= STOP
                if output is not None and clock.perf_counter() - last_flush >= flush_every:
                    flags |= FLUSH
                tick = clock.perf_counter()
                gid, spike_time, all_flags = exchange_spikes(self.context, local_gid, local_time, flags)
                exchange_s += clock.perf_counter() - tick
                anyone = int(np.bitwise_or.reduce(all_flags))
                if anyone & FAILED:
                    agree(self.context, error)
                self.queue.push(self.connections.events_from(gid, spike_time))
                n_spikes += gid.size
                epochs += 1
                t_prev, t = t, t_end
                if self.regions is not None:
                    self.regions.close_bins(t)
                samples = self.observer.drain_samples()
                if self._recorded is not None:
                    self._record(gid, spike_time, samples)
                if output is not None:
                    try:
                        output.write_epoch(gid, spike_time, samples)
                    except Exception as e:  # noqa: BLE001 - reported to every rank at the next exchange
                        pending = e
                    if anyone & FLUSH:
                        output.flush(t)
                        last_flush = clock.perf_counter()
                meter.update(t, n_spikes)
                due_checkpoint = every is not None and math.floor(t / every + 1e-9) > math.floor(
                    t_prev / every + 1e-9
                )
                if checkpoint is not None and (anyone & STOP or due_checkpoint):
                    self.write_checkpoint(checkpoint)
                if anyone & STOP:
                    raise Interrupted(
                        stop_requested() or "a signal on another rank", t, checkpoint is not None
                    )
            agree(self.context, pending)
        finally:
            self.summary = RunSummary(
                self.cells,
                self.compartments,
                self.equations,
                n_spikes,
                self.build_s,
                clock.perf_counter() - start,
                self.integrator.steps - first_step,
                t,
                exchange_s,
                epochs,
            )
        meter.done(t, n_spikes)
        return self.summary

    def _check_until(self, until, t):
        until = float(until)
        steps = until / self.dt
        if (
            not (t - 1e-9 * self.dt <= until <= self.tstop + 1e-9 * self.dt)
            or abs(steps - round(steps)) > 1e-6
        ):
            raise ConfigError(
                "until",
                until,
                f"a time on the step grid (dt = {self.dt} ms) from the present time {t:g} ms to tstop "
                f"{self.tstop:g} ms",
            )
        return round(steps) * self.dt

    # -- results kept in memory ---------------------------------------------------------------------

    def record(self):
        """Keep every spike (all ranks') and this rank's probe samples in memory from now on, for
        `spikes()` and `traces()` (a run with an Output writes them to its store as well)."""
        if self._recorded is None:
            self._recorded = {"spikes": [], "samples": {p.name: [] for p in self.probes}}

    def _record(self, gid, time, samples):
        if gid.size:
            self._recorded["spikes"].append((gid, time))
        for name, (row, values) in samples.items():
            self._recorded["samples"][name].append((row, values))

    def spikes(self):
        """The spikes recorded since `record()`: an xarray Dataset of gid and time (ms) on dimension
        spike, sorted by (time, gid) — the layout of the store's spikes group."""
        import xarray as xr

        batches = self._recorded_or_fail()["spikes"]
        gid = np.concatenate([g for g, _ in batches]) if batches else np.zeros(0, np.int64)
        time = np.concatenate([t for _, t in batches]) if batches else np.zeros(0)
        return xr.Dataset(
            {"gid": ("spike", gid), "time": ("spike", time, {"units": "ms"})},
        )

    def traces(self, name):
        """The samples of probe entry `name` recorded since `record()` on this rank's cells: an xarray
        DataArray (time, probe) with coordinates time (ms), gid, compartment and location."""
        import xarray as xr

        recorded = self._recorded_or_fail()["samples"]
        probe = next((p for p in self.probes if p.name == name), None)
        if probe is None:
            raise ConfigError("traces", name, f"a probe entry with cells on this rank: {sorted(recorded)}")
        blocks = recorded[name]
        rows = (
            np.concatenate([row + np.arange(v.shape[0]) for row, v in blocks]) if blocks else np.zeros(0, int)
        )
        values = np.concatenate([v for _, v in blocks]) if blocks else np.zeros((0, probe.gid.size))
        return xr.DataArray(
            values,
            dims=("time", "probe"),
            coords={
                "time": ("time", rows * self.sampling[name], {"units": "ms"}),
                "gid": ("probe", probe.gid),
                "compartment": ("probe", probe.compartment),
                "location": ("probe", list(probe.location)),
            },
            name=probe.variable,
            attrs={"units": probe.units},
        )

    def _recorded_or_fail(self):
        if self._recorded is None:
            raise BrainsimError("nothing is recorded: call record() before run()")
        return self._recorded

    # -- states, checkpoints ------------------------------------------------------------------------

    def settle(self, duration, *, progress=None, stop_requested=lambda: None, started=None):
        """Simulate `duration` ms of the model at rest (`recipe.resting`: no stimuli, interventions or
        probes) from the initial state, then continue from the state reached as if it were time 0, so that
        what follows starts settled (collective; only before the first `run`). started(warm-up simulation)
        is called once it is built (a stop handler watches it). Interrupted and other errors propagate."""
        if self.time != 0.0:
            raise BrainsimError(f"settle() starts a simulation: this one is at t={self.time:g} ms already")
        rest = Simulation(
            self.recipe.resting(duration),
            self.context,
            replace(self.settings, tstop=duration, checkpoint_every=None, warmup=0.0),
            self.decomposition,
        )
        try:
            if started is not None:
                started(rest)
            rest.run(progress=progress, stop_requested=stop_requested, label="warm-up")
            self.set_state(snapshot.shifted(rest.state(), -duration))
        finally:
            rest.close()

    def state(self):
        """This rank's full state now (an epoch boundary): a SimulationState to give to `set_state` of
        this simulation or of another one of the same cells and decomposition (e.g. with other
        interventions: a fork)."""
        return snapshot.capture(self)

    def set_state(self, state):
        """Continue from a SimulationState (collective). Interventions are brought to their state at its
        time; spikes and samples recorded after it are dropped from memory."""
        error = None
        try:
            if not np.array_equal(state.gids, self.group.gids):
                raise BrainsimError(
                    f"the state holds gids {_span(state.gids)}, this rank has {_span(self.group.gids)}: a "
                    "state moves only between simulations of the same cells and decomposition (use a "
                    "checkpoint to change the decomposition)"
                )
            self._check_region_bin(state.region_bin, "the state")
            states, events, streams, open_bin = snapshot.unpack(state.part)
            snapshot.apply(self, state.time, states, events, streams, open_bin, state.region_first)
            self._forget_after(state.time)
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(self.context, error)

    def _forget_after(self, t):
        if self._recorded is None:
            return
        spikes = [(g[time < t], time[time < t]) for g, time in self._recorded["spikes"]]
        self._recorded["spikes"] = [(g, time) for g, time in spikes if g.size]
        for name, blocks in self._recorded["samples"].items():
            period = self.sampling[name]
            kept = [(row, v[: max(0, math.ceil(t / period - 1e-9) - row)]) for row, v in blocks]
            self._recorded["samples"][name] = [(row, v) for row, v in kept if v.shape[0]]

    def _check_region_bin(self, saved, what):
        mine = None if self.regions is None else self.regions.bin
        if saved != mine:
            raise BrainsimError(
                f"{what} has region summaries in {saved} ms bins, this simulation {mine}: use the same "
                f"output.region_bin (--set output.region_bin={saved})"
            )

    def write_checkpoint(self, folder):
        """Collective: every rank writes its cells' state, pending events and Poisson streams; rank 0
        publishes the checkpoint. Multistep methods restart here, as they do when the run is resumed."""
        step = int(round(self.time / self.dt))
        error = None
        try:
            if self.context.is_root:
                ckpt.prepare(folder, step)
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(self.context, error)
        written = None
        try:
            written = ckpt.write_part(folder, step, self.context.rank, snapshot.capture(self).part, self.time)
        except Exception as e:  # noqa: BLE001
            error = e
        agree(self.context, error)
        files = self.context.comm.gather(written, root=0)
        bounds = self.decomposition.bounds
        try:
            if self.context.is_root:
                ckpt.publish(
                    folder,
                    step,
                    time=self.time,
                    config_hash=self.config.hash(),
                    ranks=self.context.size,
                    gids_per_part=[(bounds[r], bounds[r + 1] - 1) for r in range(self.context.size)],
                    files=files,
                    regions=None
                    if self.regions is None
                    else {"bin": self.regions.bin, "open": self.regions.first},
                    state_hash=self.config.state_hash(self.time),
                )
        except Exception as e:  # noqa: BLE001
            error = e
        agree(self.context, error)
        self.integrator.restart()

    def restore(self, manifest):
        """Continue from a checkpoint (collective): this rank's cells, events and streams, whatever the
        rank count that wrote it."""
        error = None
        try:
            ckpt.check_compatible(
                manifest,
                config_hash=self.config.hash(),
                dt=self.dt,
                tstop=self.tstop,
                cells=self.recipe.num_cells,
                state_hash=self.config.state_hash(manifest["time"]),
            )
            saved = manifest["regions"]
            self._check_region_bin(
                None if saved is None else saved["bin"], f"checkpoint {manifest['folder']}"
            )
            sizes = [index.size for index in self.group.cell_unknowns]
            states, events, streams, open_bin = ckpt.read_cells(manifest, self.group.gids, sizes)
            self._check_streams(manifest, streams)
            if saved is not None:
                self._check_open_bin(manifest)
            first = 0 if saved is None else saved["open"]
            snapshot.apply(self, manifest["time"], states, events, streams, open_bin, first)
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(self.context, error)

    def _check_open_bin(self, manifest):
        """The checkpoint's open region bin must be the one holding its time: at a tstop that is not a
        multiple of the bin the last bin was closed short, and a longer run cannot continue it."""
        time, opened, bin_ms = manifest["time"], manifest["regions"]["open"], self.regions.bin
        holding = math.floor(time / bin_ms + 1e-9)
        if time >= self.tstop - 1e-9 * self.dt or opened == holding:
            return
        file = Path(manifest["folder"]) / "manifest.json"
        if opened == math.ceil(time / bin_ms - 1e-9):
            raise StoreError(
                file,
                f"the checkpoint at t = {time:g} ms ended its run, whose last region bin was cut short at "
                f"that tstop: it cannot be continued to {self.tstop:g} ms (extend runs whose tstop is a "
                f"multiple of output.region_bin, {bin_ms:g} ms)",
            )
        raise StoreError(
            file,
            f"inconsistent checkpoint manifest: open region bin {opened}, but t = {time:g} ms is in bin "
            f"{holding} of {bin_ms:g} ms",
        )

    def _check_streams(self, manifest, streams):
        """The checkpoint holds exactly this rank's Poisson streams (by gid and salt)."""
        mine = {(s.spec.stream[1], s.spec.stream[2]) for s in self.poisson.streams}
        saved = {(gid, salt) for gid, salt, *_ in streams}
        if saved != mine:
            odd = sorted(saved ^ mine)[:3]
            raise StoreError(
                manifest["folder"],
                f"the checkpoint's Poisson streams differ from this model's (gid, salt: {odd}...): "
                "another model?",
            )

    def close(self):
        self.integrator.close()


def _span(gids):
    return f"{int(gids[0])}-{int(gids[-1])}" if len(gids) else "none"


class Progress:
    """Prints simulated time, rate and ETA every `interval` seconds of wall time (0: never)."""

    def __init__(self, tstop, interval, stream, start_time=0.0, label="t"):
        self.tstop, self.interval, self.stream, self.t0 = tstop, interval, stream, start_time
        self.label = label  # what the time is: "t", or "warm-up" for a warm-up's clock
        self.start = self.last = clock.perf_counter()

    def update(self, t, spikes):
        now = clock.perf_counter()
        if self.stream is None or self.interval <= 0 or now - self.last < self.interval:
            return
        self.last = now
        wall = now - self.start
        rate = (t - self.t0) / wall if wall > 0 else float("inf")
        eta = (self.tstop - t) / rate if rate > 0 else float("inf")
        print(
            f"[brainsim] {self.label} = {t:9.2f} / {self.tstop:g} ms ({100 * t / self.tstop:5.1f}%)  "
            f"{rate:8.2f} ms/s  ETA {eta:6.1f} s  spikes {spikes}",
            file=self.stream,
            flush=True,
        )

    def done(self, t, spikes):
        if self.stream is not None and self.interval > 0:
            wall = clock.perf_counter() - self.start
            print(
                f"[brainsim] {self.label} = {t:9.2f} / {self.tstop:g} ms ({100 * t / self.tstop:5.1f}%) "
                f"done in {wall:.2f} s, spikes {spikes}",
                file=self.stream,
                flush=True,
            )


def default_progress_stream(context):
    return sys.stderr if context.is_root else None
