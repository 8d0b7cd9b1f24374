"""Rows of the per-node ion array that mechanisms share (shape (len(ION_FIELDS), n_nodes)), and the
calcium reversal potential as NEURON computes it where a mechanism writes cai."""

import numpy as np
from numba import njit

from . import JIT
from .mathfn import vlog

ION_FIELDS = ("ica", "cai", "eca")
"""Ca current density (mA/cm², summed by every writer), intracellular [Ca] (mM) and the Ca reversal
potential (mV) that translated mechanisms read."""
ICA, CAI, ECA = 0, 1, 2
CAI_REST = 5e-5
"""[Ca]i where no mechanism computes it, and a written cai's start (mM: NEURON's cai0_ca_ion)."""
CAO = 2.0
"""[Ca]o (mM: NEURON's cao0_ca_ion)."""
ECA_DEFAULT = 132.4579
"""eca where no mechanism writes cai and none sets it (mV: NEURON's default)."""
GAS = 8.31446261815324
"""J/(mol K): k·N_A of CODATA 2018, to the digits NEURON 9 computes it."""
FARADAY = 96485.33212331001
"""C/mol: e·N_A of CODATA 2018, to the digits NEURON 9 computes it."""


@njit(**JIT)
def nernst_eca(u, cai_index, node, celsius, ion):
    """ion[ECA, node[j]] = the Nernst potential of Ca²⁺ (mV) at cai = u[cai_index[j]] and CAO, as NEURON's
    ca_ion where cai is written; 1e6 mV where cai <= 0 (NEURON's nernst)."""
    scale = 1e3 * GAS * (celsius + 273.15) / (2.0 * FARADAY)
    for j in range(node.size):
        cai = u[cai_index[j]]
        ion[ECA, node[j]] = scale * vlog(CAO / cai) if cai > 0.0 else 1e6


def nernst_eca_np(u, cai_index, celsius):
    """The NumPy twin of nernst_eca: eca (mV) for each index."""
    cai = u[cai_index]
    scale = 1e3 * GAS * (celsius + 273.15) / (2.0 * FARADAY)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cai > 0.0, scale * np.log(CAO / cai), 1e6)
