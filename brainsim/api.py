"""brainsim from Python: load a config, run it, open what a run wrote; the `brainsim` command is a thin
layer over these.

    import brainsim
    cfg = brainsim.load_config("configs/demo.yaml", set={"simulation.tstop": 50})
    run = brainsim.run(cfg, output="out/demo.zarr", overwrite=True)
    run.spikes, run.traces["l5pc_soma_v"]          # xarray, read lazily from the store

For a model of one's own, subclass `Recipe` (it answers per gid: connections_on, poisson_on, ...) and
drive a `Simulation` directly: `run(until)` in pieces, `state()` / `set_state()` for forks.
"""

import json

from .config import load_config as _load_config
from .engine.run import run_simulation
from .engine.settings import SimulationSettings
from .errors import ConfigError
from .io.run_store import RunStore
from .model.checks import check_model
from .model.recipe import Recipe
from .parallel.context import Context, init_petsc


def load_config(path, set=(), *, patient=None, interventions=()):
    """The config at path, validated as `brainsim validate` does (every option, every reference, every
    cell type built once), with overrides `set` — a mapping {key.path: value} or "key.path=value"
    strings (values as YAML) — a patient overlay file and intervention files. Raises ConfigError naming
    the key path, the bad value and what is allowed."""
    config = _load_config(path, _overrides(set), patient=patient, interventions=interventions)
    try:
        check_model(Recipe(config))
    except ConfigError as e:
        raise e.from_overlay(config.overlays) from None
    return config


def _overrides(values):
    """--set items from a mapping {key.path: value} (values written as JSON, which YAML reads back)."""
    if isinstance(values, str):
        return [values]
    if hasattr(values, "items"):
        return [f"{key}={json.dumps(value)}" for key, value in values.items()]
    return list(values)


def run(
    config,
    output=None,
    *,
    overwrite=None,
    context=None,
    progress=True,
    decomposition=None,
    resume=None,
    checkpoint=None,
    checkpoint_every=None,
    petsc_args=(),
    early_signals=(),
):
    """Run a config (a loaded config or the path of one) and return its store, opened for reading.

    output: the store's path (default output.path); overwrite: replace an existing store (default
    output.overwrite); context: the ranks (default every rank of MPI_COMM_WORLD); progress: print
    progress lines on rank 0; decomposition: a Decomposition or its file; resume: a checkpoint folder
    to continue from; checkpoint: the checkpoint folder (default output.checkpoint, else beside the
    store); checkpoint_every: ms between checkpoints (default output.checkpoint_every); petsc_args:
    PETSc command-line options (taken when PETSc starts, i.e. by the first run of a process);
    early_signals: stop signals received before the call. The same errors, signals and exit states as
    `brainsim run`: Interrupted after a checkpoint, NumericalError naming the cell, ConfigError."""
    config = load_config(config) if not hasattr(config, "data") else config
    context = Context.world() if context is None else context
    out = config["output"]
    changes = {} if checkpoint_every is None else {"checkpoint_every": checkpoint_every}
    settings = SimulationSettings.from_config(config, **changes)
    init_petsc(petsc_args, comm=context.comm)
    path = output or out["path"]
    run_simulation(
        Recipe(config),
        context,
        settings,
        path,
        overwrite=out["overwrite"] if overwrite is None else overwrite,
        decomposition=decomposition,
        resume=resume,
        checkpoint=checkpoint or out["checkpoint"],
        progress=progress,
        early_signals=early_signals,
    )
    return open_run(path)


def open_run(path):
    """A run's store (written by `run`, `brainsim run`, mpiexec or a SLURM job), opened for reading:
    status, attributes, populations, and spikes, traces and region summaries as lazy xarray Datasets."""
    return RunStore.open(path)
