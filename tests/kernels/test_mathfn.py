"""vexp, vlog and exprelr: accuracy against NumPy, special values, and that loops over them vectorise."""

import platform
import re

import numpy as np
import pytest
from numba import njit

from brainsim.kernels import JIT
from brainsim.kernels.mathfn import dexprelr, dexprelr_np, exprelr, exprelr_np, vexp, vlog


@njit(fastmath=True, error_model="numpy")
def vexp_loop(x, out):
    for k in range(x.size):
        out[k] = vexp(x[k])


@njit(fastmath=True, error_model="numpy")
def exprelr_loop(x, out):
    for k in range(x.size):
        out[k] = exprelr(x[k])


@njit(fastmath=True, error_model="numpy")
def dexprelr_loop(x, out):
    for k in range(x.size):
        out[k] = dexprelr(x[k])


@njit(**{k: v for k, v in JIT.items() if k != "cache"})
def vlog_loop(x, out):
    for k in range(x.size):
        out[k] = vlog(x[k])


def apply(loop, x):
    out = np.empty_like(x)
    loop(x, out)
    return out


def test_vexp_matches_exp():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-700.0, 700.0, 200_001), rng.uniform(-700.0, 700.0, 100_000)])
    rel = np.abs(apply(vexp_loop, x) / np.exp(x) - 1.0)
    assert rel.max() < 1e-13


def test_vexp_clamps():
    assert apply(vexp_loop, np.array([-1e4]))[0] == pytest.approx(np.exp(-708.0), rel=1e-13)
    assert apply(vexp_loop, np.array([1e4]))[0] == pytest.approx(np.exp(709.0), rel=1e-13)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
def test_vexp_loop_vectorises():
    apply(vexp_loop, np.zeros(8))
    asm = "\n".join(vexp_loop.inspect_asm().values())
    packed = re.findall(r"\bv?(?:fmadd\d{3}|mul|add)pd\s.*%[xyz]mm", asm)
    assert packed, "no packed double arithmetic: the vexp loop was not vectorised"


def test_exprelr_matches_twin():
    x = np.concatenate([np.linspace(-50.0, 50.0, 100_001), np.geomspace(1e-3, 700.0, 1000)])
    x = np.concatenate([x, -x])
    np.testing.assert_allclose(apply(exprelr_loop, x), exprelr_np(x), rtol=1e-11)


def test_exprelr_limit_at_zero():
    assert apply(exprelr_loop, np.array([0.0]))[0] == 1.0 == exprelr_np(0.0)
    x = np.geomspace(1e-12, 1e-4, 1001)
    x = np.concatenate([x, -x])
    series = 1.0 - x / 2.0 + x * x / 12.0  # x/(eˣ − 1) = 1 − x/2 + x²/12 − …; cancellation costs ~eps/|x|
    np.testing.assert_allclose(apply(exprelr_loop, x), series, rtol=1e-9)
    np.testing.assert_allclose(exprelr_np(x), series, rtol=1e-9)


def test_dexprelr_is_the_derivative():
    """dexprelr against the exact derivative (eˣ − 1 − x·eˣ)/(eˣ − 1)² in 50-digit arithmetic, on both sides
    of the switch to the series at |x| = 1e-2 and at 0."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    x = np.concatenate([np.geomspace(1e-12, 600.0, 4001), [0.0099999, 0.01, 0.0100001]])
    x = np.concatenate([x, -x, [0.0]])
    exact = np.array(
        [
            float((mpmath.e**t - 1 - t * mpmath.e**t) / (mpmath.e**t - 1) ** 2) if t else -0.5
            for t in map(mpmath.mpf, x)
        ]
    )
    atol = 1e-300
    np.testing.assert_allclose(apply(dexprelr_loop, x), exact, rtol=1e-11, atol=atol)  # eps/x² at the switch
    np.testing.assert_allclose(dexprelr_np(x), exact, rtol=1e-11, atol=atol)


def test_vlog_matches_log():
    rng = np.random.default_rng(1)
    x = np.concatenate([10.0 ** rng.uniform(-307.0, 307.0, 100_000), np.linspace(0.5, 2.0, 100_001)])
    ours, ref = apply(vlog_loop, x), np.log(x)
    assert np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))) < 3e-16


def test_vlog_special_values():
    out = apply(vlog_loop, np.array([0.0, -1.0, 1.0, 2.0, np.sqrt(2.0)]))
    assert out[0] == -np.inf and np.isnan(out[1]) and out[2] == 0.0
    assert out[3] == pytest.approx(np.log(2.0), rel=1e-16) and out[4] == pytest.approx(
        0.5 * np.log(2.0), rel=1e-15
    )


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
def test_vlog_loop_vectorises():
    apply(vlog_loop, np.ones(8))
    asm = "\n".join(vlog_loop.inspect_asm().values())
    assert re.findall(r"\bv?(?:fmadd\d{3}|mul|add|div)pd\s.*%[xyz]mm", asm), (
        "the vlog loop was not vectorised"
    )
