"""A simulation run end to end on every rank: build, simulate, write the store, mark it complete, failed
or interrupted; checkpoint on request and on SIGINT/SIGTERM/SIGUSR1; resume from a checkpoint."""

import signal
import threading
from pathlib import Path

from ..errors import BrainsimError, Interrupted
from ..io.checkpoint import open_checkpoint
from ..parallel.context import agree
from ..parallel.exchange import exchange_spikes
from .output import Output
from .simulation import Simulation, default_progress_stream


def check_output(path, overwrite):
    """Fail before any work if the output exists and may not be replaced."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise BrainsimError(
            f"output {path} already exists: pass --overwrite (or output.overwrite: true) to "
            "replace it, or -o to write elsewhere"
        )


def default_checkpoint(path):
    """Where checkpoints go when the config names no folder: beside the output, `<name>.checkpoint`."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".zarr") + ".checkpoint")


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
):
    """Simulate recipe on every rank of context and write its store at path; returns the RunSummary.

    decomposition: a Decomposition or the file of one; resume: a checkpoint folder to continue from (the
    store at path is continued); checkpoint: the checkpoint folder (default beside the store);
    early_signals: names of stop signals received before this call (the run stops at its first epoch
    boundary). SIGINT, SIGTERM and SIGUSR1 received from here on stop it at the next epoch boundary."""
    path = Path(path)
    folder = Path(checkpoint or default_checkpoint(path))
    with StopSignals(early_signals) as stop:
        error, manifest = None, None
        try:
            if resume is not None:
                manifest = open_checkpoint(resume)
            elif context.is_root:
                check_output(path, overwrite)
        except BrainsimError as e:
            error = e
        agree(context, error)
        sim = Simulation(recipe, context, settings, decomposition)
        try:
            if manifest is not None:
                sim.restore(manifest)
            if context.is_root:
                path.parent.mkdir(parents=True, exist_ok=True)
            resume_from = None if manifest is None else manifest["time"]
            out = Output(
                context,
                path,
                sim.store_spec(),
                overwrite=overwrite,
                resume_from=resume_from,
                regions=sim.regions,
            )
            return _simulate(sim, out, context, progress, folder, stop)
        finally:
            sim.close()


def _simulate(sim, out, context, progress, folder, stop):
    try:
        summary = sim.run(
            output=out,
            progress=default_progress_stream(context) if progress else None,
            stop_requested=lambda: stop.received,
            checkpoint=folder,
        )
    except Interrupted as e:
        _finish_quietly(out, context, sim, "interrupted", f"{e}; resume with --resume {folder}")
        raise
    except BaseException as e:
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else type(e).__name__
        _finish_quietly(out, context, sim, "failed", f"{reason}: {e}")
        raise
    out.finish("complete", timing=summary.timing(context.size), t_reached=summary.t_end)
    return summary


def _finish_quietly(out, context, sim, status, error):
    """Mark the store (collectively), keeping what was recorded up to the failure — the spikes detected
    (exchanged one last time) and every rank's samples — without hiding the exception that stopped the run."""
    from mpi4py import MPI

    try:
        gid, time, _ = exchange_spikes(context, *sim.observer.drain_spikes())
        out.write_epoch(gid, time, sim.observer.drain_samples())
        t_done = context.comm.allreduce(sim.observer.t_prev, op=MPI.MIN)  # written by every rank
        out.finish(status, error=error, t_reached=t_done)
    except Exception:  # noqa: BLE001 - the run's own failure is the one to report
        pass


class StopSignals:
    """SIGINT, SIGTERM and SIGUSR1 (what SLURM sends before a time limit) ask the run to stop at the next
    epoch boundary, after a checkpoint; a second signal stops it at once. Outside the main thread (where
    Python cannot handle signals) nothing is installed."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)

    def __init__(self, early=()):
        self.received = early[0] if early else None
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.received = signal.Signals(signum).name
