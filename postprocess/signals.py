"""Region signals into twin measures: Welch band power and spectral peaks, Balloon-Windkessel BOLD (the EEG
forward model is postprocess.forward). Plain NumPy/SciPy/numba on in-memory blocks; summarize applies them
chunk by chunk."""

import numba
import numpy as np
from scipy.optimize import curve_fit
from scipy.signal import get_window, welch
from scipy.stats import chi2

from .layout import BANDS

# The 19 electrodes of the 10-20 system (modern names: T7/T8, P7/P8), in the order of the summary's
# electrode axis; their positions are those of MNE's standard_1020 montage (postprocess.forward).
ELECTRODES_1020 = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz", "P4", "P8",
    "O1", "O2",
)  # fmt: skip


def welch_segment(n_time, bin_ms):
    """Samples per Welch segment for a record of n_time samples every bin_ms ms: 1 s, or the whole record
    if shorter."""
    return min(n_time, int(round(1000.0 / bin_ms)))


def frequencies(n_time, bin_ms):
    """The frequencies (Hz) of `spectrum` for a record of n_time samples every bin_ms ms."""
    return np.fft.rfftfreq(welch_segment(n_time, bin_ms), bin_ms * 1e-3)


def spectrum(x, bin_ms):
    """Welch power spectral density of each column of x (time, n), sampled every bin_ms: (n_freq, n) in
    x's units squared per Hz at `frequencies`. Segments of 1 s (or the whole record if shorter), Hann
    window, half overlap, each segment's mean removed; NaN for records of fewer than 4 samples."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 4:
        return np.full((frequencies(x.shape[0], bin_ms).size, x.shape[1]), np.nan)
    nperseg = welch_segment(x.shape[0], bin_ms)
    return welch(x, fs=1000.0 / bin_ms, nperseg=nperseg, axis=0, detrend="constant")[1]


def band_power(x, bin_ms):
    """Welch power (`spectrum`) of each column of x (time, n), sampled every bin_ms, in the BANDS:
    (n_bands, n) in x's units squared (PSD integrated over [low, high) Hz); NaN where the record resolves
    no frequency of the band."""
    fs = 1000.0 / bin_ms
    x = np.asarray(x, dtype=np.float64)
    out = np.full((len(BANDS), x.shape[1]), np.nan)
    if x.shape[0] < 4:
        return out
    freqs, psd = frequencies(x.shape[0], bin_ms), spectrum(x, bin_ms)
    df = freqs[1] - freqs[0]
    for k, (low, high) in enumerate(BANDS.values()):
        inside = (freqs >= low) & (freqs < min(high, fs / 2))
        if inside.any():
            out[k] = psd[inside].sum(axis=0) * df
    return out


# Balloon-Windkessel constants (Friston et al. 2000, as in TVB's BalloonModel): s^-1, s and 1.
KAPPA, GAMMA, TAU, ALPHA, RHO, V0 = 0.65, 0.41, 0.98, 0.32, 0.34, 0.02
K1, K2, K3 = 7.0 * RHO, 2.0, 2.0 * RHO - 0.2


@numba.njit(cache=True)
def _bold(f, v, q):
    return 100.0 * V0 * (K1 * (1.0 - q) + K2 * (1.0 - q / v) + K3 * (1.0 - v))


@numba.njit(cache=True)
def balloon(u, dt, every):
    """BOLD signal change (%) of the Balloon-Windkessel model driven by u (time, n) (dimensionless
    neural drive, >= 0), integrated by forward Euler with step dt (s), sampled every `every` steps (sample
    k: after k * every steps). Each column starts at the steady state of its mean drive, and its BOLD is
    relative to that state's, so a constant drive gives 0 (no start-up transient)."""
    n_time, n = u.shape
    out = np.empty((n_time // every + 1, n))
    for j in range(n):
        mean = 0.0
        for i in range(n_time):
            mean += u[i, j]
        mean /= max(n_time, 1)
        s, f = 0.0, 1.0 + mean / GAMMA
        v = f**ALPHA
        q = v * (1.0 - (1.0 - RHO) ** (1.0 / f)) / RHO
        rest = _bold(f, v, q)
        out[0, j] = 0.0
        for i in range(n_time):
            ds = u[i, j] - KAPPA * s - GAMMA * (f - 1.0)
            dv = (f - v ** (1.0 / ALPHA)) / TAU
            dq = (f * (1.0 - (1.0 - RHO) ** (1.0 / f)) / RHO - v ** (1.0 / ALPHA) * q / v) / TAU
            f += dt * s
            s += dt * ds
            v += dt * dv
            q += dt * dq
            if (i + 1) % every == 0:
                out[(i + 1) // every, j] = _bold(f, v, q) - rest
    return out


PEAK_RANGE = (1.0, 80.0)  # Hz: where spectral peaks are looked for
PEAK_MIN_BINS = 2  # the lowest frequency bins (DC and the Hann window's main lobe around it) are left out
PEAK_ALPHA = 0.002  # nominal chance of a "clear" peak in a spectrum without one (see clear_peak_level)
KNEE_BOUNDS = (1e-2, 1e3)  # Hz: the aperiodic background's knee (at the lower bound: a power law)
EXPONENT_MAX = 8.0  # steepest aperiodic background, power ~ f^-EXPONENT_MAX


def peak_bins(freqs):
    """Boolean mask of the frequency bins (Hz) searched for a peak: PEAK_RANGE above the lowest bins."""
    df = freqs[1] - freqs[0] if freqs.size > 1 else np.inf
    return (freqs >= max(PEAK_RANGE[0], PEAK_MIN_BINS * df)) & (freqs <= PEAK_RANGE[1])


def aperiodic(freqs, offset, knee, exponent):
    """log10 of the aperiodic ("1/f") background 10^offset / (knee^exponent + f^exponent) at freqs (Hz):
    a power law f^-exponent above the knee (Hz), flat below it."""
    return offset - np.log10(knee**exponent + freqs**exponent)


def fit_aperiodic(freqs, psd):
    """log10 of the aperiodic background fitted to log10 psd (> 0, finite) at freqs (Hz) by least
    squares: the better of a straight line in log-log axes (a power law of any slope) and `aperiodic`
    (started from the line), fitted once on every bin and again without the bins more than 2.5 robust SDs
    above the first fit (the peaks)."""
    log_f, log_psd = np.log10(freqs), np.log10(psd)
    use = np.ones(freqs.size, bool)
    bounds = ([-np.inf, KNEE_BOUNDS[0], 0.0], [np.inf, KNEE_BOUNDS[1], EXPONENT_MAX])
    for _ in range(2):
        slope, intercept = np.polyfit(log_f[use], log_psd[use], 1)
        candidates = [intercept + slope * log_f]
        start = (intercept, KNEE_BOUNDS[0], float(np.clip(-slope, 0.0, EXPONENT_MAX)))
        try:
            params = curve_fit(aperiodic, freqs[use], log_psd[use], p0=start, bounds=bounds)[0]
            candidates.append(aperiodic(freqs, *params))
        except (RuntimeError, ValueError):  # no convergence: the line
            pass
        fitted = min(candidates, key=lambda c: np.sum((log_psd[use] - c[use]) ** 2))
        residual = log_psd - fitted
        spread = 1.4826 * np.median(np.abs(residual - np.median(residual)))
        use = residual <= np.median(residual) + 2.5 * max(spread, 1e-12)
    return fitted


def background(freqs, psd):
    """log10 of the aperiodic background of psd (> 0, finite) at freqs (Hz): `fit_aperiodic`'s shape,
    placed at the median of the power about it (half of the bins lie above it)."""
    fitted = fit_aperiodic(freqs, psd)
    return fitted + np.median(np.log10(psd) - fitted)


def spectral_peaks(freqs, psd):
    """Per column of psd (n_freq, n) at freqs (Hz): (2, n) rows peak frequency (Hz) and prominence, the
    power at the peak over the `background` there (a ratio; half of the searched bins lie above 1). The
    peak is the bin of `peak_bins`, not at either end, highest above the background; NaN for columns
    without positive finite power in at least 5 of those bins."""
    inside = peak_bins(freqs)
    f = freqs[inside]
    out = np.full((2, psd.shape[1]), np.nan)
    for j in range(psd.shape[1]):
        p = psd[inside, j]
        if f.size < 5 or not (np.isfinite(p).all() and (p > 0).all()):
            continue
        excess = np.log10(p) - background(f, p)
        best = 1 + int(np.argmax(excess[1:-1]))  # a peak has a bin on either side
        out[:, j] = f[best], 10.0 ** excess[best]
    return out


def welch_dof(n_time, bin_ms):
    """Equivalent degrees of freedom of a `spectrum` bin for a record of n_time samples every bin_ms ms
    (Welch 1967: 2 per segment, less the correlation of overlapping Hann segments)."""
    nperseg = welch_segment(n_time, bin_ms)
    step = nperseg - nperseg // 2
    k = 1 + (n_time - nperseg) // step
    w = get_window("hann", nperseg)
    lags = range(1, min(k, -(-nperseg // step)))  # segments j apart overlap while j * step < nperseg
    rho = [np.dot(w[: nperseg - j * step], w[j * step :]) ** 2 / np.dot(w, w) ** 2 for j in lags]
    return 2.0 * k / (1.0 + 2.0 * sum((1.0 - j / k) * r for j, r in enumerate(rho, start=1)))


def clear_peak_level(n_time, bin_ms):
    """The prominence above which a spectral peak is clear: what the highest of the searched bins of a
    spectrum with no peak (power chi^2 distributed with `welch_dof` degrees of freedom about the
    background, placed at their median) exceeds with probability PEAK_ALPHA; fitting the background adds
    to the chance: on white and AR(1) noise 0.3-2 % of spectra (1 s to 10 s records) exceed it. Records
    of fewer than 4 samples: infinite."""
    if n_time < 4:
        return np.inf
    nu = welch_dof(n_time, bin_ms)
    n_bins = max(1, int(peak_bins(frequencies(n_time, bin_ms)).sum()))
    return float(chi2.ppf(1.0 - PEAK_ALPHA / n_bins, nu) / chi2.median(nu))


def fc_sc_correlation(fc, sc):
    """Pearson correlation between functional connectivity fc (n, n) and structural weights sc (n, n),
    over the region pairs i < j where fc is finite, with sc symmetrised ((sc + sc^T) / 2: FC has no
    direction) and linear weights (pairs without a tract included, as zeros); NaN with fewer than 3 pairs
    or no spread in either."""
    fc, sc = np.asarray(fc, dtype=np.float64), np.asarray(sc, dtype=np.float64)
    i, j = np.triu_indices(fc.shape[0], 1)
    x, y = fc[i, j], 0.5 * (sc[i, j] + sc[j, i])
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        return np.nan
    return float(np.corrcoef(x, y)[0, 1])
