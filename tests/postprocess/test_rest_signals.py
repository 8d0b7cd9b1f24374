"""What says whether a brain is at rest, with known answers: the correlation of functional with structural
connectivity, and the spectral peak over the 1/f background (a sinusoid's frequency; none in noise); and
both in the summary of a run store that holds its structural connectivity (or, written before brainsim
stored it, does not)."""

import numpy as np
import pytest
import xarray as xr
from scipy.signal import lfilter
from test_summarize import ALPHA_HZ, GAMMA_HZ, LABELS, TSTOP, write_run

from brainsim.postprocess.signals import (
    clear_peak_level,
    fc_sc_correlation,
    frequencies,
    spectral_peaks,
    spectrum,
)
from brainsim.postprocess.summarize import summarize

N_TIME = 10_000  # samples of 1 ms: 10 s, 19 Welch segments
BIN_MS = 1.0


def structure(n, rng):
    """A directed connectome (n, n): sparse log-normal weights, zero diagonal."""
    weights = rng.lognormal(0.0, 1.0, (n, n)) * (rng.random((n, n)) < 0.4)
    np.fill_diagonal(weights, 0.0)
    return weights


def test_fc_that_is_sc_plus_noise_correlates_with_it():
    rng = np.random.default_rng(3)
    sc = structure(40, rng)
    symmetric = 0.5 * (sc + sc.T)
    noise = rng.normal(0.0, 0.3 * symmetric.std(), sc.shape)
    fc = symmetric + 0.5 * (noise + noise.T)
    np.fill_diagonal(fc, 1.0)
    assert fc_sc_correlation(fc, sc) > 0.9
    assert fc_sc_correlation(fc, sc.T) == pytest.approx(fc_sc_correlation(fc, sc))  # SC symmetrised
    unrelated = rng.normal(size=sc.shape)
    assert abs(fc_sc_correlation(0.5 * (unrelated + unrelated.T), sc)) < 0.15
    fc[0, :] = fc[:, 0] = np.nan  # a region without cells: its pairs are left out
    i, j = np.triu_indices(39, 1)
    expected = np.corrcoef(fc[1:, 1:][i, j], symmetric[1:, 1:][i, j])[0, 1]
    assert fc_sc_correlation(fc, sc) == pytest.approx(expected)
    assert np.isnan(fc_sc_correlation(np.full((4, 4), np.nan), sc[:4, :4]))
    assert np.isnan(fc_sc_correlation(fc[:2, :2], sc[:2, :2]))  # one pair


def peaks_of(x):
    """(frequency Hz, prominence) per column of x (time, n) sampled every BIN_MS."""
    return spectral_peaks(frequencies(x.shape[0], BIN_MS), spectrum(x, BIN_MS))


def test_a_10_hz_sinusoid_is_a_clear_10_hz_peak():
    rng = np.random.default_rng(4)
    t = np.arange(N_TIME) * BIN_MS * 1e-3
    x = np.sin(2 * np.pi * 10.0 * t)[:, None] + rng.normal(0.0, 1.0, (N_TIME, 1))
    frequency, prominence = peaks_of(x)[:, 0]
    assert frequency == 10.0 and prominence > 10 * clear_peak_level(N_TIME, BIN_MS)


def test_a_rhythm_on_a_1_over_f_background_is_found():
    """A resonance at 20 Hz (AR(2)) on the Lorentzian background of an AR(1) process: the background's
    knee is not a peak, the resonance is."""
    rng = np.random.default_rng(5)
    background = lfilter([1.0], [1.0, -0.95], rng.normal(size=(N_TIME, 8)), axis=0)
    r, w = 0.99, 2 * np.pi * 20.0 * BIN_MS * 1e-3
    rhythm = lfilter([1.0], [1.0, -2 * r * np.cos(w), r * r], rng.normal(size=(N_TIME, 8)), axis=0)
    level = clear_peak_level(N_TIME, BIN_MS)
    frequency, prominence = peaks_of(background + 0.1 * rhythm)
    assert np.all(np.abs(frequency - 20.0) <= 1.0) and np.all(prominence > level)
    assert np.all(peaks_of(background)[1] < level)


def test_white_noise_has_no_clear_peak():
    rng = np.random.default_rng(6)
    for n_time in (1000, N_TIME):
        prominence = peaks_of(rng.normal(size=(n_time, 20)))[1]
        level = clear_peak_level(n_time, BIN_MS)
        assert np.all(prominence < level) and np.all(prominence > 1.0)
    assert clear_peak_level(1000, BIN_MS) > clear_peak_level(N_TIME, BIN_MS)  # one segment: wider chance
    assert clear_peak_level(3, BIN_MS) == np.inf


def test_short_or_flat_records_have_no_peak():
    assert np.isnan(peaks_of(np.zeros((2000, 1)))).all()  # no power
    assert np.isnan(peaks_of(np.ones((3, 2)))).all()  # too short for a spectrum


@pytest.fixture(scope="module")
def summaries(tmp_path_factory):
    """Summaries of the same run store with and without its structural connectivity."""
    folder = tmp_path_factory.mktemp("rest")
    rng = np.random.default_rng(7)
    sc = (structure(len(LABELS), rng), rng.uniform(10.0, 120.0, (len(LABELS), len(LABELS))))
    out = {}
    for name, given in (("with", sc), ("without", None)):
        run, _, _ = write_run(folder / f"{name}.zarr", sc=given)
        path = summarize(run, folder / f"{name}.summary.zarr", scheduler="sync", log=lambda line: None).path
        out[name] = xr.open_zarr(path)
    return out, sc


def test_summary_holds_the_structure_and_its_correlation_with_fc(summaries):
    ds, (weights, lengths) = summaries[0]["with"], summaries[1]
    np.testing.assert_array_equal(ds.sc_weights.values, weights)
    np.testing.assert_array_equal(ds.sc_tract_lengths.values, lengths)
    assert ds.sc_weights.dims == ("region", "region2") and ds.sc_tract_lengths.attrs["units"] == "mm"
    assert float(ds.fc_sc_rate) == pytest.approx(fc_sc_correlation(ds.fc_rate.values, weights))
    assert float(ds.fc_sc_bold) == pytest.approx(fc_sc_correlation(ds.fc_bold.values, weights))
    assert np.isfinite(float(ds.fc_sc_rate))


def test_a_store_without_structure_summarises_with_nan(summaries):
    ds = summaries[0]["without"]
    assert bool(ds.sc_weights.isnull().all()) and np.isnan(float(ds.fc_sc_rate))
    assert np.isfinite(ds.fc_rate.values).any()


def test_summary_spectra_and_peaks(summaries):
    ds = summaries[0]["with"]
    level = ds.attrs["peak_clear_above"]
    assert level == pytest.approx(clear_peak_level(int(TSTOP), 1.0))
    assert ds.spectrum.dims == ("frequency", "region") and ds.frequency.attrs["units"] == "Hz"
    assert ds.spectrum.attrs["units"] == "mV^2/Hz" and ds.spectrum_eeg.dims == ("frequency", "electrode")
    assert float(ds.peak_frequency.sel(region="lA")) == ALPHA_HZ
    assert float(ds.peak_frequency.sel(region="lB")) == GAMMA_HZ
    assert float(ds.peak_prominence.sel(region="lA")) > 10 * level
    assert np.isnan(float(ds.peak_frequency.sel(region="rC")))  # a constant signal: no power
    assert float(ds.eeg_peak_frequency) in (ALPHA_HZ, GAMMA_HZ) and float(ds.eeg_peak_prominence) > level
    assert set(ds.peak_frequency_eeg.values) <= {ALPHA_HZ, GAMMA_HZ}
    # Welch's mean PSD integrates to the band powers
    df = float(ds.frequency[1] - ds.frequency[0])
    alpha = ds.spectrum.sel(frequency=slice(8.0, 12.9)).sum("frequency") * df
    np.testing.assert_allclose(alpha.values, ds.band_power.sel(band="alpha").values, rtol=1e-6)


def test_per_kind_mean_rates(summaries):
    ds = summaries[0]["with"]
    assert float(ds.mean_rate_excitatory.sel(region="lA")) == pytest.approx(20.0, abs=1.0)
    assert float(ds.mean_rate_inhibitory.sel(region="lA")) == pytest.approx(40.0, abs=2.0)
    assert np.isnan(float(ds.mean_rate_inhibitory.sel(region="lB")))  # no inhibitory cells
