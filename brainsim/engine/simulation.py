"""The simulation: build the local cells, then advance them epoch by epoch.

Each epoch is at most the minimum network delay long, so every spike of an epoch is delivered in a
later one: advance all local cells to the epoch end with the TS, detect spikes, exchange them, turn
them into events for the local targets, write outputs.
"""

import math
import sys
import time as clock
from dataclasses import dataclass

import numpy as np

from ..errors import Interrupted
from ..model.recipe import Recipe
from ..parallel.exchange import exchange_spikes
from ..parallel.partition import Decomposition
from .events import ConnectionTable, EventQueue, PoissonSources, spike_stimulus_events
from .group import CellGroup
from .integrators import make_integrator
from .observe import StepObserver

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

    @property
    def ns_per_compartment_step(self):
        return self.run_s * 1e9 / max(1, self.compartments * self.steps)


def epoch_length(min_delay, dt):
    """The largest whole number of steps not longer than the minimum delay (and MAX_EPOCH)."""
    limit = MAX_EPOCH if min_delay is None else min(min_delay, MAX_EPOCH)
    return max(1, math.floor(limit / dt + 1e-9)) * dt


class Simulation:
    def __init__(self, config, context, PETSc):
        start = clock.perf_counter()
        self.config, self.context = config, context
        sim = config["simulation"]
        self.dt, self.tstop = sim["dt"], sim["tstop"]
        self.recipe = recipe = Recipe(config)
        recipe.check()
        self.decomposition = Decomposition(recipe.num_cells, context.size)
        self.group = group = CellGroup(recipe, self.decomposition.gids_on(context.rank))
        self.probes = group.probe_sets(recipe)
        sampling = {p["name"]: p["sampling"] or self.dt for p in config["probes"]}
        self.observer = StepObserver(group, self.probes, sampling, self.dt, sim["voltage_limit"])
        self.connections = ConnectionTable(recipe, group)
        self.queue = EventQueue()
        self.queue.push(spike_stimulus_events(recipe, group))
        self.poisson = PoissonSources(recipe, group)
        self.epoch = epoch_length(recipe.min_delay, self.dt)
        self.integrator = make_integrator(PETSc, sim["method"], group, self.observer, self.dt, sim["petsc"])
        self.integrator.set_state(group.initial_state(), 0.0)
        self.integrator.warm_up()
        local = np.array([group.gids.size, group.n_compartments, group.size], dtype=np.int64)
        self.cells, self.compartments, self.equations = (int(x) for x in context.comm.allreduce(local))
        self.build_s = clock.perf_counter() - start

    @property
    def counts(self):
        return {"cells": self.cells, "compartments": self.compartments, "equations": self.equations}

    def run(self, store=None, progress=None, stop_requested=lambda: None):
        """Advance to tstop, writing spikes and traces to store (a RunStore) as it goes.

        stop_requested() is asked at every epoch boundary, after the epoch's outputs are written; when it
        returns a name (e.g. of a signal) the run stops there with Interrupted.
        """
        if store is not None:
            for p in self.probes:
                store.add_trace_set(
                    p.name,
                    variable=p.variable,
                    units=p.units,
                    gid=p.gid,
                    compartment=p.compartment,
                    location=list(p.location),
                )
        flush_every = self.config["output"]["flush_interval"]
        t, n_spikes = self.integrator.time, 0
        meter = Progress(self.tstop, self.config["simulation"]["progress_interval"], progress)
        start = last_flush = clock.perf_counter()
        first_step = self.integrator.steps
        try:
            while t < self.tstop - 1e-9 * self.dt:
                t_end = min(t + self.epoch, self.tstop)
                due = self.queue.pop_before(t_end)
                extra = self.poisson.events_before(t_end)
                if len(extra):
                    due = type(due).concat([due, extra]).sorted()
                self.integrator.advance(t_end, due.time, due.index, due.weight)
                gid, spike_time = exchange_spikes(self.context, *self.observer.drain_spikes())
                self.queue.push(self.connections.events_from(gid, spike_time))
                n_spikes += gid.size
                if store is not None:
                    self._write(store, gid, spike_time)
                    if clock.perf_counter() - last_flush >= flush_every:
                        store.flush(t_end)
                        last_flush = clock.perf_counter()
                t = t_end
                meter.update(t, n_spikes)
                if stop_requested():
                    if store is not None:
                        store.flush(t)
                    raise Interrupted(stop_requested(), t)
        finally:
            run_s = clock.perf_counter() - start
            steps = self.integrator.steps - first_step
            self.summary = RunSummary(
                self.cells, self.compartments, self.equations, n_spikes, self.build_s, run_s, steps, t
            )
            if store is not None:
                self._write(store, *self.observer.drain_spikes())
        meter.done(t, n_spikes)
        return self.summary

    def _write(self, store, gid, spike_time):
        if gid.size:
            store.append_spikes(gid, spike_time)
        for name, (times, values) in self.observer.drain_samples().items():
            store.append_samples(name, times, values)

    def close(self):
        self.integrator.close()


class Progress:
    """Prints simulated time, rate and ETA every `interval` seconds of wall time (0: never)."""

    def __init__(self, tstop, interval, stream):
        self.tstop, self.interval, self.stream = tstop, interval, stream
        self.start = self.last = clock.perf_counter()

    def update(self, t, spikes):
        now = clock.perf_counter()
        if self.stream is None or self.interval <= 0 or now - self.last < self.interval:
            return
        self.last = now
        wall = now - self.start
        rate = t / wall if wall > 0 else float("inf")
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
