"""Decomposition: which rank owns which gid."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decomposition:
    """gid -> rank as contiguous blocks of cells, in gid order, of near-equal size."""

    num_cells: int
    ranks: int

    @property
    def bounds(self):
        return np.linspace(0, self.num_cells, self.ranks + 1).round().astype(np.int64)

    def gids_on(self, rank):
        lo, hi = self.bounds[rank], self.bounds[rank + 1]
        return np.arange(lo, hi, dtype=np.int64)
