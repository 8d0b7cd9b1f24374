"""The simulation: build the local cells, then advance them epoch by epoch.

Each epoch is at most the minimum network delay long, so every spike of an epoch is delivered in a
later one: advance all local cells to the epoch end with the TS, detect spikes, exchange them (with
every rank's flags: failed, stop requested, outputs due), turn them into events for the local targets,
write outputs. Every rank learns of a failure or a stop request at the same epoch boundary, so ranks
never wait for one that has stopped.
"""

import json
import math
import sys
import time as clock
from dataclasses import dataclass

import numpy as np

from ..errors import BrainsimError, Interrupted
from ..io import checkpoint as ckpt
from ..model.recipe import Recipe
from ..parallel.context import agree
from ..parallel.exchange import FAILED, FLUSH, STOP, exchange_spikes
from ..parallel.partition import Decomposition, cell_costs
from .events import ConnectionTable, EventQueue, Events, PoissonSources, spike_stimulus_events
from .group import CellGroup
from .integrators import make_integrator
from .interventions import Interventions
from .observe import StepObserver
from .regions import RegionRecorder

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


def epoch_length(min_delay, dt):
    """The largest whole number of steps not longer than the minimum delay (and MAX_EPOCH)."""
    limit = MAX_EPOCH if min_delay is None else min(min_delay, MAX_EPOCH)
    return max(1, math.floor(limit / dt + 1e-9)) * dt


class Simulation:
    def __init__(self, config, context, PETSc, decomposition=None):
        """Build this rank's cells (every rank, collectively: a failure on one rank stops all).
        decomposition: a Decomposition, or None for the cost-balanced default."""
        start = clock.perf_counter()
        self.config, self.context = config, context
        sim = config["simulation"]
        self.dt, self.tstop = sim["dt"], sim["tstop"]
        error = None
        try:
            self.recipe = recipe = Recipe(config)
            recipe.check()
            self.decomposition = decomposition or Decomposition.balanced(cell_costs(recipe), context.size)
            self.group = group = CellGroup(recipe, self.decomposition.gids_on(context.rank))
            self.probes = group.probe_sets(recipe)
            self.sampling = {p["name"]: p["sampling"] or self.dt for p in config["probes"]}
            self.observer = StepObserver(group, self.probes, self.sampling, self.dt, sim["voltage_limit"])
            self.regions = None
            if recipe.brain is not None:
                self.regions = RegionRecorder(recipe, group, config["output"]["region_bin"], self.tstop)
                self.observer.regions = self.regions
            self.connections = ConnectionTable(recipe, group)
            self.queue = EventQueue()
            self.queue.push(spike_stimulus_events(recipe, group))
            self.poisson = PoissonSources(recipe, group)
            self.interventions = Interventions(recipe, group, self.connections, self.poisson)
            self.epoch = epoch_length(recipe.min_delay, self.dt)
            self.integrator = make_integrator(
                PETSc, sim["method"], group, self.observer, self.dt, sim["petsc"]
            )
            self.integrator.set_state(group.initial_state(), 0.0)
            self.integrator.warm_up()
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(context, error)
        local = np.array([group.gids.size, group.n_compartments, group.size], dtype=np.int64)
        self.cells, self.compartments, self.equations = (int(x) for x in context.comm.allreduce(local))
        self.build_s = clock.perf_counter() - start

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

    @property
    def time(self):
        return self.integrator.time

    def run(self, output=None, progress=None, stop_requested=lambda: None, checkpoint=None):
        """Advance to tstop, writing spikes and traces to output (an Output) as it goes.

        stop_requested() is asked at every epoch boundary; when any rank's answer is a name (e.g. of a
        signal) every rank stops there: a checkpoint is written (when checkpoint is set) and Interrupted
        is raised. checkpoint: (folder, every ms or None) — checkpoints at the first epoch boundary at
        or after each multiple of `every`.
        """
        flush_every = self.config["output"]["flush_interval"]
        t, n_spikes, epochs, exchange_s = self.time, 0, 0, 0.0
        meter = Progress(self.tstop, self.config["simulation"]["progress_interval"], progress, start_time=t)
        start = last_flush = clock.perf_counter()
        first_step = self.integrator.steps
        every = checkpoint[1] if checkpoint else None
        pending = None  # a failure to report at the next exchange (from writing the last epoch's outputs)
        try:
            while t < self.tstop - 1e-9 * self.dt:
                t_end = min(t + self.epoch, self.tstop)
                error, flags, pending = pending, (0 if pending is None else FAILED), None
                try:
                    if error is None:
                        if self.interventions.apply(t):
                            self.integrator.restart()  # the right-hand side changed
                        due = self.queue.pop_before(t_end)
                        extra = self.poisson.events_before(t_end)
                        if len(extra):
                            due = Events.concat([due, extra]).sorted()
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
                t = t_end
                if self.regions is not None:
                    self.regions.close_bins(t)
                if output is not None:
                    try:
                        output.write_epoch(gid, spike_time, self.observer.drain_samples())
                    except Exception as e:  # noqa: BLE001 - reported to every rank at the next exchange
                        pending = e
                    if anyone & FLUSH:
                        output.flush(t)
                        last_flush = clock.perf_counter()
                meter.update(t, n_spikes)
                due_checkpoint = every is not None and math.floor(t / every + 1e-9) > math.floor(
                    (t - self.epoch) / every + 1e-9
                )
                if checkpoint is not None and (anyone & STOP or due_checkpoint):
                    self.write_checkpoint(checkpoint[0])
                if anyone & STOP:
                    raise Interrupted(stop_requested() or "a signal on another rank", t)
            agree(self.context, pending)
        finally:
            run_s = clock.perf_counter() - start
            self.summary = RunSummary(
                self.cells,
                self.compartments,
                self.equations,
                n_spikes,
                self.build_s,
                run_s,
                self.integrator.steps - first_step,
                t,
                exchange_s,
                epochs,
            )
        meter.done(t, n_spikes)
        return self.summary

    # -- checkpoints ----------------------------------------------------------------------------

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
        try:
            ckpt.write_part(folder, step, self.context.rank, self._checkpoint_part())
        except Exception as e:  # noqa: BLE001
            error = e
        agree(self.context, error)
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
                    regions=None
                    if self.regions is None
                    else {"bin": self.regions.bin, "open": self.regions.first},
                )
        except Exception as e:  # noqa: BLE001
            error = e
        agree(self.context, error)
        self.integrator.restart()

    def _checkpoint_part(self):
        g = self.group
        u = self.integrator.u.getArray(readonly=True)
        canon = g.cell_unknowns
        owner, position = self._unknown_owner
        ev = self.queue.pending
        streams = self.poisson.streams
        return ckpt.Part(
            gid=g.gids,
            offset=np.concatenate([[0], np.cumsum([c.size for c in canon])]).astype(np.int64),
            state=np.concatenate([u[c] for c in canon]) if canon else np.zeros(0),
            events={
                "ev_time": ev.time,
                "ev_gid": g.gids[owner[ev.index]],
                "ev_position": position[ev.index],
                "ev_weight": ev.weight,
                "ev_source": ev.source,
            },
            poisson={
                "ps_gid": np.array([s.spec.stream[1] for s in streams], dtype=np.int64),
                "ps_salt": np.array([s.spec.stream[2] for s in streams], dtype=np.int64),
                "ps_state": [json.dumps(s.rng.bit_generator.state) for s in streams],
                "ps_last": np.array([s.last for s in streams], dtype=float),
                "ps_offset": np.concatenate([[0], np.cumsum([s.ahead.size for s in streams])]).astype(
                    np.int64
                ),
                "ps_ahead": np.concatenate([s.ahead for s in streams]) if streams else np.zeros(0),
            },
            regions=np.zeros((g.gids.size, 3))
            if self.regions is None
            else np.column_stack(self.regions.open_state()[1:]),
        )

    @property
    def _unknown_owner(self):
        """(local cell, position in its canonical order) of every unknown of the group."""
        owner, position = np.empty(self.group.size, np.int64), np.empty(self.group.size, np.int64)
        for c, index in enumerate(self.group.cell_unknowns):
            owner[index], position[index] = c, np.arange(index.size)
        return owner, position

    def restore(self, manifest):
        """Continue from a checkpoint (collective): this rank's cells, events and streams, whatever the
        rank count that wrote it."""
        error = None
        try:
            ckpt.check_compatible(manifest, self.config.hash())
            g = self.group
            states, events, streams, open_bin = ckpt.read_cells(manifest, g.gids)
            canon = g.cell_unknowns
            u = np.empty(g.size)
            for c, state in enumerate(states):
                u[canon[c]] = state
            cell_of = {int(gid): c for c, gid in enumerate(g.gids)}
            index = np.array(
                [canon[cell_of[int(gid)]][pos] for gid, pos in zip(events["ev_gid"], events["ev_position"])],
                dtype=np.int64,
            )
            self.queue.pending = Events(events["ev_time"], index, events["ev_weight"], events["ev_source"])
            self.poisson.restore(streams)
            if self.regions is not None:
                saved = manifest["regions"]
                if saved["bin"] != self.regions.bin:
                    raise BrainsimError(
                        f"checkpoint {manifest['folder']} has region summaries in {saved['bin']} ms bins, "
                        f"this run {self.regions.bin} ms: resume with --set output.region_bin={saved['bin']}"
                    )
                self.regions.restore(saved["open"], *open_bin.T)
            self.integrator.set_state(u, manifest["time"])
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(self.context, error)

    def close(self):
        self.integrator.close()


class Progress:
    """Prints simulated time, rate and ETA every `interval` seconds of wall time (0: never)."""

    def __init__(self, tstop, interval, stream, start_time=0.0):
        self.tstop, self.interval, self.stream, self.t0 = tstop, interval, stream, start_time
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
            f"[brainsim] t = {t:9.2f} / {self.tstop:g} ms ({100 * t / self.tstop:5.1f}%)  "
            f"{rate:8.2f} ms/s  ETA {eta:6.1f} s  spikes {spikes}",
            file=self.stream,
            flush=True,
        )

    def done(self, t, spikes):
        if self.stream is not None and self.interval > 0:
            wall = clock.perf_counter() - self.start
            print(
                f"[brainsim] t = {t:9.2f} / {self.tstop:g} ms (100.0%) done in {wall:.2f} s, spikes {spikes}",
                file=self.stream,
                flush=True,
            )


def default_progress_stream(context):
    return sys.stderr if context.is_root else None
