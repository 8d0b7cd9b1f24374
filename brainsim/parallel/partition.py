"""Decomposition: which rank owns which gid.

Cells are split into contiguous blocks of gids, one per rank, balanced by an estimate of each cell's
cost (its equations plus its incoming synapses). Contiguous blocks keep a population (and the cells
of one region) together; the split depends only on the model and the rank count, never on timing.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BrainsimError

SYNAPSE_COST = 4.0
"""Cost of one incoming synapse relative to one equation (event delivery plus its state)."""


@dataclass(frozen=True)
class Decomposition:
    """Rank r owns the gids bounds[r] <= gid < bounds[r + 1]."""

    bounds: np.ndarray  # int64 (ranks + 1,)

    @property
    def ranks(self):
        return self.bounds.size - 1

    @property
    def num_cells(self):
        return int(self.bounds[-1])

    def gids_on(self, rank):
        return np.arange(self.bounds[rank], self.bounds[rank + 1], dtype=np.int64)

    @classmethod
    def balanced(cls, cost, ranks):
        """Contiguous blocks minimising the largest block's cost, then as even as that allows (cost per
        gid, any units). A cell costlier than the mean gets a rank of its own rather than a share."""
        cost = np.asarray(cost, dtype=float)
        edges = np.concatenate([[0.0], np.cumsum(cost)])
        low, high = (cost.max() if cost.size else 0.0), edges[-1]
        for _ in range(60):  # bisection on the largest block cost
            mid = 0.5 * (low + high)
            low, high = (low, mid) if _blocks_needed(edges, 0, mid) <= ranks else (mid, high)
        limit = high * (1 + 1e-12)
        bounds, start = [0], 0
        for r in range(ranks - 1):
            left = ranks - r
            target = edges[start] + (edges[-1] - edges[start]) / left
            reach = int(np.searchsorted(edges, edges[start] + limit, side="right")) - 1
            stop = int(np.clip(np.searchsorted(edges, target), start, reach))
            if stop > start and target - edges[stop - 1] < edges[stop] - target:
                stop -= 1
            if stop == start and start < cost.size:
                stop = start + 1  # no rank left empty while cells remain (empty ranks come last)
            stop = max(start, min(stop, cost.size - (left - 1)))  # a cell for each rank after this one
            while stop < reach and _blocks_needed(edges, stop, limit) > left - 1:
                stop += 1  # the rest must still fit in the ranks left
            bounds.append(stop)
            start = stop
        bounds.append(cost.size)
        return cls(np.array(bounds, dtype=np.int64))

    def save(self, path):
        Path(path).write_text(
            json.dumps({"ranks": self.ranks, "bounds": self.bounds.tolist()}, indent=1) + "\n"
        )

    @classmethod
    def load(cls, path, ranks, num_cells):
        """A decomposition written by `save` (or `brainsim partition -o`), checked against this run."""
        try:
            data = json.loads(Path(path).read_text())
            bounds = np.asarray(data["bounds"], dtype=np.int64)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BrainsimError(f"cannot read the decomposition {path}: {e}") from None
        if (
            bounds.size != ranks + 1
            or bounds[0] != 0
            or bounds[-1] != num_cells
            or np.any(np.diff(bounds) < 0)
        ):
            raise BrainsimError(
                f"decomposition {path} does not fit this run: it has {bounds.size - 1} ranks and "
                f"{int(bounds[-1])} cells (bounds {bounds.tolist()[:6]}...), the run {ranks} ranks and "
                f"{num_cells} cells; write one with `brainsim partition CONFIG --ranks {ranks} -o FILE`"
            )
        return cls(bounds)


def _blocks_needed(edges, start, limit):
    """Blocks of cost <= limit needed for the cells start.. (greedy, jumping over prefix sums)."""
    n, blocks = edges.size - 1, 0
    while start < n:
        start = max(start + 1, int(np.searchsorted(edges, edges[start] + limit, side="right")) - 1)
        blocks += 1
    return blocks


def cell_costs(recipe):
    """Estimated cost of every gid: equations of its cell type + SYNAPSE_COST × expected in-degree."""
    costs = np.empty(recipe.num_cells)
    for pop in recipe.populations:
        per_cell = recipe.cell_type(pop.name).n_equations + SYNAPSE_COST * recipe.expected_indegree(pop)
        costs[pop.first_gid : pop.first_gid + pop.count] = per_cell
    return costs


def summary(decomposition, recipe):
    """Per rank: (cells, equations, estimated cost); and the imbalance max/mean of the cost."""
    costs = cell_costs(recipe)
    equations = np.empty(recipe.num_cells)
    for pop in recipe.populations:
        equations[pop.first_gid : pop.first_gid + pop.count] = recipe.cell_type(pop.name).n_equations
    rows = []
    for r in range(decomposition.ranks):
        lo, hi = decomposition.bounds[r], decomposition.bounds[r + 1]
        rows.append((int(hi - lo), int(equations[lo:hi].sum()), float(costs[lo:hi].sum())))
    load = np.array([c for _, _, c in rows])
    imbalance = float(load.max() / load.mean()) if load.mean() > 0 else 1.0
    return rows, imbalance
