"""M1 with PETSc's implicit methods: accuracy at dt = 0.025 ms and the order of convergence.

The peers' reference is itself a first-order result at dt = 0.025 ms (its last spike is ~0.5 ms from the
converged value), so each method is checked against the converged spike times estimated by Richardson
extrapolation from its own runs at dt, dt/2, dt/4, and all methods (and the staggered scheme) must
agree on that converged solution.
"""

import numpy as np
import pytest
from support import spikes

M1 = "configs/bench/m1_hh_cable.yaml"
DTS = (0.025, 0.0125, 0.00625)
NEWTON = "simulation.petsc.snes_type=newtonls"  # Newton to convergence (the default takes one step)
METHODS = {  # name: (config overrides, nominal order)
    "beuler": (["simulation.method=petsc", "simulation.petsc.ts_type=beuler"], 1),
    "cn": (["simulation.method=petsc", "simulation.petsc.ts_type=cn"], 2),
    "midpoint": (["simulation.method=petsc"], 2),  # the default: linearly implicit midpoint, fixed step
    "bdf": (["simulation.method=petsc", "simulation.petsc.ts_type=bdf", NEWTON], 2),
    "staggered": (["simulation.method=staggered"], 1),
}


@pytest.fixture(scope="module")
def refinement(tmp_path_factory):
    """Spike times of every method at every dt, and the observed orders and extrapolated limits."""
    from support import simulate

    out = {}
    for name, (overrides, order) in METHODS.items():
        runs = []
        for dt in DTS:
            store = tmp_path_factory.mktemp(name) / "m1.zarr"
            runs.append(spikes(simulate(M1, [*overrides, f"simulation.dt={dt}"], output=store)[1])[1])
        t1, t2, t3 = runs
        observed = np.log2(np.abs(t1 - t2) / np.abs(t2 - t3))
        limit = t3 + (t3 - t2) / (2**order - 1)
        out[name] = dict(times=runs, observed=observed, limit=limit, order=order)
    return out


@pytest.mark.parametrize("name", ["beuler", "cn", "midpoint", "bdf"])
def test_eight_spikes_within_0_1_ms_at_dt_0_025(refinement, name):
    r = refinement[name]
    assert all(t.size == 8 for t in r["times"])
    assert np.max(np.abs(r["times"][0] - r["limit"])) < 0.1


@pytest.mark.parametrize("name", list(METHODS))
def test_order_of_convergence(refinement, name):
    r = refinement[name]
    observed = np.median(r["observed"])
    assert abs(observed - r["order"]) < 0.25, f"{name}: observed order {r['observed']}"


def test_all_methods_converge_to_the_same_solution(refinement):
    limits = np.array([r["limit"] for r in refinement.values()])
    assert np.max(np.ptp(limits, axis=0)) < 0.01


@pytest.mark.parametrize(
    "name,overrides,tolerance",
    [
        (
            "bdf adaptive",
            [
                "simulation.petsc={ts_type: bdf, snes_type: newtonls, ts_adapt_type: basic, ts_rtol: 1.0e-6, "
                "ts_atol: 1.0e-6}"
            ],
            0.1,
        ),  # fmt: skip
        ("rosw (3rd order, fixed dt)", ["simulation.petsc.ts_type=rosw"], 0.01),
    ],
)
def test_other_petsc_methods(refinement, tmp_path, name, overrides, tolerance):
    from support import simulate

    summary, store = simulate(M1, ["simulation.method=petsc", *overrides], output=tmp_path / "m1.zarr")
    times = spikes(store)[1]
    assert times.size == 8 and np.max(np.abs(times - refinement["bdf"]["limit"])) < tolerance, name
    if "adaptive" in name:
        assert summary.timing["steps"] != 4000  # the error control chose its own steps
