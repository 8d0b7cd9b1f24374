"""Ensemble Kalman inversion alone (brainsim.twin.eki): on a linear-Gaussian problem its final ensemble
samples the analytic posterior, and on a nonlinear toy it brings the misfit to the noise level."""

import numpy as np
import pytest

from brainsim.twin import eki


def _invert(forward, u0, y, noise, iterations, seed=0):
    """The ensemble after adaptive EKI of at most `iterations` updates, and the steps taken."""
    rng = np.random.default_rng(seed)
    u, t, steps = u0, 0.0, []
    for k in range(iterations):
        g = forward(u)
        h = eki.step_size(g, y, noise, t, last=k == iterations - 1)
        steps.append(h)
        u = eki.update(u, g, y, noise, h, rng)
        t += h
        if t >= 1 - 1e-12:
            break
    return u, steps


def test_linear_gaussian_posterior():
    rng = np.random.default_rng(1)
    p, m, j = 3, 6, 4000
    a = rng.standard_normal((m, p))
    prior_mean, prior_cov = np.array([0.5, -0.2, 0.1]), np.diag([1.0, 0.5, 2.0])
    sd = 0.3
    noise = np.full(m, sd**2)
    truth = np.array([1.0, -0.5, 0.8])
    y = a @ truth + sd * rng.standard_normal(m)
    precision = a.T @ (a / noise[:, None]) + np.linalg.inv(prior_cov)
    cov = np.linalg.inv(precision)
    mean = cov @ (a.T @ (y / noise) + np.linalg.solve(prior_cov, prior_mean))
    u0 = rng.multivariate_normal(prior_mean, prior_cov, j)
    u, steps = _invert(lambda u: u @ a.T, u0, y, noise, iterations=10)
    assert sum(steps) == pytest.approx(1.0)
    assert len(steps) > 1  # the adaptive step did not take all of the data at once
    # the ensemble mean's sampling error is sd / sqrt(j), ~0.01 here
    np.testing.assert_allclose(u.mean(axis=0), mean, atol=0.04)
    np.testing.assert_allclose(u.std(axis=0), np.sqrt(np.diag(cov)), rtol=0.1)


def test_a_single_step_is_the_kalman_update():
    """With h = 1 and a large ensemble, one update is the Kalman filter's analysis."""
    rng = np.random.default_rng(2)
    a = np.array([[2.0, 0.0], [1.0, 1.0]])
    noise = np.array([0.1, 0.2])
    y = np.array([1.0, 0.3])
    u0 = rng.standard_normal((20000, 2))
    u = eki.update(u0, u0 @ a.T, y, noise, 1.0, rng)
    cov = np.linalg.inv(a.T @ (a / noise[:, None]) + np.eye(2))
    np.testing.assert_allclose(u.mean(axis=0), cov @ (a.T @ (y / noise)), atol=0.02)


def test_nonlinear_toy_reaches_the_noise_level():
    """A positive parameter fitted through its log (exp forward model, as a rate grows with its drive)."""
    rng = np.random.default_rng(3)
    truth = np.array([np.log(1.3), np.log(0.7)])

    def forward(u):
        x = np.exp(u)
        a, b = x[:, 0], x[:, 1]
        return np.stack([a**2 + b, a * b**3, np.log(a + 2 * b)], axis=1)

    sd = 0.02
    noise = np.full(3, sd**2)
    y = forward(truth[None])[0] + sd * rng.standard_normal(3)
    u0 = rng.normal(0.0, 0.4, (200, 2))
    first = np.median(eki.misfit(forward(u0), y, noise))
    u, _ = _invert(forward, u0, y, noise, iterations=8)
    last = np.median(eki.misfit(forward(u), y, noise))
    assert first > 100 * last
    assert last < 3.0  # the noise level is 1; members carry their own perturbed data
    np.testing.assert_allclose(np.exp(u.mean(axis=0)), np.exp(truth), rtol=0.05)


def test_misfit_and_step():
    y, noise = np.zeros(4), np.full(4, 0.25)
    g = np.array([[0.5, 0.5, 0.5, 0.5], [np.nan, 0, 0, 0]])
    np.testing.assert_allclose(eki.misfit(g, y, noise), [1.0, np.inf])
    assert eki.step_size(g[:1].repeat(3, 0), y, noise, 0.7, last=True) == pytest.approx(0.3)
    assert 0 < eki.step_size(np.array([[3.0] * 4, [5.0] * 4]), y, noise, 0.0) < 0.1


def _correlated(m, rng):
    """A covariance matrix (m, m) with strong correlations between neighbouring data."""
    sd = rng.uniform(0.2, 0.4, m)
    corr = 0.8 ** np.abs(np.subtract.outer(np.arange(m), np.arange(m)))
    return corr * np.outer(sd, sd)


def test_linear_gaussian_posterior_with_correlated_noise():
    rng = np.random.default_rng(4)
    p, m, j = 3, 6, 4000
    a = rng.standard_normal((m, p))
    prior_mean, prior_cov = np.array([0.5, -0.2, 0.1]), np.diag([1.0, 0.5, 2.0])
    gamma = _correlated(m, rng)
    truth = np.array([1.0, -0.5, 0.8])
    y = a @ truth + rng.multivariate_normal(np.zeros(m), gamma)
    precision = a.T @ np.linalg.solve(gamma, a) + np.linalg.inv(prior_cov)
    cov = np.linalg.inv(precision)
    mean = cov @ (a.T @ np.linalg.solve(gamma, y) + np.linalg.solve(prior_cov, prior_mean))
    # the posterior counting the data as independent differs from it by far more than the tolerance
    diagonal = np.linalg.inv(a.T @ (a / np.diag(gamma)[:, None]) + np.linalg.inv(prior_cov))
    assert np.max(np.abs(np.sqrt(np.diag(diagonal)) / np.sqrt(np.diag(cov)) - 1)) > 0.3
    u0 = rng.multivariate_normal(prior_mean, prior_cov, j)
    u, steps = _invert(lambda u: u @ a.T, u0, y, gamma, iterations=10)
    assert sum(steps) == pytest.approx(1.0) and len(steps) > 1
    np.testing.assert_allclose(u.mean(axis=0), mean, atol=0.04)
    np.testing.assert_allclose(u.std(axis=0), np.sqrt(np.diag(cov)), rtol=0.1)


def test_a_diagonal_covariance_is_the_noise_vector():
    rng = np.random.default_rng(5)
    noise = rng.uniform(0.05, 0.5, 5)
    u, g, y = rng.standard_normal((30, 2)), rng.standard_normal((30, 5)), rng.standard_normal(5)
    np.testing.assert_allclose(eki.misfit(g, y, np.diag(noise)), eki.misfit(g, y, noise), rtol=1e-12)
    for t in (0.0, 0.4):
        assert eki.step_size(g, y, np.diag(noise), t) == pytest.approx(
            eki.step_size(g, y, noise, t), rel=1e-12
        )
    moved = [eki.update(u, g, y, gamma, 0.3, np.random.default_rng(6)) for gamma in (noise, np.diag(noise))]
    np.testing.assert_allclose(moved[1], moved[0], rtol=1e-10, atol=1e-12)
    # a member with a non-finite output has an infinite misfit with a covariance as with a vector
    g[3, 1] = np.nan
    assert (
        np.isinf(eki.misfit(g, y, np.diag(noise))[3])
        and np.isfinite(eki.misfit(g, y, np.diag(noise))[:3]).all()
    )


def test_a_correlated_misfit_whitens_the_residual():
    gamma = np.array([[1.0, 0.9], [0.9, 1.0]])
    # a residual along the correlation is cheap, one across it is dear: r^T Γ^-1 r / M
    np.testing.assert_allclose(eki.misfit(np.array([[1.0, 1.0], [1.0, -1.0]]), np.zeros(2), gamma),
                               [1 / 1.9, 1 / 0.1])  # fmt: skip


def test_shrunk_covariance_known_case():
    """Six samples of two features worked by hand: s11 = s22 = 12/5, s12 = 8/5, Var(s12) = 6/5³ · 228/9,
    so λ = Var(s12) / s12² = 0.475 and the shrunk s12 = 0.525 · 1.6 = 0.84."""
    x = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1], [2, 2], [-2, -2]], dtype=float)
    shrunk, lam = eki.shrunk_covariance(x)
    assert lam == pytest.approx(0.475)
    np.testing.assert_allclose(shrunk, [[2.4, 0.84], [0.84, 2.4]])
    np.testing.assert_allclose(eki.shrunk_covariance(x + 3.0)[0], shrunk)  # the mean does not matter
    np.testing.assert_allclose(eki.shrunk_covariance(x, 0.0)[0], np.cov(x.T))
    np.testing.assert_allclose(eki.shrunk_covariance(x, 1.0)[0], np.diag(np.diag(np.cov(x.T))))


def test_shrinkage_follows_the_evidence():
    """Few samples of independent features are shrunk (nearly) to the diagonal; many samples of strongly
    correlated ones hardly at all."""
    rng = np.random.default_rng(7)
    independent = rng.standard_normal((10, 8))
    assert eki.shrunk_covariance(independent)[1] > 0.6
    correlated = rng.multivariate_normal(np.zeros(8), _correlated(8, rng), 400)
    assert eki.shrunk_covariance(correlated)[1] < 0.05


def _localised_problem(seed, local, p=16, e=19, j=40):
    """|z| of each parameter (posterior mean error in posterior sd) after a 3-step fit of a linear model
    whose first p data are each one parameter's (a region's rate) and the last e mix them all (EEG)."""
    design = np.random.default_rng(0)
    a = np.vstack([2.0 * np.eye(p), np.abs(design.standard_normal((e, p))) * 0.3])
    noise = np.r_[np.full(p, 0.05**2), np.full(e, 0.1**2)]
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal(p) * 0.15
    y = a @ truth + rng.standard_normal(p + e) * np.sqrt(noise)
    u = rng.standard_normal((j, p)) * 0.15 - 0.05
    for h in (1 / 3, 1 / 3, 1 / 3):
        u = eki.update(u, u @ a.T, y, noise, h, rng, local)
    return np.abs(u.mean(axis=0) - truth) / u.std(axis=0, ddof=1)


def test_a_localised_update_keeps_many_parameters_spread_calibrated():
    """With 16 parameters, 35 data and 40 members, chance correlations shrink the global update's spread:
    fewer parameters than a calibrated posterior's 95.4 % lie within 2 sd. The localised update (each
    region's parameter from its own datum and the region-less ones) comes close to it."""
    regions = [f"r{i}" for i in range(16)]
    local = eki.localisation(regions, [frozenset([r]) for r in regions] + [None] * 19)
    assert [list(d) for d in local[:2]] == [[0, *range(16, 35)], [1, *range(16, 35)]]
    covered = {
        name: np.mean([(_localised_problem(seed, how) < 2).mean() for seed in range(60)])
        for name, how in (("global", None), ("local", local))
    }
    assert covered["global"] < 0.925 < covered["local"] < 0.975, covered


def test_a_localised_update_over_all_data_is_the_global_one():
    rng = np.random.default_rng(3)
    u, g, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 5)), rng.standard_normal(5)
    noise = np.full(5, 0.3)
    every = eki.localisation([None, "a", "b"], [None] * 5)
    np.testing.assert_allclose(
        eki.update(u, g, y, noise, 0.5, np.random.default_rng(1), every),
        eki.update(u, g, y, noise, 0.5, np.random.default_rng(1)),
        rtol=1e-12, atol=1e-12,
    )  # fmt: skip
    # an unknown with no data of its own stays where it is
    alone = eki.localisation(["a", "c"], [frozenset({"a"})] * 5)
    moved = eki.update(u[:, :2], g, y, noise, 0.5, np.random.default_rng(1), alone)
    np.testing.assert_array_equal(moved[:, 1], u[:, 1])
    assert not np.allclose(moved[:, 0], u[:, 0])
