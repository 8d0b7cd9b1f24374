"""Region-level connectomes: the regions of a parcellated brain and the fibre tracts between them.

A `Connectome` of n regions holds ``weights[k, j]``, the strength of the connection FROM region j TO region k
(The Virtual Brain's convention; arbitrary units), ``tract_lengths[k, j]`` in mm and region centres in mm.
Readers: `read_tvb_zip` (TVB connectivity zip or directory), `read_tvb_h5` (TVB HDF5), `read_plain` (CSV or
.npy matrices plus labels) and `load_tvb_data` (the optional PyPI package tvb-data). All of them end in
`from_arrays`, the one validator, which raises ConnectomeError naming the source, what is wrong and what is
allowed, and records what it found or changed (self-loops removed, symmetry, regions without input) in
``Connectome.notes``.

The shipped default configs/connectomes/synthetic_68.zip (installed as package data: read it at
`brainsim.resources.synthetic_connectome()`) is SYNTHETIC, not measured data: it is
`synthetic_connectome(seed=0)` written by `write_tvb_zip`. Regenerate it from the repository root with

    .venv/bin/python -c 'from brainsim.model.connectome import write_synthetic_68; write_synthetic_68()'
"""

from __future__ import annotations

import bz2
import dataclasses
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import h5py
import numpy as np

from brainsim import resources
from brainsim.errors import ConnectomeError

SYNTHETIC_68_ZIP = "configs/connectomes/synthetic_68.zip"
"""Where `write_synthetic_68` writes the shipped synthetic connectome, relative to the repository root."""

_DK_LEFT_CENTRES = {
    "bankssts": (-53, -44, 6),
    "caudalanteriorcingulate": (-5, 18, 29),
    "caudalmiddlefrontal": (-37, 10, 45),
    "cuneus": (-8, -80, 19),
    "entorhinal": (-25, -9, -33),
    "fusiform": (-35, -43, -21),
    "inferiorparietal": (-41, -67, 30),
    "inferiortemporal": (-50, -29, -24),
    "isthmuscingulate": (-9, -44, 17),
    "lateraloccipital": (-31, -87, 0),
    "lateralorbitofrontal": (-24, 28, -15),
    "lingual": (-14, -68, -5),
    "medialorbitofrontal": (-7, 40, -15),
    "middletemporal": (-57, -29, -10),
    "parahippocampal": (-25, -31, -16),
    "paracentral": (-8, -27, 58),
    "parsopercularis": (-45, 13, 14),
    "parsorbitalis": (-42, 38, -10),
    "parstriangularis": (-44, 30, 5),
    "pericalcarine": (-12, -81, 6),
    "postcentral": (-43, -24, 46),
    "posteriorcingulate": (-6, -14, 38),
    "precentral": (-37, -11, 45),
    "precuneus": (-10, -58, 38),
    "rostralanteriorcingulate": (-6, 35, 5),
    "rostralmiddlefrontal": (-33, 42, 20),
    "superiorfrontal": (-12, 24, 45),
    "superiorparietal": (-23, -61, 52),
    "superiortemporal": (-53, -15, -2),
    "supramarginal": (-50, -40, 32),
    "frontalpole": (-9, 63, -8),
    "temporalpole": (-31, 12, -33),
    "transversetemporal": (-43, -22, 8),
    "insula": (-36, -3, 3),
}
"""Hand-placed approximate centres (x, y, z in mm, MNI-like) of the left Desikan-Killiany regions; coarse
guesses for a plausible synthetic geometry, not atlas centroids."""

DK_REGIONS = tuple(_DK_LEFT_CENTRES)
"""The 34 cortical regions per hemisphere of the Desikan-Killiany atlas (FreeSurfer aparc names)."""

# Accepted member names of a TVB connectivity zip or directory, per quantity; each may also end in .bz2.
_TVB_FILES = {
    "weights": ("weights.txt",),
    "tract_lengths": ("tract_lengths.txt", "tract.txt"),
    "centres": ("centres.txt", "centers.txt"),
    "hemispheres": ("hemispheres.txt", "hemisphere.txt"),
    "cortical": ("cortical.txt",),
    "areas": ("areas.txt",),
}
_TVB_NAMES = {name + ext for names in _TVB_FILES.values() for name in names for ext in ("", ".bz2")}
_FIELD_SEPARATOR = re.compile(r"\s*,\s*|\s+")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, eq=False)
class Connectome:
    """n brain regions and the tracts between them; made by `from_arrays` (every reader uses it).

    ``weights`` (n, n): ``weights[k, j]`` is the strength of the connection from region j to region k
    (arbitrary units, >= 0, zero diagonal). ``tract_lengths`` (n, n): fibre length between the regions in mm,
    > 0 wherever the weight is. ``centres`` (n, 3): region centres in mm, or None where the source gives none.
    ``hemispheres`` (n,): True for the right hemisphere (TVB). ``cortical`` (n,): True for cortical regions.
    ``areas`` (n,): region areas in mm², or None. ``source``: where it came from (file path or
    'tvb-data:<name>'). ``notes``: what validation found or changed. ``estimated`` (n, n): True where a
    tract length of 0 under a weight was replaced by the distance between the region centres (None: none
    was). The arrays are read-only copies.
    """

    labels: tuple[str, ...]
    weights: np.ndarray
    tract_lengths: np.ndarray
    centres: np.ndarray | None
    hemispheres: np.ndarray
    cortical: np.ndarray
    areas: np.ndarray | None
    source: str
    notes: tuple[str, ...] = ()
    estimated: np.ndarray | None = None

    def subset(self, labels: Iterable[str]) -> Connectome:
        """The regions named in ``labels``, in that order, re-validated (notes are recomputed; tract
        lengths estimated from the centres stay noted as such)."""
        labels = list(labels)
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = [label for label in labels if label not in index]
        if unknown:
            raise ConnectomeError(
                f"unknown region label(s) {', '.join(map(repr, unknown))}; "
                f"valid labels: {', '.join(self.labels)}",
                self.source,
            )
        keep = np.array([index[label] for label in labels], dtype=int)
        sub = from_arrays(
            self.weights[np.ix_(keep, keep)],
            self.tract_lengths[np.ix_(keep, keep)],
            labels,
            None if self.centres is None else self.centres[keep],
            hemispheres=self.hemispheres[keep],
            cortical=self.cortical[keep],
            areas=None if self.areas is None else self.areas[keep],
            source=self.source,
            estimated=None if self.estimated is None else self.estimated[np.ix_(keep, keep)],
        )
        return dataclasses.replace(
            sub, notes=(*sub.notes, f"subset of {len(keep)} of {len(self.labels)} regions")
        )


def from_arrays(
    weights,
    tract_lengths,
    labels,
    centres=None,
    *,
    hemispheres=None,
    cortical=None,
    areas=None,
    source="arrays",
    estimated=None,
) -> Connectome:
    """Check the parts of a connectome and build it; every reader ends here.

    ``weights`` and ``tract_lengths`` (mm): n×n, finite, >= 0; a tract length of 0 under an off-diagonal
    weight > 0 becomes the distance between the two regions' centres (noted; an error without centres).
    ``labels``: n unique non-empty strings. ``centres``: None or n×3 finite (mm).
    ``hemispheres`` (True/1 = right), ``cortical``: None or n values 0/1; without hemispheres they come from
    the label prefixes when every label starts with 'l' or 'r', else from the centres (x > 0 = right);
    without cortical every region is cortical. ``areas``: None or n finite values >= 0 (mm²). ``estimated``:
    None or n×n, True where a tract length was already estimated from the centres (a subset's).
    Anything else raises ConnectomeError naming ``source``. Self-loops (nonzero diagonal weights) are set to 0
    and noted; regions without input (all-zero row) and whether the weights are symmetric are noted.
    """
    weights = _square(weights, "weights", source)
    tract_lengths = _square(tract_lengths, "tract_lengths", source)
    n = len(weights)
    if tract_lengths.shape != weights.shape:
        raise ConnectomeError(
            f"tract_lengths has shape {tract_lengths.shape} but weights {weights.shape}; "
            "allowed: both n×n for the same n",
            source,
        )
    labels = _labels(labels, n, source)
    for name, matrix in (("weights", weights), ("tract_lengths", tract_lengths)):
        _check_entries(matrix, name, labels, source)
    notes = []
    loops = np.flatnonzero(np.diagonal(weights))
    if loops.size:
        first = loops[0]
        notes.append(
            f"{loops.size} self-loop(s) set to 0 (weights[i, i] != 0, first {labels[first]!r} = "
            f"{weights[first, first]:g})"
        )
        np.fill_diagonal(weights, 0.0)
    if centres is not None:
        centres = _floats(centres, "centres", source)
        if centres.shape != (n, 3):
            raise ConnectomeError(
                f"centres has shape {centres.shape}; allowed: ({n}, 3), one x y z (mm) per region", source
            )
        if not np.isfinite(centres).all():
            i = np.argwhere(~np.isfinite(centres))[0][0]
            raise ConnectomeError(
                f"centre of {labels[i]!r} is {centres[i].tolist()}; allowed: finite mm", source
            )
    untracted = np.argwhere((weights > 0) & (tract_lengths <= 0))
    estimated = np.zeros((n, n), bool) if estimated is None else np.array(estimated, bool)
    if untracted.size:
        k, j = untracted[0]
        if centres is None:
            raise ConnectomeError(
                f"tract_lengths[{k}, {j}] = {tract_lengths[k, j]:g} mm under "
                f"weights[{k}, {j}] = {weights[k, j]:g} (from {labels[j]!r} to {labels[k]!r}); "
                "allowed: tract length > 0 wherever the weight is > 0 (or region centres to measure it)",
                source,
            )
        rows, cols = untracted.T
        tract_lengths[rows, cols] = np.linalg.norm(centres[rows] - centres[cols], axis=1)
        estimated[rows, cols] = True
    estimated &= weights > 0
    if estimated.any():
        k, j = np.argwhere(estimated)[0]
        notes.append(
            f"{np.count_nonzero(estimated)} tract length(s) of 0 under a nonzero weight (first from "
            f"{labels[j]!r} to {labels[k]!r}) replaced by the distance between the region centres"
        )
    if hemispheres is None:
        hemispheres, how = _derive_hemispheres(labels, centres, source)
        notes.append(how)
    else:
        hemispheres = _flags(hemispheres, n, "hemispheres", "1 (right) or 0 (left)", source)
    cortical = np.ones(n, bool) if cortical is None else _flags(cortical, n, "cortical", "1 or 0", source)
    if areas is not None:
        areas = _floats(areas, "areas", source)
        if areas.shape != (n,) or not (np.isfinite(areas) & (areas >= 0)).all():
            raise ConnectomeError(
                f"areas has shape {areas.shape}, min {areas.min() if areas.size else 'none'}; "
                f"allowed: {n} finite values >= 0 (mm²)",
                source,
            )
    no_input = [labels[k] for k in np.flatnonzero(~weights.any(axis=1))]
    if no_input:
        notes.append(f"{len(no_input)} region(s) without input (all-zero weights row): {', '.join(no_input)}")
    asymmetry = np.abs(weights - weights.T).max()
    notes.append(
        "weights are symmetric"
        if asymmetry == 0
        else f"weights are not symmetric: max |weights[k, j] - weights[j, k]| = {asymmetry:.3g} "
        f"({asymmetry / weights.max():.1%} of the largest weight)"
    )
    estimated = estimated if estimated.any() else None
    for array in (weights, tract_lengths, centres, hemispheres, cortical, areas, estimated):
        if array is not None:
            array.flags.writeable = False
    return Connectome(
        labels,
        weights,
        tract_lengths,
        centres,
        hemispheres,
        cortical,
        areas,
        str(source),
        tuple(notes),
        estimated,
    )


def read_tvb_zip(path) -> Connectome:
    """Read a TVB connectivity zip, or a directory holding the same files.

    Members (anywhere in the zip, e.g. in a subfolder; each may be bz2-compressed as ``<name>.bz2``):
    ``weights.txt`` (n×n), ``tract_lengths.txt`` or ``tract.txt`` (n×n, mm), ``centres.txt`` (lines
    ``label x y z`` in mm; further columns are ignored), optional ``hemispheres.txt`` (0/1, 1 = right),
    ``cortical.txt`` (0/1) and ``areas.txt`` (mm²). Other members (average_orientations.txt, info.txt) are
    not used. Numbers are separated by whitespace or commas.
    """
    path = Path(path)
    found: dict[str, list[tuple[str, bytes]]] = {}
    if path.is_dir():
        present = sorted(p.name for p in path.iterdir())
        for name in present:
            if name in _TVB_NAMES and (path / name).is_file():
                found[name] = [(str(path / name), (path / name).read_bytes())]
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                present = [name for name in archive.namelist() if not name.startswith("__MACOSX/")]
                for name in present:
                    if PurePosixPath(name).name in _TVB_NAMES and not name.endswith("/"):
                        found.setdefault(PurePosixPath(name).name, []).append(
                            (f"{path}:{name}", archive.read(name))
                        )
        except OSError as error:
            raise ConnectomeError(
                f"cannot read ({error.strerror or error}); allowed: a TVB connectivity zip or a directory",
                path,
            ) from None
        except zipfile.BadZipFile:
            raise ConnectomeError(
                "not a zip file; allowed: a TVB connectivity zip or a directory", path
            ) from None

    def member(quantity, required=False):
        hits = [
            hit for name in _TVB_FILES[quantity] for ext in ("", ".bz2") for hit in found.get(name + ext, [])
        ]
        if not hits and required:
            raise ConnectomeError(
                f"no {' or '.join(_TVB_FILES[quantity])} (found: {', '.join(present) or 'nothing'}); "
                "allowed: a TVB connectivity with weights.txt, tract_lengths.txt (or tract.txt) "
                "and centres.txt",
                path,
            )
        if len(hits) > 1:
            raise ConnectomeError(
                f"{quantity} is given {len(hits)} times ({', '.join(where for where, _ in hits)}); "
                "allowed: one file per quantity",
                path,
            )
        if not hits:
            return None
        where, data = hits[0]
        if where.endswith(".bz2"):
            try:
                data = bz2.decompress(data)
            except (OSError, ValueError) as error:
                raise ConnectomeError(f"cannot decompress ({error}); allowed: a bz2 file", where) from None
        return data.decode("utf-8", errors="replace"), where

    labels, centres = _centres(*member("centres", required=True))
    optional = {
        q: _matrix(*text).ravel() for q in ("hemispheres", "cortical", "areas") if (text := member(q))
    }
    return from_arrays(
        _matrix(*member("weights", required=True)),
        _matrix(*member("tract_lengths", required=True)),
        labels,
        centres,
        **optional,
        source=str(path),
    )


def read_tvb_h5(path) -> Connectome:
    """Read TVB's HDF5 connectivity: datasets ``weights``, ``tract_lengths`` (mm), ``centres`` (n×3 mm),
    ``region_labels`` (bytes or str) and optional ``hemispheres`` (1 = right), ``cortical``, ``areas`` (mm²);
    an empty optional dataset counts as absent."""
    source = str(path)
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ConnectomeError(
            f"cannot open as HDF5 ({error}); allowed: a TVB connectivity .h5 file", source
        ) from None
    with file:

        def dataset(name, required=True):
            if name not in file:
                if required:
                    raise ConnectomeError(
                        f"no dataset {name!r} (found: {', '.join(file) or 'nothing'}); "
                        "allowed: a TVB connectivity .h5 with weights, tract_lengths, centres and "
                        "region_labels",
                        source,
                    )
                return None
            data = file[name][()]
            return data if required or np.size(data) else None

        labels = [
            lab.decode("utf-8") if isinstance(lab, bytes) else str(lab)
            for lab in np.ravel(dataset("region_labels"))
        ]
        return from_arrays(
            dataset("weights"),
            dataset("tract_lengths"),
            labels,
            dataset("centres"),
            hemispheres=dataset("hemispheres", required=False),
            cortical=dataset("cortical", required=False),
            areas=dataset("areas", required=False),
            source=source,
        )


def read_plain(weights, tract_lengths, labels, centres=None) -> Connectome:
    """Read a connectome from plain files.

    ``weights`` and ``tract_lengths`` (mm): n×n matrices, each a ``.npy`` file or text (one row per line,
    numbers separated by commas or whitespace, ``#`` comment lines). ``labels``: a text file with one label
    per line (blank lines skipped) or a sequence of str. ``centres``: optional n×3 matrix (mm), ``.npy`` or
    text. Hemispheres come from the label prefixes l/r or, failing that, the centres' x (> 0 = right).
    """
    if isinstance(labels, (str, Path)):
        labels = [line.strip() for line in _read_text(Path(labels)).splitlines() if line.strip()]
    return from_arrays(
        _load_matrix(weights),
        _load_matrix(tract_lengths),
        labels,
        None if centres is None else _load_matrix(centres),
        source=f"weights {weights}, tract_lengths {tract_lengths}",
    )


def load_tvb_data(name: str) -> Connectome:
    """Read ``name`` (e.g. 'connectivity_76', 'connectivity_192', or with a .zip/.h5 suffix) from the optional
    package tvb-data (tvb_data/connectivity/<name>.zip); ``source`` becomes 'tvb-data:<name>'."""
    try:
        import tvb_data
    except ImportError:
        raise ConnectomeError(
            f"the TVB connectome {name!r} needs the optional package tvb-data: pip install tvb-data "
            "(./setup.sh installs it); without it use the shipped synthetic connectome: "
            f"{{kind: tvb_zip, file: {resources.synthetic_connectome()}}}"
        ) from None
    folder = Path(next(iter(tvb_data.__path__))) / "connectivity"
    path = folder / (name if name.endswith((".zip", ".h5")) else f"{name}.zip")
    if not path.is_file():
        available = sorted(p.stem for p in folder.glob("*") if p.suffix in (".zip", ".h5"))
        raise ConnectomeError(
            f"no connectivity {name!r}; allowed: {', '.join(available)}", f"tvb-data ({folder})"
        )
    connectome = read_tvb_h5(path) if path.suffix == ".h5" else read_tvb_zip(path)
    return dataclasses.replace(connectome, source=f"tvb-data:{name}")


def write_tvb_zip(connectome: Connectome, path, info: str | None = None) -> None:
    """Write ``connectome`` as a TVB connectivity zip that `read_tvb_zip` reads back exactly.

    Members: weights.txt, tract_lengths.txt (mm), centres.txt (``label x y z``, mm), hemispheres.txt
    (1 = right), cortical.txt, areas.txt (mm², if known) and info.txt (``info``, by default the source);
    numbers with 17 significant digits, fixed member timestamps so that equal connectomes give equal bytes.
    """
    if connectome.centres is None:
        raise ConnectomeError("has no centres; TVB's centres.txt needs them", connectome.source)
    bad = [label for label in connectome.labels if re.search(r"[\s,]", label)]
    if bad:
        raise ConnectomeError(
            f"labels {bad} hold whitespace or commas; allowed in centres.txt: neither", path
        )

    def table(rows):
        return "".join(" ".join(f"{value:.17g}" for value in row) + "\n" for row in rows)

    members = {
        "weights.txt": table(connectome.weights),
        "tract_lengths.txt": table(connectome.tract_lengths),
        "centres.txt": "".join(
            f"{label} {table([xyz])}" for label, xyz in zip(connectome.labels, connectome.centres)
        ),
        "hemispheres.txt": table(connectome.hemispheres.astype(int)[:, None]),
        "cortical.txt": table(connectome.cortical.astype(int)[:, None]),
        "info.txt": (f"source: {connectome.source}" if info is None else info).rstrip("\n") + "\n",
    }
    if connectome.areas is not None:
        members["areas.txt"] = table(connectome.areas[:, None])
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(members):
            member = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            member.external_attr = 0o644 << 16
            archive.writestr(member, members[name], compress_type=zipfile.ZIP_DEFLATED)


def synthetic_connectome(seed: int = 0) -> Connectome:
    """A SYNTHETIC 68-region Desikan-Killiany-like connectome; not measured data.

    * Regions: ``lh-<name>`` for the 34 DK_REGIONS, then ``rh-<name>``; all cortical, no areas.
    * Centres (mm, MNI-like, left x < 0): hand-placed approximate left positions, mirrored (x -> -x) for the
      right hemisphere, each jittered by N(0, 2 mm) per axis (|x| kept >= 2 mm).
    * Tract lengths (mm, symmetric): Euclidean distance × a tortuosity drawn uniformly from 1.2-1.4 within a
      hemisphere and 1.4-1.6 between hemispheres.
    * Links (symmetric): the 34 homotopic pairs (corpus callosum) plus other pairs drawn without replacement
      with probability ∝ exp(-L/λ) of their tract length L, λ = 12 mm (exponential distance rule,
      Ercsey-Ravasz et al. 2013, Neuron 80:184), up to 30% of all pairs.
    * Strengths: exp(-L/λ) × LogNormal(0, 1); homotopic links the upper quartile of the other strengths ×
      LogNormal(0, 0.25), so stronger than the distance rule gives between hemispheres; scaled to max 1.
    """
    rng = np.random.default_rng(seed)
    half, length_scale, density = len(DK_REGIONS), 12.0, 0.30
    left = np.array(list(_DK_LEFT_CENTRES.values()), dtype=float)
    centres = np.vstack([left, left * (-1, 1, 1)]) + rng.normal(0.0, 2.0, (2 * half, 3))
    centres[:, 0] = np.where(
        np.arange(2 * half) < half, np.minimum(centres[:, 0], -2), np.maximum(centres[:, 0], 2)
    )
    right = np.arange(2 * half) >= half
    between = right[:, None] != right[None, :]
    tortuosity = np.where(between, rng.uniform(1.4, 1.6, between.shape), rng.uniform(1.2, 1.4, between.shape))
    tract_lengths = np.linalg.norm(centres[:, None] - centres[None, :], axis=-1) * np.triu(tortuosity, 1)
    tract_lengths += tract_lengths.T
    rows, cols = np.triu_indices(2 * half, 1)
    homotopic = cols - rows == half
    n_links = round(density * rows.size) - half
    probability = np.where(homotopic, 0.0, np.exp(-tract_lengths[rows, cols] / length_scale))
    chosen = rng.choice(rows.size, size=n_links, replace=False, p=probability / probability.sum())
    strengths = np.zeros(rows.size)
    strengths[chosen] = np.exp(-tract_lengths[rows, cols][chosen] / length_scale) * rng.lognormal(
        0, 1, n_links
    )
    strengths[homotopic] = np.quantile(strengths[chosen], 0.75) * rng.lognormal(0, 0.25, half)
    weights = np.zeros_like(tract_lengths)
    weights[rows, cols] = strengths / strengths.max()
    weights += weights.T
    labels = [f"{side}-{name}" for side in ("lh", "rh") for name in DK_REGIONS]
    return from_arrays(
        weights,
        tract_lengths,
        labels,
        centres,
        hemispheres=right,
        source=f"synthetic_connectome(seed={seed})",
    )


def write_synthetic_68(path=SYNTHETIC_68_ZIP) -> None:
    """Write ``synthetic_connectome(seed=0)`` to ``path`` (the source tree's file when run from the repository
    root): how the shipped synthetic connectome is made."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_tvb_zip(
        synthetic_connectome(seed=0),
        path,
        info="SYNTHETIC connectome: 68 Desikan-Killiany-like regions made by\n"
        "brainsim.model.connectome.synthetic_connectome(seed=0); it is NOT measured data (no tractography,\n"
        "no atlas centroids). weights[k, j]: from region j to region k, arbitrary units, max 1;\n"
        "tract lengths and centres in mm. Regenerate it from the repository root with\n"
        ".venv/bin/python -c \\\n"
        "  'from brainsim.model.connectome import write_synthetic_68; write_synthetic_68()'\n",
    )


def _square(values, name, source) -> np.ndarray:
    matrix = _floats(values, name, source)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ConnectomeError(
            f"{name} has shape {matrix.shape}; allowed: a square n×n matrix, n >= 1", source
        )
    return matrix


def _floats(values, name, source) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ConnectomeError(f"{name} is not numeric ({error}); allowed: numbers", source) from None


def _labels(labels, n, source) -> tuple[str, ...]:
    labels = tuple(labels)
    if len(labels) != n:
        raise ConnectomeError(
            f"{len(labels)} labels for {n} regions (weights is {n}×{n}); allowed: one label per region",
            source,
        )
    for i, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise ConnectomeError(f"label {i} is {label!r}; allowed: a non-empty string", source)
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label in seen:
            raise ConnectomeError(
                f"duplicate label {label!r} (regions {seen[label]} and {i}); allowed: unique labels", source
            )
        seen[label] = i
    return tuple(str(label) for label in labels)


def _check_entries(matrix, name, labels, source) -> None:
    for bad, problem, allowed in (
        (~np.isfinite(matrix), "is not finite", "finite numbers"),
        (matrix < 0, "is negative", "values >= 0"),
    ):
        if bad.any():
            k, j = np.argwhere(bad)[0]
            raise ConnectomeError(
                f"{name}[{k}, {j}] = {matrix[k, j]:g} (from {labels[j]!r} to {labels[k]!r}) {problem}; "
                f"allowed: {allowed}",
                source,
            )


def _flags(values, n, name, allowed, source) -> np.ndarray:
    flags = _floats(values, name, source)
    if flags.shape != (n,):
        raise ConnectomeError(
            f"{name} has shape {flags.shape}; allowed: ({n},), one value per region", source
        )
    bad = np.flatnonzero(~np.isin(flags, (0.0, 1.0)))
    if bad.size:
        raise ConnectomeError(f"{name}[{bad[0]}] = {flags[bad[0]]:g}; allowed: {allowed}", source)
    return flags == 1.0


def _derive_hemispheres(labels, centres, source) -> tuple[np.ndarray, str]:
    if {label[0].lower() for label in labels} <= {"l", "r"}:
        return np.array([label[0].lower() == "r" for label in labels]), "hemispheres from label prefixes l/r"
    if centres is not None:
        return centres[:, 0] > 0, "hemispheres from centres (x > 0 = right)"
    raise ConnectomeError(
        "cannot tell the hemispheres: no hemispheres given, labels do not all start with 'l' or 'r' and no "
        "centres; allowed: hemispheres data, l/r label prefixes or centres",
        source,
    )


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank, non-'#' lines; fields split at commas or whitespace."""
    return [
        (lineno, _FIELD_SEPARATOR.split(line.strip()))
        for lineno, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _number(field: str, lineno: int, where: str) -> float:
    try:
        return float(field)
    except ValueError:
        raise ConnectomeError(
            f"line {lineno}: {field!r} is not a number; allowed: numbers separated by commas or whitespace",
            where,
        ) from None


def _matrix(text: str, where: str) -> np.ndarray:
    rows = _rows(text)
    if not rows:
        raise ConnectomeError("holds no numbers; allowed: one row of numbers per line", where)
    first, width = rows[0][0], len(rows[0][1])
    for lineno, fields in rows:
        if len(fields) != width:
            raise ConnectomeError(
                f"line {lineno} has {len(fields)} values but line {first} has {width}; "
                "allowed: the same number of values on every line",
                where,
            )
    return np.array([[_number(field, lineno, where) for field in fields] for lineno, fields in rows])


def _centres(text: str, where: str) -> tuple[list[str], np.ndarray]:
    rows = _rows(text)
    if not rows:
        raise ConnectomeError("holds no regions; allowed: lines 'label x y z' (mm)", where)
    for lineno, fields in rows:
        if len(fields) < 4:
            raise ConnectomeError(
                f"line {lineno} has {len(fields)} fields; allowed: 'label x y z' (mm) on every line", where
            )
    xyz = [[_number(field, lineno, where) for field in fields[1:4]] for lineno, fields in rows]
    return [fields[0] for _, fields in rows], np.array(xyz)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise ConnectomeError(f"cannot read ({error.strerror or error})", path) from None


def _load_matrix(path) -> np.ndarray:
    path = Path(path)
    if path.suffix != ".npy":
        return _matrix(_read_text(path), str(path))
    try:
        return np.load(path, allow_pickle=False)
    except OSError as error:
        raise ConnectomeError(f"cannot read ({error.strerror or error})", path) from None
    except ValueError as error:
        raise ConnectomeError(
            f"not a valid .npy file ({error}); allowed: a numeric .npy array", path
        ) from None
