"""Run a config end to end on every rank: build, simulate, write the store, mark it complete, failed or
interrupted; checkpoint on request and on SIGTERM/SIGUSR1; resume from a checkpoint."""

import signal
from pathlib import Path

from ..errors import BrainsimError, Interrupted
from ..io.checkpoint import open_checkpoint
from ..parallel.context import agree, init_petsc
from ..parallel.exchange import exchange_spikes
from ..parallel.partition import Decomposition
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


def run_config(
    config,
    context,
    *,
    output=None,
    overwrite=None,
    petsc_args=(),
    progress=True,
    decomposition=None,
    resume=None,
    early_signals=(),
):
    """Simulate config on every rank of context and write its store; returns (RunSummary, store path).

    decomposition: a Decomposition or the path of one (`brainsim partition -o`); resume: a checkpoint
    folder to continue from (the store at the output path is continued); early_signals: names of stop
    signals received before the run could handle them (it then stops at its first epoch boundary)."""
    path = Path(output or config["output"]["path"])
    overwrite = config["output"]["overwrite"] if overwrite is None else overwrite
    folder = Path(config["output"]["checkpoint"] or default_checkpoint(path))
    error, manifest = None, None
    try:
        if resume is not None:
            manifest = open_checkpoint(resume)
        elif context.is_root:
            check_output(path, overwrite)
    except BrainsimError as e:
        error = e
    agree(context, error)
    PETSc = init_petsc(petsc_args, comm=context.comm)
    if isinstance(decomposition, (str, Path)):
        from ..model.recipe import Recipe

        decomposition = Decomposition.load(decomposition, context.size, Recipe(config).num_cells)
    sim = Simulation(config, context, PETSc, decomposition)  # every model-level check runs here
    try:
        if manifest is not None:
            sim.restore(manifest)
        if context.is_root:
            path.parent.mkdir(parents=True, exist_ok=True)
        out = Output(
            context,
            path,
            config=config,
            counts=sim.counts,
            probes=sim.probes,
            sampling=sim.sampling,
            tstop=sim.tstop,
            overwrite=overwrite,
            resume_from=None if manifest is None else manifest["time"],
            regions=sim.regions,
            provenance=sim.provenance,
            populations=sim.recipe.population_table(),
        )
        every = config["output"]["checkpoint_every"]
        summary = _simulate(sim, out, context, progress, folder, every, early_signals)
    finally:
        sim.close()
    return summary, path if context.is_root else None


def _simulate(sim, out, context, progress, folder, every, early_signals=()):
    try:
        with StopSignals(early_signals) as stop:
            summary = sim.run(
                out,
                default_progress_stream(context) if progress else None,
                stop_requested=lambda: stop.received,
                checkpoint=(folder, every),
            )
    except Interrupted as e:
        _finish_quietly(out, context, sim, "interrupted", f"{e}; resume with --resume {folder}")
        raise
    except BaseException as e:
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else type(e).__name__
        _finish_quietly(out, context, sim, "failed", f"{reason}: {e}")
        raise
    timing = {
        "build_s": summary.build_s,
        "run_s": summary.run_s,
        "ns_per_compartment_step": summary.ns_per_compartment_step,
        "exchange_s": summary.exchange_s,  # time in the spike exchange, waiting for other ranks included
        "epochs": summary.epochs,
        "ranks": context.size,
    }
    out.finish("complete", timing=timing, t_reached=summary.t_end)
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
    epoch boundary, after a checkpoint; a second signal stops it at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)

    def __init__(self, early=()):
        self.received = early[0] if early else None

    def __enter__(self):
        self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.received = signal.Signals(signum).name
