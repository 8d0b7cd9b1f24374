"""The generic relaxation kernels vs their NumPy twins; exp_euler_np is exact for constant x∞ and τ."""

import numpy as np
import pytest

from brainsim.kernels.states import (
    exp_euler_np,
    relax_residual,
    relax_residual_np,
)

N = 1000


@pytest.fixture
def case():
    rng = np.random.default_rng(7)
    s, sdot, xinf, xinf_dv = rng.uniform(-1.0, 1.0, (4, N))
    tau, tau_dv = rng.uniform(0.05, 50.0, (2, N))
    return s, sdot, xinf, tau, xinf_dv, tau_dv


def test_exp_euler_is_exact_for_constant_coefficients(case):
    """Many steps land on the analytic solution x∞ + (s₀ − x∞)·exp(−t/τ)."""
    s, _, xinf, tau, _, _ = case
    out, dt, steps = s.copy(), 0.1, 400
    for _ in range(steps):
        out = exp_euler_np(out, xinf, tau, dt)
    exact = xinf + (s - xinf) * np.exp(-steps * dt / tau)
    np.testing.assert_allclose(out, exact, rtol=1e-11, atol=1e-13)


def test_relax_residual_matches_twin(case):
    s, sdot, xinf, tau, _, _ = case
    f = np.empty(N)
    relax_residual(s, sdot, xinf, tau, f)
    np.testing.assert_allclose(f, relax_residual_np(s, sdot, xinf, tau), rtol=1e-13, atol=1e-15)
    relax_residual(xinf, np.zeros(N), xinf, tau, f)  # at rest on x∞
    assert np.all(f == 0.0)
