"""Region signals into twin measures: EEG lead field, Welch band power, Balloon-Windkessel BOLD. Plain
NumPy/SciPy/numba on in-memory blocks; summarize applies them chunk by chunk."""

import numba
import numpy as np
from scipy.signal import welch

from .layout import BANDS

# Approximate 10-20 positions on a unit sphere: (polar angle from the vertex Cz, azimuth from the right
# ear towards the nose), degrees. Axes: x to the right, y to the front, z up (as in TVB's centres).
ELECTRODES_1020 = {
    "Fp1": (90, 108), "Fp2": (90, 72), "F7": (90, 144), "F3": (60, 130), "Fz": (45, 90), "F4": (60, 50),
    "F8": (90, 36), "T7": (90, 180), "C3": (45, 180), "Cz": (0, 0), "C4": (45, 0), "T8": (90, 0),
    "P7": (90, 216), "P3": (60, 230), "Pz": (45, 270), "P4": (60, 310), "P8": (90, 324), "O1": (90, 252),
    "O2": (90, 288),
}  # fmt: skip
SCALP_OFFSET = 10.0  # mm between the outermost region centre and the scalp sphere


def electrode_positions(centres):
    """(names, (n, 3) mm): the 10-20 electrodes on a sphere around the region centres (n, 3) mm, centred
    on their mean, of radius the farthest centre's distance + SCALP_OFFSET."""
    middle = centres.mean(axis=0)
    radius = np.linalg.norm(centres - middle, axis=1).max() + SCALP_OFFSET
    theta, phi = np.radians(np.array(list(ELECTRODES_1020.values()), dtype=float)).T
    unit = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
    return list(ELECTRODES_1020), middle + radius * unit


def lead_field(electrodes, centres):
    """(n_electrodes, n_regions): weights 1/d^2 (d: electrode-centre distance, mm), each row summing to
    1, then average-referenced (columns minus their mean over electrodes), so eeg = L @ signal."""
    d2 = ((electrodes[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1)
    weights = 1.0 / d2
    weights /= weights.sum(axis=1, keepdims=True)
    return weights - weights.mean(axis=0, keepdims=True)


def band_power(x, bin_ms):
    """Welch power of each column of x (time, n), sampled every bin_ms, in the BANDS: (n_bands, n) in
    x's units squared (PSD integrated over [low, high) Hz); NaN where the record resolves no frequency
    of the band. Segments of 1 s (or the whole record if shorter), Hann window, half overlap."""
    fs = 1000.0 / bin_ms
    x = np.asarray(x, dtype=np.float64)
    out = np.full((len(BANDS), x.shape[1]), np.nan)
    if x.shape[0] < 4:
        return out
    freqs, psd = welch(x, fs=fs, nperseg=min(x.shape[0], int(round(fs))), axis=0, detrend="constant")
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
