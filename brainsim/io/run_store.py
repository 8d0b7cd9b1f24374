"""Reading a run store (layout: brainsim.io.zarr_store): its attributes checked and typed, its datasets
opened lazily with xarray. Every problem of the stored files is a StoreError naming the store and the
attribute, group or array."""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zarr

from ..errors import StoreError
from .zarr_store import FORMAT, FORMAT_VERSION, STATUSES

if TYPE_CHECKING:  # xarray and dask load where a store is read, not by every run that writes one
    import xarray as xr

REQUIRED = ("config", "status", "t_reached", "counts", "populations")
POPULATION_KEYS = ("name", "region", "cell_type", "first_gid", "count", "kind")
STORE_FAULTS = (OSError, ValueError, KeyError, TypeError, RuntimeError, zarr.errors.BaseZarrError)
"""What zarr, xarray and json raise on missing, corrupt or unexpected files (JSONDecodeError is a
ValueError, a failed decompression a RuntimeError)."""
READ_FAULTS = (OSError, ValueError, RuntimeError, zarr.errors.BaseZarrError)
"""What reading the chunks of an array raises when they are damaged (truncated, not decodable)."""


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
    def open(cls, path) -> RunStore:
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
            raise StoreError(path, f"unreadable Zarr metadata in zarr.json ({_diagnose(path, e)})") from None
        _check_nodes(path, root)
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
    def parent(self) -> str | None:
        """A fork's future: the absolute path of the run store or checkpoint its state came from; None for
        a run from t = 0."""
        return self._attrs.get("parent")

    @property
    def fork_time(self) -> float:
        """ms: where the store's outputs start (a fork's future: its fork time; 0 for a run from t = 0)."""
        value = self._attrs.get("fork_time", 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= self.tstop:
            raise StoreError(
                self._path, f"attribute fork_time is {value!r}; expected a time (ms) from 0 to tstop"
            )
        return float(value)

    @property
    def state_hash(self) -> str | None:
        """A fork's future: RunConfig.state_hash(fork_time) of its config (what determined its state at the
        fork); None for a run from t = 0."""
        return self._attrs.get("state_hash")

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
    def writer(self) -> dict:
        """Who writes (or wrote) the store: host, pid, slurm_job_id, heartbeat_s (s); {} if not recorded."""
        writer = self._attrs.get("writer", {})
        if not isinstance(writer, dict):
            raise StoreError(
                self._path, f"attribute writer is {writer!r}; expected a mapping (host, pid, ...)"
            )
        return writer

    @property
    def heartbeat(self) -> datetime | None:
        """When the writer last showed it was alive (its last publish for stores without a heartbeat)."""
        text = self._attrs.get("heartbeat", (self.progress or {}).get("updated"))
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except (TypeError, ValueError):
            raise StoreError(
                self._path, f"attribute heartbeat is {text!r}; expected an ISO 8601 time"
            ) from None

    def liveness(self, now: datetime | None = None) -> Liveness | None:
        """Whether the writer of a running store is alive (None for a finished store): "dead" when it ran on
        this host and its process is gone, "stale" when its heartbeat is older than STALE_BEATS of its
        intervals (it died elsewhere, or hangs), else "alive"."""
        if self.status != "running":
            return None
        writer, beat = self.writer, self.heartbeat
        interval = writer.get("heartbeat_s") or self._config.get("output", {}).get("flush_interval") or 10.0
        now = datetime.now(timezone.utc) if now is None else now
        age = None if beat is None else max(0.0, (now - beat).total_seconds())
        pid = writer.get("pid")
        if writer.get("host") == socket.gethostname() and isinstance(pid, int) and not _process_exists(pid):
            state = "dead"
        elif age is not None and age > max(STALE_BEATS * interval, interval + 5.0):
            state = "stale"
        else:
            state = "alive"
        return Liveness(state, beat, age, float(interval), writer)

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
        """Region rows of a run with a brain (rate Hz, v_mean mV on time, region; attrs bin ms), or None.
        StoreError if a chunk of the rows written (up to t_reached) or of the labels is not stored."""
        if "regions" not in self._root:
            return None
        try:
            group = self._root["regions"]
            bin_ms, n_cells = float(group.attrs["bin"]), group["n_cells"][:]
            arrays = {name: group[name] for name in ("rate", "v_mean", "region", "hemisphere")}
        except STORE_FAULTS as e:
            raise StoreError(self._path, f"unreadable group regions ({_reason(e)})") from None
        n_bins = arrays["rate"].shape[0]
        reached = self.t_reached - self.fork_time
        done = n_bins if self.t_reached >= self.tstop else math.floor(reached / bin_ms + 1e-9)
        if n_cells.sum() > 0:  # rows of regions without cells are NaN, the fill value
            for name in ("rate", "v_mean"):
                self._check_chunks(f"regions/{name}", arrays[name], min(done, n_bins))
        for name in ("region", "hemisphere"):
            self._check_chunks(f"regions/{name}", arrays[name], arrays[name].shape[0])
        return self._dataset("regions")

    @property
    def connectivity(self) -> xr.Dataset | None:
        """The structural connectivity the brain was built from: sc_weights (connectome units) and
        sc_tract_lengths (mm) on (region, region_source), weights[target, source]; None for a run without
        a brain or a store written before brainsim stored it. StoreError if its arrays are damaged."""
        regions = self.regions
        if regions is None or "sc_weights" not in regions:
            return None
        for name in ("sc_weights", "sc_tract_lengths"):
            if name in regions:
                self._check_chunks(f"regions/{name}", self._root[f"regions/{name}"], regions.sizes["region"])
        return regions[[name for name in ("sc_weights", "sc_tract_lengths") if name in regions]]

    def array(self, name) -> StoredArray:
        """The array `name` of the store (e.g. "spikes/time") for reading by index, in Dask tasks too:
        chunks that cannot be read are a StoreError naming the store and the array."""
        return StoredArray(self._path, name)

    def _dataset(self, group) -> xr.Dataset:
        try:
            import xarray as xr

            return guarded(xr.open_zarr(self._path, group=group, zarr_format=3), self._path, group)
        except STORE_FAULTS as e:
            raise StoreError(self._path, f"unreadable group {group} ({_reason(e)})") from None

    @property
    def n_spikes(self) -> int:
        """The number of spikes stored (without opening them)."""
        return int(self._root["spikes/time"].shape[0])

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
        self._check_chunks("spikes/time", time, time.shape[0])
        if gid.fill_value < 0:  # stores whose gid fill value is 0 may leave chunks of gid 0 unstored
            self._check_chunks("spikes/gid", gid, gid.shape[0])

    def _check_chunks(self, name, array, rows) -> None:
        """Every chunk of `array` (the store's array `name`) holding its first `rows` rows must be
        stored: used where the fill value never occurs in written data, so an absent chunk was lost."""
        grid = [math.ceil(n / c) for n, c in zip(array.shape, array.chunks)]
        grid[0] = min(grid[0], math.ceil(rows / array.chunks[0]))
        folder = self._path.joinpath(*name.split("/"))
        lost = [
            index
            for index in itertools.product(*(range(n) for n in grid))
            if not (folder / array.metadata.encode_chunk_key(index)).is_file()
        ]
        if lost:
            total = math.prod(grid)
            raise StoreError(
                self._path,
                f"array {name} lacks {len(lost)} of its {total} chunks (first: chunk "
                f"{'.'.join(map(str, lost[0]))}): the store is damaged",
            )


STALE_BEATS = 3
"""A running store whose heartbeat is older than this many heartbeat intervals (and 5 s) is stale."""


@dataclass(frozen=True)
class Liveness:
    """What a running store's heartbeat says: state "alive", "stale" or "dead"; the last heartbeat and its
    age (s), the interval (s) the writer renews it at, and the writer (host, pid, slurm_job_id)."""

    state: str
    heartbeat: datetime | None
    age_s: float | None
    interval_s: float
    writer: dict

    @property
    def who(self) -> str:
        """The writer in words: 'pid 123 on node7, SLURM job 45'."""
        w = self.writer
        parts = [f"pid {w['pid']} on {w.get('host', '?')}"] if "pid" in w else []
        if w.get("slurm_job_id"):
            parts.append(f"SLURM job {w['slurm_job_id']}")
        return ", ".join(parts) or "a writer that did not record itself"


def _process_exists(pid: int) -> bool:
    """Whether process pid exists on this host and is not a zombie (killed, not yet reaped)."""
    if Path("/proc/self/stat").is_file():
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _LazyTraces(Mapping):
    """The trace sets of a store by name, each opened with xarray when looked up."""

    def __init__(self, store: RunStore):
        self._store = store

    def __getitem__(self, name) -> xr.Dataset:
        """The trace set's Dataset; StoreError if a chunk of its probes' locations is lost (a lost chunk
        of samples reads as NaN, samples not written)."""
        if name not in self._store.trace_sets:
            raise KeyError(name)
        store = self._store
        try:
            location = store._root[f"traces/{name}/location"]
        except STORE_FAULTS as e:
            raise StoreError(store.path, f"unreadable group traces/{name} ({_reason(e)})") from None
        store._check_chunks(f"traces/{name}/location", location, location.shape[0])
        return store._dataset(f"traces/{name}")

    def __iter__(self):
        return iter(self._store.trace_sets)

    def __len__(self) -> int:
        return len(self._store.trace_sets)


class StoredArray:
    """One array of a run store read by index like a NumPy array, also in other processes (Dask
    workers): chunks that cannot be read (truncated, not decodable) are a StoreError naming the store
    and the array."""

    def __init__(self, path, name):
        self.path, self.name, self._zarr = str(path), name, None
        array = self._array()
        self.shape, self.dtype, self.chunks, self.ndim = array.shape, array.dtype, array.chunks, array.ndim

    def _array(self):
        if self._zarr is None:
            try:
                self._zarr = zarr.open_group(self.path, mode="r", zarr_format=3)[self.name]
            except STORE_FAULTS as e:
                raise StoreError(self.path, f"unreadable array {self.name} ({_reason(e)})") from None
        return self._zarr

    def __getstate__(self):  # another process opens the array itself
        return {**self.__dict__, "_zarr": None}

    def __getitem__(self, key) -> np.ndarray:
        try:
            return np.asarray(self._array()[key])
        except READ_FAULTS as e:
            raise StoreError(
                self.path, f"array {self.name}: unreadable chunk data ({_reason(e)}): the store is damaged"
            ) from None

    def __dask_tokenize__(self):
        return (type(self).__name__, self.path, self.name, self.shape)


def guarded(ds, path, group=None) -> xr.Dataset:
    """ds, opened lazily with xarray from the Zarr store at path (its group), with every variable read
    lazily through a StoredArray: a damaged chunk is a StoreError naming the store and the array."""
    import dask.array as da
    import xarray as xr

    prefix = "" if group is None else f"{group}/"

    def reread(name, var):
        if not isinstance(var.data, da.Array):
            return var  # read at opening (indexes)
        data = da.from_array(StoredArray(path, prefix + name), chunks=var.data.chunks, asarray=False)
        return xr.Variable(var.dims, data, var.attrs)

    return xr.Dataset(
        {name: reread(name, var) for name, var in ds.data_vars.variables.items()},
        coords={name: reread(name, var) for name, var in ds.coords.variables.items()},
        attrs=ds.attrs,
    )


def _diagnose(path, error) -> str:
    """Why the root metadata could not be read: the consolidated copy in zarr.json is damaged when the
    store opens without it."""
    try:
        zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)
    except STORE_FAULTS:
        return _reason(error)
    return f"its consolidated metadata of the store's nodes is damaged: {_reason(error)}"


def _check_nodes(path, root) -> None:
    """Every node the consolidated metadata lists has a readable zarr.json of its own (what writers and
    readers without consolidated metadata use)."""
    consolidated = root.metadata.consolidated_metadata
    for name in [] if consolidated is None else consolidated.flattened_metadata:
        file = path.joinpath(*name.split("/"), "zarr.json")
        try:
            meta = json.loads(file.read_text())
        except (OSError, ValueError) as e:
            raise StoreError(path, f"node {name}: unreadable {file.name} ({_reason(e)})") from None
        if not isinstance(meta, dict) or meta.get("node_type") not in ("group", "array"):
            raise StoreError(path, f"node {name}: its zarr.json is not Zarr metadata")


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
