"""SONATA spike reports: a run's spikes in the HDF5 layout that libsonata, neurodamus and BMTK read, written
beside the run store (OUT.zarr -> OUT.spikes.h5) from the store's spikes when a run with
`output.sonata: true` completes.

Layout (one group per population with cells, named as the store's populations attribute names it)::

    /spikes/<population>              attr sorting: by_time (HDF5 enum uint8 {none 0, by_id 1, by_time 2})
    /spikes/<population>/timestamps   (n,) float64, attr units "ms"
    /spikes/<population>/node_ids     (n,) uint64: gid - first_gid of the population (0-based)

Spikes are in (time, node id) order, as in the store. The file is written under a temporary name and moved
into place, so a report at the path is always whole.
"""

import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import StoreError
from ..files import writing
from .run_store import RunStore

SORTING = h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype=np.uint8)
"""The `sorting` attribute's type: libsonata's SpikeReader reads only this enum, not text or integers."""
BY_TIME = 2
BLOCK = 1 << 20  # spikes read from the store at a time


def report_path(store) -> Path:
    """Where the SONATA spike report of the run store `store` goes: OUT.zarr -> OUT.spikes.h5."""
    store = Path(store)
    return store.with_name(store.name.removesuffix(".zarr") + ".spikes.h5")


def is_spike_report(path) -> bool:
    """Whether path is a SONATA spike report: a regular HDF5 file whose only top-level node is `spikes`."""
    path = Path(path)
    if path.is_symlink() or not path.is_file() or not h5py.is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return list(f.keys()) == ["spikes"] and isinstance(f["spikes"], h5py.Group)
    except OSError:
        return False


def check_report(path, overwrite: bool) -> None:
    """Refuse to start a run whose report path is taken: by anything when not `overwrite`, else by
    something that is not a SONATA spike report (StoreError naming the path)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise StoreError(
            path,
            "the SONATA spike report (output.sonata) already exists: pass --overwrite (or output.overwrite: "
            "true) to replace it, or -o to write elsewhere",
        )
    if not is_spike_report(path):
        raise StoreError(
            path,
            "will not overwrite it: not a SONATA spike report (an HDF5 file holding only the group spikes); "
            "move it away first",
        )


def discard_report(path) -> None:
    """Remove the SONATA spike report at path (a store replaced or continued makes it stale); anything else
    there is left alone."""
    if is_spike_report(path):
        with writing(path, "the SONATA spike report"):
            Path(path).unlink()


def write_spike_report(path, store: RunStore) -> Path:
    """Write the spikes of `store` (a RunStore) as a SONATA spike report at path, one population per
    population of the store with cells; returns the path. Reads the spikes in blocks of BLOCK."""
    path = Path(path)
    populations = [p for p in store.populations if p.count > 0]
    for p in populations:
        if "/" in p.name or p.name in ("", ".", ".."):
            raise StoreError(
                path, f"population {p.name!r} cannot name an HDF5 group (no '/', not '.' or '..')"
            )
    starts = np.array([p.first_gid for p in populations], dtype=np.int64)
    gid, time = store.array("spikes/gid"), store.array("spikes/time")
    n = gid.shape[0]
    counts = np.zeros(len(populations), dtype=np.int64)
    for first in range(0, n, BLOCK):
        counts += np.bincount(_owner(starts, gid[first : first + BLOCK]), minlength=len(populations))
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path, "the SONATA spike report"):
        try:
            with h5py.File(staging, "w") as f:
                datasets = []
                for p, count in zip(populations, counts):
                    group = f.create_group(f"spikes/{p.name}")
                    group.attrs.create("sorting", BY_TIME, dtype=SORTING)
                    timestamps = group.create_dataset("timestamps", shape=(count,), dtype=np.float64)
                    timestamps.attrs["units"] = "ms"
                    datasets.append(
                        (timestamps, group.create_dataset("node_ids", shape=(count,), dtype=np.uint64))
                    )
                filled = np.zeros(len(populations), dtype=np.int64)
                for first in range(0, n, BLOCK):
                    g, t = gid[first : first + BLOCK], time[first : first + BLOCK]
                    owner = _owner(starts, g)
                    order = np.argsort(owner, kind="stable")  # each population's spikes keep their order
                    bounds = np.searchsorted(owner[order], np.arange(len(populations) + 1))
                    for k in np.flatnonzero(np.diff(bounds)):
                        rows = order[bounds[k] : bounds[k + 1]]
                        timestamps, node_ids = datasets[k]
                        timestamps[filled[k] : filled[k] + rows.size] = t[rows]
                        node_ids[filled[k] : filled[k] + rows.size] = (g[rows] - starts[k]).astype(np.uint64)
                        filled[k] += rows.size
            os.replace(staging, path)
        finally:
            staging.unlink(missing_ok=True)
    return path


def _owner(starts, gid) -> np.ndarray:
    """Index (into starts, the populations' first gids) of the population of each gid."""
    return np.searchsorted(starts, gid, side="right") - 1
