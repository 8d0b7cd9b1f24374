"""Cutting a morphology into compartments: the node arrays the cable solver uses.

The rules are NEURON's and Arbor's. A branch of path length L is cut into nseg compartments of length
L / nseg, each with one node at its midpoint. A compartment's area is the lateral (slant) area of the
frustum pieces it covers, without end caps. The axial resistance of a piece of length h between diameters
d1 and d2 is 4·Ra·h / (π·d1·d2) · 1e-2 MΩ (h, d in µm, Ra in Ω·cm); neighbouring nodes are joined through
the resistance between their midpoints. Free ends are sealed.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from brainsim.model.morphology import Morphology


@dataclass(frozen=True, eq=False)
class CellGeometry:
    """One cell's nodes, parents before children (parent[i] < i; node 0, the root, is branch 0's first).

    Nodes come branch by branch in morphology order, proximal to distal; where two or more children sit on
    a branch's distal end, a junction node (no area, no capacitance) follows the branch's last node.
    All arrays are read-only.
    """

    parent: np.ndarray  # int32, -1 for the root
    area: np.ndarray  # float64 µm², 0 for junctions
    cap: np.ndarray  # float64 nF (cm · area · 1e-5), 0 for junctions
    gax: np.ndarray  # float64 µS between node i and parent[i]; 0 for the root
    region: np.ndarray  # int16 index into region_names (a junction takes its branch's region)
    region_names: tuple[str, ...]
    branch: np.ndarray  # int32 branch of each node (a junction: the branch it terminates)
    x: np.ndarray  # float64 node position along its branch in [0, 1] (junction: 1.0)
    length: np.ndarray  # float64 µm compartment length (0 for junctions)
    diameter: np.ndarray  # float64 µm mean diameter, area / (π · length) (0 for junctions)
    center: np.ndarray  # (n, 3) float64 µm
    is_junction: np.ndarray  # bool

    @property
    def n_nodes(self) -> int:
        return len(self.parent)

    @property
    def n_compartments(self) -> int:
        """Nodes that are not junctions."""
        return int(np.count_nonzero(~self.is_junction))

    def nodes_in_region(self, name: str) -> np.ndarray:
        """Indices of the nodes of region ``name``, junction nodes (zero area) included."""
        if name not in self.region_names:
            raise ValueError(
                f"no region {name!r} in this cell; its regions are {', '.join(self.region_names)}"
            )
        return np.flatnonzero(self.region == self.region_names.index(name))

    def node_at(self, branch: int, x: float) -> int:
        """The node of the compartment containing position ``x`` in [0, 1] of ``branch`` (x = 1: the last)."""
        n_branches = int(self.branch[-1]) + 1
        if not 0 <= branch < n_branches:
            raise ValueError(f"branch {branch} does not exist; this cell has branches 0..{n_branches - 1}")
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"x must be in [0, 1], got {x}")
        lo, hi = np.searchsorted(self.branch, [branch, branch + 1])
        nseg = int(hi - lo - self.is_junction[hi - 1])
        return int(lo + min(int(x * nseg), nseg - 1))


def discretize(
    morph: Morphology,
    *,
    ra: dict[str, float],
    cm: dict[str, float],
    nseg: dict[str, tuple[str, float]],
) -> CellGeometry:
    """Compartmentalise ``morph``: ``ra`` (Ω·cm), ``cm`` (µF/cm²) and ``nseg`` map every region to a value.

    ``nseg[region]`` is ("per_branch", n), ("max_length", µm): nseg = ceil(L / max_length), at least 1
    (an excess below 1e-9 of a compartment, rounding noise in L, does not add one), or
    ("odd_per_length", µm): nseg = 1 + 2·int(L / odd_per_length), BluePyOpt's rule.
    """
    names = morph.regions()
    _check_parameters(names, ra, cm, nseg)
    n_distal = np.zeros(len(morph.branches), dtype=int)
    for b in morph.branches[1:]:
        n_distal[b.parent] += b.parent_x == 1.0
    blocks: list[dict[str, np.ndarray]] = []  # node arrays of each branch and junction, in node order
    first = np.zeros(len(morph.branches), dtype=int)
    nsegs = np.zeros(len(morph.branches), dtype=int)
    distal: list[tuple[int, float]] = []  # per branch: the node its distal children hang from, and R to it
    n_nodes = 0
    for i, b in enumerate(morph.branches):
        n = _nseg(nseg[b.region], morph.branch_length(i), b.region)
        half_area, half_r, centre = _halves(b.points, n, ra[b.region])
        area = half_area[0::2] + half_area[1::2]
        length = np.full(n, morph.branch_length(i) / n)
        r_between = half_r[1:-1:2] + half_r[2:-1:2]
        if i == 0:
            anchor, g_anchor = -1, 0.0
        elif b.parent_x == 1.0:
            anchor, r_up = distal[b.parent]
            g_anchor = 1.0 / (r_up + half_r[0])
        else:  # the parent node whose midpoint is nearest, through this branch's first half only
            anchor = first[b.parent] + min(int(b.parent_x * nsegs[b.parent]), nsegs[b.parent] - 1)
            g_anchor = 1.0 / half_r[0]
        first[i], nsegs[i] = n_nodes, n
        blocks.append(
            dict(
                parent=np.concatenate(([anchor], n_nodes + np.arange(n - 1))),
                area=area,
                cap=cm[b.region] * area * 1e-5,
                gax=np.concatenate(([g_anchor], 1.0 / r_between)),
                region=np.full(n, names.index(b.region)),
                branch=np.full(n, i),
                x=(np.arange(n) + 0.5) / n,
                length=length,
                diameter=area / (np.pi * length),
                center=centre,
                is_junction=np.zeros(n, dtype=bool),
            )
        )
        n_nodes += n
        last = n_nodes - 1
        if n_distal[i] < 2:
            distal.append((last, half_r[-1]))
        else:
            blocks.append(_junction(i, names.index(b.region), last, 1.0 / half_r[-1], b.points[-1, :3]))
            distal.append((n_nodes, 0.0))
            n_nodes += 1

    dtypes = dict(parent=np.int32, region=np.int16, branch=np.int32, is_junction=bool)
    arrays = {}
    for key in blocks[0]:
        array = np.concatenate([block[key] for block in blocks]).astype(dtypes.get(key, np.float64))
        array.flags.writeable = False
        arrays[key] = array
    return CellGeometry(region_names=names, **arrays)


def _check_parameters(names, ra, cm, nseg) -> None:
    for table, what in ((ra, "ra"), (cm, "cm"), (nseg, "nseg")):
        missing = [name for name in names if name not in table]
        if missing:
            raise ValueError(
                f"{what} has no value for region(s) {missing}; the morphology's regions are {names}"
            )
    for name in names:
        for table, what, unit in ((ra, "ra", "Ω·cm"), (cm, "cm", "µF/cm²")):
            if not (math.isfinite(table[name]) and table[name] > 0):
                raise ValueError(f"{what}[{name!r}] must be a finite number > 0 {unit}, got {table[name]!r}")


def _junction(
    branch: int, region: int, parent: int, gax: float, position: np.ndarray
) -> dict[str, np.ndarray]:
    """The arrays of one junction node: no area, no capacitance, at the distal end of ``branch``."""
    return dict(
        parent=np.array([parent]),
        area=np.zeros(1),
        cap=np.zeros(1),
        gax=np.array([gax]),
        region=np.array([region]),
        branch=np.array([branch]),
        x=np.ones(1),
        length=np.zeros(1),
        diameter=np.zeros(1),
        center=position[None, :],
        is_junction=np.ones(1, dtype=bool),
    )


def compartment_count(morph: Morphology, nseg: dict[str, tuple[str, float]]) -> float:
    """The compartments ``discretize(morph, nseg=nseg)`` would make (inf when a branch's are beyond
    counting), in O(branches) and without allocating them."""
    total = 0.0
    for i, b in enumerate(morph.branches):
        kind, value = nseg[b.region]
        if kind in ("max_length", "odd_per_length"):
            n = morph.branch_length(i) / value
            if n >= 1e15:
                total += math.inf
            else:  # as _nseg
                total += max(1, math.ceil(n - 1e-9)) if kind == "max_length" else 1 + 2 * math.floor(n)
        else:
            total += value
    return total


def _nseg(policy, length: float, region: str) -> int:
    """Number of compartments of a branch of ``length`` µm under ``policy``."""
    kind, value = policy if isinstance(policy, (tuple, list)) and len(policy) == 2 else (None, None)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        kind = None
    if kind == "per_branch" and value >= 1 and float(value).is_integer():
        return int(value)
    if kind == "max_length" and value > 0:
        return max(1, math.ceil(length / value - 1e-9))
    if kind == "odd_per_length" and value > 0:
        return 1 + 2 * math.floor(length / value)
    raise ValueError(
        f"nseg[{region!r}] = {policy!r}; expected ('per_branch', n) with an integer n >= 1, "
        "or ('max_length', µm) or ('odd_per_length', µm) with a length > 0"
    )


def _halves(points: np.ndarray, n: int, ra: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area (µm²) and axial resistance (MΩ) of a branch's 2n half compartments, and its n node centres."""
    xyz, d = points[:, :3], points[:, 3]
    h = np.linalg.norm(np.diff(xyz, axis=0), axis=1)
    s = np.concatenate(([0.0], np.cumsum(h)))
    piece_area = np.pi / 2 * (d[:-1] + d[1:]) * np.hypot(h, (d[1:] - d[:-1]) / 2)
    piece_q = h / (d[:-1] * d[1:])  # ∫ ds / d² over the piece, for linearly varying d
    # cumulative area and ∫ ds / d² up to each cut at a multiple of L / 2n, inside piece i
    cuts = np.linspace(0.0, s[-1], 2 * n + 1)
    i = np.clip(np.searchsorted(s, cuts, side="right") - 1, 0, len(h) - 1)
    frac = np.minimum(np.divide(cuts - s[i], h[i], out=np.ones_like(cuts), where=h[i] > 0), 1.0)
    d_cut = d[i] + frac * (d[i + 1] - d[i])
    area = np.concatenate(([0.0], np.cumsum(piece_area)))[i] + np.pi / 2 * (d[i] + d_cut) * np.hypot(
        frac * h[i], (d_cut - d[i]) / 2
    )
    q = np.concatenate(([0.0], np.cumsum(piece_q)))[i] + frac * h[i] / (d[i] * d_cut)
    centre = xyz[i] + frac[:, None] * (xyz[i + 1] - xyz[i])
    return np.diff(area), 4e-2 * ra / np.pi * np.diff(q), centre[1::2]
