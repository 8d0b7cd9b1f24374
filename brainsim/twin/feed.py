"""`brainsim feed`: a recording replayed into a live observation store (brainsim.twin.live), chunk by
chunk at a chosen speed, the stand-in for a sensor; or a live EEG stream of Lab Streaming Layer
(``lsl://NAME``, through mne-lsl) appended as it arrives.

A recording is an observation store (`brainsim observe`'s) or an EEG file, read by observe.py as
`brainsim observe` reads it (10-20 electrodes, bad channels interpolated, average reference, one sample
per bin). Its time series (``eeg``, ``rate``) are fed; its other variables (spectra, BOLD) are not.
Times keep the recording's (a feed from --start 5000 begins at time 5000 ms).

Pacing: chunk k (its data up to recording time d_k from the first fed bin) is published once the
monotonic clock says elapsed * speed >= d_k, so the published t_available never runs ahead of the
recording's own time; speed 0 feeds as fast as it can and never sleeps.

Stopping: SIGINT or SIGTERM ends the feed after the chunk being written; what was fed stays published
(the store is a valid, incomplete feed: complete false) and FeedStopped is raised.
"""

import json
import math
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from brainsim import __version__
from brainsim.errors import BrainsimError, ConfigError, ObservationError

from . import eeg_reader, region_reader
from .live import LiveWriter, time_series
from .observe import FORMAT, FORMAT_VERSION, observation_dataset, open_observations
from .stop_signals import StopSignals

LSL_PREFIX = "lsl://"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PROGRESS_EVERY = 1.0  # s of wall time between progress lines
_SLEEP_SLICE = 0.05  # s: the longest sleep between looks at the stop signals


class FeedStopped(BrainsimError):
    """The feed was stopped by a signal; the live store holds (and publishes) what was fed before it."""

    def __init__(self, signal_name, path, t_available):
        self.signal_name, self.path, self.t_available = signal_name, path, t_available
        held = "nothing was fed" if t_available is None else f"it holds data up to t={t_available:g} ms"
        super().__init__(f"feed stopped by {signal_name}: {path} is an incomplete feed; {held}")


class StreamError(BrainsimError):
    """A live stream cannot be read: names the stream and what is wrong."""

    def __init__(self, source, message):
        self.source, self.message = source, message
        super().__init__(f"{source}: {message}")


def feed(recording, to, *, speed=1.0, chunk=250.0, start=None, stop=None, bin_ms=None, bads=(),
         duration=None, overwrite=False, log=print):  # fmt: skip
    """Feed `recording` (an observation store, an EEG file or lsl://NAME) into the live store `to`, in
    chunks of `chunk` ms at `speed` x real time (0: as fast as possible); returns {path, t_start,
    t_available, complete, wall_s, slept_s}. start/stop (ms): the stretch of a recording to feed;
    bin_ms, bads: as `brainsim observe`'s --bin and --bad, for an EEG file or a stream; duration (s):
    how long to read a stream (default: until stopped)."""
    if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed >= 0):
        raise ConfigError("--speed", speed, "a number >= 0 (1: real time; 0: as fast as possible)")
    _positive("--chunk", chunk)
    if bin_ms is not None:
        _positive("--bin", bin_ms)
    if str(recording).startswith(LSL_PREFIX):
        for key, value in (("--start", start), ("--stop", stop)):
            if value is not None:
                raise ConfigError(
                    key, value, "only with a recording: a stream is read from when it is reached"
                )
        if duration is not None:
            _positive("--duration", duration)
        return _feed_stream(
            str(recording)[len(LSL_PREFIX) :], to, chunk, bin_ms or 1.0, bads, duration, overwrite, log
        )
    if duration is not None:
        raise ConfigError(
            "--duration", duration, "only with a stream (lsl://NAME): a recording ends by itself"
        )
    series = recording_series(recording, bin_ms, bads, log)
    series = _stretch(series, start, stop)
    n_chunk = _chunk_bins(chunk, float(series.attrs["bin"]))
    writer = LiveWriter(to, sources=[Path(recording).resolve()], overwrite=overwrite)
    return _replay(series, writer, speed, n_chunk, log)


def recording_series(recording, bin_ms=None, bads=(), log=print) -> xr.Dataset:
    """The time series (eeg, rate) of an observation store, or of an EEG file read as `brainsim observe`
    reads it (bin_ms default 1; bads: more bad channels): ObservationError naming the file otherwise."""
    path = Path(recording)
    if path.is_dir():
        for key, value in (("--bin", bin_ms), ("--bad", list(bads) or None)):
            if value is not None:
                raise ConfigError(
                    key,
                    value,
                    "only with an EEG file: an observation store keeps the bin and channels it has",
                )
        ds = open_observations(path)
    elif not path.exists():
        raise ObservationError(path, "no such file or observation store")
    elif region_reader.suffix(path) in (*region_reader.TABLES, *region_reader.ARRAYS, *region_reader.IMAGES):
        raise ObservationError(
            path,
            "a region time series or image: turn it into an observation store with `brainsim observe` "
            "(e.g. --kind rate --connectome ...) and feed that",
        )
    else:
        ds = observation_dataset([path], bin_ms=1.0 if bin_ms is None else bin_ms, bads=bads, log=log)
    series = time_series(ds)
    if not series.data_vars or not series.sizes.get("time"):
        raise ObservationError(path, "holds no time series to feed (eeg or rate along time)")
    return series


class Pacer:
    """Paces a feed at `speed` x real time on the monotonic clock from its creation; speed 0 never
    waits. slept: the seconds it has slept."""

    def __init__(self, speed):
        self.speed, self.t0, self.slept = speed, time.monotonic(), 0.0

    def wait(self, recording_s, stopped=lambda: False):
        """Return once elapsed * speed >= recording_s (s of recording fed), or once stopped() is true."""
        if self.speed == 0:
            return
        while not stopped():
            left = recording_s / self.speed - (time.monotonic() - self.t0)
            if left <= 0:
                return
            pause = min(left, _SLEEP_SLICE)
            time.sleep(pause)
            self.slept += pause

    def elapsed(self):
        return time.monotonic() - self.t0


def _replay(series, writer, speed, n_chunk, log):
    """Append series to writer chunk by chunk, paced; finish it unless stopped (FeedStopped)."""
    bin_ms = float(series.attrs["bin"])
    n_time = series.sizes["time"]
    total = n_time * bin_ms / 1000.0
    pacer, progress = Pacer(speed), _Progress(log, total)
    with StopSignals(STOP_SIGNALS, interrupt=False) as signals:
        for lo in range(0, n_time, n_chunk):
            fed = min(lo + n_chunk, n_time) * bin_ms / 1000.0
            part = series.isel(time=slice(lo, lo + n_chunk))
            pacer.wait(fed, lambda: signals.received is not None)
            if signals.received:
                break
            writer.append(part)
            progress.show(fed, pacer.elapsed(), lo + n_chunk >= n_time)
        if signals.received:
            raise FeedStopped(signals.received, writer.path, writer.t_available)
    writer.finish()
    return _result(writer, pacer)


def _feed_stream(name, to, chunk, bin_ms, bads, duration, overwrite, log, timeout=10.0):
    """Read the LSL stream `name` (EEG) into the live store `to` until `duration` s or a stop signal."""
    source = f"{LSL_PREFIX}{name}"
    if not name:
        raise ConfigError("RECORDING", source, "lsl://NAME: the name of an LSL stream")
    try:
        from mne_lsl.stream import StreamLSL
    except ImportError:
        raise ConfigError(
            "RECORDING",
            source,
            "a recording: reading LSL streams needs mne-lsl (pip install 'brainsim[twin]')",
        ) from None
    n_chunk = _chunk_bins(chunk, bin_ms)
    writer = LiveWriter(to, sources=[source], overwrite=overwrite)
    stream = StreamLSL(bufsize=max(10.0, 8 * chunk / 1000.0), name=name)
    try:
        stream.connect(acquisition_delay=0.01, timeout=timeout)
    except RuntimeError:
        raise StreamError(source, f"no LSL stream of that name answered within {timeout:g} s") from None
    try:
        return _read_stream(stream, source, writer, n_chunk, bin_ms, bads, duration, log, timeout)
    finally:
        stream.disconnect()


def _read_stream(stream, source, writer, n_chunk, bin_ms, bads, duration, log, timeout):
    """Pull the stream's new samples, put them on the electrodes and the bin grid, append whole chunks."""
    import mne

    info = stream.info
    sfreq = float(info["sfreq"])
    if sfreq <= 0:
        raise StreamError(source, "an irregular stream (no nominal sampling rate): EEG needs a fixed rate")
    channels, dropped = eeg_reader.match_channels(source, info["ch_names"], stream.get_channel_types())
    if not channels:
        raise StreamError(
            source, f"no EEG channel with a 10-20 name (channels: {', '.join(info['ch_names'][:20])})"
        )
    picks = [info["ch_names"].index(name) for name in channels]
    scale = np.array([10.0 ** info["chs"][k]["unit_mul"] for k in picks])  # to V
    chunk_info = mne.create_info(list(channels.values()), sfreq, "eeg")
    resample = _Resampler(sfreq, bin_ms, len(picks))
    state = {"bad": None, "order": None}

    def electrodes(x):
        raw = mne.io.RawArray(x.T * scale[:, None], chunk_info.copy(), verbose="error")
        if state["bad"] is None:
            state["bad"] = eeg_reader.bad_electrodes(source, raw, channels, bads)
        order, interpolated = eeg_reader.on_electrodes(source, raw, channels, state["bad"], dropped)
        if state["order"] is None:
            positions = np.array([raw.info["chs"][k]["loc"][:3] for k in range(len(order))]) * 1e3
            state.update(order=order, positions=positions, interpolated=interpolated)
        return raw.get_data(units=eeg_reader.UNITS).T

    pacer, progress = Pacer(0), _Progress(log, duration)
    limit = math.inf if duration is None else round(duration * 1000.0 / bin_ms)  # bins to read
    block, n_out, last_ts, heard = np.zeros((0, len(picks))), 0, None, time.monotonic()

    def write(part):
        nonlocal n_out
        writer.append(_stream_chunk(part, n_out, bin_ms, state, source, sfreq, channels, dropped))
        n_out += len(part)
        progress.show(n_out * bin_ms / 1000.0, pacer.elapsed(), n_out >= limit)

    with StopSignals(STOP_SIGNALS, interrupt=False) as signals:
        while n_out < limit and signals.received is None:
            if last_ts is None:  # the first samples: those that arrived since the connection
                n_new = stream.n_new_samples
                data, ts = stream.get_data(winsize=(n_new - 0.5) / sfreq) if n_new else (None, np.zeros(0))
            else:  # the samples after the last one taken (timestamps increase)
                data, ts = stream.get_data()
                data, ts = data[:, ts > last_ts], ts[ts > last_ts]
            if ts.size:
                heard, last_ts = time.monotonic(), float(ts[-1])
                block = np.vstack([block, resample(electrodes(data[picks].T))])
            elif time.monotonic() - heard > timeout:
                raise StreamError(source, f"no sample for {timeout:g} s: the stream stopped sending")
            else:
                time.sleep(_SLEEP_SLICE)
            if len(block) > limit - n_out:
                block = block[: int(limit - n_out)]
            while len(block) >= n_chunk or (len(block) and n_out + len(block) >= limit):
                write(block[:n_chunk])
                block = block[n_chunk:]
        if signals.received:
            if len(block):
                write(block)
            raise FeedStopped(signals.received, writer.path, writer.t_available)
    writer.finish()
    return _result(writer, pacer)


def _stream_chunk(x, n_before, bin_ms, state, source, sfreq, channels, dropped):
    """An observation Dataset of the stream's bins x (time, electrode) uV starting at bin n_before."""
    order = state["order"]
    coords = {
        "time": ("time", (n_before + np.arange(len(x))) * bin_ms, {"units": "ms"}),
        "electrode": ("electrode", np.array(order, dtype=object)),
    }
    for k, axis in enumerate("xyz"):
        coords[f"electrode_{axis}"] = ("electrode", state["positions"][:, k], {"units": "mm"})
    return xr.Dataset(
        {
            "eeg": (
                ("time", "electrode"),
                x.astype(np.float32),
                {"units": eeg_reader.UNITS, "long_name": "EEG (average reference)"},
            )
        },
        coords=coords,
        attrs={
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "brainsim_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sources": json.dumps([source]),
            "connectome": "",
            "bin": float(bin_ms),
            "tr": math.nan,
            "eeg_channels": json.dumps({name: new for name, new in channels.items() if new in order}),
            "eeg_dropped": json.dumps(dropped),
            "eeg_interpolated": json.dumps(state["interpolated"]),
            "eeg_sfreq": sfreq,
            "eeg_reference": "average",
            "notes": json.dumps(["a live stream: each channel's mean is not removed"]),
        },
    )


class _Resampler:
    """A stream's samples (sfreq Hz) onto one sample per bin_ms, block by block: a causal low-pass
    (4th-order Butterworth at 0.4 x the new rate) when the rate falls, then linear interpolation at the
    bin starts; its filter state and last sample carry over from block to block, so the blocks' edges
    leave no trace."""

    def __init__(self, sfreq, bin_ms, n_channels):
        from scipy.signal import butter

        self.step, self.bin = 1000.0 / sfreq, bin_ms
        target = 1000.0 / bin_ms
        self.sos = butter(4, 0.4 * target, fs=sfreq, output="sos") if target < sfreq else None
        self.zi, self.last, self.n_in, self.n_out = None, None, 0, 0

    def __call__(self, x):
        from scipy.signal import sosfilt, sosfilt_zi

        if self.sos is not None:
            if self.zi is None:
                self.zi = sosfilt_zi(self.sos)[:, :, None] * x[0]
            x, self.zi = sosfilt(self.sos, x, axis=0, zi=self.zi)
        t = (self.n_in + np.arange(len(x))) * self.step
        self.n_in += len(x)
        if self.last is not None:  # the previous block's last sample, to interpolate across the edge
            t, x = np.concatenate([[t[0] - self.step], t]), np.vstack([self.last, x])
        self.last = x[-1:]
        n = int(np.floor(t[-1] / self.bin + 1e-9)) + 1 - self.n_out
        grid = (self.n_out + np.arange(max(n, 0))) * self.bin
        self.n_out += len(grid)
        return np.column_stack([np.interp(grid, t, column) for column in x.T])


class _Progress:
    """Progress lines (time fed, speed achieved) at most every PROGRESS_EVERY s, and the last one."""

    def __init__(self, log, total):
        self.log, self.total, self.shown = log, total, -math.inf

    def show(self, fed, elapsed, last):
        if not last and elapsed - self.shown < PROGRESS_EVERY:
            return
        self.shown = elapsed
        of = "" if self.total is None else f" of {self.total:.4g}"
        rate = f"{fed / elapsed:.3g}x real time" if elapsed > 0 else "at once"
        self.log(f"feed: {fed:.4g}{of} s fed in {elapsed:.3g} s ({rate})")


def _result(writer, pacer):
    """What a finished feed returns."""
    return {
        "path": writer.path,
        "t_start": writer.t_start,
        "t_available": writer.t_available,
        "complete": True,
        "wall_s": pacer.elapsed(),
        "slept_s": pacer.slept,
    }


def _stretch(series, start, stop):
    """series restricted to [start, stop) ms of its time (either None: its own end)."""
    times = series["time"].values
    bin_ms = float(series.attrs["bin"])
    first, end = float(times[0]), float(times[-1]) + bin_ms
    lo = first if start is None else start
    hi = end if stop is None else stop
    for key, value in (("--start", start), ("--stop", stop)):
        if value is not None and not (math.isfinite(value) and first <= value <= end):
            raise ConfigError(key, value, f"a time in the recording, {first:g} to {end:g} ms")
    if not hi - lo >= bin_ms:
        raise ConfigError(
            "--stop", stop, f"a time at least one bin ({bin_ms:g} ms) after --start ({lo:g} ms)"
        )
    inside = (times >= lo - 1e-6 * bin_ms) & (times + bin_ms <= hi + 1e-6 * bin_ms)
    return series.isel(time=inside)


def _chunk_bins(chunk, bin_ms):
    """The number of bins of a chunk of `chunk` ms: a whole number of bins, at least one."""
    n = round(chunk / bin_ms)
    if n < 1 or abs(n * bin_ms - chunk) > 1e-6 * bin_ms:
        raise ConfigError(
            "--chunk", chunk, f"a whole number of bins ({bin_ms:g} ms each), at least one, in ms"
        )
    return n


def _positive(key, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(key, value, "a number > 0")
