"""Region time series of a patient (fMRI BOLD, or firing rates of a synthetic patient) from tables, NumPy
files or a 4-D NIfTI image with an atlas, and the connectome whose region labels they must carry.

Tables (.tsv tab-separated, .csv comma-separated): a header row of region labels over one column per
region, time running down (the documented orientation); one row per region with its label first, time
running across, is recognised too (with or without a header row of its own). NumPy: .npy, a (time,
region) array (a (region, time) one is recognised when only that shape fits the labels) with the labels
from a text file (one per line); .npz, the array under `data` (or its only array) and the labels under
`labels` or from a labels file. NIfTI (.nii, .nii.gz): a 4-D image, averaged per atlas region by
nilearn's NiftiLabelsMasker; the atlas is a 3-D integer image and its labels file has lines
"VALUE LABEL" (tab, comma or space separated; an optional header line) or one label per line for the
values 1, 2, 3, ...
"""

import csv
from pathlib import Path

import numpy as np

from brainsim.config.load import RunConfig
from brainsim.errors import ConfigError, ObservationError

TABLES = {".tsv": "\t", ".csv": ","}
ARRAYS = (".npy", ".npz")
IMAGES = (".nii", ".nii.gz")
_SHOWN = 12  # labels shown in an error


def suffix(path):
    """The file's extension, lower case, '.nii.gz' as one."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def read_table(path, labels_file=None):
    """(values (time, region) float64, labels) of a region time-series table or NumPy file at path."""
    path = Path(path)
    if not path.is_file():
        raise ObservationError(path, "no such file")
    kind = suffix(path)
    if kind in TABLES:
        if labels_file is not None:
            raise ConfigError(
                "--labels", str(labels_file), "no labels file for a table (its labels are in it)"
            )
        return _read_text_table(path, TABLES[kind])
    array, labels = _read_array(path)
    if labels_file is not None:
        labels = read_labels(labels_file)
    if labels is None:
        raise ObservationError(path, "no region labels: give them with --labels FILE (one label per line)")
    if array.shape[1] != len(labels) and array.shape[0] == len(labels):
        array = array.T
    if array.shape[1] != len(labels):
        raise ObservationError(
            path, f"a {array.shape[0]} x {array.shape[1]} array for {len(labels)} region labels"
        )
    return array, labels


def read_labels(path):
    """The region labels of a text file, one per line (blank lines skipped)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ObservationError(path, f"unreadable labels file ({e})") from None
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise ObservationError(path, "no labels in it (expected one region label per line)")
    return labels


def _read_text_table(path, delimiter):
    try:
        with path.open(newline="") as f:
            rows = [[field.strip() for field in row] for row in csv.reader(f, delimiter=delimiter) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ObservationError(path, f"unreadable table ({e})") from None
    if len(rows) < 2:
        raise ObservationError(path, "fewer than two rows: expected a header row of region labels and values")
    if not any(map(_is_number, rows[0])) and all(all(map(_is_number, row)) for row in rows[1:]):
        labels, body, what = rows[0], rows[1:], "column"
    else:
        body = rows[1:] if not any(map(_is_number, rows[0])) else rows
        if not all(not _is_number(row[0]) and all(map(_is_number, row[1:])) for row in body):
            line, row = next(
                (k + 1, row) for k, row in enumerate(rows) if k > 0 and not all(map(_is_number, row))
            )
            raise ObservationError(
                path,
                f"line {line} ({_cut(row)}) is neither numbers under a header row of region labels nor a "
                "region label followed by numbers",
            )
        labels, body, what = [row[0] for row in body], [row[1:] for row in body], "row"
    widths = {len(row) for row in body}
    if len(widths) != 1 or (what == "column" and widths != {len(labels)}):
        raise ObservationError(
            path, f"rows of different lengths ({sorted(widths)} fields; {len(labels)} labels)"
        )
    values = np.array(body, dtype=np.float64)
    return (values if what == "column" else values.T), labels


def _read_array(path):
    """(2-D array, labels or None) of a .npy or .npz file."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ObservationError(path, f"not a readable NumPy file ({e})") from None
    labels = None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            arrays = {key: loaded[key] for key in loaded.files}
        if "labels" in arrays:
            labels = [str(label) for label in arrays.pop("labels").ravel()]
        if "data" in arrays:
            loaded = arrays["data"]
        elif len(arrays) == 1:
            loaded = next(iter(arrays.values()))
        else:
            raise ObservationError(
                path, f"arrays {sorted(arrays)}: expected the time series under 'data' (and 'labels')"
            )
    if loaded.ndim != 2 or not np.issubdtype(loaded.dtype, np.number):
        raise ObservationError(
            path, f"a {loaded.ndim}-D {loaded.dtype} array; expected (time, region) numbers"
        )
    return loaded.astype(np.float64), labels


def read_image(path, atlas, atlas_labels):
    """(values (time, region) float64, labels, TR in ms or None) of a 4-D NIfTI image averaged per region
    of the atlas image (nilearn's NiftiLabelsMasker); the TR from the image header (None if it gives
    none or no time unit)."""
    import nibabel as nib
    from nilearn.maskers import NiftiLabelsMasker

    path, atlas = Path(path), Path(atlas)
    image, atlas_image = _load_image(nib, path), _load_image(nib, atlas)
    if len(image.shape) != 4:
        raise ObservationError(path, f"a {len(image.shape)}-D image; expected 4-D fMRI (x, y, z, time)")
    if len(atlas_image.shape) != 3:
        raise ObservationError(atlas, f"a {len(atlas_image.shape)}-D image; expected a 3-D atlas of labels")
    values = np.asarray(atlas_image.dataobj)
    if not np.array_equal(values, np.round(values)):
        raise ObservationError(atlas, "holds non-integer values; expected an atlas of integer region values")
    names = read_atlas_labels(atlas_labels)
    present = sorted(int(v) for v in np.unique(values) if v != 0)
    unnamed = [v for v in present if v not in names]
    if unnamed:
        raise ObservationError(
            atlas_labels, f"no label for the atlas values {unnamed[:_SHOWN]} of {atlas.name}"
        )
    masker = NiftiLabelsMasker(labels_img=atlas_image, strategy="mean", standardize=None)
    try:
        series = masker.fit_transform(image)
    except (ValueError, TypeError) as e:
        raise ObservationError(path, f"cannot be averaged over the atlas {atlas} ({e})") from None
    ids = {column: value for column, value in masker.region_ids_.items() if column != "background"}
    labels = [names[int(ids[column])] for column in range(series.shape[1])]
    return series.astype(np.float64), labels, _header_tr(image)


def read_atlas_labels(path):
    """{atlas value: label} of an atlas labels file."""
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise ObservationError(path, f"unreadable atlas labels file ({e})") from None
    rows = [line.replace("\t", " ").replace(",", " ").split(maxsplit=1) for line in lines]
    if rows and not rows[0][0].lstrip("-").isdigit():
        if len(rows[0]) == 2 and all(len(r) == 2 and r[0].isdigit() for r in rows[1:]):
            rows = rows[1:]  # a header line over "value label" lines
        else:
            return {k: line for k, line in enumerate(lines, start=1)}  # one label per line
    names = {}
    for number, row in enumerate(rows, start=1):
        if len(row) != 2 or not row[0].isdigit():
            raise ObservationError(path, f"line {number} is not 'VALUE LABEL' (got {_cut(row)})")
        names[int(row[0])] = row[1].strip()
    if not names:
        raise ObservationError(path, "no labels in it")
    return names


def _load_image(nib, path):
    if not path.is_file():
        raise ObservationError(path, "no such file")
    try:
        return nib.load(path)
    except Exception as e:  # nibabel raises errors of many kinds on a foreign or truncated file
        raise ObservationError(path, f"not a readable NIfTI image ({type(e).__name__}: {e})") from None


def _header_tr(image):
    """The repetition time of a 4-D image's header in ms, or None where it gives none or no time unit."""
    step = float(image.header.get_zooms()[3])
    unit = image.header.get_xyzt_units()[1]
    scale = {"sec": 1000.0, "msec": 1.0, "usec": 1e-3}.get(unit)
    return step * scale if scale is not None and np.isfinite(step) and step > 0 else None


def read_connectome(spec):
    """The Connectome of the regions a --connectome spec names: a run config (.yaml: the regions it
    simulates), a TVB zip, folder or .h5 file, a tvb-data connectivity as 'tvb-data:NAME', or a
    brain.connectome mapping in YAML ('{kind: plain, weights: w.csv, ...}'; files relative to the working
    folder). ConfigError naming --connectome otherwise."""
    from brainsim.config import load_config
    from brainsim.config.load import parse_yaml
    from brainsim.config.schema import BRAIN
    from brainsim.model.brain import Brain, load_connectome

    text = str(spec).strip()
    path = Path(text)
    if text.startswith("{"):
        section = BRAIN.fields["connectome"].resolve(parse_yaml(text, "--connectome"), "--connectome")
    elif text.startswith("tvb-data:"):
        section = {"kind": "tvb_data", "name": text.removeprefix("tvb-data:")}
    elif suffix(path) in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError("--connectome", text, "an existing run config file")
        return Brain(load_config(path)).connectome
    elif path.is_dir() or suffix(path) in (".zip", ".h5", ".hdf5"):
        if not path.exists():
            raise ConfigError("--connectome", text, "an existing TVB connectivity (.zip, folder or .h5)")
        section = {"kind": "tvb_h5" if suffix(path) in (".h5", ".hdf5") else "tvb_zip", "file": text}
    else:
        raise ConfigError(
            "--connectome",
            text,
            "a run config (.yaml), a TVB connectivity (.zip, folder or .h5), tvb-data:NAME, or a "
            "brain.connectome mapping such as '{kind: tvb_zip, file: connectivity.zip}'",
        )
    return load_connectome(section, RunConfig({}, None), "--connectome")


def match_regions(path, values, labels, connectome):
    """(values, labels) with the file's columns in the connectome's order; ObservationError naming the
    file for a label the connectome lacks or given twice."""
    known = list(connectome.labels)
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ObservationError(path, f"region label(s) given twice: {', '.join(twice[:_SHOWN])}")
    unknown = [label for label in labels if label not in known]
    if unknown:
        shown = ", ".join(known[:_SHOWN]) + (f", ... ({len(known)} in all)" if len(known) > _SHOWN else "")
        raise ObservationError(
            path,
            f"region label(s) not in the connectome {connectome.source}: {', '.join(unknown[:_SHOWN])}"
            f"{' ...' if len(unknown) > _SHOWN else ''}; its labels: {shown}",
        )
    order = sorted(range(len(labels)), key=lambda k: known.index(labels[k]))
    return values[:, order], [labels[k] for k in order]


def _is_number(field):
    try:
        float(field)
    except ValueError:
        return False
    return True


def _cut(row):
    text = " ".join(map(str, row))
    return text if len(text) <= 60 else text[:60] + "..."
