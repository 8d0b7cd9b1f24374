"""Run a config end to end: build, simulate, write the store, mark it complete or failed."""

import signal
from pathlib import Path

from ..errors import BrainsimError
from ..io.zarr_store import RunStore
from ..parallel.context import init_petsc
from .simulation import Simulation, default_progress_stream


def check_output(path, overwrite):
    """Fail before any work if the output exists and may not be replaced."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise BrainsimError(
            f"output {path} already exists: pass --overwrite (or output.overwrite: true) to "
            "replace it, or -o to write elsewhere"
        )


def run_config(config, context, *, output=None, overwrite=None, petsc_args=(), progress=True):
    """Simulate config and write its store; returns (RunSummary, store path or None)."""
    path = Path(output or config["output"]["path"])
    overwrite = config["output"]["overwrite"] if overwrite is None else overwrite
    write = context.is_root
    if write:
        check_output(path, overwrite)
    PETSc = init_petsc(petsc_args, comm=context.comm)
    sim = Simulation(config, context, PETSc)  # every model-level check runs here, before anything is written
    store = None
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        store = RunStore.create(path, config=config.data, counts=sim.counts, overwrite=overwrite)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        summary = sim.run(store, default_progress_stream(context) if progress else None)
    except BaseException as e:
        if store is not None:
            reason = "interrupted" if isinstance(e, KeyboardInterrupt) else type(e).__name__
            store.finish("failed", error=f"{reason}: {e}", t_reached=None)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        sim.close()
    if store is not None:
        store.finish(
            "complete",
            timing={
                "build_s": summary.build_s,
                "run_s": summary.run_s,
                "ns_per_compartment_step": summary.ns_per_compartment_step,
            },
            t_reached=summary.t_end,
        )
    return summary, path if write else None


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
