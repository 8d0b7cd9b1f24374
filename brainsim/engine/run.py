"""Run a config end to end: build, simulate, write the store, mark it complete or failed."""

import signal
from pathlib import Path

from ..errors import BrainsimError, Interrupted
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
        store = RunStore.create(
            path, config=config.data, config_hash=config.hash(), counts=sim.counts, overwrite=overwrite
        )
    try:
        with StopSignals() as stop:
            summary = sim.run(
                store,
                default_progress_stream(context) if progress else None,
                stop_requested=lambda: stop.received,
            )
    except BaseException as e:
        if store is not None:
            reason = "interrupted" if isinstance(e, (KeyboardInterrupt, Interrupted)) else type(e).__name__
            store.finish("failed", error=f"{reason}: {e}", t_reached=sim.observer.t_prev)
        raise
    finally:
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


class StopSignals:
    """SIGINT and SIGTERM ask the run to stop at the next epoch boundary (after its outputs are written);
    a second signal stops it at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received = None

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
