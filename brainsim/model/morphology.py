"""Cell morphologies as trees of unbranched branches, the built-in generators, and SWC writing.

Coordinates, lengths and diameters are in µm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainsim.errors import MorphologyError

SWC_TYPES = {"soma": 1, "axon": 2, "dend": 3, "apic": 4}
"""SWC sample type of each standard region; any other type n is region "custom_<n>"."""

SECTION_LISTS = {"somatic": "soma", "axonal": "axon", "basal": "dend", "apical": "apic"}
"""NEURON's section lists (import3d, BluePyOpt) and the region each names."""

L5PC_SYNTHETIC_SWC = "configs/morphologies/l5pc_synthetic.swc"
"""Where the shipped synthetic layer-5 pyramidal cell lives, relative to the repository root."""


@dataclass(frozen=True, eq=False)
class Branch:
    """An unbranched cable.

    ``points`` is (k, 4): x, y, z, diameter in µm, proximal first (stored as a read-only float64 copy).
    ``parent_x`` is where it attaches on branch ``parent``: 1.0 is the parent's distal end, any other value
    the parent node whose midpoint is nearest to it.
    """

    points: np.ndarray
    region: str
    parent: int
    parent_x: float = 1.0

    def __post_init__(self):
        points = np.array(self.points, dtype=np.float64)
        points.flags.writeable = False
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "parent_x", float(self.parent_x))


@dataclass(frozen=True, eq=False)
class Morphology:
    """A tree of branches, parents before children, with exactly one root: branch 0.

    ``source`` is the file path or generator call it came from, quoted in messages and provenance.
    """

    branches: tuple[Branch, ...]
    source: str

    def __post_init__(self):
        object.__setattr__(self, "branches", tuple(self.branches))
        if not self.branches:
            raise MorphologyError("a morphology needs at least one branch", source=self.source)
        for i, branch in enumerate(self.branches):
            _check_branch(i, branch, self.source)

    def regions(self) -> tuple[str, ...]:
        """Region names in order of first appearance."""
        return tuple(dict.fromkeys(b.region for b in self.branches))

    def branch_length(self, b: int) -> float:
        """Path length of branch ``b`` in µm."""
        return _path_length(self.branches[b].points)


def _path_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points[:, :3], axis=0), axis=1).sum())


def _check_branch(i: int, b: Branch, source: str) -> None:
    def fail(message):
        raise MorphologyError(f"branch {i} ({b.region!r}): {message}", source=source)

    if not isinstance(b.region, str) or not b.region:
        fail("the region must be a non-empty string")
    if b.points.ndim != 2 or b.points.shape[1] != 4:
        fail(f"points must have shape (k, 4) for x, y, z, diameter; got {b.points.shape}")
    if len(b.points) < 2:
        fail(f"needs at least 2 points, got {len(b.points)}")
    if not np.isfinite(b.points).all():
        fail("points contain NaN or infinity")
    if (b.points[:, 3] <= 0).any():
        j = int(np.argmax(b.points[:, 3] <= 0))
        fail(f"point {j} has diameter {b.points[j, 3]} µm; diameters must be > 0")
    if i == 0 and b.parent != -1:
        fail(f"branch 0 is the root and must have parent -1, got {b.parent}")
    if i > 0 and b.parent == -1:
        fail("is a second root (parent -1); a morphology is one tree whose root is branch 0")
    if i > 0 and not 0 <= b.parent < i:
        fail(f"parent {b.parent} is not an earlier branch (0..{i - 1}); list parents before children")
    if not 0.0 <= b.parent_x <= 1.0:
        fail(f"parent_x {b.parent_x} is outside [0, 1]")
    if _path_length(b.points) == 0.0:
        fail("has zero length (all its points coincide)")


# ---------------------------------------------------------------------------------------- generators


def cylinder(length: float, diameter: float, region: str = "soma") -> Morphology:
    """One cylindrical branch, ``length`` and ``diameter`` in µm, from the origin along +x."""
    points = [[0.0, 0.0, 0.0, diameter], [length, 0.0, 0.0, diameter]]
    return Morphology(
        (Branch(points, region, -1),),
        source=f"cylinder(length={length}, diameter={diameter}, region={region!r})",
    )


def ball_and_stick(
    soma_length: float = 20.0,
    soma_diameter: float = 20.0,
    dend_length: float = 1000.0,
    dend_diameter: float = 2.0,
) -> Morphology:
    """Benchmark model M1: a soma cylinder along +x and one "dend" cylinder on its distal end (µm)."""
    soma = Branch([[0, 0, 0, soma_diameter], [soma_length, 0, 0, soma_diameter]], "soma", -1)
    dend_points = [[soma_length, 0, 0, dend_diameter], [soma_length + dend_length, 0, 0, dend_diameter]]
    return Morphology(
        (soma, Branch(dend_points, "dend", 0, 1.0)),
        source=f"ball_and_stick(soma_length={soma_length}, soma_diameter={soma_diameter}, "
        f"dend_length={dend_length}, dend_diameter={dend_diameter})",
    )


def binary_tree(
    depth: int = 4,
    branch_length: float = 130.0,
    diameters: Sequence[float] = (2.0, 1.5, 1.0, 0.75),
    soma_length: float = 20.0,
    soma_diameter: float = 20.0,
) -> Morphology:
    """Benchmark model M2: a soma (branch 0) and a full binary dendritic tree of ``depth`` levels (µm).

    Dendrite b (heap order, b = 0 .. 2**depth - 2) is branch b + 1, has diameter ``diameters[level]`` with
    level = floor(log2(b + 1)) (levels beyond the list take its last diameter), and its children 2b + 1
    and 2b + 2 sit on its distal end. Dendrite 0 leaves the soma's distal end along +x; children turn by
    ±60°/2**(level - 1) in the xy-plane.
    """
    if depth < 1:
        raise ValueError(f"binary_tree depth must be >= 1, got {depth}")
    if not diameters:
        raise ValueError("binary_tree needs at least one diameter")
    branches = [Branch([[0, 0, 0, soma_diameter], [soma_length, 0, 0, soma_diameter]], "soma", -1)]
    heading, end = [], []
    for b in range(2**depth - 1):
        level = (b + 1).bit_length() - 1
        if b == 0:
            start, angle, parent = np.array([soma_length, 0.0, 0.0]), 0.0, 0
        else:
            p = (b - 1) // 2
            turn = math.radians(60.0) / 2 ** (level - 1)
            start, angle, parent = end[p], heading[p] + (turn if b % 2 else -turn), p + 1
        heading.append(angle)
        end.append(start + branch_length * np.array([math.cos(angle), math.sin(angle), 0.0]))
        d = diameters[min(level, len(diameters) - 1)]
        branches.append(Branch([[*start, d], [*end[b], d]], "dend", parent, 1.0))
    return Morphology(
        tuple(branches),
        source=f"binary_tree(depth={depth}, branch_length={branch_length}, diameters={tuple(diameters)}, "
        f"soma_length={soma_length}, soma_diameter={soma_diameter})",
    )


@dataclass(frozen=True)
class _Kind:
    """How one part of the synthetic pyramidal cell tapers and wanders."""

    region: str
    d_base: float  # µm, diameter at the part's origin
    d_tip: float  # µm, diameter far from it
    decay: float  # µm, e-folding path distance of the taper
    wiggle: float  # rad, s.d. of the heading change per 10 µm step


_SOMA_RADIUS = 10.0
_AXON = _Kind("axon", 1.5, 0.6, 60.0, 0.05)
_BASAL = _Kind("dend", 2.0, 0.5, 100.0, 0.08)
_TRUNK = _Kind("apic", 3.0, 1.0, 750.0, 0.02)
_OBLIQUE = _Kind("apic", 1.0, 0.5, 100.0, 0.08)
_TUFT = _Kind("apic", 1.3, 0.5, 200.0, 0.06)


def synthetic_pyramidal(seed: int = 0) -> Morphology:
    """A deterministic, anatomically plausible layer-5 pyramidal cell (synthetic, not a reconstruction).

    Soma: a 20 µm cylinder along y. Axon: ~1 mm, 1.4 -> 0.6 µm, down from the soma. Basal: 5-8 stems, each
    bifurcating 2-3 times, 4.2-4.8 mm in total. Apical: a ~900 µm trunk (3 -> 1.6 µm) along +y carrying
    9-11 obliques, then a tuft of 8-12 branches; 6.2-6.8 mm in total. Dendritic tips taper to 0.5 µm.
    Branches on the soma attach at its middle (parent_x 0.5), as SWC import does.
    """
    rng = np.random.default_rng(seed)
    up = np.array([0.0, 1.0, 0.0])
    stubs: list[tuple] = []  # branch i + 1: (parent branch, kind, spread angle, start, heading)
    lengths: list[float] = []

    def add(parent, kind, length, spread=0.0, start=None, heading=None):
        stubs.append((parent, kind, spread, start, heading))
        lengths.append(length)
        return len(stubs)

    def bifurcate(root, splits, kind, length_range, angle_range):
        tips, new = [root], []
        for _ in range(splits):
            tip = tips.pop(rng.integers(len(tips)))
            pair = [
                add(tip, kind, rng.uniform(*length_range), sign * math.radians(rng.uniform(*angle_range)))
                for sign in (1, -1)
            ]
            tips += pair
            new += pair
        return new

    add(0, _AXON, rng.uniform(950, 1050), start=-_SOMA_RADIUS * up, heading=-up)
    basal = []
    n_basal = rng.integers(5, 9)
    for i in range(n_basal):
        azimuth = 2 * math.pi * (i + rng.uniform(-0.2, 0.2)) / n_basal
        elevation = math.radians(rng.uniform(-60, 0))
        heading = np.array(
            [
                math.cos(elevation) * math.cos(azimuth),
                math.sin(elevation),
                math.cos(elevation) * math.sin(azimuth),
            ]
        )
        stem = add(0, _BASAL, rng.uniform(20, 50), start=_SOMA_RADIUS * heading, heading=heading)
        basal += [stem, *bifurcate(stem, rng.integers(2, 4), _BASAL, (60, 160), (20, 40))]

    trunk_length = rng.uniform(850, 950)
    n_oblique = rng.integers(9, 12)
    cuts = trunk_length * (0.1 + 0.75 * (np.arange(n_oblique) + rng.uniform(0.1, 0.9, n_oblique)) / n_oblique)
    pieces = np.diff([0.0, *cuts, trunk_length])
    trunk = add(0, _TRUNK, pieces[0], start=_SOMA_RADIUS * up, heading=up)
    apical_free = []  # obliques and tuft: their lengths are scaled to the apical total
    for k in range(n_oblique):
        apical_free.append(
            add(trunk, _OBLIQUE, rng.uniform(120, 320), (-1) ** k * math.radians(rng.uniform(50, 80)))
        )
        trunk = add(trunk, _TRUNK, pieces[k + 1])
    apical_free += bifurcate(trunk, rng.integers(4, 7), _TUFT, (200, 450), (25, 40))

    lengths = np.array(lengths)
    basal, apical_free = np.array(basal) - 1, np.array(apical_free) - 1
    lengths[basal] *= rng.uniform(4200, 4800) / lengths[basal].sum()
    lengths[apical_free] *= (rng.uniform(6200, 6800) - trunk_length) / lengths[apical_free].sum()

    soma = [[0, -_SOMA_RADIUS, 0, 2 * _SOMA_RADIUS], [0, _SOMA_RADIUS, 0, 2 * _SOMA_RADIUS]]
    branches = [Branch(soma, "soma", -1)]
    end_heading, normal, end_distance = [up], [None], [0.0]
    parents = {stub[0] for stub in stubs}
    for i, ((parent, kind, spread, start, heading), length) in enumerate(
        zip(stubs, lengths, strict=True), start=1
    ):
        if parent != 0:
            start = branches[parent].points[-1, :3]
            heading = _rotate(end_heading[parent], normal[parent], spread)
        xyz, last_heading = _walk(rng, start, heading, length, kind.wiggle)
        same_part = parent != 0 and stubs[parent - 1][1] is kind
        s = (end_distance[parent] if same_part else 0.0) + np.concatenate(
            ([0.0], np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1)))
        )
        d = kind.d_tip + (kind.d_base - kind.d_tip) * np.exp(-s / kind.decay)
        if i not in parents:  # a terminal branch ends at the tip diameter
            d += (kind.d_tip - d) * np.linspace(0.0, 1.0, len(d))
        d[0] = d[1]  # the branch point carries the child's own diameter, as SWC stores it
        # rounded to 1 nm so that the SWC text holds the geometry exactly
        points = np.column_stack([np.round(xyz, 3), 2 * np.round(d / 2, 3)])
        branches.append(Branch(points, kind.region, parent, 0.5 if parent == 0 else 1.0))
        end_heading.append(last_heading)
        normal.append(_perpendicular(rng, last_heading))
        end_distance.append(s[-1])
    return Morphology(
        tuple(branches), source=f"synthetic_pyramidal(seed={seed}): synthetic layer-5 pyramidal cell"
    )


def _walk(rng, start, heading, length, wiggle):
    """A path of exactly ``length`` µm from ``start`` in steps of <= 10 µm whose heading drifts randomly."""
    n = max(1, math.ceil(length / 10.0))
    xyz = [np.asarray(start, dtype=float)]
    for _ in range(n):
        xyz.append(xyz[-1] + (length / n) * heading)
        last = heading
        heading = heading + rng.normal(0.0, wiggle, 3)
        heading /= np.linalg.norm(heading)
    return np.array(xyz), last


def _perpendicular(rng, v):
    """A random unit vector perpendicular to the unit vector ``v``."""
    w = rng.normal(size=3)
    w -= w.dot(v) * v
    return w / np.linalg.norm(w)


def _rotate(v, axis, angle):
    """``v`` rotated by ``angle`` about the unit ``axis`` perpendicular to it (Rodrigues)."""
    return v * math.cos(angle) + np.cross(axis, v) * math.sin(angle)


# ---------------------------------------------------------------------------------------- axon replacement

AXON_STUB_LENGTH = 30.0
"""µm, length of each of the two sections that replace a reconstructed axon (`replace_axon`)."""
AXON_STUB_REACH = 60.0
"""µm, path distance from the soma's middle beyond which an axon section's midpoint gives the second
replacement section its diameter."""


def replace_axon(morph: Morphology) -> Morphology:
    """``morph`` with its axon replaced by an axon initial segment, as BluePyOpt's ``replace_axon`` does.

    Every "axon" branch is removed; two cylinders of AXON_STUB_LENGTH µm take their place, the first on the
    soma's distal end (soma(1)), the second on the first's. They lie where the axon began, along its first
    branch's chord (without an axon: from the soma's last point along its chord); only compartment centres
    depend on that. The first has the
    diameter of the first axon branch; the second that of the first axon branch (in branch order) whose
    midpoint lies more than AXON_STUB_REACH µm from the soma's middle along the tree, or the first's when
    there is none (or when the axon is a single branch); both are 1 µm without an axon. A branch's diameter
    is NEURON's ``sec.diam`` under BluePyOpt's nseg = 1 + 2·int(L / 40 µm): the length-weighted mean
    diameter of its middle compartment. The new branches come last, after the others in their order.
    Raises MorphologyError when the root is no soma or a branch of another region hangs from the axon.
    """
    branches = morph.branches
    if branches[0].region != "soma":
        raise MorphologyError(
            f"replace_axon needs a soma as the root branch; branch 0 is {branches[0].region!r}", morph.source
        )
    axon = [i for i, b in enumerate(branches) if b.region == "axon"]
    for i, b in enumerate(branches):
        if b.region != "axon" and b.parent in axon:
            raise MorphologyError(
                f"branch {i} ({b.region!r}) hangs from axon branch {b.parent}; replacing the axon would "
                "leave it without a parent",
                morph.source,
            )
    diameters = [1.0, 1.0]
    if axon:
        diameters = [_nrn_section_diameter(branches[axon[0]].points)] * 2
    if len(axon) > 1:
        start = np.zeros(len(branches))  # path distance of each branch's start from the soma's middle
        for i, b in enumerate(branches[1:], start=1):
            if b.parent == 0:
                start[i] = abs(b.parent_x - 0.5) * morph.branch_length(0)
            else:
                start[i] = start[b.parent] + b.parent_x * morph.branch_length(b.parent)
        beyond = [i for i in axon if start[i] + morph.branch_length(i) / 2 > AXON_STUB_REACH]
        if beyond:
            diameters[1] = _nrn_section_diameter(branches[beyond[0]].points)
    kept = [i for i, b in enumerate(branches) if b.region != "axon"]
    index = {old: new for new, old in enumerate(kept)}
    out = [
        Branch(
            branches[i].points, branches[i].region, index.get(branches[i].parent, -1), branches[i].parent_x
        )
        for i in kept
    ]
    line = branches[axon[0] if axon else 0].points[:, :3]
    origin = line[0] if axon else line[-1]
    chord = np.linalg.norm(line[-1] - line[0])
    axis = (line[-1] - line[0]) / chord if chord > 0 else np.array([1.0, 0.0, 0.0])
    for k, d in enumerate(diameters):
        a, b = origin + k * AXON_STUB_LENGTH * axis, origin + (k + 1) * AXON_STUB_LENGTH * axis
        out.append(Branch([[*a, d], [*b, d]], "axon", 0 if k == 0 else len(out) - 1, 1.0))
    return Morphology(
        tuple(out),
        source=f"{morph.source} (axon replaced by 2 × {AXON_STUB_LENGTH:g} µm sections)",
    )


def _nrn_section_diameter(points: np.ndarray) -> float:
    """NEURON's ``sec.diam`` (µm) of a branch with nseg = 1 + 2·int(L / 40 µm): the mean diameter, over
    length, of its middle compartment (diameters vary linearly between points)."""
    s = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(points[:, :3], axis=0), axis=1))))
    nseg = 1 + 2 * int(s[-1] / 40.0)
    lo, hi = s[-1] * (nseg // 2) / nseg, s[-1] * (nseg // 2 + 1) / nseg
    grid = np.unique(np.concatenate(([lo, hi], s[(s > lo) & (s < hi)])))
    d = np.interp(grid, s, points[:, 3])
    return float(np.sum((d[1:] + d[:-1]) / 2 * np.diff(grid)) / (hi - lo))


# ---------------------------------------------------------------------------------------- SWC writing


def to_swc(morph: Morphology, path, *, comments: Sequence[str] = ()) -> None:
    """Write ``morph`` as an SWC file (radius = diameter / 2) that `from_swc` reads back to the same geometry.

    A root soma that is one cylinder with length = diameter and all children at its middle (parent_x 0.5) is
    written as a NeuroMorpho 3-point soma; any other root is written as a cable of samples. A child on its
    parent's distal end shares the parent's last sample: its own first point is written only when it is
    not simply that position with the child's second diameter. ``comments`` become extra header lines.
    Raises MorphologyError for what SWC cannot encode: a non-root soma, a region with no SWC type, or an
    attachment other than a distal end, the middle of a 3-point soma or a sample of a soma cable.
    """
    types = [_swc_type(i, b.region, morph.source) for i, b in enumerate(morph.branches)]
    rows: list[str] = []
    anchors: list[tuple[np.ndarray, list[int]]] = []  # per branch: arc fraction and sample id of each point

    def emit(swc_type, xyz, radius, parent):
        x, y, z = (_number(v) for v in xyz)
        rows.append(f"{len(rows) + 1} {swc_type} {x} {y} {z} {_number(radius)} {parent}")
        return len(rows)

    root = morph.branches[0]
    if _is_point_soma(root) and all(b.parent_x == 0.5 for b in morph.branches if b.parent == 0):
        centre, r = root.points[:, :3].mean(axis=0), root.points[0, 3] / 2
        centre_id = emit(1, centre, r, -1)
        for sign in (-1, 1):
            emit(1, centre + [0.0, sign * r, 0.0], r, centre_id)
        anchors.append((np.array([0.5]), [centre_id]))
    first = len(anchors)  # 1 when the root was written as a 3-point soma
    for i, b in enumerate(morph.branches[first:], start=first):
        if i > 0 and b.region == "soma":
            raise MorphologyError(
                f"branch {i} is soma but not the root; SWC needs the soma at the root", source=morph.source
            )
        ids, parent_id, points = [], -1, b.points
        if i > 0:
            parent_id = _attachment(i, b, morph, anchors[b.parent])
            parent_end = morph.branches[b.parent].points[-1]
            shared = np.array_equal(points[0, :3], parent_end[:3]) and points[0, 3] == points[1, 3]
            if morph.branches[b.parent].region != "soma" and shared:
                ids, points = [parent_id], points[1:]
        for p in points:
            parent_id = emit(types[i], p[:3], p[3] / 2, parent_id)
            ids.append(parent_id)
        s = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(b.points[:, :3], axis=0), axis=1))))
        anchors.append((s / s[-1], ids))
    header = ["# SWC written by brainsim: id type x y z radius parent (µm)", f"# source: {morph.source}"]
    header += [f"# {line}" for line in comments]
    Path(path).write_text("\n".join(header + rows) + "\n", encoding="utf-8")


def write_l5pc_synthetic(path=L5PC_SYNTHETIC_SWC) -> None:
    """Write ``synthetic_pyramidal(seed=0)`` to ``path``: how the shipped L5PC_SYNTHETIC_SWC file is made."""
    to_swc(
        synthetic_pyramidal(seed=0),
        path,
        comments=(
            "SYNTHETIC cell: made by brainsim.model.morphology.synthetic_pyramidal(seed=0); it is not",
            "a reconstruction of a real neuron. Regenerate it from the repository root with",
            "python -c 'from brainsim.model.morphology import write_l5pc_synthetic; write_l5pc_synthetic()'",
        ),
    )


def _swc_type(i: int, region: str, source: str) -> int:
    if region in SWC_TYPES:
        return SWC_TYPES[region]
    number = region.removeprefix("custom_")
    if region.startswith("custom_") and number.isdigit():
        return int(number)
    raise MorphologyError(
        f"branch {i}: region {region!r} has no SWC type; use soma, axon, dend, apic or custom_<n>",
        source=source,
    )


def _is_point_soma(b: Branch) -> bool:
    """One cylinder with length = diameter: what a 1-point or 3-point SWC soma becomes."""
    d = b.points[:, 3]
    return b.region == "soma" and len(d) == 2 and d[0] == d[1] and math.isclose(_path_length(b.points), d[0])


def _attachment(i: int, b: Branch, morph: Morphology, anchor: tuple[np.ndarray, list[int]]) -> int:
    """The SWC id of the sample branch ``i`` hangs from."""
    fractions, ids = anchor
    match = np.flatnonzero(np.isclose(fractions, b.parent_x, rtol=0.0, atol=1e-9))
    if (morph.branches[b.parent].region != "soma" and b.parent_x != 1.0) or not match.size:
        raise MorphologyError(
            f"branch {i} attaches to branch {b.parent} at parent_x={b.parent_x}, which SWC cannot encode: "
            "only distal ends, the middle of a 3-point soma and the samples of a soma cable carry children",
            source=morph.source,
        )
    return ids[match[-1]]


def _number(v: float) -> str:
    """Shortest text that reads back as exactly ``v`` (and never "-0.0")."""
    return repr(float(v) + 0.0)
