"""A simulation run end to end on every rank: build, simulate, write the store, mark it complete, failed
or interrupted; checkpoint on request and on SIGINT/SIGTERM/SIGUSR1; resume from a checkpoint; continue
a fork's future from a state at its fork time."""

import _thread
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import BrainsimError, Interrupted, StopTimeout, StoreError
from ..files import check_writable
from ..io.checkpoint import open_checkpoint
from ..io.sonata import check_report, report_path
from ..io.zarr_store import NOTHING_TO_RESUME, check_replaceable
from ..parallel.context import agree
from ..parallel.exchange import exchange_spikes
from .output import Output
from .simulation import Simulation, default_progress_stream


def check_output(path, overwrite, sonata=False):
    """Fail before any work if the output exists and may not be replaced (not allowed, or not a run
    store that is safe to delete), or, with `sonata`, if its SONATA spike report's path is taken so."""
    path = Path(path)
    if sonata:
        check_report(report_path(path), overwrite)
    if path.exists() and not overwrite:
        raise BrainsimError(
            f"output {path} already exists: pass --overwrite (or output.overwrite: true) to "
            "replace it, or -o to write elsewhere"
        )
    if path.exists() or path.is_symlink():
        check_replaceable(path)
    check_writable(path, "the run store")


def default_checkpoint(path):
    """Where checkpoints go when the config names no folder: beside the output, `<name>.checkpoint`."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".zarr") + ".checkpoint")


@dataclass(frozen=True)
class ForkStart:
    """Where a fork's future starts: the state at `time` (ms) held in memory (`state`, this rank's
    SimulationState) or in a checkpoint (`manifest`, from open_checkpoint), what it came from (`parent`,
    a path) and the RunConfig.state_hash(time) of the config that produced it.

    parameters_changed: the future continues the state with other model parameters than those that
    produced it (a filter's re-parametrised member: the same cells and network, other drives or channel
    densities from the fork time on). Its state hash is then not the future's and is not checked; the
    store records parameters_changed and the state's own hash as parent_state_hash."""

    parent: str
    time: float
    state_hash: str
    state: object = None
    manifest: dict | None = None
    parameters_changed: bool = False

    @property
    def attrs(self):
        """What the future's store records: parent, fork_time (ms), state_hash (of the config that
        produced the state) and, for a re-parametrised continuation, parent_state_hash (the same) and
        parameters_changed."""
        attrs = {"parent": self.parent, "fork_time": self.time, "state_hash": self.state_hash}
        if self.parameters_changed:
            attrs.update(parent_state_hash=self.state_hash, parameters_changed=True)
        return attrs


def check_fork(config, start, label="the future"):
    """Refuse a start whose state hash is not that of the config's prefix up to the fork time (unless the
    start declares its parameters changed)."""
    if start.parameters_changed:
        return
    mine = config.state_hash(start.time)
    if mine != start.state_hash:
        raise BrainsimError(
            f"{start.parent}: its state at {start.time:g} ms (state hash {start.state_hash}) is not the "
            f"start of {label} (state hash {mine} up to {start.time:g} ms): it came from another model or "
            "from interventions acting before the fork time"
        )


def run_simulation(
    recipe,
    context,
    settings,
    path,
    *,
    overwrite=False,
    decomposition=None,
    resume=None,
    checkpoint=None,
    progress=True,
    early_signals=(),
    fork=None,
    on_complete=None,
):
    """Simulate recipe on every rank of context and write its store at path; returns the RunSummary.

    decomposition: a Decomposition or the file of one; resume: a checkpoint folder to continue from (the
    store at path is continued); checkpoint: the checkpoint folder (default beside the store);
    early_signals: names of stop signals received before this call (the run stops at its first epoch
    boundary); fork: a ForkStart: the run continues from its state (no warm-up) into a new store that
    starts at the fork time and records the fork's parent, fork_time and state_hash. SIGINT, SIGTERM and
    SIGUSR1 received from here on stop it at the next epoch boundary, or after settings.stop_grace seconds
    without one (StopTimeout). on_complete: called with the Simulation after a complete run (at tstop,
    an epoch boundary), before it is closed, e.g. to take its state."""
    path = Path(path)
    folder = Path(checkpoint or default_checkpoint(path))
    if resume is not None and fork is not None:
        raise BrainsimError("a run either resumes from a checkpoint or continues a fork, not both")
    with StopSignals(early_signals, settings.stop_grace, announce=context.is_root) as stop:
        error, manifest = None, None
        try:
            if fork is not None:
                check_fork(recipe.config, fork, f"the run {path}")
            if resume is not None:
                manifest = open_checkpoint(resume)
                if context.is_root and not (path / "zarr.json").is_file():
                    raise StoreError(path, NOTHING_TO_RESUME)
            elif context.is_root:
                check_output(path, overwrite, recipe.config["output"]["sonata"])
        except BrainsimError as e:
            error = e
        agree(context, error)
        sim = Simulation(recipe, context, settings, decomposition)
        stop.attach(sim)
        try:
            if manifest is not None:
                sim.restore(manifest)
            elif fork is not None and fork.manifest is not None:
                sim.restore(fork.manifest)
            elif fork is not None:
                sim.set_state(fork.state)
            if context.is_root:
                path.parent.mkdir(parents=True, exist_ok=True)
            resume_from = None if manifest is None else manifest["time"]
            out = Output(
                context,
                path,
                sim.store_spec(None if fork is None else fork.attrs),
                overwrite=overwrite,
                resume_from=resume_from,
                regions=sim.regions,
                heartbeat=min(max(settings.flush_interval, HEARTBEAT[0]), HEARTBEAT[1]),
                sonata=recipe.config["output"]["sonata"],
            )
            try:
                if manifest is None and fork is None and settings.warmup > 0:
                    _settle(sim, out, context, progress, stop)
                summary = _simulate(sim, out, context, progress, folder, stop)
                if on_complete is not None:
                    on_complete(sim)
                return summary
            finally:
                out.close()
        finally:
            sim.close()


HEARTBEAT = (1.0, 10.0)
"""Bounds (s) of the store's heartbeat interval, which is the run's flush interval within them."""


def _settle(sim, out, context, progress, stop):
    """The warm-up (settings.warmup ms at rest, not recorded); a stop or a failure in it marks the store
    (nothing recorded, no checkpoint) and propagates."""
    try:
        sim.settle(
            sim.settings.warmup,
            progress=default_progress_stream(context) if progress else None,
            stop_requested=stop.requested,
            started=stop.attach,
        )
    except BaseException as e:
        stopped = isinstance(e, (Interrupted, StopTimeout, KeyboardInterrupt))
        status = "interrupted" if stopped else "failed"
        reason = f"{type(e).__name__} during the warm-up: {e}; nothing was recorded and no checkpoint written"
        try:
            out.finish(status, error=reason, t_reached=0.0)
        except Exception:  # noqa: BLE001 - the warm-up's own failure is the one to report
            out.mark(status, reason)
        raise
    finally:
        stop.attach(sim)


def _simulate(sim, out, context, progress, folder, stop):
    try:
        summary = sim.run(
            output=out,
            progress=default_progress_stream(context) if progress else None,
            stop_requested=stop.requested,
            checkpoint=folder,
        )
    except Interrupted as e:
        _finish_quietly(out, context, sim, "interrupted", f"{e}; resume with --resume {folder}")
        raise
    except StopTimeout as e:
        t_done = _finish_quietly(out, context, sim, "interrupted", str(e))
        raise (e if t_done is None else e.reaching(t_done)) from None
    except BaseException as e:
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else type(e).__name__
        _finish_quietly(out, context, sim, "failed", f"{reason}: {e}")
        raise
    out.finish("complete", timing=summary.timing(context.size), t_reached=summary.t_end)
    return summary


def _finish_quietly(out, context, sim, status, error):
    """Mark the store (collectively), keeping what was recorded up to the failure — the spikes detected
    (exchanged one last time) and every rank's samples — without hiding the exception that stopped the run.
    Returns the time (ms) up to which the store is complete, or None when writing the outputs failed: then
    only the status and error are recorded (if even that fails, the store's heartbeat shows it stale)."""
    from mpi4py import MPI

    try:
        gid, time, _ = exchange_spikes(context, *sim.observer.drain_spikes())
        out.write_epoch(gid, time, sim.observer.drain_samples())
        t_done = context.comm.allreduce(sim.observer.t_prev, op=MPI.MIN)  # written by every rank
        out.finish(status, error=error, t_reached=t_done)
        return t_done
    except Exception as e:  # noqa: BLE001 - the run's own failure is the one to report
        again = f"{type(e).__name__}: {e}"
        text = error if again in error else f"{error} (writing the last outputs failed too: {again})"
        out.mark(status, text)
        return None


class StopSignals:
    """SIGINT, SIGTERM and SIGUSR1 (what SLURM sends before a time limit) ask the run to stop at the next
    epoch boundary, after a checkpoint; a second signal stops it at once. A run that reaches no epoch
    boundary within `grace` seconds of the request stops after its current step, without a checkpoint
    (StopTimeout); one that does not even finish a step within HARD_STOP seconds more (still building,
    say) stops wherever it is. With `announce`, the first signal is acknowledged on stderr. Outside the
    main thread (where Python cannot handle signals) nothing is installed."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    HARD_STOP = 5.0
    """s after the grace for the current step to end before the run is stopped wherever it is."""

    def __init__(self, early=(), grace=30.0, announce=False):
        self.received = early[0] if early else None
        self.grace, self.announce = grace, announce
        self.previous = {}
        self.sim = None  # the Simulation, once built (attach): its observer stops it after a step
        self.overdue = False  # the grace ran out
        self._timer = None
        self._hard = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
            if self.received is not None:
                self._arm(self.grace, self._overdue)
        return self

    def __exit__(self, *exc):
        self._disarm()
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def attach(self, sim):
        """The run's Simulation: after the grace, its observer stops it at the end of a step."""
        self.sim = sim
        if self.overdue:
            sim.observer.halt = self._halt

    def requested(self):
        """The name of the stop signal received, or None; asked at every epoch boundary, where a requested
        stop happens (the grace stops running there)."""
        if self.received is not None:
            self._disarm()
        return self.received

    def _handle(self, signum, frame):
        if self._hard:
            self._hard = False
            raise self._timeout()
        if self.received is not None:
            # Also after the next step, in case this raise lands in a finalizer, which swallows it.
            if self.sim is not None:
                self.sim.observer.halt = self._interrupt
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.received = signal.Signals(signum).name
        self._arm(self.grace, self._overdue)
        if self.announce:  # os.write: safe even while the main thread is printing
            notice = (
                f"brainsim: {self.received} received: stopping at the next epoch boundary after a "
                f"checkpoint, or in output.stop_grace = {self.grace:g} s without one; send it again to stop "
                "at once\n"
            )
            os.write(2, notice.encode())

    def _arm(self, seconds, then):
        self._disarm()
        self._timer = threading.Timer(seconds, then)
        self._timer.daemon = True
        self._timer.start()

    def _disarm(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _overdue(self):
        """(timer thread) The grace is over: stop after the current step, or soon wherever the run is."""
        self.overdue = True
        if self.sim is not None:
            self.sim.observer.halt = self._halt
        self._arm(self.HARD_STOP, self._stop_now)

    def _stop_now(self):
        """(timer thread) Not even a step ended: raise StopTimeout in the main thread wherever it is."""
        self._hard = True
        _thread.interrupt_main(signal.SIGUSR1)  # runs _handle in the main thread

    def _interrupt(self, t):
        """(observer, after a step at t ms) A second signal came: stop at once."""
        self.sim.observer.halt = None
        raise KeyboardInterrupt(self.received)

    def _halt(self, t):
        """(observer, after a step at t ms) Stop the run here."""
        self._disarm()
        self.sim.observer.halt = None
        raise self._timeout(t)

    def _timeout(self, t=None):
        sim = self.sim
        if sim is not None and t is None and hasattr(sim, "epoch_end"):
            t = sim.observer.t_prev
        return StopTimeout(self.received, self.grace, t, getattr(sim, "epoch_end", None))
