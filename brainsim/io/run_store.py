"""Reading a run store (layout: brainsim.io.zarr_store): its attributes checked and typed, its datasets
opened lazily with xarray. Every problem of the stored files is a StoreError naming the store and the
attribute, group or array."""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import xarray as xr
import zarr

from ..errors import StoreError
from .zarr_store import FORMAT, FORMAT_VERSION, STATUSES

REQUIRED = ("config", "status", "t_reached", "counts", "populations")
POPULATION_KEYS = ("name", "region", "cell_type", "first_gid", "count", "kind")
STORE_FAULTS = (OSError, ValueError, KeyError, TypeError, RuntimeError, zarr.errors.BaseZarrError)
"""What zarr, xarray and json raise on missing, corrupt or unexpected files (JSONDecodeError is a
ValueError, a failed decompression a RuntimeError)."""


@dataclass(frozen=True)
class PopulationRow:
    """One population of the run: its cells are the gids first_gid .. first_gid + count - 1."""

    name: str
    region: str | None  # region label, None outside a brain
    cell_type: str
    first_gid: int
    count: int
    kind: str  # "excitatory", "inhibitory" or ""


class RunStore:
    """A run store opened for reading (`RunStore.open`): attributes as properties, datasets lazily."""

    def __init__(self, path: Path, root: zarr.Group, attrs: dict):
        self._path, self._root, self._attrs = path, root, attrs
        self._config = _config(path, attrs["config"])
        self._populations = _populations(path, attrs["populations"])
        try:
            self._trace_sets = tuple(root["traces"].attrs["trace_sets"])
        except STORE_FAULTS as e:
            raise StoreError(
                path, f"unreadable traces group or trace_sets attribute ({_reason(e)})"
            ) from None
        self._traces = _LazyTraces(self)
        self._check_spikes()

    @classmethod
    def open(cls, path) -> "RunStore":
        """The run store at `path`, checked: a Zarr v3 group of format "brainsim-run" of a known
        format_version, with every required attribute, and every chunk of its spike times stored."""
        path = Path(path)
        if not (path / "zarr.json").is_file():
            what = "a folder without zarr.json" if path.is_dir() else "nothing there"
            raise StoreError(path, f"not a run store ({what}; expected a Zarr v3 store of format {FORMAT!r})")
        try:
            root = zarr.open_group(path, mode="r", zarr_format=3)
            attrs = root.attrs.asdict()
        except STORE_FAULTS as e:
            raise StoreError(path, f"unreadable Zarr metadata in zarr.json ({_reason(e)})") from None
        if attrs.get("format") != FORMAT:
            raise StoreError(path, f"not a run store (format {attrs.get('format')!r}, expected {FORMAT!r})")
        version = attrs.get("format_version")
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise StoreError(
                path,
                f"run store format_version {version!r}; this brainsim reads versions 1 to {FORMAT_VERSION}: "
                f"read it with the brainsim that wrote it ({attrs.get('brainsim_version', '?')})",
            )
        missing = [key for key in REQUIRED if key not in attrs]
        if missing:
            raise StoreError(path, f"run store lacks the attribute(s) {', '.join(missing)}")
        if attrs["status"] not in ("running", *STATUSES):
            raise StoreError(
                path, f"attribute status is {attrs['status']!r}; expected one of {['running', *STATUSES]}"
            )
        return cls(path, root, attrs)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def attrs(self) -> dict:
        """The root attributes as stored (config as JSON text)."""
        return dict(self._attrs)

    @property
    def status(self) -> str:
        """One of running, complete, failed, interrupted."""
        return self._attrs["status"]

    @property
    def error(self) -> str | None:
        """What stopped a failed or interrupted run."""
        return self._attrs.get("error")

    @property
    def t_reached(self) -> float:
        """ms: how far every output of the run is complete."""
        return float(self._attrs["t_reached"])

    @property
    def tstop(self) -> float:
        """ms: the end of the run, from its config."""
        return float(self._config["simulation"]["tstop"])

    @property
    def config(self) -> dict:
        """The run's resolved config."""
        return self._config

    @property
    def config_hash(self) -> str:
        return self._attrs.get("config_hash", "")

    @property
    def counts(self) -> dict:
        """cells, compartments, equations."""
        return dict(self._attrs["counts"])

    @property
    def timing(self) -> dict | None:
        """build_s, run_s (s) and ns_per_compartment_step of a finished run, else None."""
        return self._attrs.get("timing")

    @property
    def provenance(self) -> dict:
        """Where the model came from: config file, overlay files, patient id, connectome."""
        return self._attrs.get("provenance", {})

    @property
    def progress(self) -> dict | None:
        """The writer's pace: since, t_from (ms), wall_s (s), updated; None before its first publish."""
        return self._attrs.get("progress")

    @property
    def populations(self) -> tuple:
        """The run's PopulationRows, in gid order."""
        return self._populations

    @property
    def spikes(self) -> xr.Dataset:
        """gid (int64) and time (ms) on dimension spike, sorted by (time, gid); lazy."""
        return self._dataset("spikes")

    @property
    def trace_sets(self) -> tuple:
        """Names of the trace sets, in the order they were added."""
        return self._trace_sets

    @property
    def traces(self) -> Mapping:
        """Read-only {trace set name: xarray Dataset}; each opened lazily when it is looked up."""
        return self._traces

    @property
    def regions(self) -> xr.Dataset | None:
        """Region rows of a run with a brain (rate Hz, v_mean mV on time, region; attrs bin ms), or None."""
        return self._dataset("regions") if "regions" in self._root else None

    def _dataset(self, group) -> xr.Dataset:
        try:
            return xr.open_zarr(self._path, group=group, zarr_format=3)
        except STORE_FAULTS as e:
            raise StoreError(self._path, f"unreadable group {group} ({_reason(e)})") from None

    def _check_spikes(self) -> None:
        """Every chunk of spikes/time must be stored: its fill value is NaN and spike times are finite,
        so a chunk absent from the store was lost, not left empty."""
        try:
            gid, time = self._root["spikes/gid"], self._root["spikes/time"]
        except STORE_FAULTS as e:
            raise StoreError(self._path, f"unreadable spikes group ({_reason(e)})") from None
        if gid.shape != time.shape:
            raise StoreError(
                self._path, f"spikes/gid {gid.shape} and spikes/time {time.shape} differ in length"
            )
        folder = self._path / "spikes" / "time"
        chunks = math.ceil(time.shape[0] / time.chunks[0])
        lost = [i for i in range(chunks) if not (folder / time.metadata.encode_chunk_key((i,))).is_file()]
        if lost:
            raise StoreError(
                self._path,
                f"array spikes/time lacks {len(lost)} of its {chunks} chunks (first: chunk {lost[0]}): "
                "the store is damaged",
            )


class _LazyTraces(Mapping):
    """The trace sets of a store by name, each opened with xarray when looked up."""

    def __init__(self, store: RunStore):
        self._store = store

    def __getitem__(self, name) -> xr.Dataset:
        if name not in self._store.trace_sets:
            raise KeyError(name)
        return self._store._dataset(f"traces/{name}")

    def __iter__(self):
        return iter(self._store.trace_sets)

    def __len__(self) -> int:
        return len(self._store.trace_sets)


def _config(path, text) -> dict:
    try:
        config = json.loads(text)
        float(config["simulation"]["tstop"])
    except (TypeError, ValueError, KeyError) as e:
        raise StoreError(
            path, f"attribute config is not the JSON text of a config with simulation.tstop ({_reason(e)})"
        ) from None
    return config


def _populations(path, rows) -> tuple:
    if not isinstance(rows, list):
        raise StoreError(path, f"attribute populations is {rows!r}; expected a list of population rows")
    table = []
    for i, row in enumerate(rows):
        if (
            not isinstance(row, dict)
            or set(row) != set(POPULATION_KEYS)
            or not all(isinstance(row[key], int) and row[key] >= 0 for key in ("first_gid", "count"))
        ):
            raise StoreError(
                path,
                f"attribute populations[{i}] is {row!r}; expected a mapping of {list(POPULATION_KEYS)} "
                "with whole numbers >= 0 for first_gid and count",
            )
        table.append(PopulationRow(**row))
    return tuple(table)


def _reason(error) -> str:
    return f"{type(error).__name__}: {error}"
