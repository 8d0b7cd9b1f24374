"""Scalar math that LLVM can vectorise: exp, log and exprelr without calls into libm.

PyPI's llvmlite is not built with Intel SVML, so a loop over `np.exp` stays scalar (about 5 ns per
call here). `vexp` computes exp from a Cody-Waite range reduction and a degree-11 Taylor polynomial
(evaluated by Estrin's scheme) with only arithmetic and integer bit operations, so loops that call it
are SIMD-vectorised. Relative error is below 1e-14 (the polynomial's truncation, 6e-15 at |r| = ln2/2;
measured 8.9e-15 against long-double exp) for |x| <= 700; arguments are clamped to [-708, 709].
`vlog` splits x into 2^e·m by bit operations and sums the atanh series of log(m) (absolute error below
3e-16).
`dexprelr` is the derivative of exprelr, for the Jacobians the translated mechanisms generate.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 split in two so that n*ln2_hi is exact for |n| < 2**11
_LN2_LO = 1.9082149292705877e-10
_ROUND = 6755399441055744.0  # 1.5 * 2**52: an integer-valued double plus this has it in its low bits
_ROUND_BITS = 0x4338000000000000  # the bit pattern of _ROUND


@intrinsic
def _bits_of(typingctx, x):
    """Reinterpret a float64 as int64 (no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _float_of(typingctx, x):
    """Reinterpret an int64 as float64 (no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(cache=True, inline="always", error_model="numpy")
def vexp(x):
    """exp(x) for float64, vectorisable (see module docstring)."""
    x = min(max(x, -708.0), 709.0)
    n = np.floor(x * _LOG2E + 0.5)  # the nearest integer to x/ln2, as a double
    r = (x - n * _LN2_HI) - n * _LN2_LO
    # Σ r^k/k!, k <= 11, by Estrin's scheme (pairs, then pairs of pairs): four multiply-adds deep instead
    # of Horner's eleven, so that kernels whose exps feed one another are not held up by the latency.
    r2 = r * r
    r4 = r2 * r2
    a0, a1 = 1.0 + r, 0.5 + 0.16666666666666666 * r
    a2, a3 = 0.041666666666666664 + 0.008333333333333333 * r, 0.001388888888888889 + 0.0001984126984126984 * r
    a4 = 2.48015873015873e-05 + 2.755731922398589e-06 * r
    a5 = 2.755731922398589e-07 + 2.505210838544172e-08 * r
    p = ((a0 + a1 * r2) + (a2 + a3 * r2) * r4) + (a4 + a5 * r2) * (r4 * r4)
    # n + 1.5*2**52 holds n as an integer in its low mantissa bits; shift it into the exponent field.
    scale = _float_of((_bits_of(n + _ROUND) - _ROUND_BITS + 1023) << 52)
    return p * scale


_EXPONENT_ONE = 0x3FF0000000000000  # the bits of 1.0
_MANTISSA = 0x000FFFFFFFFFFFFF
_TWO52_BITS = 0x4330000000000000  # the bits of 2**52: OR-ing a small integer in gives 2**52 + it
_SQRT2 = 1.4142135623730951


@njit(cache=True, inline="always", error_model="numpy")
def vlog(x):
    """Natural log of a positive normal float64, vectorisable; -inf for 0, nan for x < 0."""
    bits = _bits_of(x)
    biased = (bits >> 52) & 0x7FF
    e = _float_of(_TWO52_BITS | biased) - 4503599627370496.0 - 1023.0
    m = _float_of((bits & _MANTISSA) | _EXPONENT_ONE)  # x = m·2^e, 1 <= m < 2
    big = m > _SQRT2
    m = 0.5 * m if big else m
    e = e + 1.0 if big else e
    s = (m - 1.0) / (m + 1.0)  # log(m) = 2·atanh(s), |s| <= 0.1716
    z = s * s
    p = 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    p = p * z + 1.0
    out = e * 0.6931471805599453 + 2.0 * s * p
    out = -np.inf if x == 0.0 else out
    return np.nan if x < 0.0 else out


@njit(cache=True, inline="always", error_model="numpy")
def exprelr(x):
    """x / (exp(x) - 1), with the limit 1 - x/2 near 0 (|x| < 1e-6), vectorisable."""
    small = abs(x) < 1e-6
    safe = 1.0 if small else x
    return (1.0 - 0.5 * x) if small else safe / (vexp(safe) - 1.0)


def exprelr_np(x):
    """NumPy twin of `exprelr` (same formula as NEURON's vtrap: exp(x) - 1, not expm1)."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-6
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 - 0.5 * x, safe / (np.exp(safe) - 1.0))


@njit(cache=True, inline="always", error_model="numpy")
def dexprelr(x):
    """d/dx [x / (exp(x) - 1)] = (r/x)·(1 - r) - r with r = exprelr(x); the series -1/2 + x/6 - x³/180
    where |x| < 1e-2 (relative error below 1e-11, largest at the switch), vectorisable."""
    small = abs(x) < 1e-2
    safe = 1.0 if small else x
    r = safe / (vexp(safe) - 1.0)
    return (-0.5 + x * (1.0 / 6.0 - x * x / 180.0)) if small else r / safe * (1.0 - r) - r


def dexprelr_np(x):
    """NumPy twin of `dexprelr`."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-2
    safe = np.where(small, 1.0, x)
    r = safe / (np.exp(safe) - 1.0)
    return np.where(small, -0.5 + x * (1.0 / 6.0 - x * x / 180.0), r / safe * (1.0 - r) - r)
