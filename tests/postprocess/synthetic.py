"""Synthetic summary stores that follow postprocess/layout.py, built from known data with a fixed seed.

Region i fires Poisson spikes around a sinusoidally modulated rate (base 5 + 2 (i mod 10) Hz, modulated at
FREQUENCIES[i % 4]); its signal is a 1 mV sinusoid at that frequency plus white noise, so the band powers
are known in closed form. BOLD is a slow sinusoid whose phase depends on the hemisphere; hypersynchrony
ramps up in region 0 only. The structural weights are a fixed sparse matrix; spectra, peaks and the FC-SC
correlations are computed from these data by brainsim.postprocess.signals.
"""

import json
import warnings

import numpy as np
import xarray as xr
from zarr.errors import ZarrUserWarning

from brainsim import __version__
from brainsim.postprocess import signals
from brainsim.postprocess.layout import BANDS, FORMAT, FORMAT_VERSION

FREQUENCIES = (6.0, 10.0, 20.0, 40.0)  # Hz: theta, alpha, beta, gamma
SIGNAL_AMPLITUDE = 1.0  # mV
NOISE_SD = 0.1  # mV
BOLD_PERIOD = 10_000.0  # ms
ELECTRODES = ("Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "T7", "T8", "Fz", "Cz", "Pz")
MAX_RASTER = 5000  # spikes kept in the raster sample
PROVENANCE = {
    "config_file": "/synthetic/config.yaml",
    "overlay_files": ["/synthetic/patient.yaml"],
    "patient_id": "P-0042",
    "interventions": ["stimulation"],
    "connectome": "synthetic-connectome",
    "connectome_notes": [],
}
ALERT_RULES = [
    {
        "name": "hypersync",
        "variable": "hypersynchrony",
        "above": 0.8,
        "below": None,
        "for": 100.0,
        "regions": "all",
    }
]


def synthetic_summary(path, **kwargs) -> xr.Dataset:
    """Write synthetic_dataset(**kwargs) as a summary store at path and return the Dataset."""
    ds = synthetic_dataset(**kwargs)
    write_summary(ds, path)
    return ds


def write_summary(ds: xr.Dataset, path) -> None:
    """Write a summary Dataset the way summaries are stored: Zarr v3, consolidated metadata."""
    with warnings.catch_warnings():  # zarr warns that consolidation is outside the v3 spec
        warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
        ds.to_zarr(path, zarr_format=3, consolidated=True, mode="w")


def synthetic_dataset(
    *,
    n_regions=6,
    n_time=400,
    bin_ms=1.0,
    window_ms=50.0,
    tr=100.0,
    n_electrodes=4,
    cells_per_region=20,
    name="synthetic",
    status="complete",
    alerts=(),
    seed=0,
) -> xr.Dataset:
    """A summary Dataset of n_regions regions over n_time bins of bin_ms ms (windows of window_ms ms, BOLD
    every tr ms, n_electrodes EEG electrodes, 0 for none); alerts: the alert matches to store."""
    rng = np.random.default_rng(seed)
    t_end = n_time * bin_ms
    time = np.arange(n_time) * bin_ms
    frequency = np.array([FREQUENCIES[i % 4] for i in range(n_regions)])
    rate, spikes, n_spikes = _spiking(rng, time, bin_ms, frequency, cells_per_region)
    signal = _signal(rng, time, frequency)
    lead_field = rng.normal(size=(n_electrodes, n_regions))
    if n_electrodes:
        lead_field -= lead_field.mean(axis=0)  # average reference
    eeg = signal @ lead_field.T
    bold_time = np.arange(0.0, t_end, tr)
    bold = _bold(bold_time, n_regions)
    window = np.arange(int(t_end // window_ms)) * window_ms
    ds = xr.Dataset(
        coords=_coords(time, window, bold_time, n_regions, n_electrodes, cells_per_region),
        attrs=_attrs(name, status, t_end, bin_ms, window_ms, tr, n_spikes, alerts),
    )
    freqs = signals.frequencies(n_time, bin_ms)
    ds = ds.assign_coords(frequency=("frequency", freqs, {"units": "Hz"}))
    spectrum_eeg = signals.spectrum(eeg, bin_ms) if n_electrodes else np.zeros((freqs.size, 0))
    eeg_peak = (
        signals.spectral_peaks(freqs, spectrum_eeg.mean(axis=1, keepdims=True))[:, 0]
        if n_electrodes
        else np.full(2, np.nan)
    )
    sc = _structure(n_regions)
    fc_rate, fc_bold = _correlation(rate), _correlation(bold)
    ds.attrs["peak_clear_above"] = signals.clear_peak_level(n_time, bin_ms)
    window_rate = np.array([rate[(time >= w) & (time < w + window_ms)].mean(axis=0) for w in window])
    variables = {
        "rate": (("time", "region"), rate, "Hz", "population firing rate per bin"),
        "signal": (("time", "region"), signal, "mV", "region signal (LFP proxy)"),
        "eeg": (("time", "electrode"), eeg, "a.u.", "scalp EEG proxy"),
        "mean_rate": (("region",), rate.mean(axis=0), "Hz", "mean firing rate"),
        "cv_isi": (("region",), 0.8 + 0.05 * np.arange(n_regions), "1", "CV of the inter-spike intervals"),
        "synchrony": (("region",), np.linspace(0.1, 0.6, n_regions), "1", "Golomb synchrony"),
        "band_power": (("region", "band"), _band_power(frequency, bin_ms), "mV^2", "band power of signal"),
        "band_power_eeg": (
            ("electrode", "band"),
            (lead_field**2) @ _band_power(frequency, bin_ms),
            "a.u.^2",
            "band power of eeg",
        ),
        "bold": (("bold_time", "region"), bold, "%", "BOLD signal change"),
        "fc_bold": (("region", "region2"), fc_bold, "1", "functional connectivity of BOLD"),
        "fc_rate": (("region", "region2"), fc_rate, "1", "functional connectivity of rate"),
        "mean_rate_excitatory": (("region",), 0.9 * rate.mean(axis=0), "Hz", "mean rate of excitatory cells"),
        "mean_rate_inhibitory": (("region",), 1.4 * rate.mean(axis=0), "Hz", "mean rate of inhibitory cells"),
        "spectrum_eeg": (("frequency", "electrode"), spectrum_eeg, "a.u.^2/Hz", "power spectrum of eeg"),
        "eeg_peak_frequency": ((), eeg_peak[0], "Hz", "peak of the mean EEG spectrum"),
        "eeg_peak_prominence": ((), eeg_peak[1], "1", "its power over the 1/f background"),
        "sc_weights": (("region", "region2"), sc, "a.u.", "structural connectivity"),
        "fc_sc_rate": ((), signals.fc_sc_correlation(fc_rate, sc), "1", "FC-SC correlation of rates"),
        "fc_sc_bold": ((), signals.fc_sc_correlation(fc_bold, sc), "1", "FC-SC correlation of BOLD"),
        "window_rate": (
            ("window", "region"),
            window_rate.reshape(-1, n_regions),
            "Hz",
            "firing rate per window",
        ),
        "hypersynchrony": (("window", "region"), _hypersynchrony(window, n_regions), "1", "hypersynchrony"),
        "ei_balance": (("window", "region"), _ei_balance(window, n_regions), "1", "E/I balance"),
        "raster_gid": (("spike",), spikes[0], "", "cell gid"),
        "raster_time": (("spike",), spikes[1], "ms", "spike time"),
        "raster_region": (("spike",), spikes[2], "", "region index"),
    }
    for key, (dims, values, units, long_name) in variables.items():
        ds[key] = xr.Variable(dims, values, {"units": units, "long_name": long_name})
    ds["signal"].attrs["signal_source"] = "regions/v_mean minus its time mean"
    return ds


def _spiking(rng, time, bin_ms, frequency, cells):
    """Poisson population counts -> rate (time, region) Hz, raster sample (gid, time ms, region), n_spikes."""
    base = 5.0 + 2.0 * (np.arange(len(frequency)) % 10)
    expected = base * (1.0 + 0.5 * np.sin(2 * np.pi * np.outer(time, frequency) / 1000.0))
    counts = rng.poisson(expected * cells * bin_ms / 1000.0)
    rate = counts / (cells * bin_ms / 1000.0)
    bins, region = np.nonzero(counts)
    repeat = counts[bins, region]
    bins, region = np.repeat(bins, repeat), np.repeat(region, repeat)
    spike_time = time[bins] + rng.uniform(0.0, bin_ms, len(bins))
    gid = region * cells + rng.integers(0, cells, len(bins))
    keep = rng.choice(len(bins), min(len(bins), MAX_RASTER), replace=False)
    keep = keep[np.argsort(spike_time[keep], kind="stable")]
    sample = (gid[keep].astype(np.int64), spike_time[keep], region[keep].astype(np.int64))
    return rate, sample, int(counts.sum())


def _signal(rng, time, frequency):
    """Sinusoids of SIGNAL_AMPLITUDE mV plus white noise of NOISE_SD mV, time mean removed."""
    x = SIGNAL_AMPLITUDE * np.sin(2 * np.pi * np.outer(time, frequency) / 1000.0)
    x += rng.normal(0.0, NOISE_SD, x.shape)
    return x - x.mean(axis=0)


def _band_power(frequency, bin_ms):
    """Expected power (mV^2) per (region, band): A^2/2 in the band of the sinusoid plus the noise's share."""
    nyquist = 500.0 / bin_ms
    power = np.empty((len(frequency), len(BANDS)))
    for j, (low, high) in enumerate(BANDS.values()):
        inside = (frequency >= low) & (frequency < high)
        power[:, j] = np.where(inside, SIGNAL_AMPLITUDE**2 / 2, 0.0) + NOISE_SD**2 * (high - low) / nyquist
    return power


def _bold(bold_time, n_regions):
    """Slow sinusoids (%): the left hemisphere (even regions) in antiphase with the right."""
    phase = np.where(np.arange(n_regions) % 2 == 0, 0.0, np.pi) + 0.1 * np.arange(n_regions)
    return 0.5 * np.sin(2 * np.pi * bold_time[:, None] / BOLD_PERIOD + phase)


def _correlation(x):
    """Pearson correlation of the columns of x (time, region); NaN with fewer than 3 samples."""
    if x.shape[0] < 3:
        return np.full((x.shape[1], x.shape[1]), np.nan)
    return np.corrcoef(x, rowvar=False)


def _structure(n_regions):
    """weights[target, source]: each region gets 1 from the region before it, 0.5 from the one after."""
    index = np.arange(n_regions)
    weights = np.zeros((n_regions, n_regions))
    weights[index, (index - 1) % n_regions] += 1.0
    weights[index, (index + 1) % n_regions] += 0.5
    np.fill_diagonal(weights, 0.0)
    return weights


def _hypersynchrony(window, n_regions):
    """0.1 everywhere except region 0, which ramps linearly from 0.1 to 0.95 over the run."""
    values = np.full((len(window), n_regions), 0.1)
    values[:, 0] = np.linspace(0.1, 0.95, len(window))
    return values


def _ei_balance(window, n_regions):
    """(r_E - r_I) / (r_E + r_I) oscillating around 0.2 with a region-dependent phase."""
    return 0.2 + 0.3 * np.sin(np.arange(len(window))[:, None] / 3.0 + np.arange(n_regions))


def _coords(time, window, bold_time, n_regions, n_electrodes, cells):
    """Coordinates of the layout: regions alternate left/right, 80 % of each region's cells excitatory."""
    index = np.arange(n_regions)
    left = index % 2 == 0
    labels = np.array(
        [f"{'lh' if is_left else 'rh'}-area{i // 2}" for i, is_left in enumerate(left)], dtype=object
    )
    n_excitatory = np.full(n_regions, int(0.8 * cells), dtype=np.int64)
    angle = np.linspace(0.0, 2 * np.pi, n_electrodes, endpoint=False)
    names = np.array([ELECTRODES[i % len(ELECTRODES)] for i in range(n_electrodes)], dtype=object)
    mm, hz = {"units": "mm"}, {"units": "Hz"}
    return {
        "time": ("time", time, {"units": "ms"}),
        "window": ("window", window, {"units": "ms"}),
        "bold_time": ("bold_time", bold_time, {"units": "ms"}),
        "region": ("region", labels),
        "hemisphere": ("region", np.where(left, "left", "right").astype(object)),
        "centre_x": ("region", np.where(left, -30.0, 30.0), mm),
        "centre_y": ("region", 10.0 * index - 20.0, mm),
        "centre_z": ("region", np.full(n_regions, 15.0), mm),
        "n_cells": ("region", np.full(n_regions, cells, dtype=np.int64)),
        "n_excitatory": ("region", n_excitatory),
        "n_inhibitory": ("region", cells - n_excitatory),
        "region2": ("region2", labels.copy()),
        "electrode": ("electrode", names),
        "electrode_x": ("electrode", 90.0 * np.cos(angle), mm),
        "electrode_y": ("electrode", 90.0 * np.sin(angle), mm),
        "electrode_z": ("electrode", np.full(n_electrodes, 40.0), mm),
        "band": ("band", np.array(list(BANDS), dtype=object)),
        "band_low": ("band", np.array([low for low, _ in BANDS.values()]), hz),
        "band_high": ("band", np.array([high for _, high in BANDS.values()]), hz),
    }


def _attrs(name, status, t_end, bin_ms, window_ms, tr, n_spikes, alerts):
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "brainsim_version": __version__,
        "created": "2025-01-01T12:00:00+00:00",
        "source": f"/synthetic/{name}.zarr",
        "source_name": name,
        "source_config_hash": "0123456789abcdef",
        "source_status": status,
        "source_t_reached": t_end,
        "provenance": json.dumps(PROVENANCE),
        "bin": bin_ms,
        "window_ms": window_ms,
        "tr": tr,
        "n_spikes": n_spikes,
        "alert_rules": json.dumps(ALERT_RULES),
        "alerts": json.dumps(list(alerts)),
    }
