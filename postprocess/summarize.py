"""A run store into its twin summary store (layout: postprocess.layout), with Dask.

Two passes, each bounded in memory: the spike pass (postprocess.spikes) writes the binned spike counts
per region and cell kind to a scratch array beside the summary, and gathers per-cell ISI statistics and
a raster sample; the second pass derives every summary variable from those counts and the run's
region signals, chunk by chunk, and writes the summary. Alerts are then evaluated on the summary."""

import json
import math
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.errors import ZarrUserWarning

from brainsim import __version__
from brainsim.errors import ConfigError, StoreError
from brainsim.files import check_writable
from brainsim.io.zarr_store import check_replaceable

from . import alerts as alert_rules
from . import forward
from .cluster import check_scheduler, compute, dask_client
from .layout import BANDS, FORMAT, FORMAT_VERSION
from .runstore import RunView
from .signals import (
    balloon,
    band_power,
    clear_peak_level,
    fc_sc_correlation,
    frequencies,
    spectral_peaks,
    spectrum,
)
from .spikes import KINDS, spike_pass

RASTER_SPIKES = 200_000  # most spikes in the raster sample
BOLD_RATE_SCALE = 50.0  # Hz: the rate that is a unit neural drive of the BOLD (20 Hz: flow +100 %)
FC_RATE_BIN = 10.0  # ms: bins of the rates correlated into fc_rate
SIGNAL_TAU = 5.0  # ms: alpha kernel smoothing the rate into a signal when the run has no mean V
CHUNK_BYTES = 64 << 20  # bytes of one (time, region) chunk held by a task
FC_MIN_SAMPLES = 10  # fewer samples (e.g. BOLD of a sub-second run) give no functional connectivity
SETTINGS = ("bin", "window", "tr", "alerts")  # the keys of a run config's summary section
SCRATCH_FORMAT = "brainsim-summary-counts"  # the spike pass's scratch array beside the summary


@dataclass(frozen=True)
class Summary:
    path: Path
    alerts: list  # matches: dicts {rule, variable, region, start, end, peak}
    source_status: str


def default_output(run):
    run = Path(run)
    stem = run.name[: -len(".zarr")] if run.name.endswith(".zarr") else run.name
    return run.with_name(f"{stem}.summary.zarr")


def settings(view, bin_ms=None, window_ms=None, tr=None, extra_alerts=()):
    """The summary settings: the run config's `summary` section (stored resolved), overridden by the
    arguments (ms; extra_alerts: resolved alert rules); checked."""
    config = view.store.config.get("summary")
    if not isinstance(config, dict) or any(key not in config for key in SETTINGS):
        raise StoreError(
            view.path, f"the stored config has no resolved summary section ({', '.join(SETTINGS)})"
        )
    given = {"bin": bin_ms, "window": window_ms, "tr": tr}
    for name, value in given.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"--{name}", value, "a time > 0 (ms)")
    bin_ms = bin_ms or config["bin"] or view.region_bin or 1.0
    window_ms = window_ms or config["window"]
    tr = tr or config["tr"]

    def key(name):  # where a setting came from: an option, or the run's config
        return f"--{name}" if given[name] else f"summary.{name}"

    if view.region_bin is not None and not _multiple(bin_ms, view.region_bin):
        raise ConfigError(key("bin"), bin_ms, f"a multiple of the run's region bin ({view.region_bin:g} ms)")
    for name, value in (("window", window_ms), ("tr", tr)):
        if not _multiple(value, bin_ms):
            raise ConfigError(key(name), value, f"a multiple of the bin ({bin_ms:g} ms)")
    alert_rules.check_regions(config["alerts"], view.labels, "summary.alerts")
    alert_rules.check_regions(extra_alerts, view.labels, "--alerts")
    return bin_ms, window_ms, tr, config["alerts"] + list(extra_alerts)


def _multiple(value, unit):
    ratio = value / unit
    return ratio >= 1 - 1e-9 and abs(ratio - round(ratio)) < 1e-6


def summarize(run, out=None, **options):
    """Summarise the run store `run` into `out` (default RUN.summary.zarr beside it); returns a Summary.
    options: scheduler, workers, bin_ms, window_ms, tr (ms), alerts (resolved alert rules evaluated besides
    the run config's), variables (the names of the variables to compute and write, with their
    coordinates, besides those the alert rules watch; default all), overwrite, log (see _summarize)."""
    with warnings.catch_warnings():
        # NaN where a measure is undefined (no cells, no spikes) is the intended result.
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        warnings.filterwarnings("ignore", "divide by zero encountered", RuntimeWarning)
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
        return _summarize(run, out, **options)


def _summarize(
    run,
    out=None,
    *,
    scheduler="local",
    workers=None,
    bin_ms=None,
    window_ms=None,
    tr=None,
    alerts=(),
    variables=None,
    overwrite=False,
    log=print,
):
    check_scheduler(scheduler, workers)
    view = RunView.open(run)
    out = Path(out) if out is not None else default_output(view.path)
    bin_ms, window_ms, tr, rules = settings(view, bin_ms, window_ms, tr, alerts)
    scratch = out.with_name(out.name + ".counts")
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise StoreError(out, "already exists; pass --overwrite to replace it")
        check_replaceable(out, FORMAT)
    if scratch.exists() or scratch.is_symlink():
        check_replaceable(scratch, SCRATCH_FORMAT)
    n_bins = int(np.floor((view.t_end - view.t_start) / bin_ms + 1e-9))
    if n_bins < 1:
        raise StoreError(
            view.path,
            f"holds {view.t_end - view.t_start:g} ms of output, less than one bin ({bin_ms:g} ms): use a "
            "smaller --bin",
        )
    check_writable(out, "the summary store")
    status = view.store.status
    with (
        dask_client(scheduler, workers, log, logs=str(out.with_name(out.name + ".dask-logs"))) as client,
        _fresh(out, scratch),
    ):  # with dask-mpi, only one rank gets here
        if status != "complete":
            log(f"summarize: warning: the run is {status!r}; summarising its first {view.t_end:g} ms")
        counts, stats, raster = spike_pass(
            view.path, view.cells, n_bins, bin_ms, view.raster_gids(), RASTER_SPIKES, view.t_start
        )
        store = counts.rechunk({0: counts.chunks[0][0]}).to_zarr(
            str(scratch), compute=False, zarr_format=3, attributes={"format": SCRATCH_FORMAT}
        )
        log(f"summarize: {view.path.name}: {n_bins} bins of {bin_ms:g} ms, {len(view.labels)} regions")
        _, stats, raster = compute(client, [store, stats, raster], "spike pass", log)
        counts = da.from_zarr(str(scratch))
        ds = _dataset(view, counts, stats, raster, bin_ms, window_ms, tr)
        if variables is not None:
            watched = [rule["variable"] for rule in rules if rule["variable"] not in variables]
            ds = ds[_known([*variables, *dict.fromkeys(watched)], ds)]
        ds.attrs.update(_attrs(view, bin_ms, window_ms, tr, rules))
        ds.attrs["n_spikes"] = int(stats.n.sum())  # every counted spike is one of a cell's
        write = ds.to_zarr(out, mode="w-", zarr_format=3, consolidated=True, compute=False)
        compute(client, [write], "region signals, EEG, band power, BOLD, connectivity, indicators", log)
    shutil.rmtree(scratch, ignore_errors=True)
    matches = alert_rules.evaluate(xr.open_zarr(out), rules)
    group = zarr.open_group(out, mode="r+")
    group.attrs["alerts"] = json.dumps(matches)
    zarr.consolidate_metadata(out)
    return Summary(out, matches, status)


def _known(variables, ds):
    """The variables named, checked to be the summary's."""
    unknown = [name for name in variables if name not in ds.data_vars]
    if unknown:
        raise ConfigError("variables", unknown, f"variables of a summary: {sorted(ds.data_vars)}")
    return variables


@contextmanager
def _fresh(*paths):
    """Remove the paths (checked to be replaceable) now, and again if writing them fails: a failed
    summary leaves no half-written store behind."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    try:
        yield
    except BaseException:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
        raise


def _attrs(view, bin_ms, window_ms, tr, rules):
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "brainsim_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": str(view.path),
        "source_name": view.store.config.get("name", view.path.stem),
        "source_config_hash": view.store.config_hash,
        "source_status": view.store.status,
        "source_t_reached": view.t_end,
        "source_t_start": view.t_start,
        "source_parent": view.store.parent or "",
        "provenance": json.dumps(view.store.provenance),
        "bin": bin_ms,
        "window_ms": window_ms,
        "tr": tr,
        "peak_clear_above": clear_peak_level(
            int(np.floor((view.t_end - view.t_start) / bin_ms + 1e-9)), bin_ms
        ),
        "alert_rules": json.dumps(rules),
        "alerts": "[]",
    }


def _dataset(view, counts, stats, raster, bin_ms, window_ms, tr):
    """The summary Dataset (lazy) from the counts (n_bins, n_regions, 3) and the spike-pass results."""
    n_bins, n_regions = counts.shape[0], counts.shape[1]
    n_cells = view.n_cells.sum(axis=1).astype(float)
    n_exc, n_inh = view.n_cells[:, KINDS.index("excitatory")], view.n_cells[:, KINDS.index("inhibitory")]
    cells = np.where(n_cells > 0, n_cells, np.nan)
    time_chunk = max(1, CHUNK_BYTES // (8 * n_regions))
    total = counts.sum(axis=2, dtype=np.float64).rechunk((time_chunk, n_regions))
    rate = total / (cells * bin_ms * 1e-3)
    per_window = int(round(window_ms / bin_ms))
    n_windows = n_bins // per_window
    windowed = (
        counts[: n_windows * per_window]
        .astype(np.float64)
        .rechunk((max(1, time_chunk // per_window) * per_window, n_regions, len(KINDS)))
    )
    windowed = windowed.reshape(n_windows, per_window, n_regions, len(KINDS), merge_chunks=False)
    window_total = windowed.sum(axis=3)
    window_s = window_ms * 1e-3
    rate_e = windowed[..., KINDS.index("excitatory")].sum(axis=1) / (
        np.where(n_exc > 0, n_exc, np.nan) * window_s
    )
    rate_i = windowed[..., KINDS.index("inhibitory")].sum(axis=1) / (
        np.where(n_inh > 0, n_inh, np.nan) * window_s
    )
    signal, signal_source, signal_units = _signal(view, rate, bin_ms, n_bins)
    start = view.t_start  # ms: a fork's future starts at its fork time
    time = start + np.arange(n_bins) * bin_ms
    data = {
        "rate": (("time", "region"), rate.astype(np.float32), "Hz", "population firing rate"),
        "signal": (("time", "region"), signal.astype(np.float32), signal_units, "region signal (LFP proxy)"),
        "mean_rate": (("region",), total.sum(axis=0) / (cells * n_bins * bin_ms * 1e-3), "Hz", "mean rate"),
        "mean_rate_excitatory": (
            ("region",),
            counts[..., KINDS.index("excitatory")].sum(axis=0, dtype=np.float64)
            / (np.where(n_exc > 0, n_exc, np.nan) * n_bins * bin_ms * 1e-3),
            "Hz",
            "mean rate of the excitatory cells",
        ),
        "mean_rate_inhibitory": (
            ("region",),
            counts[..., KINDS.index("inhibitory")].sum(axis=0, dtype=np.float64)
            / (np.where(n_inh > 0, n_inh, np.nan) * n_bins * bin_ms * 1e-3),
            "Hz",
            "mean rate of the inhibitory cells",
        ),
        "cv_isi": (("region",), _cv_isi(view, stats), "1", "mean CV of inter-spike intervals"),
        "synchrony": (("region",), _chi2(total, n_cells, axis=0), "1", "Golomb's chi^2 of the count"),
        "window_rate": (
            ("window", "region"),
            window_total.sum(axis=1) / (cells * window_s),
            "Hz",
            "firing rate per window",
        ),
        "hypersynchrony": (
            ("window", "region"),
            _chance_corrected(_chi2(window_total, n_cells, axis=1), n_cells),
            "1",
            "hypersynchrony index: chance-corrected chi^2 per window (0 independent, 1 lockstep)",
        ),
        "ei_balance": (
            ("window", "region"),
            (rate_e - rate_i) / (rate_e + rate_i),
            "1",
            "E/I balance (r_E - r_I) / (r_E + r_I) of per-cell mean rates",
        ),
    }
    region_chunk = max(1, min(n_regions, CHUNK_BYTES // (8 * n_bins)))
    by_region = signal.rechunk((n_bins, region_chunk))
    freqs = frequencies(n_bins, bin_ms)
    _add_spectra(data, by_region, bin_ms, freqs, "region", "", signal_units, "the region signal")
    every = int(round(tr / bin_ms))
    drive = da.nan_to_num(rate / BOLD_RATE_SCALE).rechunk((n_bins, region_chunk))
    bold = _per_column(drive, lambda u: balloon(u, bin_ms * 1e-3, every), n_bins // every + 1)
    data["bold"] = (("bold_time", "region"), bold, "%", "BOLD signal change (Balloon-Windkessel)")
    data["fc_bold"] = (("region", "region2"), correlation(bold), "1", "correlation of BOLD")
    per_fc = max(1, int(round(FC_RATE_BIN / bin_ms)))
    n_fc = n_bins // per_fc
    coarse = total[: n_fc * per_fc].rechunk((max(1, time_chunk // per_fc) * per_fc, n_regions))
    coarse = coarse.reshape(n_fc, per_fc, n_regions, merge_chunks=False).sum(axis=1)
    data["fc_rate"] = (
        ("region", "region2"),
        correlation(coarse),
        "1",
        f"correlation of {FC_RATE_BIN:g} ms rates",
    )
    _add_structure(view, data)
    coords = {
        "time": ("time", time, {"units": "ms"}),
        "window": ("window", start + np.arange(n_windows) * window_ms, {"units": "ms"}),
        "bold_time": ("bold_time", start + np.arange(n_bins // every + 1) * tr, {"units": "ms"}),
        "region": ("region", np.array(view.labels, dtype=object), {}),
        "region2": ("region2", np.array(view.labels, dtype=object), {}),
        "hemisphere": ("region", np.array(view.hemisphere, dtype=object), {}),
        "n_cells": ("region", n_cells.astype(np.int64), {}),
        "n_excitatory": ("region", n_exc.astype(np.int64), {}),
        "n_inhibitory": ("region", n_inh.astype(np.int64), {}),
        "band": ("band", np.array(list(BANDS), dtype=object), {}),
        "band_low": ("band", np.array([b[0] for b in BANDS.values()]), {"units": "Hz"}),
        "band_high": ("band", np.array([b[1] for b in BANDS.values()]), {"units": "Hz"}),
        "frequency": ("frequency", freqs, {"units": "Hz"}),
    }
    for k, axis in enumerate("xyz"):
        coords[f"centre_{axis}"] = ("region", view.centres[:, k], {"units": "mm"})
    eeg_attrs = _add_eeg(view, signal, bin_ms, data, coords, freqs)
    gid, spike_time = raster
    data["raster_gid"] = (("spike",), gid.astype(np.int64), "", "gid of each sampled spike")
    data["raster_time"] = (("spike",), spike_time, "ms", "time of each sampled spike")
    data["raster_region"] = (("spike",), view.cells.region[gid].astype(np.int64), "", "region index")
    ds = xr.Dataset(
        {
            name: xr.Variable(dims, values, {"units": units, "long_name": doc})
            for name, (dims, values, units, doc) in data.items()
        },
        coords={name: xr.Variable(dim, values, attrs) for name, (dim, values, attrs) in coords.items()},
    )
    ds["signal"].attrs["signal_source"] = signal_source
    ds["eeg"].attrs.update(eeg_attrs)
    return _regular_chunks(ds)


def _signal(view, rate, bin_ms, n_bins):
    """(signal (time, region) dask, source, units): the run's mean V minus its time mean, or the rate
    smoothed by an alpha kernel when the run has no regions group."""
    v_mean = view.v_mean
    if v_mean is not None:
        factor = int(round(bin_ms / view.region_bin))
        v = v_mean[: n_bins * factor].astype(np.float64)
        v = v.rechunk((max(1, rate.chunks[0][0]) * factor, v.shape[1]))
        v = v.reshape(n_bins, factor, v.shape[1], merge_chunks=False).mean(axis=1)
        return v - da.nanmean(v, axis=0), "regions/v_mean minus its time mean", "mV"
    t = np.arange(0.0, 8 * SIGNAL_TAU, bin_ms)
    kernel = t / SIGNAL_TAU * np.exp(1 - t / SIGNAL_TAU)
    kernel /= kernel.sum()
    depth = min(kernel.size, max(1, n_bins - 1))

    def smooth(block):  # causal: each bin from itself and the bins before it
        return np.apply_along_axis(lambda x: np.convolve(x, kernel)[: x.size], 0, block)

    filled = da.nan_to_num(rate)
    if filled.chunks[0][0] < depth:
        filled = filled.rechunk((depth, filled.shape[1]))
    smoothed = filled.map_overlap(smooth, depth={0: depth, 1: 0}, boundary=0.0, trim=True)
    return smoothed, f"rate smoothed by a {SIGNAL_TAU:g} ms alpha kernel", "Hz"


def _add_structure(view, data):
    """The run's structural connectivity (NaN where the run store has none) and its correlation with the
    functional connectivity of rates and of BOLD (signals.fc_sc_correlation)."""
    n = len(view.labels)
    for name, values, units, doc in (
        ("sc_weights", view.sc_weights, "a.u.", "structural connectivity weight from region2 to region"),
        ("sc_tract_lengths", view.sc_tract_lengths, "mm", "tract length from region2 to region"),
    ):
        matrix = np.full((n, n), np.nan) if values is None else values
        data[name] = (("region", "region2"), matrix, units, doc)
    sc = data["sc_weights"][1]
    for fc in ("fc_rate", "fc_bold"):
        r = dask.delayed(lambda f: np.asarray(fc_sc_correlation(f, sc)))(data[fc][1])
        r = da.from_delayed(r, shape=(), dtype=np.float64)
        data[f"fc_sc_{fc[3:]}"] = ((), r, "1", f"Pearson r of {fc} and the symmetrised sc_weights")


def _add_eeg(view, signal, bin_ms, data, coords, freqs):
    """The scalp EEG (µV) of the region signals (mV) through MNE's sphere-model forward solution
    (postprocess.forward), with its spectra; no electrodes when no region with cells has a centre.
    Returns the eeg variable's attributes that describe the forward model."""
    has_cells = view.n_cells.sum(axis=1) > 0
    known = np.isfinite(view.centres).all(axis=1) & has_cells
    centres, hemisphere = view.centres[known], [h for h, k in zip(view.hemisphere, known) if k]
    names = forward.electrode_names() if known.any() else []
    field = np.zeros((len(names), len(view.labels)))
    positions, moved = np.zeros((len(names), 3)), []
    if names:
        field[:, known] = forward.lead_field(centres, hemisphere)
        positions = forward.electrodes_in_frame(centres, hemisphere)
        pulled = forward.place(centres, hemisphere)[1]
        moved = [label for label, m in zip(np.array(view.labels, dtype=object)[known], pulled) if m]
    eeg = (
        da.nan_to_num(signal) @ field.T
        if names
        else da.zeros((signal.shape[0], 0), chunks=(signal.chunks[0], 0))
    )
    data["eeg"] = (
        ("time", "electrode"),
        eeg.astype(np.float32),
        forward.UNITS,
        "scalp EEG: MNE sphere-model forward solution of radial region dipoles, average reference",
    )
    by_column = eeg.rechunk((eeg.shape[0], max(1, len(names))))
    psd = _add_spectra(data, by_column, bin_ms, freqs, "electrode", "_eeg", forward.UNITS, "the EEG")
    mean = (
        _per_column(psd.mean(axis=1, keepdims=True), lambda p: spectral_peaks(freqs, p), 2)[:, 0]
        if names
        else da.full((2,), np.nan)
    )
    data["eeg_peak_frequency"] = ((), mean[0], "Hz", "spectral peak of the EEG's mean spectrum")
    data["eeg_peak_prominence"] = ((), mean[1], "1", "power at that peak over the 1/f background")
    coords["electrode"] = ("electrode", np.array(names, dtype=object), {})
    for k, axis in enumerate("xyz"):
        coords[f"electrode_{axis}"] = ("electrode", positions[:, k], {"units": "mm"})
    return {
        "forward_model": forward.describe(),
        "montage": forward.MONTAGE,
        "dipole_per_mv": forward.DIPOLE_PER_MV,
        "regions_pulled_in": json.dumps(moved),
    }


def _add_spectra(data, columns, bin_ms, freqs, dim, suffix, units, what):
    """Band power, Welch spectrum and spectral peak of each column of `columns` (time, dim), sampled every
    bin_ms ms, as data["band_power" + suffix], ["spectrum" + suffix], ["peak_frequency" + suffix] and
    ["peak_prominence" + suffix]; returns the spectra (frequency, dim)."""
    power = _per_column(columns, lambda x: band_power(x, bin_ms), len(BANDS)).T
    data[f"band_power{suffix}"] = ((dim, "band"), power, f"{units}^2", f"Welch band power of {what}")
    psd = _per_column(columns, lambda x: spectrum(x, bin_ms), freqs.size)
    data[f"spectrum{suffix}"] = (
        ("frequency", dim),
        psd,
        f"{units}^2/Hz",
        f"Welch power spectral density of {what}",
    )
    peaks = _per_column(psd, lambda p: spectral_peaks(freqs, p), 2)
    data[f"peak_frequency{suffix}"] = ((dim,), peaks[0], "Hz", f"spectral peak of {what}")
    data[f"peak_prominence{suffix}"] = ((dim,), peaks[1], "1", "power at the peak over the 1/f background")
    return psd


def _per_column(x, function, n_rows):
    """function applied to each column block of x (time, n) chunked along n only: (n_rows, n)."""
    if x.shape[1] == 0:
        return da.zeros((n_rows, 0), chunks=(n_rows, 0))
    return x.map_blocks(
        lambda block: function(np.asarray(block, dtype=np.float64)),
        chunks=((n_rows,), x.chunks[1]),
        dtype=np.float64,
    )


def _chi2(counts, n_cells, axis):
    """Golomb's chi^2 of the population count along `axis`: Var(N) / (n m (1 - m/n)), m = mean(N); the
    cells' variances taken as those of 0/1 counts at the region's mean rate (bins shorter than a
    refractory period). 1/n for independent cells, 1 in lockstep; NaN with no spikes."""
    m = counts.mean(axis=axis)
    var = counts.var(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return var / (n_cells * m * (1.0 - m / n_cells))


def _chance_corrected(chi2, n_cells):
    """(chi^2 - 1/n) / (1 - 1/n): 0 for independent cells, 1 in lockstep; NaN for fewer than 2 cells."""
    n = np.where(n_cells >= 2, n_cells, np.nan)
    return (chi2 - 1.0 / n) / (1.0 - 1.0 / n)


def correlation(x):
    """Pearson correlation (n, n) of the columns of the dask array x (time, n); NaN where undefined or
    with fewer than FC_MIN_SAMPLES samples."""
    if x.shape[0] < FC_MIN_SAMPLES:
        return da.full((x.shape[1], x.shape[1]), np.nan)
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred
    norm = da.sqrt(da.diagonal(cov))
    corr = cov / (norm[:, None] * norm[None, :])
    return da.clip(da.where(da.isfinite(corr), corr, np.nan), -1.0, 1.0)


def _cv_isi(view, stats):
    """Per region, the mean over its cells with >= 3 spikes of std(ISI) / mean(ISI)."""
    k = stats.n - 1
    use = k >= 2
    mean = stats.isi_sum[use] / k[use]
    var = np.maximum(stats.isi_sq[use] / k[use] - mean**2, 0.0)
    cv = np.sqrt(var) / mean
    region = view.cells.region[stats.gid[use]]
    n = np.bincount(region, minlength=len(view.labels))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(region, cv, minlength=len(view.labels)) / n


def _regular_chunks(ds):
    """Chunks Zarr can hold: along each dimension all equal but the last."""
    for name, var in ds.variables.items():
        if isinstance(var.data, da.Array):
            ds[name] = var.chunk({dim: max(c[0], 1) for dim, c in zip(var.dims, var.data.chunks)})
    return ds
