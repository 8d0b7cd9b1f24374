"""Reading reconstructed morphologies: SWC with brainsim's reader, Neurolucida ASC and HDF5 through MorphIO.

Coordinates and diameters are in µm. A soma contour becomes one section as NEURON's import3d makes it
(`soma_from_contour`), so that the soma's length and area are NEURON's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import morphio
import numpy as np

from brainsim.errors import MorphologyError
from brainsim.model.morphology import SWC_TYPES, Branch, Morphology
from brainsim.model.swc import from_swc

FORMATS = {".swc": "SWC", ".asc": "Neurolucida ASC", ".h5": "HDF5 (MorphIO's H5 v1)"}
"""File extensions (case-insensitive) `read_morphology` reads, and their formats."""

_REGIONS = {number: name for name, number in SWC_TYPES.items()}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WHERE = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(error|warning)\s*(?P<message>.*)$", re.DOTALL)
_ASC_POINT = re.compile(r"\(\s*" + r"[\s,]+".join([r"([-+]?[0-9.]+(?:[eE][-+]?\d+)?)"] * 4))


def read_morphology(path) -> Morphology:
    """Read a morphology file, its format from the extension: .swc (`from_swc`), .asc or .h5 (MorphIO).

    Raises MorphologyError naming the file (and the line, where the file has lines and the fault has one)
    for an unknown extension, an unreadable file or a malformed reconstruction.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".swc":
        return from_swc(path)
    if suffix not in FORMATS:
        raise MorphologyError(
            f"unknown morphology format {suffix or '(no extension)'!r}; the extension must be one of "
            f"{', '.join(f'{k} ({v})' for k, v in FORMATS.items())}",
            str(path),
        )
    return from_morphio(path)


def from_morphio(path) -> Morphology:
    """Read a Neurolucida ASC or MorphIO HDF5 file with MorphIO (an immutable ``morphio.Morphology``).

    The soma is branch 0: its contour (3 or more points; MorphIO refuses a one-point soma in these
    formats) becomes one section along its principal axis by NEURON's rule (`soma_from_contour`). Every
    other section becomes a branch of its MorphIO type: axon, dend (basal), apic (apical), custom_<n>;
    branches come depth-first, trees in file order, which is NEURON's numbering of the sections of each
    type (apic[3] here is NEURON's apic[3]). A root section attaches at the soma's middle (parent_x 0.5)
    and starts at its own first point, as import3d's logical connection; a child section starts at its
    parent's last point with its own first diameter (MorphIO and import3d alike) and attaches at the
    parent's distal end. A file without a soma must hold exactly one tree, whose root section becomes
    branch 0. MorphIO's errors are reworded into MorphologyError naming the file and line; so are faults
    found after parsing (a point of diameter <= 0, a section of no length) in an ASC file, whose line is
    that of the point.
    """
    source, suffix = str(path), Path(path).suffix.lower()
    warnings = morphio.WarningHandlerCollector()  # collected, not printed: brainsim reports faults itself
    skipped = 0
    try:
        if suffix == ".asc":
            text, skipped = _asc_text(path, source)
            cell = morphio.Morphology(text, "asc", morphio.Option.no_modifier, warnings)
        else:
            cell = morphio.Morphology(source, morphio.Option.no_modifier, warnings)
    except morphio.MorphioError as e:
        raise _reworded(e, source, suffix, skipped) from None
    roots = list(cell.root_sections)
    order = []  # sections depth-first, each child after its parent
    stack = roots[::-1]
    while stack:
        section = stack.pop()
        order.append(section)
        stack += list(section.children)[::-1]
    soma = _soma(cell, source)
    if soma is None and not roots:
        raise MorphologyError("no soma and no sections: the file holds no morphology", source)
    if soma is None and len(roots) > 1:
        raise MorphologyError(
            f"no soma and {len(roots)} trees; a morphology without a soma must be a single tree", source
        )
    branches = [] if soma is None else [Branch(soma, "soma", -1)]
    index = {}
    for section in order:
        points = np.column_stack([np.asarray(section.points, float), np.asarray(section.diameters, float)])
        own = 0 if section.is_root else 1  # a child's first point is its parent's last
        _check_section(section.id, points, own, path, suffix)
        if section.is_root:
            parent, parent_x = (-1, 1.0) if soma is None else (0, 0.5)
        else:
            parent, parent_x = index[section.parent.id], 1.0
        value = int(section.type)
        index[section.id] = len(branches)
        branches.append(Branch(points, _REGIONS.get(value, f"custom_{value}"), parent, parent_x))
    return Morphology(tuple(branches), source)


def _asc_text(path, source) -> tuple[str, int]:
    """The ASC text from its first line of content on, and how many blank or comment lines came before
    (MorphIO miscounts such leading lines: its line numbers are counted from the first content line)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    except OSError as e:
        raise MorphologyError(f"cannot read the ASC file ({e.strerror or e})", source) from None
    first = next((i for i, line in enumerate(lines) if line.strip() and line.lstrip()[0] != ";"), None)
    if first is None:
        raise MorphologyError("no morphology: the file is empty or holds only comments", source)
    return "".join(lines[first:]), first


def _soma(cell, source) -> np.ndarray | None:
    """Branch-0 points of the soma contour, None when the file has no soma."""
    xyz = np.asarray(cell.soma.points, dtype=float)
    if len(xyz) == 0:
        return None
    try:
        return soma_from_contour(xyz)
    except ValueError as e:
        raise MorphologyError(str(e), source) from None


def _check_section(sid, points, own, path, suffix) -> None:
    """Faults MorphIO lets through: a diameter <= 0, a section of no length (both point to the line)."""
    bad = np.flatnonzero(points[own:, 3] <= 0)
    if bad.size:
        k = own + int(bad[0])
        raise MorphologyError(
            f"section {sid}: point {k - own} has diameter {points[k, 3]:g} µm; diameters must be > 0",
            str(path),
            _line_of(path, suffix, points[k]),
        )
    if len(points) < 2 or not np.linalg.norm(np.diff(points[:, :3], axis=0), axis=1).sum() > 0:
        raise MorphologyError(
            f"section {sid} has no length ({len(points) - own} point(s) of its own"
            f"{'' if own == 0 else ', all at the end of its parent'}); a section needs two distinct points",
            str(path),
            _line_of(path, suffix, points[min(own, len(points) - 1)]),
        )


def _line_of(path, suffix, point) -> int | None:
    """The first line of an ASC file holding the point (x, y, z, diameter), as MorphIO's float32 reads it."""
    if suffix != ".asc":
        return None
    wanted = np.asarray(point, dtype=np.float32)
    with open(path, encoding="utf-8", errors="replace") as lines:
        for lineno, text in enumerate(lines, start=1):
            m = _ASC_POINT.search(text.split(";", 1)[0])
            if m and np.array_equal(np.array(m.groups(), dtype=np.float32), wanted):
                return lineno
    return None


def _reworded(error, source, suffix, skipped) -> MorphologyError:
    """A MorphIO error as a MorphologyError naming the file and, where MorphIO knows it, the line (MorphIO
    read the file from its line ``skipped`` + 1 on)."""
    text = _ANSI.sub("", str(error)).strip()
    m = _WHERE.match(text)
    line = None
    if m:
        text, line = m.group("message").strip(), int(m.group("line"))
        line = line + skipped if line > 0 else None
    text = " ".join(text.replace(": $STRING$", "").replace("$STRING$", "the text").split())
    if not text.endswith("."):
        text += "."
    return MorphologyError(f"MorphIO cannot read this {FORMATS[suffix]} file: {text}", source, line)


# ---------------------------------------------------------------------------------------- soma contours


def soma_from_contour(xyz) -> np.ndarray:
    """The (21, 4) points (x, y, z, diameter in µm) of the section NEURON's import3d makes of a soma contour.

    import3d's ``contour2centroid``: the outline, taken from its first to its last point (the closing edge
    is not walked), is resampled at 101 evenly spaced points; their mean is the centre and the principal
    axis of their scatter matrix the soma's axis (oriented so that its largest component is positive). The
    outline is split at its extreme points along the axis into two sides, each made monotonic along the
    axis by dropping the points that turn back; 21 evenly spaced positions from the second-lowest to the
    second-highest axial position of either side become the section's points on the axis, with diameter
    the distance between the two sides across the axis (in the xy-plane), interpolated linearly and held
    constant beyond a side's ends. The two end diameters are averaged with their neighbours.
    Raises ValueError for an outline without a width.
    """
    xyz = np.asarray(xyz, dtype=float)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) < 3 or not np.isfinite(xyz).all():
        raise ValueError(f"a soma contour needs 3 or more finite (x, y, z) points, got shape {xyz.shape}")
    walked = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1))))
    if walked[-1] == 0.0:
        raise ValueError("a soma contour has all its points in one place")
    even = np.arange(101) * (walked[-1] / 100)
    samples = np.column_stack([_nrn_interpolate(even, walked, xyz[:, k]) for k in range(3)])
    centre = samples.mean(axis=0)
    pts = samples - centre
    _, vectors = np.linalg.eigh(pts.T @ pts)
    major, minor = vectors[:, 2], vectors[:, 1].copy()
    if major[np.argmax(np.abs(major))] < 0:
        major = -major
    minor[2] = 0.0
    if np.linalg.norm(minor) < 1e-6 * np.linalg.norm(major):
        raise ValueError("a soma contour has no width across its principal axis in the xy-plane")
    minor /= np.linalg.norm(minor)
    top = int(np.argmax(pts @ major))
    along, across = np.roll(pts @ major, -top), np.roll(pts @ minor, -top)
    low = int(np.argmin(along))
    if low == 0:
        raise ValueError("a soma contour has no extent along its principal axis")
    side1 = _monotonic(along[:low][::-1], across[:low][::-1])
    side2 = _monotonic(along[low:], across[low:])
    ends = np.sort(np.concatenate((side1[0], side2[0])))
    first, last = ends[1], ends[-2]
    if not last > first:
        raise ValueError("a soma contour has no extent along its principal axis")
    step = (last - first) / 20
    position = np.arange(math.floor((last - first) / step + 1e-9) + 1) * step + first
    diameter = np.abs(_nrn_interpolate(position, *side1) - _nrn_interpolate(position, *side2))
    diameter[0] = (diameter[0] + diameter[1]) / 2
    diameter[-1] = (diameter[-1] + diameter[-2]) / 2
    return np.column_stack([centre + position[:, None] * major, diameter])


def _monotonic(along, across) -> tuple[np.ndarray, np.ndarray]:
    """One side of the outline without the points that do not advance along the axis (import3d's loop)."""
    along, across = list(along), list(across)
    j = len(along) - 1
    while j > 0:
        if along[j] <= along[j - 1]:
            del along[j], across[j]
            if j != len(along):
                j += 1
        j -= 1
    return np.array(along), np.array(across)


def _nrn_interpolate(x, xp, fp) -> np.ndarray:
    """NEURON's Vector.interpolate: linear in the increasing steps of ``xp``, constant beyond its ends."""
    out = np.empty(len(x))
    i = 0
    while i < len(x) and x[i] <= xp[0]:
        out[i] = fp[0]
        i += 1
    for k in range(1, len(xp)):
        if i >= len(x):
            break
        if xp[k] <= xp[k - 1]:
            continue
        while i < len(x) and x[i] <= xp[k]:
            t = (x[i] - xp[k - 1]) / (xp[k] - xp[k - 1])
            out[i] = (1.0 - t) * fp[k - 1] + t * fp[k]
            i += 1
    out[i:] = fp[-1]
    return out
