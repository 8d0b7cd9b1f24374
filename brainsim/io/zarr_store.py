"""Run-output store: the Zarr v3 store a simulation run writes (``RunWriter``), which analysts open with
``xarray.open_zarr`` or ``brainsim.io.run_store.RunStore``.

Layout (``format`` "brainsim-run", ``format_version`` 1)::

    /                               attrs: format, format_version, brainsim_version, config (JSON text),
                                    config_hash, counts, status ("running" | "complete" | "failed" |
                                    "interrupted"), error, timing, t_reached (ms), progress (the
                                    writer's pace: since, t_from ms, wall_s, updated), writer (host,
                                    pid, slurm_job_id, heartbeat_s: its interval or null), heartbeat
                                    (when the writer last showed it was alive), provenance (config
                                    file, overlay files, patient id, connectome source and notes),
                                    populations (name, region label or null, cell_type, first_gid, count,
                                    kind "excitatory" | "inhibitory" | ""): gids first_gid.. are its cells;
                                    a fork's future (`brainsim fork`) also: parent (absolute path of the
                                    run store or checkpoint its state came from), fork_time (ms: where
                                    its time axes start) and state_hash (RunConfig.state_hash(fork_time)
                                    of the config that produced the state); a future continued with
                                    other parameters (`brainsim follow`) also parameters_changed (true)
                                    and parent_state_hash (that hash again: not this config's)
    /spikes/gid, /spikes/time       (spike,) int64 and float64 ms, sorted by (time, gid)
    /traces                         attrs: trace_sets (the names)
    /traces/<name>/<variable>       (time, probe) float32, attr units; one xarray dataset per trace set
    /traces/<name>/time             (time,) float64 ms: the whole run's sampling grid (a future's from its
                                    fork_time)
    /traces/<name>/gid, compartment, location   (probe,) int64, int64, variable-length UTF-8 text
    /regions                        (runs with a brain) attrs: bin (ms); one xarray dataset
    /regions/rate, v_mean           (time, region) float32: Hz, mV (mean V at the cells' spike detectors)
    /regions/time                   (time,) float64 ms: start of each bin ([time, time + bin), the last one
                                    ends at tstop; a future's first bin starts at its fork_time)
    /regions/region, hemisphere     (region,) text: label, "left" or "right"
    /regions/centre_x, _y, _z, n_cells   (region,) float64 mm (NaN if unknown), int64
    /regions/sc_weights, sc_tract_lengths   (region, region_source) float64: the structural connectivity
                                    the model was built from, weights[target, source] (the connectome's
                                    units, after the patient's tract lesions; timed lesion interventions
                                    not applied) and tract lengths in mm; absent in stores written before
                                    brainsim stored them
    /regions/region_source          (region_source,) text: the region labels again (the source axis)

Trace arrays are created at their full length (the run's sampling grid is known in advance): samples are
written into their rows, rows not reached yet hold NaN, and ``t_reached`` says how far the data is
complete (the same holds for the region rows). Several processes can therefore write one trace set at
once, each its own probe columns, as long as the probe chunks do not straddle two writers
(``probe_chunk``). Spikes and region rows are written by one process. The root metadata is consolidated
at every ``publish`` and zarr writes each metadata file atomically, so a reader sees the store as of the
last publish, even while a run writes it or after it died.

While a run is ``running`` its writer renews ``heartbeat`` at every publish and, with a ``heartbeat``
interval, from a thread every that many seconds whatever the run is doing, so a reader can tell a store
whose writer died (``brainsim status``: "dead" or "stale").
"""

import json
import math
import numbers
import os
import shutil
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import zarr
from zarr.errors import ZarrUserWarning

from brainsim import __version__

from ..errors import StoreError

FORMAT = "brainsim-run"
FORMAT_VERSION = 1
SPIKE_CHUNK = 65536  # spikes per chunk
PROBE_CHUNK = 256  # most probes per trace chunk
CHUNK_VALUES = 1 << 18  # float32 values per trace chunk (1 MiB)
AUTO_FLUSH_BYTES = 64 * 2**20  # buffered bytes above which a write flushes by itself
STATUSES = ("complete", "failed", "interrupted")
COUNT_KEYS = ("cells", "compartments", "equations")
TIMING_KEYS = ("build_s", "run_s", "ns_per_compartment_step")
PROBE_COORDS = ("gid", "compartment", "location")
SC_DOCS = {
    "sc_weights": "structural connectivity: connectome weight from region_source to region (target)",
    "sc_tract_lengths": "tract length from region_source to region",
}


@dataclass
class _TraceSet:
    data: zarr.Array  # (time, probe) float32
    blocks: list = field(default_factory=list)  # buffered (first row, first probe, values (k, n) float32)


NOTHING_TO_RESUME = (
    "no run store here to continue: --resume continues the store the checkpointed run wrote; pass -o "
    "with that store's path, or run without --resume to start again"
)


class RunWriter:
    """Writer of one run's output store: `create` it in one process; other processes `attach`. Readers
    open it with brainsim.io.run_store.RunStore or xarray."""

    def __init__(self, path: Path, root: zarr.Group):
        self.path = path
        self._root = root
        self._spike_gid = root["spikes/gid"]
        self._spike_time = root["spikes/time"]
        self._spikes: list = []  # buffered (gid, time) batches, each sorted
        self._last_spike = (-math.inf, -1)  # (time ms, gid) of the last appended spike
        self._traces: dict[str, _TraceSet] = {
            name: _TraceSet(root[f"traces/{name}/{root[f'traces/{name}'].attrs['variable']}"])
            for name in root["traces"].attrs["trace_sets"]
        }
        self._regions = root["regions"] if "regions" in root else None
        self._buffered_bytes = 0
        self._t_reached = float(root.attrs.get("t_reached", 0.0))
        self._status = "running"
        self._started = (time.time(), self._t_reached)  # wall time and t (ms) this process started writing
        self._lock = threading.RLock()  # the root metadata has two writers: this process and its heartbeat
        self._beating = None  # the heartbeat thread's stop event, while it runs

    @classmethod
    def create(
        cls,
        path,
        *,
        config: dict,
        counts: dict,
        config_hash: str = "",
        overwrite: bool = False,
        provenance: dict | None = None,
        populations: list | None = None,
        heartbeat: float | None = None,
        fork: dict | None = None,
    ) -> "RunWriter":
        """Start a store at `path` with status "running"; an existing path is replaced only if `overwrite`.
        provenance: where the model came from (JSON-able: files, patient, connectome); populations: the
        run's populations (dicts: name, region, cell_type, first_gid, count, kind); heartbeat: s between
        heartbeats while the store is running (None: only at each publish); fork: a future's parent
        (path), fork_time (ms) and state_hash, stored as attributes (the store starts at fork_time)."""
        path = Path(path)
        if path.exists() or path.is_symlink():
            if not overwrite:
                raise StoreError(path, "already exists; pass -o or --overwrite to replace it")
            check_replaceable(path, FORMAT)
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
            "t_reached": 0.0 if fork is None else float(fork["fork_time"]),
            "provenance": provenance or {},
            "populations": populations or [],
            **_liveness(heartbeat),
        }
        if fork is not None:
            attrs.update(
                parent=str(fork["parent"]), fork_time=float(fork["fork_time"]), state_hash=fork["state_hash"]
            )
            if fork.get("parameters_changed"):
                attrs.update(parent_state_hash=fork["parent_state_hash"], parameters_changed=True)
        root = zarr.open_group(path, mode="w-", zarr_format=3, attributes=attrs)
        spikes = root.create_group("spikes")
        chunks = (SPIKE_CHUNK,)
        spikes.create_array(  # fill value -1, never a gid: a chunk absent from the store was lost
            "gid", shape=(0,), dtype="int64", chunks=chunks, fill_value=-1, dimension_names=["spike"]
        )
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
        store = cls(path, root)
        store._consolidate()
        store._start_heartbeat(heartbeat)
        return store

    @classmethod
    def attach(cls, path) -> "RunWriter":
        """Open a store another process created, to write trace columns into it (no spikes, no attributes)."""
        return cls(Path(path), zarr.open_group(Path(path), mode="r+", use_consolidated=False))

    @classmethod
    def resume(
        cls,
        path,
        config_hash: str,
        t: float,
        *,
        config: dict | None = None,
        times: dict | None = None,
        region_bins: int | None = None,
        heartbeat: float | None = None,
    ) -> "RunWriter":
        """Reopen a store to continue its run from t (ms): later spikes are dropped, status is running.
        A run continued to another tstop gives its config (stored in place of the old one), the sampling
        grid of each trace set (times: {name: ms}) and its number of region bins: the arrays are resized
        to them (rows added hold NaN until written)."""
        path = Path(path)
        try:
            root = zarr.open_group(path, mode="r+", use_consolidated=False, zarr_format=3)
        except (OSError, ValueError, zarr.errors.BaseZarrError) as e:
            raise StoreError(path, f"{NOTHING_TO_RESUME} ({type(e).__name__}: {e})") from None
        attrs = root.attrs.asdict()
        if "fork_time" in attrs:
            raise StoreError(
                path,
                f"the store of a fork's future (from {attrs.get('parent')!r} at {attrs['fork_time']:g} ms) "
                "is not resumed: fork it again (`brainsim fork ... --overwrite`)",
            )
        if attrs.get("format") != FORMAT or attrs.get("config_hash") != config_hash:
            raise StoreError(
                path,
                f"not the output of this run (format {attrs.get('format')!r}, config hash "
                f"{attrs.get('config_hash')!r}; the run's {config_hash!r}): pass -o with the store the "
                "checkpointed run wrote, or run without --resume to start again",
            )
        store = cls(path, root)
        store._fit(config, times, region_bins)
        keep = int(np.searchsorted(store._spike_time[:], t, side="right"))
        store._spike_gid.resize((keep,))
        store._spike_time.resize((keep,))
        if keep:
            store._last_spike = (float(store._spike_time[keep - 1]), int(store._spike_gid[keep - 1]))
        root.attrs.update({"status": "running", "t_reached": float(t), **_liveness(heartbeat)})
        root.attrs.pop("error", None)
        store._t_reached = float(t)
        store._consolidate()
        store._start_heartbeat(heartbeat)
        return store

    def _fit(self, config, times, region_bins) -> None:
        """Resize the arrays laid out on the run's time to a continued run's tstop (see `resume`)."""
        if times is not None and set(times) != set(self._traces):
            raise StoreError(
                self.path,
                f"holds the trace sets {sorted(self._traces)}, the resumed run has {sorted(times)}: "
                "not the store of the checkpointed run",
            )
        if config is not None:
            self._root.attrs["config"] = json.dumps(config)
        if times is not None:
            for name, grid in times.items():
                _extend(
                    self.path,
                    self._root[f"traces/{name}"],
                    self._traces[name].data,
                    np.asarray(grid, np.float64),
                )
        if region_bins is not None and self._regions is not None:
            bin_ms = float(self._regions.attrs["bin"])
            _extend(
                self.path, self._regions, self._regions["rate"], np.arange(region_bins) * bin_ms, "v_mean"
            )

    def add_trace_set(
        self, name, *, variable, units, times, gid, compartment, location, probe_chunk=None
    ) -> None:
        """Create trace set `name`: `variable` (in `units`) at the probes (gid, compartment, location),
        sampled at `times` (ms, the whole run). probe_chunk (default up to 256) must divide every
        writer's first probe, so that no chunk is written by two processes."""
        self._check_running()
        _check_node_name(self.path, "trace set name", name)
        _check_node_name(self.path, "variable", variable)
        if name in self._traces:
            raise StoreError(self.path, f"trace set {name!r} already exists; trace set names must be unique")
        if variable in ("time", *PROBE_COORDS):
            raise ValueError(f"variable {variable!r} clashes with a coordinate name: time, {PROBE_COORDS}")
        gid = _integers("gid", gid)
        compartment = _integers("compartment", compartment)
        location = np.array(location, dtype=object)
        times = np.array(times, dtype=np.float64)
        if not all(isinstance(text, str) for text in location.flat):
            raise ValueError(f"trace set {name!r}: location must be strings such as 'soma(0.5)'")
        if gid.ndim != 1 or gid.size == 0 or gid.shape != compartment.shape or gid.shape != location.shape:
            raise ValueError(
                f"trace set {name!r}: gid, compartment and location must be 1-D, non-empty, of one length; "
                f"got shapes {gid.shape}, {compartment.shape}, {location.shape}"
            )
        if times.ndim != 1 or times.size == 0 or not np.all(np.diff(times) > 0):
            raise ValueError(f"trace set {name!r}: times must be a non-empty increasing 1-D array")
        n_probe = gid.size
        probe_chunk = min(n_probe, PROBE_CHUNK) if probe_chunk is None else int(probe_chunk)
        time_chunk = max(1024, CHUNK_VALUES // probe_chunk)
        group = self._root["traces"].create_group(name, attributes={"variable": variable})
        data = group.create_array(
            variable,
            shape=(times.size, n_probe),
            dtype="float32",
            chunks=(time_chunk, probe_chunk),
            fill_value=np.nan,
            dimension_names=["time", "probe"],
            attributes={"units": units, "coordinates": " ".join(PROBE_COORDS)},
        )
        time = group.create_array(
            "time",
            shape=times.shape,
            dtype="float64",
            chunks=(min(times.size, 1 << 16),),
            dimension_names=["time"],
            attributes={"units": "ms"},
        )
        time[:] = times
        for coord, values in zip(PROBE_COORDS, (gid, compartment, location), strict=True):
            dtype = str if coord == "location" else "int64"  # str: zarr's variable-length UTF-8 "string"
            array = group.create_array(
                coord, shape=(n_probe,), dtype=dtype, chunks=(probe_chunk,), dimension_names=["probe"]
            )
            array[:] = values
        self._traces[name] = _TraceSet(data)
        self._root["traces"].attrs["trace_sets"] = list(self._traces)

    def add_regions(
        self,
        *,
        bin_ms,
        n_bins,
        labels,
        hemisphere,
        centres,
        n_cells,
        sc_weights=None,
        sc_tract_lengths=None,
        first_bin=0,
    ) -> None:
        """Create the `regions` group: rows of n_bins bins of bin_ms (ms) for the regions `labels`, with
        their hemisphere ("left"/"right"), centres (n, 3) mm or None, and cell counts; sc_weights and
        sc_tract_lengths (n, n; mm), the structural connectivity weights[target, source], or None;
        first_bin: the run's bin the first row is (a fork's future starts at its fork time)."""
        self._check_running()
        n = len(labels)
        centres = np.full((n, 3), np.nan) if centres is None else np.asarray(centres, dtype=float)
        structure = {"sc_weights": (sc_weights, None), "sc_tract_lengths": (sc_tract_lengths, "mm")}
        for name, (matrix, _) in structure.items():
            if matrix is not None and np.shape(matrix) != (n, n):
                raise ValueError(f"{name} must be ({n}, {n}) for {n} regions; got {np.shape(matrix)}")
        group = self._root.create_group("regions", attributes={"bin": float(bin_ms)})
        coords = "hemisphere centre_x centre_y centre_z n_cells"
        time_chunk = max(1, min(n_bins, CHUNK_VALUES // max(1, n)))
        for name, units, doc in (
            ("rate", "Hz", "population firing rate"),
            ("v_mean", "mV", "mean membrane potential at the cells' spike detectors (an LFP proxy)"),
        ):
            group.create_array(
                name,
                shape=(n_bins, n),
                dtype="float32",
                chunks=(time_chunk, n),
                fill_value=np.nan,
                dimension_names=["time", "region"],
                attributes={"units": units, "long_name": doc, "coordinates": coords},
            )
        columns = {
            "time": ((first_bin + np.arange(n_bins)) * float(bin_ms), "float64", "ms"),
            "region": (list(labels), str, None),
            "hemisphere": (list(hemisphere), str, None),
            "centre_x": (centres[:, 0], "float64", "mm"),
            "centre_y": (centres[:, 1], "float64", "mm"),
            "centre_z": (centres[:, 2], "float64", "mm"),
            "n_cells": (np.asarray(n_cells, dtype=np.int64), "int64", None),
        }
        for name, (values, dtype, units) in columns.items():
            dim = "time" if name == "time" else "region"
            array = group.create_array(
                name,
                shape=(len(values),),
                dtype=dtype,
                chunks=(max(1, len(values)),),
                dimension_names=[dim],
                attributes={} if units is None else {"units": units},
            )
            array[:] = values
        if any(matrix is not None for matrix, _ in structure.values()):
            source = group.create_array(
                "region_source", shape=(n,), dtype=str, chunks=(max(1, n),), dimension_names=["region_source"]
            )
            source[:] = list(labels)
        for name, (matrix, units) in structure.items():
            if matrix is None:
                continue
            array = group.create_array(
                name,
                shape=(n, n),
                dtype="float64",
                chunks=(max(1, n), max(1, n)),
                dimension_names=["region", "region_source"],
                attributes={
                    "long_name": SC_DOCS[name],
                    "coordinates": "hemisphere centre_x centre_y centre_z n_cells",
                    **({} if units is None else {"units": units}),
                },
            )
            array[:] = np.asarray(matrix, dtype=np.float64)
        self._regions = group

    def write_regions(self, first_bin, rate, v_mean) -> None:
        """Write the rows first_bin.. of the regions' rate (Hz) and v_mean (mV), each (k, n_regions)."""
        self._check_running()
        if self._regions is None:
            raise StoreError(self.path, "the store has no regions group (add_regions first)")
        k = np.asarray(rate).shape[0]
        self._regions["rate"][first_bin : first_bin + k] = np.asarray(rate, dtype=np.float32)
        self._regions["v_mean"][first_bin : first_bin + k] = np.asarray(v_mean, dtype=np.float32)

    def probe_chunk(self, name) -> int:
        """Probes per chunk of trace set `name` (a writer's columns must start and end on multiples)."""
        return self._traces[name].data.chunks[1]

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

    def write_samples(self, name, row, values, first_probe=0) -> None:
        """Buffer samples of trace set `name`: values (k, n) float32 for the rows row..row+k-1 of the
        sampling grid and the probes first_probe..first_probe+n-1."""
        self._check_running()
        if name not in self._traces:
            raise StoreError(self.path, f"no trace set {name!r}; trace sets: {list(self._traces)}")
        shape = self._traces[name].data.shape
        values = np.array(values, dtype=np.float32)  # a copy: the caller may reuse its buffers
        if (
            values.ndim != 2
            or not (0 <= row and row + values.shape[0] <= shape[0])
            or not (0 <= first_probe and first_probe + values.shape[1] <= shape[1])
        ):
            raise StoreError(
                self.path,
                f"trace set {name!r} is {shape} (time, probe): cannot hold values {values.shape} at row "
                f"{row}, probe {first_probe}",
            )
        self._traces[name].blocks.append((int(row), int(first_probe), values))
        self._add_buffered(values.nbytes)

    def flush(self) -> None:
        """Write the buffered spikes and samples (readers see them after the next `publish`)."""
        self._check_running()
        if self._spikes:
            gids, times = zip(*self._spikes, strict=True)
            self._spike_gid.append(np.concatenate(gids))
            self._spike_time.append(np.concatenate(times))
            self._spikes.clear()
        for trace_set in self._traces.values():
            for row, probe, values in _merge_rows(trace_set.blocks):
                trace_set.data[row : row + values.shape[0], probe : probe + values.shape[1]] = values
            trace_set.blocks.clear()
        self._buffered_bytes = 0

    def publish(self, t_reached: float) -> None:
        """Make everything written so far visible and record t_reached (ms), the time fully written
        (by every process writing into the store)."""
        self._check_running()
        t_reached = float(t_reached)
        if not t_reached >= self._t_reached:
            raise StoreError(
                self.path, f"t_reached={t_reached} ms is before the last t_reached={self._t_reached} ms"
            )
        wall, t0 = self._started
        with self._lock:
            self._consolidate()  # readers see the new data only now, all at once
            now = time.time()
            progress = {"since": _iso(wall), "t_from": t0, "wall_s": now - wall, "updated": _iso(now)}
            self._root.attrs.update({"t_reached": t_reached, "progress": progress, "heartbeat": _iso(now)})
        self._t_reached = t_reached

    def finish(
        self,
        status: str,
        *,
        error: str | None = None,
        timing: dict | None = None,
        t_reached: float | None = None,
    ) -> None:
        """Flush and publish, then record the outcome: "complete", or "failed"/"interrupted" with `error`
        text; `timing` in s and ns. Every writing process must have flushed before."""
        self._check_running()
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
        if (status == "complete") == (error is not None):
            raise ValueError(
                'error text is required with status "failed" or "interrupted", not allowed with "complete"; '
                f"got status {status!r}, error {error!r}"
            )
        attrs = {} if error is None else {"error": str(error)}
        if timing is not None:
            if any(key not in timing for key in TIMING_KEYS) or not all(
                isinstance(value, numbers.Real) for value in timing.values()
            ):
                raise ValueError(f"timing needs float values for {list(TIMING_KEYS)}; got {timing!r}")
            attrs["timing"] = {key: float(value) for key, value in timing.items()}
        self.flush()
        self.publish(self._t_reached if t_reached is None else max(t_reached, self._t_reached))
        self._record(status, attrs)

    def mark(self, status: str, error: str) -> None:
        """Record "failed" or "interrupted" with `error` text and nothing else: what is left when writing
        the outputs failed (t_reached stays where the last publish put it)."""
        if status not in STATUSES or status == "complete":
            raise ValueError(f'status must be "failed" or "interrupted"; got {status!r}')
        self._record(status, {"error": str(error)})

    def close(self) -> None:
        """Stop the heartbeat (a store left running then reads as stale: its writer is gone)."""
        beating, self._beating = self._beating, None
        if beating is not None:
            beating.set()

    def _record(self, status, attrs) -> None:
        self.close()
        with self._lock:
            self._root.attrs.update(attrs)
            self._root.attrs["status"] = status  # last, so "complete" is never seen before everything else
            self._status = status

    def _start_heartbeat(self, interval) -> None:
        if interval is None:
            return
        self._beating = stop = threading.Event()
        thread = threading.Thread(target=self._beat, args=(stop, interval), name="brainsim-heartbeat")
        thread.daemon = True
        thread.start()

    def _beat(self, stop, interval) -> None:
        """Renew the heartbeat every interval seconds until stopped; a failed write is left to show as a
        stale heartbeat."""
        while not stop.wait(interval):
            with self._lock:
                if stop.is_set() or self._status != "running":
                    return
                try:
                    self._root.attrs["heartbeat"] = _iso(time.time())
                except Exception:  # noqa: BLE001, S112 - the run reports its own write failures
                    continue

    def _add_buffered(self, nbytes: int) -> None:
        self._buffered_bytes += nbytes
        if self._buffered_bytes > AUTO_FLUSH_BYTES:
            self.flush()

    def _consolidate(self) -> None:
        """Rewrite the root metadata with every node's current metadata (one atomic file write)."""
        with self._lock, warnings.catch_warnings():  # zarr warns that consolidation is outside the v3 spec
            warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
            self._root = zarr.consolidate_metadata(self.path)

    def _check_running(self) -> None:
        if self._status != "running":
            raise StoreError(
                self.path, f"the run store is finished (status {self._status!r}); no more writes"
            )


def check_replaceable(path, kind=FORMAT, own=()) -> None:
    """Refuse to replace `path` unless it is an empty folder or recognisably a store of format `kind`
    (its zarr.json says so, and it holds nothing but zarr.json, Zarr nodes and the files named in `own`,
    which stores of that kind keep beside their nodes): never delete files that are not part of the
    store."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        raise StoreError(path, f"will not overwrite it: not a Zarr store of format {kind!r} (not a folder)")
    entries = sorted(path.iterdir())
    if not entries:
        return
    try:
        meta = json.loads((path / "zarr.json").read_text())
        found = meta.get("attributes", {}).get("format")
        what = f"format {found!r}"
    except (OSError, ValueError, AttributeError) as e:
        meta, found = {}, None
        what = f"zarr.json {'missing' if isinstance(e, FileNotFoundError) else 'unreadable'}"
    if found != kind:
        raise StoreError(
            path, f"will not overwrite it: not a Zarr store of format {kind!r} ({what}) nor an empty folder"
        )
    chunks = "c" if meta.get("node_type") == "array" else None  # an array's chunk folder
    foreign = [
        e.name
        for e in entries
        if e.name != "zarr.json"
        and e.name not in own
        and (e.is_symlink() or not e.is_dir() or not (e.name == chunks or (e / "zarr.json").is_file()))
    ]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise StoreError(
            path,
            f"will not overwrite it: besides the {kind!r} store it holds {shown}, which are not part of a "
            "store; move them away first",
        )


def probe_chunk_for(offsets):
    """A probe chunk size that divides every writer's first probe (offsets: first probe of each writer
    and the total), so that no chunk has two writers: the largest divisor of their gcd up to 256."""
    offsets = [int(o) for o in offsets if o > 0]
    g = int(np.gcd.reduce(offsets)) if offsets else 1
    return next(d for d in range(min(g, PROBE_CHUNK), 0, -1) if g % d == 0)


def _extend(path, group, data, grid, *others) -> None:
    """Resize the (time, ...) arrays data and others of `group` to len(grid) rows, and its time
    coordinate to the grid (ms); the rows both share must already agree with it."""
    time = group["time"]
    n_old, n = time.shape[0], grid.size
    if n == n_old:
        return
    shared = min(n_old, n)
    if shared and not np.allclose(time[shared - 1 : shared], grid[shared - 1 : shared], rtol=0, atol=1e-9):
        raise StoreError(
            path,
            f"time grid of {group.path} ends at {float(time[shared - 1]):g} ms where the resumed run's "
            f"is at {grid[shared - 1]:g} ms: another sampling?",
        )
    for array in (data, *(group[name] for name in others)):
        array.resize((n, *array.shape[1:]))
    time.resize((n,))
    if n > n_old:
        time[n_old:] = grid[n_old:]


def _merge_rows(blocks):
    """Buffered blocks of one trace set, consecutive rows of the same probes joined into one write."""
    merged = []
    for row, probe, values in sorted(blocks, key=lambda b: (b[1], b[0])):
        if merged:
            last_row, last_probe, last = merged[-1]
            if probe == last_probe and row == last_row + last.shape[0] and values.shape[1] == last.shape[1]:
                merged[-1] = (last_row, probe, np.concatenate([last, values]))
                continue
        merged.append((row, probe, values))
    return merged


def _check_node_name(path, what: str, name) -> None:
    if not isinstance(name, str) or not name or "/" in name or name.startswith("__") or set(name) == {"."}:
        raise StoreError(
            path,
            f"{what} {name!r} is not a valid Zarr node name: "
            "need non-empty text without '/', not all dots, not starting with '__'",
        )


def _integers(what: str, values) -> np.ndarray:
    """`values` as a new int64 array; refuses non-integer input rather than truncating it."""
    array = np.asarray(values)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must be integers; got dtype {array.dtype}")
    return array.astype(np.int64)


def _liveness(heartbeat):
    """The attributes that say who writes a running store: host, pid, SLURM job (if any), heartbeat."""
    job = os.environ.get("SLURM_JOB_ID")
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        job = f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    writer = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": job, "heartbeat_s": heartbeat}
    return {"writer": writer, "heartbeat": _iso(time.time())}


def _iso(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")
