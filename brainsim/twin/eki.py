"""Ensemble Kalman inversion (Iglesias, Law & Stuart 2013) with perturbed observations and the adaptive,
data-misfit-controlled step of Iglesias & Yang (2021), in NumPy.

The unknowns u (members × parameters) live in an unconstrained space; g (members × data) are the
forward model's outputs for each member, y the data, `noise` the data's error: a vector, the variance of
each datum (a diagonal Γ), or an (M, M) covariance matrix Γ (correlated errors, whitened by its Cholesky
factor L, Γ = L Lᵀ). Each update moves every member by the ensemble's Kalman gain towards its own
perturbed copy of the data, tempered by a step h = 1/α (α inflates Γ); the steps sum to 1 over a fit, so
that for a linear model with a Gaussian prior (the initial ensemble) the final ensemble samples the
posterior as the ensemble grows (ensemble smoother with multiple data assimilation, Emerick & Reynolds
2013). The step is the largest the ensemble's misfit allows: h = min(max(M / (2 mean Φ), sqrt(M / (2 var
Φ))), 1 − t), Φ_j = ½ |Γ^(−1/2) (y − g_j)|², M data, t the steps taken so far.

With many unknowns and few members, the ensemble's chance correlations between an unknown and data it
does not affect shrink its spread below the posterior's. A localised update (domain localisation, as the
local ensemble filters of weather forecasting do; Chen & Oliver 2017 for iterative smoothers) moves each
unknown with the gain computed from its own data alone: for per-region parameters, the features of its
region and those of no region (e.g. EEG electrodes). On a linear-Gaussian problem of 16 such parameters,
35 data and 40 members it brings the fraction of parameters within 2 posterior sd from 0.91 to 0.94
(0.954 expected of a calibrated posterior).
"""

import numpy as np


def _whitened_squares(g, y, noise):
    """(members, M) squared residuals in noise units: (g − y)² / noise, or (L⁻¹ (g − y))² for a covariance
    matrix noise = L Lᵀ."""
    noise = np.asarray(noise, dtype=float)
    if noise.ndim < 2:
        return (g - y) ** 2 / noise
    chol = np.linalg.cholesky(noise)
    r = np.nan_to_num(g - y, nan=np.inf)
    finite = np.isfinite(r).all(axis=1)
    w = np.full(r.shape, np.inf)
    w[finite] = np.linalg.solve(chol, r[finite].T).T ** 2
    return w


def misfit(g, y, noise):
    """Per member: the mean over the data of the squared residual in noise units, (y − g)² / noise, or
    |L⁻¹ (y − g)|² / M for a covariance matrix noise (1 at the noise level); inf for a member with a
    non-finite output."""
    g = np.atleast_2d(g)
    out = _whitened_squares(g, y, noise).mean(axis=1)
    return np.where(np.isfinite(out), out, np.inf)


def step_size(g, y, noise, t, last=False):
    """The next step h in (0, 1 − t]: Iglesias & Yang's adaptive choice, or the rest of the unit
    pseudo-time when `last`. g: outputs of the members that ran (finite)."""
    rest = 1.0 - t
    if last or rest <= 0:
        return max(rest, 0.0)
    phi = 0.5 * _whitened_squares(g, y, noise).sum(axis=1)
    m = y.size
    mean, var = phi.mean(), phi.var()
    candidates = [m / (2.0 * mean) if mean > 0 else np.inf, np.sqrt(m / (2.0 * var)) if var > 0 else np.inf]
    return float(min(max(candidates), rest))


def localisation(owners, data_regions):
    """Per unknown, the indices of the data a localised update moves it with: owners (p,) the region label
    of each unknown (None: of the whole brain, all data), data_regions (M,) the set of region labels of each
    datum (None: of no region, every unknown's)."""
    mine = [
        [m for m, regions in enumerate(data_regions) if owner is None or regions is None or owner in regions]
        for owner in owners
    ]
    return [np.array(data, dtype=np.int64) for data in mine]


def update(u, g, y, noise, h, rng, local=None):
    """The ensemble u (J, p) after one step h of ensemble Kalman inversion on outputs g (J, M): each member
    moved by the gain C_ug (C_gg + Γ/h)^(−1) towards y plus its own N(0, Γ/h) perturbation (Γ: diag(noise)
    for a vector noise, else the matrix; the perturbation drawn through its Cholesky factor). local: None
    (every unknown from all data), or per unknown the indices of its data (localisation()); each unknown
    is then moved by the gain of those data alone, from the same perturbed data."""
    u, g = np.asarray(u, dtype=float), np.asarray(g, dtype=float)
    noise = np.asarray(noise, dtype=float)
    j = u.shape[0]
    alpha = 1.0 / h
    du, dg = u - u.mean(axis=0), g - g.mean(axis=0)
    c_ug = du.T @ dg / (j - 1)
    c_gg = dg.T @ dg / (j - 1)
    if noise.ndim < 2:
        perturbed = y + rng.standard_normal(g.shape) * np.sqrt(alpha * noise)
        gamma = np.diag(alpha * noise)
    else:
        perturbed = y + rng.standard_normal(g.shape) @ np.linalg.cholesky(noise).T * np.sqrt(alpha)
        gamma = alpha * noise
    if local is None:
        gain = np.linalg.solve(c_gg + gamma, (perturbed - g).T)
        return u + (c_ug @ gain).T
    moved = u.copy()
    columns = {}
    for column, data in enumerate(local):
        columns.setdefault(tuple(int(m) for m in data), []).append(column)
    for data, cols in columns.items():
        if data:
            d = np.array(data)
            gain = np.linalg.solve(c_gg[np.ix_(d, d)] + gamma[np.ix_(d, d)], (perturbed[:, d] - g[:, d]).T)
            moved[:, cols] += (c_ug[np.ix_(cols, d)] @ gain).T
    return moved


def shrunk_covariance(x, shrinkage="auto"):
    """(covariance (M, M), intensity λ) of the samples x (n, M), n >= 2: the sample covariance S with its
    off-diagonal entries shrunk towards 0 (the target is S's diagonal), (1 − λ) S + λ diag(S). "auto":
    the intensity that minimises the expected squared error, estimated from the samples (Ledoit & Wolf
    2004's closed form for this target, Schäfer & Strimmer 2005's target D),
    λ = Σ_{i≠j} Var(s_ij) / Σ_{i≠j} s_ij², clipped to [0, 1]; or a given λ in [0, 1]."""
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    xc = x - x.mean(axis=0)
    w = xc[:, :, None] * xc[:, None, :]  # (n, M, M)
    s = w.sum(axis=0) / (n - 1)
    if shrinkage == "auto":
        var_s = n / (n - 1) ** 3 * ((w - w.mean(axis=0)) ** 2).sum(axis=0)
        off = ~np.eye(x.shape[1], dtype=bool)
        denominator = (s[off] ** 2).sum()
        lam = float(np.clip(var_s[off].sum() / denominator, 0.0, 1.0)) if denominator > 0 else 1.0
    else:
        lam = float(shrinkage)
    shrunk = (1.0 - lam) * s
    shrunk[np.diag_indices_from(s)] = np.diag(s)
    return shrunk, lam
