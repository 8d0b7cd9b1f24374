"""Ensemble Kalman inversion (Iglesias, Law & Stuart 2013) with perturbed observations and the adaptive,
data-misfit-controlled step of Iglesias & Yang (2021), in NumPy.

The unknowns u (members × parameters) live in an unconstrained space; g (members × data) are the
forward model's outputs for each member, y the data, `noise` the variance of each datum (a diagonal
Γ). Each update moves every member by the ensemble's Kalman gain towards its own perturbed copy of the
data, tempered by a step h = 1/α (α inflates Γ); the steps sum to 1 over a fit, so that for a linear
model with a Gaussian prior (the initial ensemble) the final ensemble samples the posterior as the
ensemble grows (ensemble smoother with multiple data assimilation, Emerick & Reynolds 2013). The step
is the largest the ensemble's misfit allows: h = min(max(M / (2 mean Φ), sqrt(M / (2 var Φ))), 1 − t),
Φ_j = ½ |Γ^(−1/2) (y − g_j)|², M data, t the steps taken so far.
"""

import numpy as np


def misfit(g, y, noise):
    """Per member: the mean over the data of the squared residual in noise units, (y − g)² / noise
    (1 at the noise level); inf for a member with a non-finite output."""
    g = np.atleast_2d(g)
    r = (g - y) ** 2 / noise
    out = r.mean(axis=1)
    return np.where(np.isfinite(out), out, np.inf)


def step_size(g, y, noise, t, last=False):
    """The next step h in (0, 1 − t]: Iglesias & Yang's adaptive choice, or the rest of the unit
    pseudo-time when `last`. g: outputs of the members that ran (finite)."""
    rest = 1.0 - t
    if last or rest <= 0:
        return max(rest, 0.0)
    phi = 0.5 * ((g - y) ** 2 / noise).sum(axis=1)
    m = y.size
    mean, var = phi.mean(), phi.var()
    candidates = [m / (2.0 * mean) if mean > 0 else np.inf, np.sqrt(m / (2.0 * var)) if var > 0 else np.inf]
    return float(min(max(candidates), rest))


def update(u, g, y, noise, h, rng):
    """The ensemble u (J, p) after one step h of ensemble Kalman inversion on outputs g (J, M): each member
    moved by the gain C_ug (C_gg + Γ/h)^(−1) towards y plus its own N(0, Γ/h) perturbation."""
    u, g = np.asarray(u, dtype=float), np.asarray(g, dtype=float)
    j = u.shape[0]
    alpha = 1.0 / h
    du, dg = u - u.mean(axis=0), g - g.mean(axis=0)
    c_ug = du.T @ dg / (j - 1)
    c_gg = dg.T @ dg / (j - 1)
    perturbed = y + rng.standard_normal(g.shape) * np.sqrt(alpha * noise)
    gain = np.linalg.solve(c_gg + np.diag(alpha * noise), (perturbed - g).T)
    return u + (c_ug @ gain).T
