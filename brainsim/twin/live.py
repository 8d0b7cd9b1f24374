"""A live observation store: an observation store (brainsim.twin.observe's layout, Zarr v3) that grows
along time while a sensor (`brainsim feed`) writes it, and is read window by window as it grows.

It holds only time series: ``eeg`` (time, electrode) uV and/or ``rate`` (time, region) Hz, ``time`` in ms
(bin starts, as observe.py's), with their electrode and region coordinates, the observation attrs
(format "brainsim-observations", format_version 1, ``bin`` ms, ``sources``) and ``live`` true. Arrays
are chunked along time by the feed's chunk, so that appending whole chunks rewrites no stored chunk.
Beside its Zarr nodes, LIVE.zarr/live.json says how far it is final::

    {"t_available": ms,     data before it are complete and final (time < t_available)
     "complete": bool,      the feed has finished: nothing more will come
     "bin": ms, "t_start": ms (the first bin), "sources": [...], "updated": ISO time}

The writer replaces live.json atomically (a temporary file in the same folder, os.replace) after each
append has been written, so a reader that reads live.json first and the store after it never sees
less data than t_available promises. An ordinary observation store (no ``live`` attr) read with
LiveObservations is a finished feed: everything it holds is available and complete.
"""

import json
import math
import os
import shutil
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.errors import ZarrUserWarning

from brainsim.errors import StoreError
from brainsim.files import check_writable
from brainsim.io.run_store import STORE_FAULTS
from brainsim.io.zarr_store import check_replaceable

from .observe import FORMAT, FORMAT_VERSION, open_observations

LIVE_FILE = "live.json"
TIME_SERIES = ("eeg", "rate")
"""The variables a live store holds (those of an observation store along ``time``)."""
_TOLERANCE = 1e-6  # of a bin: times within it are the same time


def time_series(ds) -> xr.Dataset:
    """The time series of an observation Dataset (its variables along time, with their coordinates and
    attrs, less peak_clear_above, a level of the whole record's spectra): what a live store holds."""
    names = [name for name in TIME_SERIES if name in ds.data_vars]
    out = ds[names]
    out.attrs = {key: value for key, value in ds.attrs.items() if key != "peak_clear_above"}
    keep = {dim for name in names for dim in ds[name].dims}
    drop = [name for name, c in out.coords.items() if not set(c.dims) <= keep]
    return out.drop_vars(drop)


class LiveObservations:
    """The observation store at `path` as it grows (a live store) or as it is (an ordinary one).

    Each call re-reads live.json and checks it: a missing or broken live.json, a t_available that goes
    backwards or lies beyond the stored data, or a bin that changed is a StoreError naming the file."""

    def __init__(self, path):
        self.path = Path(path)
        self._last = None  # (t_available, bin) of the previous call

    def available(self):
        """(t_available ms, complete): data before t_available are final; complete: nothing more will
        come."""
        return self._state()[:2]

    def wait_for(self, t_end, poll_s=0.25, stop=None):
        """Block until t_available >= t_end ms (True), the feed is complete short of it (False), or the
        callable `stop` returns True (None: the caller stops); polls every poll_s s of wall time."""
        while True:
            t_available, complete, _ = self._state()
            if t_available >= t_end - _TOLERANCE * self._last[1]:
                return True
            if complete:
                return False
            if stop is not None and stop():
                return None
            time.sleep(poll_s)

    def window(self, t0, t1) -> xr.Dataset:
        """The observations of [t0, t1) ms (the bins that start at t0 or later and end by t1), loaded, as
        an observation Dataset (the store's time series, dims, units and attrs): StoreError for a window
        past t_available or one holding NaN."""
        t_available, _, ds = self._state()
        bin_ms = float(ds.attrs["bin"])
        start = _start(ds)
        if not (math.isfinite(t0) and math.isfinite(t1) and t0 < t1):
            raise StoreError(self.path, f"window [{t0:g}, {t1:g}) ms: t0 < t1, both finite, are needed")
        if t0 < start - _TOLERANCE * bin_ms or t1 > t_available + _TOLERANCE * bin_ms:
            raise StoreError(
                self.path,
                f"window [{t0:g}, {t1:g}) ms lies outside the data available ({start:g} to {t_available:g} "
                "ms); wait for it (LiveObservations.wait_for)",
            )
        times = ds["time"].values
        inside = (times >= t0 - _TOLERANCE * bin_ms) & (times + bin_ms <= t1 + _TOLERANCE * bin_ms)
        try:
            out = time_series(ds).isel(time=inside).load()
        except STORE_FAULTS as e:
            raise StoreError(self.path, f"unreadable data in [{t0:g}, {t1:g}) ms ({e})") from None
        for name, var in out.data_vars.items():
            bad = ~np.isfinite(var.values)
            if bad.any():
                at = float(out["time"].values[np.argwhere(bad)[0][0]])
                raise StoreError(self.path, f"{name} holds NaN or infinite values at t={at:g} ms")
        return out

    def _state(self):
        """(t_available, complete, the store opened lazily), checked; live.json is read before the store,
        so the store holds at least what it promises."""
        info = self._read_live() if (self.path / LIVE_FILE).exists() else None
        ds = self._open()
        bin_ms = float(ds.attrs["bin"])
        end = _end(ds)
        if not ds.attrs.get("live"):
            t_available, complete = end, True
        else:
            if info is None:
                info = self._read_live()  # a live store without its live.json: missing
            t_available, complete = info["t_available"], info["complete"]
            if abs(info["bin"] - bin_ms) > _TOLERANCE * bin_ms:
                self._fail(f"bin {info['bin']:g} ms, the store's is {bin_ms:g} ms")
            if t_available > end + _TOLERANCE * bin_ms:
                self._fail(
                    f"t_available {t_available:g} ms lies beyond the stored data (they end at {end:g} ms)"
                )
        if self._last is not None:
            last_t, last_bin = self._last
            if abs(bin_ms - last_bin) > _TOLERANCE * last_bin:
                self._fail(f"the bin changed from {last_bin:g} ms to {bin_ms:g} ms while it was read")
            if t_available < last_t - _TOLERANCE * bin_ms:
                self._fail(f"t_available went backwards, from {last_t:g} ms to {t_available:g} ms")
        self._last = (t_available, bin_ms)
        return t_available, complete, ds

    def _open(self):
        """The store, opened lazily. A live store is opened from its consolidated metadata, the snapshot
        of every array that each append replaces in one step when its data are written."""
        try:
            live = json.loads((self.path / "zarr.json").read_text()).get("attributes", {}).get("live")
        except (OSError, ValueError, AttributeError):
            live = None
        if live:
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
                    ds = xr.open_zarr(self.path, zarr_format=3, consolidated=True)
            except STORE_FAULTS as e:
                raise StoreError(
                    self.path, f"unreadable live observation store ({type(e).__name__}: {e})"
                ) from None
            if ds.attrs.get("format") == FORMAT and ds.attrs.get("format_version") == FORMAT_VERSION:
                return ds  # its arrays keep the snapshot's shapes (window() names the file on a bad read)
        return open_observations(self.path)  # an ordinary store, or the error that says what is wrong

    def _read_live(self):
        path = self.path / LIVE_FILE
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            raise StoreError(path, "missing: a live observation store (attr live) needs it") from None
        except (OSError, ValueError) as e:
            raise StoreError(path, f"unreadable ({type(e).__name__}: {e})") from None
        if not isinstance(info, dict):
            raise StoreError(path, f"not a JSON object (got {type(info).__name__})")
        for key in ("t_available", "bin", "t_start"):
            value = info.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise StoreError(path, f"{key} is {value!r}: a finite number of ms is needed")
        if not isinstance(info.get("complete"), bool):
            raise StoreError(path, f"complete is {info.get('complete')!r}: true or false is needed")
        if info["t_available"] < info["t_start"]:
            raise StoreError(
                path, f"t_available {info['t_available']:g} ms before t_start {info['t_start']:g} ms"
            )
        return info

    def _fail(self, message):
        raise StoreError(self.path / LIVE_FILE, message)


class LiveWriter:
    """Writes the live store at `path` chunk by chunk: `append` time series in time order (the first
    creates the store), `finish` when the feed has ended. An existing store is refused unless overwrite,
    which replaces only an observation store (live or not). `sources`: what the data are read from."""

    def __init__(self, path, *, sources, overwrite=False):
        self.path, self.sources, self.overwrite = Path(path), [str(s) for s in sources], overwrite
        self.t_start = self.t_available = None
        self.bin = None
        self._layout = None  # (variables, their non-time coordinates) of the first chunk
        if self.path.exists() or self.path.is_symlink():
            if not overwrite:
                raise StoreError(self.path, "already exists; pass --overwrite to replace it")
            check_replaceable(self.path, FORMAT, own=(LIVE_FILE,))
        check_writable(self.path, "the live observation store")

    def append(self, chunk):
        """Append the time series of chunk (an observation Dataset whose first time is t_available, or
        any for the first chunk) to the store, then publish its end as t_available."""
        chunk = _plain(time_series(chunk))
        if self.bin is None:
            self.bin = float(chunk.attrs["bin"])
        self._check(chunk)
        n = chunk.sizes["time"]
        end = float(chunk["time"].values[-1]) + self.bin
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
            warnings.filterwarnings("ignore", "Object at .*live.json", ZarrUserWarning)  # not a Zarr node
            if self.t_available is None:
                self._create(chunk, n, end)
                self.t_available = end
                return
            try:
                self._append(chunk)
            except STORE_FAULTS as e:
                raise StoreError(self.path, f"cannot append ({type(e).__name__}: {e})") from None
        self.t_available = end
        self._publish(complete=False)

    def finish(self):
        """Mark the feed complete (nothing more will come)."""
        if self.t_available is not None:
            self._publish(complete=True)

    def _append(self, chunk):
        """Append the chunk's time series with zarr's own append (each array resized and its new chunks
        written), then rewrite the consolidated metadata: the root's zarr.json, the snapshot readers
        open, is replaced once, atomically, after the data are written."""
        group = zarr.open_group(self.path, mode="r+", zarr_format=3, use_consolidated=False)
        for name, var in chunk.variables.items():
            if "time" in var.dims:
                group[name].append(np.asarray(var.values), axis=var.dims.index("time"))
        zarr.consolidate_metadata(self.path, zarr_format=3)

    def _create(self, chunk, n, end):
        """Write the first chunk (n bins, up to `end` ms) as a new store beside `path`, with its
        live.json, then move it there."""
        self.t_start = float(chunk["time"].values[0])
        chunk.attrs.update(
            live=True,
            sources=json.dumps(self.sources),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        encoding = {
            name: {"chunks": (n, *var.shape[1:])}
            for name, var in chunk.variables.items()
            if "time" in var.dims
        }
        scratch = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        try:
            chunk.to_zarr(scratch / "store", mode="w-", zarr_format=3, consolidated=True, encoding=encoding)
            self._publish(complete=False, folder=scratch / "store", t_available=end)
            if self.path.exists():
                shutil.rmtree(self.path)
            os.replace(scratch / "store", self.path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _check(self, chunk):
        """Refuse a chunk that does not continue the store: other variables or labels, another bin, a
        gap or overlap in time, or NaN."""
        if not chunk.data_vars:
            raise StoreError(self.path, f"nothing to append: no time series ({' or '.join(TIME_SERIES)})")
        layout = (
            sorted(chunk.data_vars),
            {
                dim: [str(v) for v in chunk[dim].values]
                for dim in chunk.dims
                if dim != "time" and dim in chunk
            },
        )
        if self._layout is None:
            self._layout = layout
        elif layout != self._layout:
            raise StoreError(self.path, f"a chunk of other variables or labels than the store's: {layout[0]}")
        times = chunk["time"].values
        if abs(float(chunk.attrs.get("bin", math.nan)) - self.bin) > _TOLERANCE * self.bin or (
            times.size > 1 and np.abs(np.diff(times) - self.bin).max() > _TOLERANCE * self.bin
        ):
            raise StoreError(self.path, f"a chunk not sampled every bin ({self.bin:g} ms)")
        if self.t_available is not None and abs(times[0] - self.t_available) > _TOLERANCE * self.bin:
            raise StoreError(
                self.path,
                f"a chunk starting at t={times[0]:g} ms; the store ends at {self.t_available:g} ms: chunks "
                "follow each other in time",
            )
        for name, var in chunk.data_vars.items():
            bad = ~np.isfinite(var.values)
            if bad.any():
                at = float(times[np.argwhere(bad)[0][0]])
                raise StoreError(
                    self.path,
                    f"the chunk of {', '.join(self.sources)} holds NaN or infinite {name} at t={at:g} ms: "
                    "not appended",
                )

    def _publish(self, complete, folder=None, t_available=None):
        """Replace live.json atomically."""
        folder = self.path if folder is None else folder
        info = {
            "t_available": self.t_available if t_available is None else t_available,
            "complete": complete,
            "bin": self.bin,
            "t_start": self.t_start,
            "sources": self.sources,
            "updated": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        handle, temporary = tempfile.mkstemp(prefix=f".{LIVE_FILE}.", dir=folder)
        try:
            with os.fdopen(handle, "w") as f:
                json.dump(info, f)
            os.replace(temporary, folder / LIVE_FILE)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _plain(ds):
    """ds loaded, without the encodings of the store it was read from."""
    ds = ds.load().copy()
    for var in ds.variables.values():
        var.encoding = {}
    return ds


def _start(ds):
    return float(ds["time"].values[0]) if ds.sizes.get("time") else 0.0


def _end(ds):
    """The end (ms) of ds's time axis: its last bin's start plus a bin."""
    return float(ds["time"].values[-1]) + float(ds.attrs["bin"]) if ds.sizes.get("time") else 0.0
