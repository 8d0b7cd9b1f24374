"""One ensemble member's run: its config simulated, summarised by postprocess's own summary (in process,
the `sync` scheduler; only the variables its features are computed from) and turned into the fit's
feature vector (features.feature_vector), on any runner: a thread, a Dask worker, a SLURM task or a group
of MPI ranks.
"""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainsim.api import run
from brainsim.config.load import RunConfig
from brainsim.errors import BrainsimError, NumericalError
from brainsim.parallel.context import Context
from brainsim.postprocess.layout import open_summary
from brainsim.postprocess.summarize import summarize

from .features import feature_vector, variables_of


@dataclass(frozen=True)
class MemberTask:
    """A member run: config (the resolved, checked config data of the member, patient overlay included),
    source (the base config's file, for the relative file names in it), seed (its simulation seed),
    features (the fit file's feature items, `select`s pinned to the observed labels), n_features (their
    count) and work (a folder for its run and summary stores; default a temporary one)."""

    config: dict
    source: str | None
    seed: int
    features: tuple
    n_features: int
    work: str | None = None


def run_member(task: MemberTask, context=None) -> np.ndarray:
    """The member's feature vector (n_features,); NaN everywhere when its simulation blows up (a parameter
    set the model cannot run). context: the ranks that run it (default this process alone); every rank
    returns the vector."""
    if context is None:
        from mpi4py import MPI

        context = Context(MPI.COMM_SELF)
    data = dict(task.config)
    data["simulation"] = {**data["simulation"], "seed": int(task.seed)}
    data["summary"] = {**data["summary"], "alerts": []}
    config = RunConfig(data, None if task.source is None else Path(task.source))
    folder = _folder(task.work, context)
    try:
        values = None
        try:
            run(config, folder / "run.zarr", overwrite=True, context=context, progress=False)
        except NumericalError:
            values = np.full(task.n_features, np.nan)
        if values is None and context.is_root:
            summary = summarize(
                folder / "run.zarr", folder / "summary.zarr", scheduler="sync",
                variables=variables_of(task.features), log=_quiet,
            )  # fmt: skip
            values, _ = feature_vector(open_summary(summary.path), list(task.features))
        values = context.comm.bcast(values, root=0) if context.size > 1 else values
    finally:
        if context.is_root:
            shutil.rmtree(folder, ignore_errors=True)
    if values.size != task.n_features:
        raise BrainsimError(
            f"a member's summary gave {values.size} feature values, expected {task.n_features}"
        )
    return values


def _folder(work, context):
    """A fresh folder for the member's stores, the same on every rank of the context."""
    path = None
    if context.is_root:
        if work is None:
            path = tempfile.mkdtemp(prefix="brainsim-member-")
        else:
            Path(work).mkdir(parents=True, exist_ok=True)
            path = tempfile.mkdtemp(prefix="member-", dir=work)
    return Path(context.comm.bcast(path, root=0) if context.size > 1 else path)


def _quiet(*args, **kwargs):
    """Member summaries print nothing: the fit reports per iteration."""
