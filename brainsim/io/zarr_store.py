"""Run-output store: the Zarr v3 store a simulation run writes, which analysts open with ``xarray.open_zarr``.

Layout (``format`` "brainsim-run", ``format_version`` 1)::

    /                               attrs: format, format_version, brainsim_version, config (JSON text),
                                    config_hash, counts, status ("running" | "complete" | "failed"), error,
                                    timing, t_reached (ms)
    /spikes/gid, /spikes/time       (spike,) int64 and float64 ms, sorted by (time, gid)
    /traces                         attrs: trace_sets (the names)
    /traces/<name>/<variable>       (time, probe) float32, attr units; one xarray dataset per trace set
    /traces/<name>/time             (time,) float64 ms
    /traces/<name>/gid, compartment, location   (probe,) int64, int64, variable-length UTF-8 text

The root metadata is consolidated at every flush and zarr writes each metadata file atomically, so a
reader sees the store as of the last flush even while a run is writing it or after the run died.
"""

import json
import math
import numbers
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr
from zarr.errors import ZarrUserWarning

from brainsim import __version__

FORMAT = "brainsim-run"
FORMAT_VERSION = 1
SPIKE_CHUNK = 65536  # spikes per chunk
TIME_CHUNK = 1024  # trace samples per chunk
PROBE_CHUNK = 256  # most probes per trace chunk
AUTO_FLUSH_BYTES = 64 * 2**20  # buffered bytes above which an append flushes by itself
STATUSES = ("complete", "failed")
COUNT_KEYS = ("cells", "compartments", "equations")
TIMING_KEYS = ("build_s", "run_s", "ns_per_compartment_step")
PROBE_COORDS = ("gid", "compartment", "location")


@dataclass
class _TraceSet:
    data: zarr.Array  # (time, probe) float32
    time: zarr.Array  # (time,) float64 ms
    times: list = field(default_factory=list)  # buffered (k,) float64 ms
    values: list = field(default_factory=list)  # buffered (k, n_probe) float32
    last_time: float = -math.inf  # ms, last appended sample time


class RunStore:
    """Writer of one run's output store; start one with `RunStore.create`."""

    def __init__(self, path: Path, root: zarr.Group):
        self.path = path
        self._root = root
        self._traces_group = root["traces"]
        self._spike_gid = root["spikes/gid"]
        self._spike_time = root["spikes/time"]
        self._spikes: list = []  # buffered (gid, time) batches, each sorted
        self._last_spike = (-math.inf, -1)  # (time ms, gid) of the last appended spike
        self._traces: dict[str, _TraceSet] = {}
        self._buffered_bytes = 0
        self._t_reached = 0.0
        self._status = "running"
        self._consolidate()

    @classmethod
    def create(
        cls, path, *, config: dict, counts: dict, config_hash: str = "", overwrite: bool = False
    ) -> "RunStore":
        """Start a store at `path` with status "running"; an existing path is replaced only if `overwrite`."""
        path = Path(path)
        if path.exists() or path.is_symlink():
            if not overwrite:
                raise FileExistsError(f"{path} already exists; pass -o or --overwrite to replace it")
            replaceable = path.is_dir() and ((path / "zarr.json").is_file() or not any(path.iterdir()))
            if not replaceable or path.is_symlink():
                raise FileExistsError(f"will not overwrite {path}: not a Zarr store nor an empty folder")
            shutil.rmtree(path)
        if any(key not in counts for key in COUNT_KEYS) or not all(
            isinstance(value, numbers.Integral) for value in counts.values()
        ):
            raise ValueError(f"counts needs integer values for {list(COUNT_KEYS)}; got {counts!r}")
        attrs = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "brainsim_version": __version__,
            "config": json.dumps(config),
            "config_hash": config_hash,
            "counts": {key: int(value) for key, value in counts.items()},
            "status": "running",
            "t_reached": 0.0,
        }
        root = zarr.open_group(path, mode="w-", zarr_format=3, attributes=attrs)
        spikes = root.create_group("spikes")
        chunks = (SPIKE_CHUNK,)
        spikes.create_array("gid", shape=(0,), dtype="int64", chunks=chunks, dimension_names=["spike"])
        spikes.create_array(
            "time",
            shape=(0,),
            dtype="float64",
            chunks=chunks,
            fill_value=np.nan,
            dimension_names=["spike"],
            attributes={"units": "ms"},
        )
        root.create_group("traces", attributes={"trace_sets": []})
        return cls(path, root)

    def add_trace_set(self, name, *, variable, units, gid, compartment, location) -> None:
        """Create trace set `name`: `variable` (in `units`) at the probes (gid, compartment, location)."""
        self._check_running()
        _check_node_name("trace set name", name)
        _check_node_name("variable", variable)
        if name in self._traces:
            raise ValueError(f"trace set {name!r} already exists; trace set names must be unique")
        if variable in ("time", *PROBE_COORDS):
            raise ValueError(f"variable {variable!r} clashes with a coordinate name: time, {PROBE_COORDS}")
        gid = _integers("gid", gid)
        compartment = _integers("compartment", compartment)
        location = np.array(location, dtype=object)
        if not all(isinstance(text, str) for text in location.flat):
            raise ValueError(f"trace set {name!r}: location must be strings such as 'soma(0.5)'")
        if gid.ndim != 1 or gid.size == 0 or gid.shape != compartment.shape or gid.shape != location.shape:
            raise ValueError(
                f"trace set {name!r}: gid, compartment and location must be 1-D, non-empty, of one length; "
                f"got shapes {gid.shape}, {compartment.shape}, {location.shape}"
            )
        n_probe = gid.size
        probe_chunk = min(n_probe, PROBE_CHUNK)
        group = self._traces_group.create_group(name, attributes={"variable": variable})
        data = group.create_array(
            variable,
            shape=(0, n_probe),
            dtype="float32",
            chunks=(TIME_CHUNK, probe_chunk),
            fill_value=np.nan,
            dimension_names=["time", "probe"],
            attributes={"units": units, "coordinates": " ".join(PROBE_COORDS)},
        )
        time = group.create_array(
            "time",
            shape=(0,),
            dtype="float64",
            chunks=(TIME_CHUNK,),
            fill_value=np.nan,
            dimension_names=["time"],
            attributes={"units": "ms"},
        )
        for coord, values in zip(PROBE_COORDS, (gid, compartment, location), strict=True):
            dtype = str if coord == "location" else "int64"  # str: zarr's variable-length UTF-8 "string"
            array = group.create_array(
                coord, shape=(n_probe,), dtype=dtype, chunks=(probe_chunk,), dimension_names=["probe"]
            )
            array[:] = values
        self._traces[name] = _TraceSet(data, time)
        self._traces_group.attrs["trace_sets"] = list(self._traces)
        self._consolidate()

    def append_spikes(self, gid, time) -> None:
        """Buffer one batch of spikes (`time` in ms), sorted by (time, gid); batches come in time order."""
        self._check_running()
        gid = _integers("spike gid", gid)
        time = np.array(time, dtype=np.float64)
        if gid.ndim != 1 or gid.shape != time.shape:
            raise ValueError(f"spike gid and time must be 1-D, of one length; got {gid.shape}, {time.shape}")
        if gid.size == 0:
            return
        if not np.all(np.isfinite(time)):
            raise ValueError("spike times must be finite")
        order = np.lexsort((gid, time))
        gid, time = gid[order], time[order]
        if (time[0], gid[0]) < self._last_spike:
            t_last, gid_last = self._last_spike
            raise ValueError(
                f"spike batch starts at t={time[0]:.6g} ms (gid {gid[0]}), before the last spike appended "
                f"(t={t_last:.6g} ms, gid {gid_last}); batches must come in (time, gid) order"
            )
        self._spikes.append((gid, time))
        self._last_spike = (float(time[-1]), int(gid[-1]))
        self._add_buffered(gid.nbytes + time.nbytes)

    def append_samples(self, name, times, values) -> None:
        """Buffer samples of trace set `name`: `times` (k,) ms, increasing; `values` (k, n_probe) float32."""
        self._check_running()
        if name not in self._traces:
            raise ValueError(f"no trace set {name!r}; trace sets: {list(self._traces)}")
        trace_set = self._traces[name]
        times = np.array(times, dtype=np.float64)  # copies: the caller may reuse its buffers
        values = np.array(values, dtype=np.float32)
        n_probe = trace_set.data.shape[1]
        if times.ndim != 1 or values.shape != (times.size, n_probe):
            raise ValueError(
                f"trace set {name!r}: need times (k,) and values (k, {n_probe}); "
                f"got shapes {times.shape}, {values.shape}"
            )
        if times.size == 0:
            return
        if not (np.all(np.isfinite(times)) and np.all(np.diff(times, prepend=trace_set.last_time) > 0)):
            raise ValueError(
                f"trace set {name!r}: sample times must be finite and increase past the last appended time "
                f"({trace_set.last_time:.6g} ms); got {times[0]:.6g} .. {times[-1]:.6g} ms"
            )
        trace_set.times.append(times)
        trace_set.values.append(values)
        trace_set.last_time = float(times[-1])
        self._add_buffered(times.nbytes + values.nbytes)

    def flush(self, t_reached: float) -> None:
        """Write the buffered spikes and samples, then record `t_reached` (ms), the time fully written."""
        self._check_running()
        t_reached = float(t_reached)
        if not t_reached >= self._t_reached:
            raise ValueError(f"t_reached={t_reached} ms is before the last t_reached={self._t_reached} ms")
        if self._spikes:
            gids, times = zip(*self._spikes, strict=True)
            self._spike_gid.append(np.concatenate(gids))
            self._spike_time.append(np.concatenate(times))
            self._spikes.clear()
        for trace_set in self._traces.values():
            if trace_set.times:
                trace_set.data.append(np.concatenate(trace_set.values))
                trace_set.time.append(np.concatenate(trace_set.times))
                trace_set.times.clear()
                trace_set.values.clear()
        self._buffered_bytes = 0
        self._consolidate()  # readers see the new data only now, all at once
        self._root.attrs["t_reached"] = t_reached
        self._t_reached = t_reached

    def finish(
        self,
        status: str,
        *,
        error: str | None = None,
        timing: dict | None = None,
        t_reached: float | None = None,
    ) -> None:
        """Flush, then record the outcome: "complete", or "failed" with `error` text; `timing` in s and ns."""
        self._check_running()
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
        if (status == "failed") != (error is not None):
            raise ValueError(
                'error text is required with status "failed" and not allowed with "complete"; '
                f"got status {status!r}, error {error!r}"
            )
        attrs = {} if error is None else {"error": str(error)}
        if timing is not None:
            if any(key not in timing for key in TIMING_KEYS) or not all(
                isinstance(value, numbers.Real) for value in timing.values()
            ):
                raise ValueError(f"timing needs float values for {list(TIMING_KEYS)}; got {timing!r}")
            attrs["timing"] = {key: float(value) for key, value in timing.items()}
        self.flush(self._t_reached if t_reached is None else t_reached)
        self._root.attrs.update(attrs)
        self._root.attrs["status"] = status  # last, so "complete" is never seen before everything else
        self._status = status

    def _add_buffered(self, nbytes: int) -> None:
        self._buffered_bytes += nbytes
        if self._buffered_bytes > AUTO_FLUSH_BYTES:
            self.flush(self._t_reached)  # the caller alone knows when t_reached advances

    def _consolidate(self) -> None:
        """Rewrite the root metadata with every node's current metadata (one atomic file write)."""
        with warnings.catch_warnings():  # zarr warns that consolidation is outside the v3 spec
            warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
            self._root = zarr.consolidate_metadata(self.path)

    def _check_running(self) -> None:
        if self._status != "running":
            raise ValueError(f"run store {self.path} is finished (status {self._status!r}); no more writes")


def open_run(path) -> dict:
    """Read a run store into memory: {"attrs", "spikes": (gid, time), "traces": {name: (times, values, gid,
    compartment, location)}}; times in ms."""
    root = zarr.open_group(Path(path), mode="r")
    attrs = root.attrs.asdict()
    if attrs.get("format") != FORMAT:
        raise ValueError(f"{path} is not a brainsim run: format {attrs.get('format')!r}, not {FORMAT!r}")
    traces = {}
    for name in root["traces"].attrs["trace_sets"]:
        group = root[f"traces/{name}"]
        coords = (group[coord][:] for coord in PROBE_COORDS)
        traces[name] = (group["time"][:], group[group.attrs["variable"]][:], *coords)
    return {"attrs": attrs, "spikes": (root["spikes/gid"][:], root["spikes/time"][:]), "traces": traces}


def _check_node_name(what: str, name) -> None:
    if not isinstance(name, str) or not name or "/" in name or name.startswith("__") or set(name) == {"."}:
        raise ValueError(
            f"{what} {name!r} is not a valid Zarr node name: "
            "need non-empty text without '/', not all dots, not starting with '__'"
        )


def _integers(what: str, values) -> np.ndarray:
    """`values` as a new int64 array; refuses non-integer input rather than truncating it."""
    array = np.asarray(values)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must be integers; got dtype {array.dtype}")
    return array.astype(np.int64)
