"""Reading a run store (``brainsim-run``) for post-processing: its attributes, its regions and the
mapping of gids to regions and cell kinds. Reads the store's layout only (brainsim.io.zarr_store)."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from brainsim.io.zarr_store import FORMAT as RUN_FORMAT

from .spikes import KINDS, CellMap


@dataclass
class RunView:
    path: Path
    attrs: dict
    config: dict
    labels: list  # region labels
    hemisphere: list
    centres: np.ndarray  # (n_regions, 3) mm, NaN where unknown
    cells: CellMap
    n_cells: np.ndarray  # (n_regions,) per kind: n_cells[:, k] for KINDS[k]
    t_end: float  # ms: how far the run's outputs are complete
    region_bin: float | None  # ms: the run's regions group bin, None without one

    @classmethod
    def open(cls, path):
        """Open the run store at path; ValueError if it is not one."""
        path = Path(path).resolve()
        if not (path / "zarr.json").is_file():
            raise ValueError(f"{path} is not a Zarr store (no zarr.json)")
        root = zarr.open_group(path, mode="r")
        attrs = root.attrs.asdict()
        if attrs.get("format") != RUN_FORMAT:
            raise ValueError(
                f"{path} is not a run store (format {attrs.get('format')!r}, expected {RUN_FORMAT!r})"
            )
        if "populations" not in attrs:
            raise ValueError(f"{path} has no population table (written by brainsim < 0.1): run it again")
        config = json.loads(attrs["config"])
        t_end = min(float(attrs.get("t_reached", 0.0)), float(config["simulation"]["tstop"]))
        pops = attrs["populations"]
        if "regions" in root:
            group = root["regions"]
            labels = [str(x) for x in group["region"][:]]
            hemisphere = [str(x) for x in group["hemisphere"][:]]
            centres = np.stack([group[f"centre_{a}"][:] for a in "xyz"], axis=1)
            index = {label: k for k, label in enumerate(labels)}
            region_of = [index.get(p["region"], -1) if p["region"] is not None else -1 for p in pops]
            region_bin = float(group.attrs["bin"])
        else:  # no brain: every population is a region
            labels = [p["name"] for p in pops]
            hemisphere = [""] * len(labels)
            centres = np.full((len(labels), 3), np.nan)
            region_of = list(range(len(pops)))
            region_bin = None
        n_total = sum(p["count"] for p in pops)
        region = np.full(n_total, -1, dtype=np.int32)
        kind = np.zeros(n_total, dtype=np.int8)
        n_cells = np.zeros((len(labels), len(KINDS)), dtype=np.int64)
        for p, r in zip(pops, region_of):
            cells = slice(p["first_gid"], p["first_gid"] + p["count"])
            k = KINDS.index(p["kind"]) if p["kind"] in KINDS else 0
            region[cells], kind[cells] = r, k
            if r >= 0:
                n_cells[r, k] += p["count"]
        return cls(
            path,
            attrs,
            config,
            labels,
            hemisphere,
            centres,
            CellMap(region, kind, len(labels)),
            n_cells,
            t_end,
            region_bin,
        )

    @property
    def v_mean(self):
        """The run's regions/v_mean (time, region) zarr array, or None."""
        root = zarr.open_group(self.path, mode="r")
        return root["regions/v_mean"] if "regions" in root else None

    def raster_gids(self, per_region=10, most=1000):
        """Sorted gids of a raster sample: the first cells of each region, at most `most` in all."""
        order = np.argsort(self.cells.region, kind="stable")
        starts = np.searchsorted(self.cells.region[order], np.arange(len(self.labels)))
        ends = np.searchsorted(self.cells.region[order], np.arange(len(self.labels)), side="right")
        picks = [order[a : min(b, a + per_region)] for a, b in zip(starts, ends)]
        return np.sort(np.concatenate(picks + [np.zeros(0, np.int64)]))[:most].astype(np.int64)
