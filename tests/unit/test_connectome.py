"""Region-level connectomes: TVB zip, directory and HDF5, plain files, validation, the synthetic default."""

import bz2
import sys
import types
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from brainsim import resources
from brainsim.errors import ConnectomeError
from brainsim.model.connectome import (
    DK_REGIONS,
    SYNTHETIC_68_ZIP,
    from_arrays,
    load_tvb_data,
    read_plain,
    read_tvb_h5,
    read_tvb_zip,
    synthetic_connectome,
    write_tvb_zip,
)

REPO = Path(__file__).resolve().parents[2]
LABELS = ["lA", "lB", "rA", "rB"]
WEIGHTS = np.array([[0, 0.5, 0.25, 0], [1.5, 0, 0, 0.125], [0.1, 0, 0, 2.0], [0, 0.3, 1e-3, 0]])
TRACTS = np.array([[0, 12.5, 80.25, 90], [12.5, 0, 85, 70.5], [80.25, 85, 0, 11], [90, 70.5, 11, 0]])
CENTRES = np.array([[-30.5, 10, 5], [-35, -20.25, 15], [31, 9.5, 4], [36, -21, 14.75]])
HEMISPHERES = np.array([False, False, True, True])
CORTICAL = np.array([True, True, False, True])
AREAS = np.array([1200.5, 830, 0, 2400.25])


def table(rows, sep=" "):
    return "".join(sep.join(f"{value:.17g}" for value in np.atleast_1d(row)) + "\n" for row in rows)


def tvb_files(weights=WEIGHTS, tracts=TRACTS, labels=LABELS, centres=CENTRES):
    """The members of a TVB connectivity zip, as text."""
    return {
        "weights.txt": table(weights),
        "tract_lengths.txt": table(tracts),
        "centres.txt": "".join(f"{label} {table([xyz])}" for label, xyz in zip(labels, centres)),
        "hemispheres.txt": table(HEMISPHERES.astype(int)),
        "cortical.txt": table(CORTICAL.astype(int)),
        "areas.txt": table(AREAS),
        "average_orientations.txt": table(np.ones((len(labels), 3))),
        "info.txt": 'weights_unit = "au"\n',
    }


def write_zip(path, files, folder=""):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(folder + name, text)
    return path


def assert_example(c, source):
    assert c.labels == tuple(LABELS)
    for name, expected in [
        ("weights", WEIGHTS),
        ("tract_lengths", TRACTS),
        ("centres", CENTRES),
        ("hemispheres", HEMISPHERES),
        ("cortical", CORTICAL),
        ("areas", AREAS),
    ]:
        value = getattr(c, name)
        assert value.dtype == expected.dtype and np.array_equal(value, expected), name
        assert not value.flags.writeable, name
    assert c.source == str(source)
    assert any("not symmetric" in note for note in c.notes)


# ------------------------------------------------------------------------------------------ readers


@pytest.mark.parametrize("folder", ["", "connectivity_4/"])
def test_tvb_zip_round_trip(tmp_path, folder):
    path = write_zip(tmp_path / "c.zip", tvb_files(), folder)
    assert_example(read_tvb_zip(path), path)


def test_tvb_directory(tmp_path):
    for name, text in tvb_files().items():
        (tmp_path / name).write_text(text)
    assert_example(read_tvb_zip(tmp_path), tmp_path)


def test_tvb_zip_bz2_members_and_tract_txt(tmp_path):
    files = {name: text.encode() for name, text in tvb_files().items()}
    files["weights.txt.bz2"] = bz2.compress(files.pop("weights.txt"))
    files["centres.txt.bz2"] = bz2.compress(files.pop("centres.txt"))
    files["tract.txt"] = files.pop("tract_lengths.txt")
    path = write_zip(tmp_path / "c.zip", files)
    assert_example(read_tvb_zip(path), path)


def test_optional_members_absent(tmp_path):
    files = tvb_files()
    for name in ("hemispheres.txt", "cortical.txt", "areas.txt"):
        del files[name]
    c = read_tvb_zip(write_zip(tmp_path / "c.zip", files))
    assert np.array_equal(c.hemispheres, HEMISPHERES) and c.cortical.all() and c.areas is None
    assert "hemispheres from label prefixes l/r" in c.notes


def test_write_tvb_zip_round_trip(tmp_path):
    c = from_arrays(WEIGHTS, TRACTS, LABELS, CENTRES, hemispheres=HEMISPHERES, cortical=CORTICAL, areas=AREAS)
    write_tvb_zip(c, tmp_path / "c.zip")
    assert_example(read_tvb_zip(tmp_path / "c.zip"), tmp_path / "c.zip")


@pytest.mark.parametrize("as_bytes", [True, False])
def test_tvb_h5_round_trip(tmp_path, as_bytes):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f["weights"], f["tract_lengths"], f["centres"] = WEIGHTS, TRACTS, CENTRES
        f["region_labels"] = np.array(LABELS, dtype="S") if as_bytes else LABELS
        f["hemispheres"], f["cortical"], f["areas"] = HEMISPHERES, CORTICAL, AREAS
        f["orientations"] = np.ones((4, 3))
    assert_example(read_tvb_h5(path), path)


def test_tvb_h5_empty_optional_and_missing_dataset(tmp_path):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f["weights"], f["tract_lengths"], f["centres"] = WEIGHTS, TRACTS, CENTRES
        f["region_labels"] = LABELS
        f["areas"] = np.zeros(0)
    assert read_tvb_h5(path).areas is None
    with h5py.File(path, "a") as f:
        del f["tract_lengths"]
    with pytest.raises(ConnectomeError, match=r"c\.h5: no dataset 'tract_lengths' \(found: .*weights"):
        read_tvb_h5(path)


@pytest.mark.parametrize("sep", [",", " ", "\t", ", "])
def test_plain_text_round_trip(tmp_path, sep):
    (tmp_path / "w.csv").write_text("# weights, from column to row\n" + table(WEIGHTS, sep))
    (tmp_path / "t.csv").write_text(table(TRACTS, sep))
    (tmp_path / "xyz.txt").write_text(table(CENTRES, sep))
    (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n\n")
    c = read_plain(tmp_path / "w.csv", tmp_path / "t.csv", tmp_path / "labels.txt", tmp_path / "xyz.txt")
    assert c.labels == tuple(LABELS)
    assert np.array_equal(c.weights, WEIGHTS) and np.array_equal(c.tract_lengths, TRACTS)
    assert np.array_equal(c.centres, CENTRES) and np.array_equal(c.hemispheres, HEMISPHERES)
    assert c.cortical.all() and c.areas is None and "w.csv" in c.source and "t.csv" in c.source


def test_plain_npy_round_trip(tmp_path):
    np.save(tmp_path / "w.npy", WEIGHTS)
    np.save(tmp_path / "t.npy", TRACTS)
    np.save(tmp_path / "xyz.npy", CENTRES)
    labels = ["A", "B", "C", "D"]  # no l/r prefixes: hemispheres come from the centres' x
    c = read_plain(tmp_path / "w.npy", tmp_path / "t.npy", labels, centres=tmp_path / "xyz.npy")
    assert np.array_equal(c.weights, WEIGHTS) and np.array_equal(c.tract_lengths, TRACTS)
    assert np.array_equal(c.hemispheres, HEMISPHERES) and c.labels == tuple(labels)
    assert "hemispheres from centres (x > 0 = right)" in c.notes
    with pytest.raises(ConnectomeError, match="cannot tell the hemispheres"):
        read_plain(tmp_path / "w.npy", tmp_path / "t.npy", labels)


# ------------------------------------------------------------------------------------------ validation


def broken(**change):
    files = tvb_files()
    files.update(change)
    return {name: text for name, text in files.items() if text is not None}


MALFORMED = {
    "non-square weights": (broken(**{"weights.txt": table(WEIGHTS[:, :3])}), r"weights has shape \(4, 3\)"),
    "tract shape": (
        broken(**{"tract_lengths.txt": table(TRACTS[:3, :3])}),
        r"tract_lengths has shape \(3, 3\)",
    ),
    "label count": (
        broken(**{"centres.txt": "lA 1 2 3\nlB 1 2 3\nrA 1 2 3\n"}),
        r"3 labels for 4 regions .*one label per region",
    ),
    "duplicate labels": (
        tvb_files(labels=["lA", "lB", "lA", "rB"]),
        r"duplicate label 'lA' \(regions 0 and 2\); allowed: unique",
    ),
    "NaN": (
        broken(**{"weights.txt": table(np.where(np.eye(4, k=1) > 0, np.nan, WEIGHTS))}),
        r"weights\[0, 1\] = nan \(from 'lB' to 'lA'\) is not finite",
    ),
    "negative weight": (
        broken(**{"weights.txt": table(WEIGHTS * np.where(np.eye(4, k=-2) > 0, -1, 1))}),
        r"weights\[2, 0\] = -0.1 \(from 'lA' to 'rA'\) is negative; allowed: values >= 0",
    ),
    "negative tract": (
        broken(**{"tract_lengths.txt": table(-TRACTS)}),
        r"tract_lengths\[0, 1\] = -12.5 .* is negative",
    ),
    "missing member": (broken(**{"weights.txt": None}), r"no weights.txt \(found: .*centres.txt"),
    "non-numeric weights": (
        broken(**{"weights.txt": "0 1 1 1\n1 0 abc 1\n1 1 0 1\n1 1 1 0\n"}),
        r"weights.txt: line 2: 'abc' is not a number",
    ),
    "non-numeric centre": (
        broken(**{"centres.txt": "lA 1 2 x\n"}),
        r"centres.txt: line 1: 'x' is not a number",
    ),
    "ragged rows": (
        broken(**{"weights.txt": "0 1 1 1\n1 0 1\n1 1 0 1\n1 1 1 0\n"}),
        r"line 2 has 3 values but line 1 has 4",
    ),
    "empty weights": (broken(**{"weights.txt": "# nothing\n"}), r"weights.txt: holds no numbers"),
    "short centre line": (
        broken(**{"centres.txt": "lA 1 2\n"}),
        r"line 1 has 3 fields; allowed: 'label x y z'",
    ),
    "hemisphere value": (broken(**{"hemispheres.txt": "0\n0\n2\n1\n"}), r"hemispheres\[2\] = 2; allowed: 1"),
    "areas count": (broken(**{"areas.txt": "1\n2\n"}), r"areas has shape \(2,\).*allowed: 4 finite values"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_zip(tmp_path, case):
    files, message = MALFORMED[case]
    path = write_zip(tmp_path / "bad.zip", files, "sub/")
    with pytest.raises(ConnectomeError, match=message) as error:
        read_tvb_zip(path)
    assert str(path) in str(error.value)


def test_zero_tract_under_a_weight(tmp_path):
    """As in TVB's connectivity_192: with centres their distance replaces it (noted); else an error."""
    tracts = TRACTS * (1 - np.eye(4, k=1))
    connectome = read_tvb_zip(
        write_zip(tmp_path / "z.zip", broken(**{"tract_lengths.txt": table(tracts)}), "sub/")
    )
    distance = np.linalg.norm(connectome.centres[0] - connectome.centres[1])
    assert connectome.tract_lengths[0, 1] == pytest.approx(distance) and distance > 0
    assert any("replaced by the distance between the region centres" in note for note in connectome.notes)
    with pytest.raises(ConnectomeError, match=r"tract_lengths\[0, 1\] = 0 mm under weights\[0, 1\] = 0.5"):
        from_arrays(WEIGHTS, tracts, LABELS)


def test_not_a_zip_and_missing_file(tmp_path):
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(ConnectomeError, match=r"x\.zip: not a zip file"):
        read_tvb_zip(tmp_path / "x.zip")
    with pytest.raises(ConnectomeError, match=r"nope\.zip: cannot read"):
        read_tvb_zip(tmp_path / "nope.zip")
    with pytest.raises(ConnectomeError, match=r"nope\.csv: cannot read"):
        read_plain(tmp_path / "nope.csv", tmp_path / "nope.csv", LABELS)


def test_two_members_for_one_quantity(tmp_path):
    files = tvb_files()
    files["tract.txt"] = files["tract_lengths.txt"]
    with pytest.raises(ConnectomeError, match=r"tract_lengths is given 2 times"):
        read_tvb_zip(write_zip(tmp_path / "c.zip", files))


def test_self_loops_and_regions_without_input_become_notes():
    weights = WEIGHTS + np.diag([0.5, 0, 2, 0])
    weights[3] = 0
    c = from_arrays(weights, TRACTS, LABELS, CENTRES)
    assert not np.diagonal(c.weights).any() and np.array_equal(c.weights[:3], WEIGHTS[:3])
    assert "2 self-loop(s) set to 0 (weights[i, i] != 0, first 'lA' = 0.5)" in c.notes
    assert "1 region(s) without input (all-zero weights row): rB" in c.notes
    symmetric = from_arrays(WEIGHTS + WEIGHTS.T, TRACTS, LABELS, CENTRES)
    assert "weights are symmetric" in symmetric.notes


def test_subset_keeps_order_and_rejects_unknown_labels():
    c = from_arrays(WEIGHTS, TRACTS, LABELS, CENTRES, hemispheres=HEMISPHERES, cortical=CORTICAL, areas=AREAS)
    sub = c.subset(["rB", "lA"])
    assert sub.labels == ("rB", "lA")
    assert np.array_equal(sub.weights, WEIGHTS[np.ix_([3, 0], [3, 0])])
    assert np.array_equal(sub.tract_lengths, TRACTS[np.ix_([3, 0], [3, 0])])
    assert np.array_equal(sub.centres, CENTRES[[3, 0]]) and np.array_equal(sub.areas, AREAS[[3, 0]])
    assert sub.hemispheres.tolist() == [True, False] and sub.source == c.source
    assert "subset of 2 of 4 regions" in sub.notes
    unknown = r"unknown region label\(s\) 'V1', 'lC'; valid labels: lA, lB, rA, rB"
    with pytest.raises(ConnectomeError, match=unknown):
        c.subset(["lA", "V1", "lC"])


# ------------------------------------------------------------------------------------------ shipped default


def test_shipped_synthetic_68():
    path = resources.synthetic_connectome()
    assert path == REPO / SYNTHETIC_68_ZIP  # in the source tree, what write_synthetic_68 writes
    c = read_tvb_zip(path)
    n = len(c.labels)
    assert n == 68 and len(set(c.labels)) == 68 and c.notes == ("weights are symmetric",)
    assert c.labels == tuple(f"{side}-{name}" for side in ("lh", "rh") for name in DK_REGIONS)
    assert len(DK_REGIONS) == 34 and "insula" in DK_REGIONS and "bankssts" in DK_REGIONS
    assert c.hemispheres.sum() == 34 and not c.hemispheres[:34].any() and c.cortical.all()
    assert (c.centres[:34, 0] < 0).all() and (c.centres[34:, 0] > 0).all()
    assert (np.abs(c.centres[:, 0]) <= 70).all()
    assert (c.centres[:, 1] >= -105).all() and (c.centres[:, 1] <= 70).all()
    assert (c.centres[:, 2] >= -45).all() and (c.centres[:, 2] <= 80).all()
    assert not np.diagonal(c.weights).any() and c.weights.max() == 1.0
    off = ~np.eye(n, dtype=bool)
    assert 0.2 <= (c.weights[off] > 0).mean() <= 0.45
    distance = np.linalg.norm(c.centres[:, None] - c.centres[None, :], axis=-1)
    assert (c.tract_lengths[off] > distance[off]).all()
    ratio = c.tract_lengths[off] / distance[off]
    assert ratio.min() >= 1.2 - 1e-9 and ratio.max() <= 1.6 + 1e-9
    homotopic = np.zeros((n, n), bool)
    homotopic[np.arange(34), np.arange(34) + 34] = True
    homotopic |= homotopic.T
    between = c.hemispheres[:, None] != c.hemispheres[None, :]
    other = c.weights[between & ~homotopic & (c.weights > 0)]
    assert (c.weights[homotopic] > 0).all() and np.median(c.weights[homotopic]) > np.median(other)
    with zipfile.ZipFile(path) as archive:
        assert "SYNTHETIC" in archive.read("info.txt").decode()
    assert "SYNTHETIC" in (path.parent / "README.md").read_text()
    regenerated = synthetic_connectome(seed=0)
    assert regenerated.labels == c.labels
    for name in ("weights", "tract_lengths", "centres"):
        np.testing.assert_allclose(getattr(regenerated, name), getattr(c, name), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------ tvb-data


def test_load_tvb_data_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "tvb_data", None)  # makes `import tvb_data` raise ImportError
    with pytest.raises(ConnectomeError, match=r"pip install tvb-data") as error:
        load_tvb_data("connectivity_76")
    assert str(resources.synthetic_connectome()) in str(error.value) and "connectivity_76" in str(error.value)


def test_load_tvb_data_from_a_stand_in_package(tmp_path, monkeypatch):
    (tmp_path / "connectivity").mkdir()
    write_zip(tmp_path / "connectivity" / "connectivity_4.zip", tvb_files(), "connectivity_4/")
    package = types.ModuleType("tvb_data")
    package.__path__ = [str(tmp_path)]
    monkeypatch.setitem(sys.modules, "tvb_data", package)
    c = load_tvb_data("connectivity_4")
    assert c.source == "tvb-data:connectivity_4" and c.labels == tuple(LABELS)
    with pytest.raises(ConnectomeError, match=r"no connectivity 'connectivity_7'; allowed: connectivity_4"):
        load_tvb_data("connectivity_7")


def test_load_tvb_data_connectivity_76():
    pytest.importorskip("tvb_data")
    c = load_tvb_data("connectivity_76")
    assert len(c.labels) == 76 and c.weights.shape == (76, 76) and c.source == "tvb-data:connectivity_76"
    assert not np.diagonal(c.weights).any()
