"""Numba kernels over flat float64 arrays, each with a plain-NumPy twin (the `*_np` functions).

Installed as `brainsim.kernels`. The array layout every kernel assumes is documented in LAYOUT.md.
Units: mV, ms, µm, nA, µS, nF; membrane densities in mA/cm² and S/cm²; concentrations in mM.
"""

JIT = dict(
    cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"}, error_model="numpy", nogil=True
)
"""Options for every loop kernel: cached, vectorisable (no ZeroDivision checks; fast-math reassociation
and contraction), but without the no-NaN/no-inf assumptions, so blow-up checks can see NaN."""
