"""Decomposition: which rank owns which gid.

Cells are split into contiguous blocks of gids, one per rank, balanced by an estimate of each cell's
cost (its equations plus its incoming synapses). Contiguous blocks keep a population (and the cells
of one region) together; the split depends only on the model and the rank count, never on timing.

The cells of a population share a cost, so costs are held as runs (`Runs`: so many gids of this cost,
then so many of that) and the split is computed from the runs, in time and memory that grow with the
populations and the ranks, not with the cells: a model of 1e12 cells is planned in seconds.
"""

import bisect
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BrainsimError
from ..files import writing

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
        gid, any units: an array, or `Runs` of equal costs). A cell costlier than the mean gets a rank of
        its own rather than a share."""
        prefix = _Prefix(cost if isinstance(cost, Runs) else Runs.of(cost))
        n, total = prefix.n, prefix.total
        low, high = prefix.max_cost, total
        for _ in range(60):  # bisection on the largest block cost
            mid = 0.5 * (low + high)
            low, high = (low, mid) if prefix.blocks(0, mid, ranks) <= ranks else (mid, high)
        limit = high * (1 + 1e-12)
        bounds, start = [0], 0
        for r in range(ranks - 1):
            left = ranks - r
            here = prefix.at(start)
            target = here + (total - here) / left
            reach = prefix.reach(here + limit)
            stop = min(max(prefix.first(target), start), reach)
            if stop > start and target - prefix.at(stop - 1) < prefix.at(stop) - target:
                stop -= 1
            if stop == start and start < n:
                stop = start + 1  # no rank left empty while cells remain (empty ranks come last)
            stop = max(start, min(stop, n - (left - 1)))  # a cell for each rank after this one
            if stop < reach and prefix.blocks(stop, limit, left - 1) > left - 1:
                # the rest must still fit in the ranks left: the first stop up to reach from which it does
                # (the blocks the rest needs never grow as it shrinks)
                lo, stop = stop, reach
                while stop - lo > 1:
                    mid = (lo + stop) // 2
                    lo, stop = (lo, mid) if prefix.blocks(mid, limit, left - 1) <= left - 1 else (mid, stop)
            bounds.append(stop)
            start = stop
        bounds.append(n)
        return cls(np.array(bounds, dtype=np.int64))

    def save(self, path):
        """Write the decomposition (JSON) for `brainsim run --partition`; StoreError if it cannot be."""
        with writing(path, "the decomposition"):
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


@dataclass(frozen=True)
class Runs:
    """A per-gid quantity that is constant over runs of consecutive gids (the cells of one population):
    counts[k] gids of values[k] each, in gid order. Sums over gid ranges cost O(runs), not O(gids)."""

    counts: np.ndarray  # int64 (runs,)
    values: np.ndarray  # (runs,): int64 stays exact (equations), float64 (costs)

    @classmethod
    def of(cls, per_gid):
        """The runs of equal consecutive values of a per-gid array."""
        per_gid = np.asarray(per_gid, dtype=float)
        starts = np.flatnonzero(np.concatenate([[per_gid.size > 0], per_gid[1:] != per_gid[:-1]]))
        return cls(np.diff(np.append(starts, per_gid.size)).astype(np.int64), per_gid[starts])

    @classmethod
    def per_population(cls, recipe, value, dtype=float):
        """value(population) for the cells of every population of recipe, in gid order."""
        return cls(
            np.array([p.count for p in recipe.populations], dtype=np.int64),
            np.array([value(p) for p in recipe.populations], dtype=dtype),
        )

    def per_gid(self):
        """Every gid's value (allocates one per gid: for models that fit in memory)."""
        return np.repeat(self.values, self.counts)

    def sums(self, bounds):
        """Sum of the values of the gids bounds[r] <= gid < bounds[r + 1], for every r."""
        starts = np.concatenate([[0], np.cumsum(self.counts)])
        below = np.concatenate([[0], np.cumsum(self.counts * self.values)])  # of the gids before each run
        bounds = np.asarray(bounds, dtype=np.int64)
        if self.counts.size == 0:
            return np.zeros(bounds.size - 1, dtype=self.values.dtype)
        k = np.clip(np.searchsorted(starts, bounds, side="right") - 1, 0, self.counts.size - 1)
        prefix = below[k] + (bounds - starts[k]) * self.values[k]
        return np.diff(prefix)


class _Prefix:
    """The cost of the gids below g, P(g) for 0 <= g <= n, of costs held as Runs (empty runs dropped),
    with the searches the balanced split needs; Python scalars, each answer O(log runs)."""

    def __init__(self, runs):
        keep = runs.counts > 0
        counts, self.cost = runs.counts[keep].tolist(), runs.values[keep].astype(float).tolist()
        self.start = [0, *np.cumsum(counts, dtype=np.int64).tolist()]  # first gid of each run, then n
        self.below = [0.0, *np.cumsum(np.multiply(counts, self.cost)).tolist()]  # P at each run's start
        self.n, self.total = self.start[-1], self.below[-1]
        self.max_cost = max(self.cost, default=0.0)

    def at(self, g):
        k = min(bisect.bisect_right(self.start, g) - 1, len(self.cost) - 1)
        return self.below[k] + (g - self.start[k]) * self.cost[k] if k >= 0 else 0.0

    def reach(self, v):
        """The largest g with P(g) <= v (v >= 0)."""
        if v >= self.total:
            return self.n
        k = bisect.bisect_right(self.below, v) - 1  # P(start[k]) <= v < P(start[k + 1]): cost[k] > 0
        g = min(self.start[k] + int((v - self.below[k]) / self.cost[k]), self.start[k + 1] - 1)
        while g > self.start[k] and self.at(g) > v:
            g -= 1
        while g + 1 < self.start[k + 1] and self.at(g + 1) <= v:
            g += 1
        return g

    def first(self, v):
        """The smallest g with P(g) >= v (n + 1 when v > P(n))."""
        if v <= 0:
            return 0
        if v > self.total:
            return self.n + 1
        k = bisect.bisect_left(self.below, v)  # P(start[k - 1]) < v <= P(start[k]): cost[k - 1] > 0
        lo, hi = self.start[k - 1], self.start[k]
        g = max(lo + 1, min(lo + math.ceil((v - self.below[k - 1]) / self.cost[k - 1]), hi))
        while g - 1 > lo and self.at(g - 1) >= v:
            g -= 1
        while g < hi and self.at(g) < v:
            g += 1
        return g

    def blocks(self, start, limit, cap):
        """Blocks of cost <= limit the gids start.. need (greedy, each at least one gid), counted up to
        cap + 1. Blocks that lie inside one run all have the same size and are counted together."""
        count, g = 0, start
        while g < self.n and count <= cap:
            end = max(g + 1, self.reach(self.at(g) + limit))
            count += 1
            k = bisect.bisect_right(self.start, g) - 1
            if end < self.start[k + 1]:  # the next blocks of this run have end - g gids too
                size = end - g
                more = (self.start[k + 1] - 1 - end) // size
                count, end = count + more, end + more * size
            g = end
        return count


def cost_runs(recipe):
    """Estimated cost of every gid, as Runs: equations of its cell type + SYNAPSE_COST × expected
    in-degree, the same for every cell of a population."""
    return Runs.per_population(
        recipe, lambda p: recipe.cell_type(p.name).n_equations + SYNAPSE_COST * recipe.expected_indegree(p)
    )


def cell_costs(recipe):
    """cost_runs(recipe) for every gid (an array of num_cells)."""
    return cost_runs(recipe).per_gid()


def summary(decomposition, recipe):
    """Per rank: (cells, equations, estimated cost); and the imbalance max/mean of the cost."""
    bounds = decomposition.bounds
    equations = Runs.per_population(recipe, lambda p: recipe.cell_type(p.name).n_equations, np.int64)
    rows = list(
        zip(
            np.diff(bounds).tolist(), equations.sums(bounds).tolist(), cost_runs(recipe).sums(bounds).tolist()
        )
    )
    load = np.array([c for _, _, c in rows])
    imbalance = float(load.max() / load.mean()) if load.mean() > 0 else 1.0
    return rows, imbalance
