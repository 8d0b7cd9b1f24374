"""Numba kernels over flat float64 arrays, each with a plain-NumPy twin (the `*_np` functions).

Installed as `brainsim.kernels`. The array layout every kernel assumes is documented in LAYOUT.md.
Units: mV, ms, µm, nA, µS, nF; membrane densities in mA/cm² and S/cm²; concentrations in mM.
"""

import numba.core.config
from numba import njit


def _full_width_vectors():
    """Where the CPU has AVX-512, let LLVM use its 512-bit vectors: its tuning for Intel's AVX-512 CPUs
    prefers 256-bit ones (older Xeons slowed their clock on 512-bit code), which leaves half of each
    vector unit idle in the rate kernels (HH's advance on an Intel Xeon: 8.3 → 6.3 ns per instance; AMD's
    tuning uses 512 already). A NUMBA_CPU_FEATURES of the user's own is left as it is."""
    if numba.core.config.CPU_FEATURES is not None:
        return
    from llvmlite import binding

    try:
        features = binding.get_host_cpu_features().flatten()
    except RuntimeError:  # the host's features are not known here: numba's defaults
        return
    if "+avx512f" in features.split(","):
        numba.core.config.CPU_FEATURES = features + ",-prefer-256-bit"


_full_width_vectors()

JIT = dict(
    cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"}, error_model="numpy", nogil=True
)
"""Options for every loop kernel: cached, vectorisable (no ZeroDivision checks; fast-math reassociation
and contraction), but without the no-NaN/no-inf assumptions, so blow-up checks can see NaN."""


def inlined(kernel):
    """A kernel for the generated modules (brainsim.engine.stepper, brainsim.engine.implicit_form) to compile
    into their own calls: numba inlines it, so that their code, and so their results, never depend on
    whether the kernel itself was compiled in this process or loaded from numba's cache."""
    return njit(**{**JIT, "cache": False, "inline": "always"})(kernel.py_func)
