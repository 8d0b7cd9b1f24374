"""Rows of the per-node ion array that mechanisms share (shape (len(ION_FIELDS), n_nodes))."""

ION_FIELDS = ("ica", "cai")
"""Ca current density (mA/cm², summed by every writer) and intracellular [Ca] (mM)."""
ICA, CAI = 0, 1
CAI_REST = 5e-5
"""[Ca]i where no mechanism computes it (mM)."""
