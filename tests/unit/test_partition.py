"""Decomposition: contiguous, complete, balanced as well as contiguous blocks allow, deterministic."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brainsim.config import load_config
from brainsim.errors import BrainsimError
from brainsim.model.recipe import Recipe
from brainsim.parallel.partition import Decomposition, cell_costs, summary

ROOT = Path(__file__).resolve().parents[2]


def best_bottleneck(cost, ranks):
    """The smallest achievable largest-block cost over contiguous splits (dynamic programme, small n)."""
    edges = np.concatenate([[0.0], np.cumsum(cost)])
    n = cost.size
    best = np.full((ranks + 1, n + 1), np.inf)
    best[0, 0] = 0.0
    for r in range(1, ranks + 1):
        for i in range(n + 1):
            best[r, i] = min(max(best[r - 1, j], edges[i] - edges[j]) for j in range(i + 1))
    return best[ranks, n]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("ranks", [1, 2, 3, 5, 8])
def test_blocks_are_contiguous_complete_and_optimal(seed, ranks):
    rng = np.random.default_rng(seed)
    cost = rng.choice([1.0, 2.0, 50.0], size=int(rng.integers(1, 30)), p=[0.6, 0.3, 0.1])
    d = Decomposition.balanced(cost, ranks)
    assert d.ranks == ranks and d.bounds[0] == 0 and d.bounds[-1] == cost.size
    assert np.all(np.diff(d.bounds) >= 0)
    loads = [cost[d.bounds[r] : d.bounds[r + 1]].sum() for r in range(ranks)]
    assert max(loads) == pytest.approx(best_bottleneck(cost, ranks), rel=1e-9)
    sizes = np.diff(d.bounds)
    empty = np.nonzero(sizes == 0)[0]
    assert empty.size == max(0, ranks - cost.size) and np.all(empty >= cost.size)  # empty ranks come last
    assert np.array_equal(d.bounds, Decomposition.balanced(cost.copy(), ranks).bounds)  # deterministic
    every = np.concatenate([d.gids_on(rank) for rank in range(ranks)])
    assert np.array_equal(every, np.arange(cost.size))  # each gid on exactly one rank, in order


def test_uniform_cells_split_evenly_and_heavy_cells_alone():
    d = Decomposition.balanced(np.ones(256), 3)
    assert np.diff(d.bounds).tolist() == [85, 86, 85]
    d = Decomposition.balanced(np.array([100.0] + [1.0] * 30), 4)
    assert np.diff(d.bounds).tolist() == [1, 10, 10, 10]


def test_costs_from_the_model():
    recipe = Recipe(load_config(ROOT / "configs/demo.yaml"))
    cost = cell_costs(recipe)
    assert cost[0] > 20_000 > cost[1] and cost[1] == cost[80] and cost[81] == cost[100]
    d = Decomposition.balanced(cost, 2)
    rows, imbalance = summary(d, recipe)
    assert [cells for cells, _, _ in rows] == [1, 100] and imbalance == pytest.approx(
        22257 / 15148.5, rel=1e-3
    )


def test_save_load_and_mismatch(tmp_path):
    d = Decomposition.balanced(np.ones(10), 3)
    d.save(tmp_path / "d.json")
    assert np.array_equal(Decomposition.load(tmp_path / "d.json", 3, 10).bounds, d.bounds)
    with pytest.raises(BrainsimError, match="has 3 ranks and 10 cells.*the run 4 ranks"):
        Decomposition.load(tmp_path / "d.json", 4, 10)
    with pytest.raises(BrainsimError, match="cannot read"):
        Decomposition.load(tmp_path / "missing.json", 3, 10)


def test_partition_command(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "brainsim.cli",
            "partition",
            str(ROOT / "configs/bench/m2_ring.yaml"),
            "--ranks",
            "3",
            "--set",
            "cells.ring.count=256",
            "-o",
            str(tmp_path / "d.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "0-84" in out.stdout and "85-170" in out.stdout and "imbalance" in out.stdout
    assert np.array_equal(Decomposition.load(tmp_path / "d.json", 3, 256).bounds, [0, 85, 171, 256])
