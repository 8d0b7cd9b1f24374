"""Reading NeuroMorpho-style SWC files (coordinates and radii in µm) into a `Morphology`."""

from __future__ import annotations

import heapq
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brainsim.errors import MorphologyError
from brainsim.model.morphology import SWC_TYPES, Branch, Morphology

_FIELDS = ("id", "type", "x", "y", "z", "radius", "parent")
_INTEGER_FIELDS = {"id", "type", "parent"}
_REGIONS = {number: name for name, number in SWC_TYPES.items()}


class _Sample(NamedTuple):
    line: int
    type: int
    xyz: np.ndarray
    radius: float
    parent: int


def from_swc(path) -> Morphology:
    """Read an SWC file: lines ``id type x y z radius parent``, ``#`` comments, parent -1 for the root.

    Types 1 soma, 2 axon, 3 dend, 4 apic; any other n becomes region "custom_<n>". Samples may come in any
    order as long as they form one tree. The soma (type 1 samples, which must include the root) becomes
    branch 0:

    * 1 sample of radius r: a cylinder along y centred on it, length = diameter = 2r (area 4πr², as NEURON).
    * 3-point soma (the root with two type-1 children, NeuroMorpho): the same cylinder from the root's r;
      the positions of the two outer samples are not used.
    * contour (more than 3 samples in a chain whose ends are closer than half its length): a cylinder along
      y centred at the outline's centroid, length = diameter = 2 × the mean distance of the outline samples
      from that centroid.
    * any other chain of type-1 samples: an unbranched soma cable through them.

    The other samples are split into unbranched branches at every sample with other than one child and at
    every type change. A child of the soma starts at its own first sample (or, if it has only one, at the
    soma centre) and attaches at parent_x 0.5 (NEURON's import3d convention); on a soma cable it attaches
    at, and a one-sample child starts from, the position of its parent sample. Any other branch attaches
    at its parent's distal end (parent_x 1) and starts at the parent sample's position with its own first
    diameter. Branches are numbered in file order, parents first. Every malformed input raises
    MorphologyError naming the file and line.
    """
    source = str(path)
    samples = _parse(Path(path), source)
    children, root = _link(samples, source)
    return _build(samples, children, root, source)


def _parse(path: Path, source: str) -> dict[int, _Sample]:
    samples: dict[int, _Sample] = {}
    try:
        lines = path.open(encoding="utf-8", errors="replace")
    except OSError as e:
        raise MorphologyError(f"cannot read the SWC file ({e.strerror or e})", source) from None
    with lines:
        for lineno, text in enumerate(lines, start=1):
            tokens = text.split("#", 1)[0].split()
            if not tokens:
                continue
            if len(tokens) != len(_FIELDS):
                raise MorphologyError(
                    f"expected 7 fields 'id type x y z radius parent', got {len(tokens)}", source, lineno
                )
            values = [
                _field(name, token, source, lineno) for name, token in zip(_FIELDS, tokens, strict=True)
            ]
            sid, stype, x, y, z, radius, parent = values
            if sid in samples:
                raise MorphologyError(
                    f"duplicate sample id {sid} (first defined on line {samples[sid].line})", source, lineno
                )
            if radius <= 0:
                what = "zero" if radius == 0 else "negative"
                raise MorphologyError(
                    f"sample {sid} has {what} radius {radius}; radii must be > 0", source, lineno
                )
            samples[sid] = _Sample(lineno, stype, np.array([x, y, z]), radius, parent)
    if not samples:
        raise MorphologyError("no samples: the file is empty or holds only comments", source)
    return samples


def _field(name: str, token: str, source: str, lineno: int):
    try:
        value = float(token)
    except ValueError:
        raise MorphologyError(f"field '{name}' is not a number: {token!r}", source, lineno) from None
    if not math.isfinite(value):
        raise MorphologyError(f"field '{name}' is not finite: {token!r}", source, lineno)
    if name in _INTEGER_FIELDS:
        if not value.is_integer():
            raise MorphologyError(f"field '{name}' must be an integer, got {token!r}", source, lineno)
        return int(value)
    return value


def _link(samples: dict[int, _Sample], source: str) -> tuple[dict[int, list[int]], int]:
    """Children of every sample (in file order) and the root; checks parents, cycles and a single root."""
    children: dict[int, list[int]] = {sid: [] for sid in samples}
    roots = []
    for sid, s in samples.items():
        if s.parent == -1:
            roots.append(sid)
        elif s.parent not in samples:
            raise MorphologyError(
                f"sample {sid} names parent {s.parent}, which is no sample id in the file (missing parent)",
                source,
                s.line,
            )
        else:
            children[s.parent].append(sid)
    reached, stack = set(), list(roots)
    while stack:
        sid = stack.pop()
        reached.add(sid)
        stack += children[sid]
    if len(reached) < len(
        samples
    ):  # every sample that no root reaches leads, through its parents, into a cycle
        sid = next(s for s in samples if s not in reached)
        walked: dict[int, None] = {}
        while sid not in walked:
            walked[sid] = None
            sid = samples[sid].parent
        cycle = list(walked)[list(walked).index(sid) :]
        shown = " -> ".join(map(str, [*cycle, cycle[0]]))
        first = min(cycle, key=lambda s: samples[s].line)
        raise MorphologyError(
            f"parent links form a cycle: {shown} (each sample's parent is the next)",
            source,
            samples[first].line,
        )
    if len(roots) > 1:
        raise MorphologyError(
            f"sample {roots[1]} is a second root (parent -1) besides sample {roots[0]} on line "
            f"{samples[roots[0]].line}; the file must hold one connected tree",
            source,
            samples[roots[1]].line,
        )
    return children, roots[0]


class _Part(NamedTuple):
    points: np.ndarray
    region: str
    parent: int  # index into the list of parts
    parent_x: float
    line: int  # of its first sample: branches are numbered in this order


def _build(samples: dict[int, _Sample], children: dict[int, list[int]], root: int, source: str) -> Morphology:
    soma = [sid for sid, s in samples.items() if s.type == 1]
    for sid in soma:
        parent = samples[sid].parent
        if parent != -1 and samples[parent].type != 1:
            raise MorphologyError(
                f"soma sample {sid} hangs from sample {parent} of type {samples[parent].type}; the soma "
                "(type 1) samples must form the root of the tree",
                source,
                samples[sid].line,
            )
    parts: list[_Part] = []
    # per soma sample: (parent_x of the branches on it, where such a branch with a single sample starts)
    attach: dict[int, tuple[float, np.ndarray]] = {}
    if soma:
        soma_points, attach = _soma(samples, children, root, soma, source)
        parts.append(_Part(soma_points, "soma", -1, 1.0, samples[root].line))
        stack = [(c, 0) for sid in attach for c in children[sid] if samples[c].type != 1]
    else:
        stack = [(root, -1)]
    while stack:
        first, parent_part = stack.pop()
        chain = [first]
        while len(next_ := children[chain[-1]]) == 1 and samples[next_[0]].type == samples[first].type:
            chain.append(next_[0])
        points, parent_x = _branch_points(samples, chain, attach, source)
        region = _REGIONS.get(samples[first].type, f"custom_{samples[first].type}")
        parts.append(_Part(points, region, parent_part, parent_x, samples[first].line))
        stack += [(c, len(parts) - 1) for c in children[chain[-1]]]
    return Morphology(_in_file_order(parts), source)


def _branch_points(samples, chain, attach, source) -> tuple[np.ndarray, float]:
    """Points and parent_x of the branch through the samples ``chain``."""
    first = chain[0]
    points = np.array([[*samples[s].xyz, 2 * samples[s].radius] for s in chain])
    anchor = samples[first].parent
    if anchor in attach:
        parent_x, centre = attach[anchor]
        if len(chain) == 1:
            points = np.vstack([[*centre, points[0, 3]], points])
    else:
        parent_x = 1.0
        if anchor != -1 and not np.array_equal(samples[anchor].xyz, points[0, :3]):
            points = np.vstack([[*samples[anchor].xyz, points[0, 3]], points])
    line = samples[first].line
    if len(points) < 2 and anchor == -1:
        raise MorphologyError(
            f"the tree starts at sample {first}, which is no soma and starts no cable (it forks or ends "
            "right there); make the root a soma or the first sample of a cable",
            source,
            line,
        )
    if len(points) < 2 or np.linalg.norm(np.diff(points[:, :3], axis=0), axis=1).sum() == 0.0:
        raise MorphologyError(f"the branch starting at sample {first} has zero length", source, line)
    return points, parent_x


def _soma(samples, children, root, soma, source):
    """Branch-0 points of the soma (samples ``soma``, rooted at ``root``) and, per soma sample, its
    (parent_x, start of a 1-sample child)."""
    soma_children = {sid: [c for c in children[sid] if samples[c].type == 1] for sid in soma}
    centre, r = samples[root].xyz, samples[root].radius
    if len(soma) == 1 or (len(soma) == 3 and len(soma_children[root]) == 2):
        return _soma_cylinder(centre, r), {sid: (0.5, centre) for sid in soma}
    for sid in soma:
        if len(soma_children[sid]) > 1:
            raise MorphologyError(
                f"soma sample {sid} has {len(soma_children[sid])} soma children; a soma must be 1 sample, "
                "a 3-point soma, a contour or an unbranched cable",
                source,
                samples[sid].line,
            )
    chain = [root]
    while soma_children[chain[-1]]:
        chain.append(soma_children[chain[-1]][0])
    xyz = np.array([samples[s].xyz for s in chain])
    s = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1))))
    if s[-1] == 0.0:
        raise MorphologyError(
            f"the soma cable from sample {root} has zero length: its samples coincide",
            source,
            samples[root].line,
        )
    if len(chain) > 3 and np.linalg.norm(xyz[-1] - xyz[0]) < s[-1] / 2:
        centroid = xyz.mean(axis=0)
        radius = np.linalg.norm(xyz - centroid, axis=1).mean()
        return _soma_cylinder(centroid, radius), {sid: (0.5, centroid) for sid in chain}
    points = np.column_stack([xyz, [2 * samples[sid].radius for sid in chain]])
    return points, {sid: (s[k] / s[-1], xyz[k]) for k, sid in enumerate(chain)}


def _soma_cylinder(centre: np.ndarray, r: float) -> np.ndarray:
    """A cylinder along y centred on ``centre`` with length = diameter = 2r."""
    x, y, z = centre
    return np.array([[x, y - r, z, 2 * r], [x, y + r, z, 2 * r]])


def _in_file_order(parts: list[_Part]) -> tuple[Branch, ...]:
    """Branches ordered by the line of their first sample, except that parents always come first."""
    kids: dict[int, list[int]] = {i: [] for i in range(len(parts))}
    for i, part in enumerate(parts):
        if part.parent >= 0:
            kids[part.parent].append(i)
    order, index, heap = [], {}, [(parts[0].line, 0)]
    while heap:
        _, i = heapq.heappop(heap)
        index[i] = len(order)
        order.append(i)
        for k in kids[i]:
            heapq.heappush(heap, (parts[k].line, k))
    return tuple(
        Branch(parts[i].points, parts[i].region, index.get(parts[i].parent, -1), parts[i].parent_x)
        for i in order
    )
