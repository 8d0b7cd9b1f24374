"""The implicit path's Jacobian (brainsim.engine.jacobian) against central differences of the residual
F(u, u') it is the derivative of, on cells whose mechanisms couple through the ion rows (Ca²⁺ channels →
the calcium shell through ica, the shell → SK and the channels' eca through cai); J·x and J⁻¹ on it."""

import numpy as np
import pytest
from support import L5PC, checked

from brainsim.config.load import resolve_config
from brainsim.engine.group import CellGroup
from brainsim.engine.jacobian import Jacobian
from brainsim.kernels import cable, states

SHIFT = 40.0
CALCIUM = {
    "cahva": {"gbar": 0.002}, "calva": {"gbar": 0.004}, "cadyn": {"gamma": 0.05, "decay": 80.0},
    "sk": {"gbar": 0.05}, "nata": {"gbar": 0.5}, "kv31": {"gbar": 0.3}, "pas": {"g": 3e-5, "e": -90.0},
}  # fmt: skip
"""The built-ins written from the L5PC's channels, with the calcium shell."""
REFERENCE = {
    "Ca_HVA": {"gCa_HVAbar": 0.002}, "Ca_LVAst": {"gCa_LVAstbar": 0.004},
    "CaDynamics_E2": {"gamma": 0.05, "decay": 80.0}, "SK_E2": {"gSK_E2bar": 0.05}, "pas": {},
}  # fmt: skip
"""The reference folder's own .mod files."""


def group_of(soma, dend, mechanisms=None):
    """Two ball-and-stick cells (3 dendrite compartments) with the soma's and the dendrite's mechanisms."""
    raw = {
        "name": "jacobian",
        "simulation": {"tstop": 1.0, "dt": 0.025, "method": "petsc", "celsius": 34.0},
        "cells": [{"name": "c", "count": 2, "morphology": {"kind": "ball_and_stick", "dend_length": 100},
                   "discretization": {"per_branch": 3},
                   "regions": {"soma": {"mechanisms": soma}, "dend": {"mechanisms": dend}}}],
        "output": {"path": "out/j.zarr"},
    }  # fmt: skip
    if mechanisms:
        raw["mechanisms"] = mechanisms
    return CellGroup(checked(resolve_config(raw)), [0, 1])


def perturbed_state(g, seed):
    """The initial state moved off rest: V by −20…30 mV, every state by ±50% (a spike's upstroke)."""
    rng = np.random.default_rng(seed)
    u = g.initial_state()
    u[: g.n_nodes] += rng.uniform(-20.0, 30.0, g.n_nodes)
    u[g.n_nodes :] = np.clip(u[g.n_nodes :] * rng.uniform(0.5, 1.5, g.n_states), 1e-6, None)
    return u


def residual(g, u, udot):
    n, f = g.n_nodes, np.zeros(g.size)
    g.currents(u, 0.0)
    cable.cable_residual(u[:n], udot[:n], g.cap, g.gax, g.parent, g.area, g.i_dens, g.i_pt, f[:n])
    g.rates(u[:n])
    states.relax_residual(u[n:], udot[n:], g.xinf, g.tau, f[n:])
    return f


def differences(g, u):
    """∂F/∂u + SHIFT·∂F/∂u' by central differences, column by column."""
    out = np.zeros((g.size, g.size))
    for k in range(g.size):
        h = 1e-4 * (max(1.0, abs(u[k])) if k < g.n_nodes else max(abs(u[k]), 1e-5))
        up, down, e = u.copy(), u.copy(), np.zeros(g.size)
        up[k] += h
        down[k] -= h
        e[k] = SHIFT * h
        out[:, k] = (residual(g, up, e) - residual(g, down, -e)) / (2 * h)
    return out


def check(g, seed=0):
    u = perturbed_state(g, seed)
    jac = Jacobian(g)
    jac.assemble(u, SHIFT, 0.0)
    a, fd = jac.dense(), differences(g, u)
    scale = np.abs(fd).max(axis=1, keepdims=True)
    np.testing.assert_allclose(a, fd, rtol=0, atol=1e-5 * scale.max())
    assert np.all(np.abs(a - fd) <= 2e-6 * scale), np.abs(a - fd / scale).max()  # row by row
    assert not np.any((a == 0) & (np.abs(fd) > 1e-9 * scale)), "an entry of ∂F/∂u is missing"
    rng = np.random.default_rng(seed)
    x, y, z = rng.uniform(-1.0, 1.0, g.size), np.zeros(g.size), np.zeros(g.size)
    jac.mult(x, y)
    np.testing.assert_allclose(y, a @ x, rtol=1e-12, atol=1e-12 * np.abs(y).max())
    jac.solve(a @ x, z)
    np.testing.assert_allclose(z, x, rtol=1e-9, atol=1e-10)
    return jac


def test_calcium_couplings_are_in_the_jacobian():
    jac = check(group_of(CALCIUM, {"cahva": {"gbar": 0.001}, "sk": {"gbar": 0.01}, "pas": {}}))
    # on each of the 2 × 3 soma compartments: cadyn's cai is the hub, cahva's and calva's m and h link into
    # its row, sk's z reads it; in the dendrites (no shell) cai and eca are constant: nothing couples there
    cnode, cstart = jac.hub[:2]
    assert cnode.size == 6 and np.all(np.diff(cstart) == 1)
    assert jac.links[0].size == 6 * 4 and jac.links[3].size == 6


def test_without_ion_couplings_every_state_is_free():
    jac = check(group_of({"hh": {}}, {"pas": {}, "nata": {"gbar": 0.1}}))
    assert jac.cstate.size == 0 and jac.links[0].size == jac.links[3].size == 0


@pytest.mark.skipif(not (L5PC / "mechanisms").is_dir(), reason=f"the reference L5PC is absent ({L5PC})")
def test_reference_mod_files():
    """The same couplings from the reference folder's CaDynamics_E2, Ca_HVA, Ca_LVAst and SK_E2."""
    jac = check(
        group_of(REFERENCE, {"Ca_HVA": {}, "CaDynamics_E2": {}}, {"paths": [str(L5PC / "mechanisms")]})
    )
    assert jac.hub[0].size == 12  # the soma and dendrite compartments, each with its shell
