"""Planning works from counts: the balanced split is computed from runs of equal cost (a population's
cells), so `plan`, `partition` and `validate` of a brain-scale model allocate nothing per cell; `validate`
states sizes and refuses, with the figures, what cannot be built on the given ranks; a morphology that
would make absurdly many compartments is refused before it is built."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from brainsim.cli import main
from brainsim.config import load_config
from brainsim.errors import ConfigError
from brainsim.hpc.plan import BASE_BYTES, BYTES_PER_CELL, BYTES_PER_EQUATION, BYTES_PER_SYNAPSE, plan
from brainsim.model.cells import MAX_COMPARTMENTS
from brainsim.model.recipe import Recipe
from brainsim.parallel.partition import Decomposition, Runs, cell_costs, cost_runs

ROOT = Path(__file__).resolve().parents[2]
M2 = ROOT / "configs" / "bench" / "m2_ring.yaml"
SMALL_BRAIN = ROOT / "tests" / "data" / "small_brain.yaml"
DEMO = ROOT / "configs" / "demo.yaml"
TRILLION = "cells.ring.count=1e12"
PEAK_LIMIT = 64e6
"""Bytes a plan of any number of cells may allocate (a per-cell array of 1e12 cells is 8e12)."""


def peak_bytes(function, *args, **kwargs):
    """(function's result, the most bytes Python and numpy had allocated while it ran)."""
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- the split from runs -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ranks", [1, 2, 3, 7, 16, 64])
def test_runs_split_as_the_per_gid_costs_do(seed, ranks):
    """The same bounds from runs as from the per-gid array they stand for (integer costs: the cost model's
    equations + 4 x an integer in-degree), empty populations included."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 8))
    runs = Runs(rng.integers(0, 300, k), rng.integers(1, 30_000, k).astype(float))
    per_gid = runs.per_gid()
    assert np.array_equal(
        Decomposition.balanced(runs, ranks).bounds, Decomposition.balanced(per_gid, ranks).bounds
    )
    assert np.array_equal(Runs.of(per_gid).per_gid(), per_gid)
    bounds = Decomposition.balanced(runs, ranks).bounds
    expected = [per_gid[bounds[r] : bounds[r + 1]].sum() for r in range(ranks)]
    assert np.allclose(runs.sums(bounds), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("config", [DEMO, SMALL_BRAIN, M2])
@pytest.mark.parametrize("ranks", [1, 2, 3, 4, 7])
def test_the_engine_split_of_shipped_models_is_unchanged(config, ranks):
    """The engine and `partition` split cost_runs(recipe): the bounds of the per-gid costs."""
    recipe = Recipe(load_config(config))
    assert np.array_equal(
        Decomposition.balanced(cost_runs(recipe), ranks).bounds,
        Decomposition.balanced(cell_costs(recipe), ranks).bounds,
    )


def test_a_trillion_cells_split_evenly_in_bounded_memory():
    runs = Runs(np.array([10**12 // 2, 10**12 // 2]), np.array([196.0, 5.0]))
    d, peak = peak_bytes(Decomposition.balanced, runs, 4096)
    assert peak < PEAK_LIMIT and d.bounds[0] == 0 and d.bounds[-1] == 10**12
    assert np.all(np.diff(d.bounds) > 0)
    loads = runs.sums(d.bounds)
    assert loads.max() / loads.mean() < 1 + 1e-6


# --- plan, partition and validate at scale -----------------------------------------------------------


def test_plan_of_a_trillion_cells_works_from_counts():
    config = load_config(M2, [TRILLION])
    p, peak = peak_bytes(plan, config, 1024)
    assert peak < PEAK_LIMIT  # before: a 7.28 TiB MemoryError
    small = plan(load_config(M2, ["cells.ring.count=64"]), 1)
    assert p["cells"] == 10**12
    assert p["equations"] == small["equations"] // 64 * 10**12
    assert p["compartments"] == small["compartments"] // 64 * 10**12
    per_equation = BYTES_PER_EQUATION[p["method"]]
    per_cell = (
        per_equation * small["equations"] / 64 + BYTES_PER_SYNAPSE * small["synapses"] / 64 + BYTES_PER_CELL
    )
    low, high = p["memory_per_rank_gb"]
    assert low <= high and high == pytest.approx((BASE_BYTES + 10**12 / 1024 * per_cell) / 1e9, rel=1e-6)


def test_partition_and_validate_of_a_trillion_cells(capsys):
    assert main(["partition", str(M2), "--ranks", "3", "--set", TRILLION]) == 0
    out = capsys.readouterr().out
    assert "0-333333333332" in out and "666666666667-999999999999" in out
    assert main(["validate", str(M2), "--set", TRILLION]) == 0
    out = capsys.readouterr().out.splitlines()
    per_cell = plan(load_config(M2, ["cells.ring.count=1"]), 1)["equations"]
    assert out[0] == f"{M2}: valid (1000000000000 cells, {per_cell * 10**12} equations)"
    assert out[1].startswith("  size: 196,000,000,000,000 compartments, 1,000,000,000,000 synapses; memory ")
    assert "ranks of" in out[2] and "check with --ranks" in out[2]


def test_validate_refuses_more_than_the_ranks_can_hold(capsys):
    args = ["validate", str(M2), "--set", "cells.ring.count=1e8", "--memory-per-rank", "1"]
    assert main([*args, "--ranks", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "brainsim: config error at '--ranks': got 64; allowed: ranks that each need at most"
    )
    assert "1 GB (--memory-per-rank)" in err and "about " in err and "the largest needs" in err
    need = int(err.split("about ")[1].split(" or more")[0].replace(",", ""))
    assert main([*args, "--ranks", str(need + need // 10)]) == 0
    assert f"per rank on {need + need // 10} ranks" in capsys.readouterr().out


def test_validate_refuses_a_cell_larger_than_a_rank(capsys):
    assert main(["validate", str(DEMO), "--memory-per-rank", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "config error at 'cells[0]': got 'l5pc'; allowed: cells that fit in one rank of 0.1 GB" in err
    assert main(["validate", str(SMALL_BRAIN), "--memory-per-rank", "0.1"]) == 2
    assert "config error at 'brain.cell_types." in capsys.readouterr().err


def test_validate_memory_bound_from_a_profile(capsys):
    """example_hpc: 256 GB per node, 128 cores: 2 GB per rank."""
    args = ["validate", str(M2), "--set", "cells.ring.count=1e8", "--ranks", "8", "--profile", "example_hpc"]
    assert main(args) == 2
    assert "2 GB (profile example_hpc: memory_per_node_gb / cores_per_node)" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--ranks", "0"), ("--memory-per-rank", "-1")])
def test_validate_bad_bounds(capsys, flag, value):
    assert main(["validate", str(M2), flag, value]) == 2
    assert f"config error at '{flag}': got " in capsys.readouterr().err


# --- absurd morphologies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "items, path, says",
    [
        (["cells.ring.morphology.depth=24"], "cells[0].morphology.depth", "an integer >= 1 and <= 16"),
        (
            ["cells.ring.morphology.depth=12", "cells.ring.discretization.per_branch=1000"],
            "cells[0].discretization",
            "would have 4,095,001 compartments",  # 4095 dendrites of 1000, the soma (per_branch: 1)
        ),
        (
            ["cells.ring.discretization={max_length: 1e-300}"],
            "cells[0].discretization",
            "would have over 1e15 compartments",
        ),
    ],
)
def test_a_morphology_too_large_is_refused_before_it_is_built(items, path, says):
    err, peak = peak_bytes(lambda: pytest.raises(ConfigError, _checked, items).value)
    assert err.path == path and says in str(err)
    assert peak < PEAK_LIMIT
    if "discretization" in path:
        assert f"at most {MAX_COMPARTMENTS:,} compartments" in err.allowed


def _checked(items):
    """The M2 config with items, after every model check (where cell types are built)."""
    import brainsim

    return brainsim.load_config(M2, items)
