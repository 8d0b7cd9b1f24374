"""A run store (``brainsim-run``) as post-processing sees it: its regions and the mapping of gids to regions
and cell kinds. The store is opened and checked by brainsim.io.run_store.RunStore."""

from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np

from brainsim.errors import StoreError
from brainsim.io.run_store import STORE_FAULTS, RunStore

from .spikes import KINDS, CellMap


@dataclass
class RunView:
    store: RunStore
    labels: list  # region labels
    hemisphere: list
    centres: np.ndarray  # (n_regions, 3) mm, NaN where unknown
    cells: CellMap
    n_cells: np.ndarray  # (n_regions,) per kind: n_cells[:, k] for KINDS[k]
    t_end: float  # ms: how far the run's outputs are complete
    region_bin: float | None  # ms: the run's regions group bin, None without one
    sc_weights: np.ndarray | None = None  # (n_regions, n_regions) weights[target, source], None if not stored
    sc_tract_lengths: np.ndarray | None = None  # (n_regions, n_regions) mm

    @classmethod
    def open(cls, path):
        """Open the run store at path; StoreError if it is not one or is damaged."""
        store = RunStore.open(Path(path).resolve())
        pops = store.populations
        t_end = min(store.t_reached, store.tstop)
        regions, structure = store.regions, {}
        if regions is not None:
            try:
                labels = [str(x) for x in regions["region"].values]
                hemisphere = [str(x) for x in regions["hemisphere"].values]
                centres = np.stack([regions[f"centre_{a}"].values for a in "xyz"], axis=1)
                region_bin = float(regions.attrs["bin"])
                connectivity = store.connectivity
                for name in ("sc_weights", "sc_tract_lengths"):
                    if connectivity is not None and name in connectivity:
                        structure[name] = connectivity[name].values.astype(np.float64)
            except STORE_FAULTS as e:
                raise StoreError(store.path, f"unreadable group regions ({type(e).__name__}: {e})") from None
            index = {label: k for k, label in enumerate(labels)}
            region_of = [index.get(p.region, -1) if p.region is not None else -1 for p in pops]
        else:  # no brain: every population is a region
            labels = [p.name for p in pops]
            hemisphere = [""] * len(labels)
            centres = np.full((len(labels), 3), np.nan)
            region_of = list(range(len(pops)))
            region_bin = None
        n_total = sum(p.count for p in pops)
        region = np.full(n_total, -1, dtype=np.int32)
        kind = np.zeros(n_total, dtype=np.int8)
        n_cells = np.zeros((len(labels), len(KINDS)), dtype=np.int64)
        for p, r in zip(pops, region_of):
            cells = slice(p.first_gid, p.first_gid + p.count)
            k = KINDS.index(p.kind) if p.kind in KINDS else 0
            region[cells], kind[cells] = r, k
            if r >= 0:
                n_cells[r, k] += p.count
        cells = CellMap(region, kind, len(labels))
        return cls(store, labels, hemisphere, centres, cells, n_cells, t_end, region_bin, **structure)

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def t_start(self) -> float:
        """ms: where the run's outputs start (a fork's future: its fork time; else 0)."""
        return self.store.fork_time

    @property
    def v_mean(self):
        """The run's regions v_mean (time, region) in mV as a dask array, or None."""
        if self.region_bin is None:
            return None
        array = self.store.array("regions/v_mean")
        return da.from_array(array, chunks=array.chunks, asarray=False)

    def raster_gids(self, per_region=10, most=1000):
        """Sorted gids of a raster sample: the first cells of each region, at most `most` in all."""
        order = np.argsort(self.cells.region, kind="stable")
        starts = np.searchsorted(self.cells.region[order], np.arange(len(self.labels)))
        ends = np.searchsorted(self.cells.region[order], np.arange(len(self.labels)), side="right")
        picks = [order[a : min(b, a + per_region)] for a, b in zip(starts, ends)]
        return np.sort(np.concatenate(picks + [np.zeros(0, np.int64)]))[:most].astype(np.int64)
