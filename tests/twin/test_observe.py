"""`brainsim observe`: a patient's recordings (real EDF, BrainVision, FIF, EEGLAB, TSV, NumPy and NIfTI
files written here) into an observation store in the summary's layout, and every refusal of bad input
as an error naming the file."""

import json
import subprocess
import sys
from pathlib import Path

import mne
import nibabel as nib
import numpy as np
import pybv
import pytest
import xarray as xr
import yaml

from brainsim import resources
from brainsim.errors import BrainsimWarning, ConfigError, ObservationError, StoreError
from brainsim.model.connectome import read_tvb_zip
from brainsim.postprocess.layout import BANDS
from brainsim.postprocess.signals import ELECTRODES_1020, band_power
from brainsim.twin.eeg_reader import MIN_ELECTRODES, electrode_name
from brainsim.twin.observe import FORMAT, observe, open_observations

ROOT = Path(__file__).resolve().parents[2]
BRAINSIM = Path(sys.executable).with_name("brainsim")
CONNECTOME = str(resources.synthetic_connectome())
SMALL_BRAIN = ROOT / "tests" / "data" / "small_brain.yaml"
ORDER = list(read_tvb_zip(CONNECTOME).labels)
SIX = yaml.safe_load(SMALL_BRAIN.read_text())["brain"]["regions"]  # the small brain's, in its order
REGIONS = sorted(SIX[:5], key=ORDER.index)  # five of them, in the connectome's order
# A clinical montage: old temporal names, an "EEG ...-REF" style, and channels that are not 10-20 names.
CLINICAL = {
    "Fp1": "EEG Fp1-REF", "Fp2": "EEG FP2-REF", "T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6",
}  # fmt: skip
SFREQ = 256.0
ALPHA = 10.0  # Hz


def quiet(*args, **kwargs):
    """A log that prints nothing."""


def eeg_signals(seconds=6.0, sfreq=SFREQ, common=0.0, seed=0):
    """(names, data (channel, time) V): the 19 10-20 electrodes, each a 10 Hz sine of 20 uV with its own
    phase plus white noise, plus `common` V of a 3 Hz sine on every channel (the reference's)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sfreq)) / sfreq
    names = list(ELECTRODES_1020)
    data = np.array(
        [
            20e-6 * np.sin(2 * np.pi * ALPHA * t + 0.4 * k) + 2e-6 * rng.standard_normal(t.size)
            for k in range(len(names))
        ]
    )
    return names, data + common * np.sin(2 * np.pi * 3.0 * t)


def raw_of(names, data, sfreq=SFREQ, types=None):
    info = mne.create_info(names, sfreq, types or "eeg")
    return mne.io.RawArray(data, info, verbose="error")


def write_edf(path, names, data, sfreq=SFREQ):
    mne.export.export_raw(path, raw_of(names, data, sfreq), overwrite=True, verbose="error")
    return path


def write_table(path, labels, values, delimiter="\t", transposed=False):
    """A region time-series table: a header of labels over columns, or (transposed) a label per row."""
    if transposed:
        lines = [
            delimiter.join([label, *(f"{v:.10g}" for v in values[:, k])]) for k, label in enumerate(labels)
        ]
    else:
        lines = [delimiter.join(labels)] + [delimiter.join(f"{v:.10g}" for v in row) for row in values]
    path.write_text("\n".join(lines) + "\n")
    return path


def bold_values(n=40, regions=5, seed=1):
    """Scanner-like intensities (time, region): a shared slow wave and noise about 1000."""
    rng = np.random.default_rng(seed)
    shared = np.sin(np.arange(n) / 3.0)[:, None]
    return 1000.0 + 5.0 * shared * np.linspace(0.2, 1.0, regions) + rng.standard_normal((n, regions))


# --- channel names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel,expected",
    [
        ("Fp1", "Fp1"), ("FP1", "Fp1"), ("fp2", "Fp2"), ("EEG Fp1-REF", "Fp1"), ("EEG CZ-Ref", "Cz"),
        ("T3", "T7"), ("t4", "T8"), ("T5", "P7"), ("EEG T6-REF", "P8"), (" O2 ", "O2"), ("ECG", None),
        ("EEG A1-REF", None), ("Fpz", None), ("EEG", None),
    ],
)  # fmt: skip
def test_channel_names_are_matched_to_1020(channel, expected):
    assert electrode_name(channel) == expected


# --- EEG ------------------------------------------------------------------------------------------------


def test_edf_alpha_recording_keeps_its_alpha_after_resampling(tmp_path):
    names, data = eeg_signals()
    clinical = [CLINICAL.get(name, name) for name in names] + ["ECG", "Photic"]
    rows = np.vstack([data, 1e-4 * np.ones((1, data.shape[1])), np.zeros((1, data.shape[1]))])
    edf = write_edf(tmp_path / "patient.edf", clinical, rows)
    with pytest.warns(BrainsimWarning, match="ECG"):
        out = observe([edf], tmp_path / "obs.zarr", log=quiet)
    ds = open_observations(out)
    assert ds.attrs["format"] == FORMAT and ds.attrs["bin"] == 1.0
    assert list(ds.electrode.values) == list(ELECTRODES_1020)  # every clinical name matched
    assert ds.sizes["time"] == 6000  # 6 s at 256 Hz resampled to 1 kHz
    assert np.allclose(ds.time.values[:3], [0.0, 1.0, 2.0])
    assert set(json.loads(ds.attrs["eeg_dropped"])) == {"ECG", "Photic"}
    assert json.loads(ds.attrs["eeg_channels"])["T3"] == "T7"
    assert json.loads(ds.attrs["sources"]) == [str(edf.resolve())]
    power = ds.band_power_eeg.values
    assert (power.argmax(axis=1) == list(BANDS).index("alpha")).all()
    assert (ds.peak_frequency_eeg.values == ALPHA).all() and float(ds.eeg_peak_frequency) == ALPHA
    assert float(ds.eeg_peak_prominence) > ds.attrs["peak_clear_above"]
    assert ds.eeg.attrs["units"] == "uV" and ds.band_power_eeg.attrs["units"] == "uV^2"
    # the summary's own functions on the stored EEG give the stored band power
    assert np.allclose(band_power(ds.eeg.values, 1.0).T, power, rtol=1e-4)
    # a 20 uV sine has a power of 200 uV^2 (less the average reference's share)
    assert 120 < power[:, list(BANDS).index("alpha")].mean() < 220


def test_segments_annotated_bad_are_left_out(tmp_path):
    names, data = eeg_signals(seconds=1.5)
    edf = write_edf(tmp_path / "padded.edf", names, data)  # its last data record padded to 2 s
    ds = open_observations(observe([edf], tmp_path / "a.zarr", log=quiet))
    assert ds.sizes["time"] == 1500 and json.loads(ds.attrs["eeg_span"]) == [0.0, 1.5]
    names, data = eeg_signals(seconds=6.0)
    raw = raw_of(names, data)
    raw.set_annotations(mne.Annotations(onset=[2.0], duration=[1.0], description=["BAD_movement"]))
    raw.save(tmp_path / "marked_raw.fif", verbose="error")
    ds = open_observations(observe([tmp_path / "marked_raw.fif"], tmp_path / "b.zarr", log=quiet))
    assert ds.sizes["time"] == 3000 and json.loads(ds.attrs["eeg_span"]) == [3.0, 6.0]
    assert "used 3-6 s" in ds.attrs["notes"]


def test_bin_sets_the_resampled_rate(tmp_path):
    edf = write_edf(tmp_path / "patient.edf", *eeg_signals(seconds=4.0))
    ds = open_observations(observe([edf], tmp_path / "obs.zarr", bin_ms=2.0, log=quiet))
    assert ds.sizes["time"] == 2000 and ds.attrs["bin"] == 2.0
    assert ds.time.values[1] == 2.0 and ds.frequency.values.max() == 250.0
    assert float(ds.eeg_peak_frequency) == ALPHA


def test_average_reference_removes_what_every_channel_shares(tmp_path):
    names, data = eeg_signals(common=200e-6)  # a 3 Hz reference signal ten times the alpha
    edf = write_edf(tmp_path / "patient.edf", names, data)
    ds = open_observations(observe([edf], tmp_path / "obs.zarr", log=quiet))
    eeg = ds.eeg.values.astype(np.float64)
    assert np.abs(eeg.sum(axis=1)).max() < 1e-3 * np.abs(eeg).max()  # average reference
    assert np.abs(eeg.mean(axis=0)).max() < 1e-3  # time mean removed, uV
    power = ds.band_power_eeg.sel(band=["delta", "alpha"]).values
    assert (power[:, 0] < 0.01 * power[:, 1]).all()  # the shared 3 Hz wave is gone


def test_bad_channels_of_the_file_and_the_command_are_interpolated(tmp_path):
    names, data = eeg_signals()
    truth = open_observations(observe([write_edf(tmp_path / "a.edf", names, data)], tmp_path / "a.zarr"))
    spoiled = data.copy()
    rng = np.random.default_rng(7)
    for name in ("Cz", "O1"):
        spoiled[names.index(name)] = 500e-6 * rng.standard_normal(data.shape[1])  # a loose electrode
    raw = raw_of(names, spoiled)
    raw.info["bads"] = ["Cz"]
    fif = tmp_path / "patient_raw.fif"
    raw.save(fif, verbose="error")
    with pytest.warns(BrainsimWarning, match="interpolated: Cz, O1"):
        ds = open_observations(observe([fif], tmp_path / "b.zarr", bads=["o1"], log=quiet))
    assert json.loads(ds.attrs["eeg_interpolated"]) == ["Cz", "O1"]
    assert ds.sizes["electrode"] == 19
    for name in ("Cz", "O1"):  # the interpolated channel follows the recording, not the loose electrode
        power = ds.band_power_eeg.sel(electrode=name).values
        assert power.argmax() == list(BANDS).index("alpha")
        assert power.sum() < 2 * truth.band_power_eeg.sel(electrode=name).values.sum()
    kept = [name for name in names if name not in ("Cz", "O1")]
    assert (
        float(np.abs(ds.band_power_eeg.sel(electrode=kept) - truth.band_power_eeg.sel(electrode=kept)).max())
        < 60
    )


def test_non_eeg_channels_are_dropped(tmp_path):
    names, data = eeg_signals()
    raw = raw_of(
        [*names, "ECG", "EOG", "XY1"], np.vstack([data, data[:3]]), types=["eeg"] * 19 + ["ecg", "eog", "eeg"]
    )
    fif = tmp_path / "patient_raw.fif"
    raw.save(fif, verbose="error")
    with pytest.warns(BrainsimWarning, match="channels dropped"):
        ds = open_observations(observe([fif], tmp_path / "obs.zarr", log=quiet))
    dropped = json.loads(ds.attrs["eeg_dropped"])
    assert dropped == {
        "ECG": "a ecg channel, not EEG",
        "EOG": "a eog channel, not EEG",
        "XY1": "not a 10-20 electrode name",
    }
    assert ds.sizes["electrode"] == 19


def test_brainvision_fif_and_eeglab_read_alike(tmp_path):
    names, data = eeg_signals(seconds=3.0)
    edf = write_edf(tmp_path / "p.edf", names, data)
    pybv.write_brainvision(
        data=data, sfreq=SFREQ, ch_names=names, fname_base="p", folder_out=tmp_path, unit="µV"
    )
    raw_of(names, data).save(tmp_path / "p_raw.fif", verbose="error")
    mne.export.export_raw(tmp_path / "p.set", raw_of(names, data), verbose="error")
    reference = open_observations(observe([edf], tmp_path / "edf.zarr", log=quiet)).eeg.values
    for name in ("p.vhdr", "p_raw.fif", "p.set"):
        eeg = open_observations(observe([tmp_path / name], tmp_path / f"{name}.zarr", log=quiet)).eeg.values
        assert eeg.shape == reference.shape
        assert np.abs(eeg - reference).max() < 0.01 * np.abs(reference).max()  # EDF's 16-bit rounding


# --- BOLD and rates -------------------------------------------------------------------------------------


def test_bold_table_in_either_orientation_in_the_connectome_order(tmp_path):
    values = bold_values()
    shuffled = [4, 2, 0, 3, 1]
    labels = [REGIONS[k] for k in shuffled]
    tsv = write_table(tmp_path / "bold.tsv", labels, values[:, shuffled])
    csv = write_table(tmp_path / "bold.csv", labels, values[:, shuffled], delimiter=",", transposed=True)
    a = open_observations(observe([tsv], tmp_path / "a.zarr", connectome=CONNECTOME, tr=2000, log=quiet))
    b = open_observations(observe([csv], tmp_path / "b.zarr", connectome=CONNECTOME, tr=2000, log=quiet))
    assert list(a.region.values) == REGIONS  # the connectome's order
    assert a.attrs["tr"] == 2000.0 and a.bold_time.values[1] == 2000.0 and a.sizes["bold_time"] == 40
    expected = 100.0 * (values / values.mean(axis=0) - 1.0)
    assert a.bold.attrs["units"] == "%"
    assert np.allclose(a.bold.values, expected) and np.allclose(b.bold.values, expected)
    assert np.allclose(a.fc_bold.values, np.corrcoef(values.T))
    assert np.isfinite(float(a.fc_sc_bold))
    assert list(a.hemisphere.values) == ["left"] * 3 + ["right"] * 2
    assert np.isfinite(a.centre_x.values).all()


def test_demeaned_bold_stays_in_its_units(tmp_path):
    values = bold_values() - 1000.0
    tsv = write_table(tmp_path / "bold.tsv", REGIONS, values)
    ds = open_observations(observe([tsv], tmp_path / "obs.zarr", connectome=CONNECTOME, tr=720, log=quiet))
    assert ds.bold.attrs["units"] == "a.u."
    assert np.allclose(ds.bold.values, values - values.mean(axis=0))


def test_numpy_series_with_labels_and_a_config_as_connectome(tmp_path):
    values = bold_values()
    np.save(tmp_path / "bold.npy", values.T)  # (region, time): recognised by its shape
    (tmp_path / "labels.txt").write_text("\n".join(REGIONS) + "\n")
    ds = open_observations(
        observe(
            [tmp_path / "bold.npy"], tmp_path / "a.zarr", connectome=str(SMALL_BRAIN), tr=2000,
            labels=tmp_path / "labels.txt", log=quiet,
        )
    )  # fmt: skip
    simulated = [r for r in SIX if r in REGIONS]  # a config's regions come in its brain.regions order
    assert list(ds.region.values) == simulated
    columns = [REGIONS.index(r) for r in simulated]
    assert np.allclose(ds.fc_bold.values, np.corrcoef(values[:, columns].T))
    np.savez(tmp_path / "bold.npz", data=values, labels=np.array(REGIONS))
    ds = open_observations(
        observe([tmp_path / "bold.npz"], tmp_path / "b.zarr", connectome=CONNECTOME, tr=2000, log=quiet)
    )
    assert list(ds.region.values) == REGIONS
    # the small brain simulates six regions: one outside them is refused, naming the file
    tsv = write_table(tmp_path / "other.tsv", [*REGIONS, "lh-cuneus"], bold_values(regions=6))
    with pytest.raises(
        ObservationError, match=r"other\.tsv: region label\(s\) not in the connectome.*lh-cuneus"
    ):
        observe([tsv], tmp_path / "c.zarr", connectome=str(SMALL_BRAIN), tr=2000, log=quiet)


def test_rates_with_eeg_share_the_time_axis(tmp_path):
    rng = np.random.default_rng(3)
    rates = np.abs(5.0 + rng.standard_normal((3500, len(REGIONS))))
    tsv = write_table(tmp_path / "rates.tsv", REGIONS, rates)
    edf = write_edf(tmp_path / "p.edf", *eeg_signals(seconds=3.0))
    with pytest.warns(BrainsimWarning, match="cut to 3000 bins"):
        ds = open_observations(
            observe([edf, tsv], tmp_path / "obs.zarr", connectome=CONNECTOME, kind="rate", log=quiet)
        )
    assert ds.sizes["time"] == 3000 and ds.rate.attrs["units"] == "Hz"
    assert np.allclose(ds.rate.values, rates[:3000], rtol=1e-6)
    assert np.allclose(ds.mean_rate.values, rates[:3000].mean(axis=0))
    coarse = rates[:3000].reshape(300, 10, -1).mean(axis=1)
    assert np.allclose(ds.fc_rate.values, np.corrcoef(coarse.T))
    assert "bold" not in ds and np.isnan(ds.attrs["tr"])


def test_other_table_forms_and_a_silent_region(tmp_path):
    values = bold_values()
    body = "\n".join(",".join([r, *(f"{v:.10g}" for v in values[:, k])]) for k, r in enumerate(REGIONS))
    (tmp_path / "rows.csv").write_text("region," + ",".join(f"t{k}" for k in range(40)) + "\n" + body)
    np.savez(tmp_path / "bold.npz", values)  # one unnamed array: the labels from --labels
    (tmp_path / "labels.txt").write_text("\n".join(REGIONS))
    for name, labels in (("rows.csv", None), ("bold.npz", tmp_path / "labels.txt")):
        ds = open_observations(
            observe(
                [tmp_path / name], tmp_path / f"{name}.zarr", connectome=CONNECTOME, tr=2000, labels=labels,
                log=quiet,
            )
        )  # fmt: skip
        assert np.allclose(ds.fc_bold.values, np.corrcoef(values.T)), name
    rates = np.abs(5.0 + np.random.default_rng(2).standard_normal((1000, len(REGIONS))))
    rates[:, 3] = 0.0  # a silent region: its correlations are NaN, as in a summary
    tsv = write_table(tmp_path / "rates.tsv", REGIONS, rates)
    ds = open_observations(observe([tsv], tmp_path / "r.zarr", connectome=CONNECTOME, kind="rate", log=quiet))
    assert ds.mean_rate.values[3] == 0.0 and np.isnan(ds.fc_rate.values[3]).all()
    assert np.isfinite(ds.fc_rate.values[:3, :3]).all()


def nifti_files(tmp_path, zoom_t=2.0, unit="sec", atlas_values=(1, 2, 3), n=30):
    """A 4-D image (4 x 4 x 4 voxels, n volumes) whose three atlas regions have their own signals, its
    atlas and the labels file; returns (image, atlas, labels, the per-region signals)."""
    rng = np.random.default_rng(5)
    atlas = np.zeros((4, 4, 4), np.int16)
    atlas[:2, :2, :], atlas[2:, :2, :], atlas[:, 2:, :2] = atlas_values
    signals = 500.0 + rng.standard_normal((n, 3))
    image = 400.0 + 0.01 * rng.standard_normal((4, 4, 4, n))
    for k, value in enumerate(atlas_values):
        image[atlas == value] = signals[:, k]
    header = nib.Nifti1Header()
    header.set_xyzt_units("mm", unit)
    img = nib.Nifti1Image(image.astype(np.float32), np.eye(4), header)
    img.header.set_zooms((1.0, 1.0, 1.0, zoom_t))
    nib.save(img, tmp_path / "bold.nii.gz")
    nib.save(nib.Nifti1Image(atlas, np.eye(4)), tmp_path / "atlas.nii.gz")
    (tmp_path / "atlas.tsv").write_text(
        "index\tname\n1\tlh-precentral\n2\trh-precentral\n3\tlh-postcentral\n"
    )
    (tmp_path / "atlas.txt").write_text("lh-precentral\nrh-precentral\nlh-postcentral\n")  # values 1, 2, 3
    return tmp_path / "bold.nii.gz", tmp_path / "atlas.nii.gz", tmp_path / "atlas.tsv", signals


def test_nifti_with_an_atlas_through_nilearn(tmp_path):
    image, atlas, labels, signals = nifti_files(tmp_path)
    ds = open_observations(
        observe(
            [image], tmp_path / "obs.zarr", connectome=CONNECTOME, atlas=atlas, atlas_labels=labels, log=quiet
        )
    )
    assert ds.attrs["tr"] == 2000.0  # from the header, in seconds
    assert list(ds.region.values) == sorted(
        ["lh-precentral", "lh-postcentral", "rh-precentral"], key=ORDER.index
    )
    by_label = {"lh-precentral": 0, "rh-precentral": 1, "lh-postcentral": 2}
    expected = signals[:, [by_label[r] for r in ds.region.values]]
    assert np.allclose(ds.fc_bold.values, np.corrcoef(expected.T), atol=1e-5)
    same = observe(
        [image], tmp_path / "obs.zarr", connectome=CONNECTOME, atlas=atlas, atlas_labels=labels, tr=2000.0,
        overwrite=True, log=quiet,
    )  # fmt: skip
    assert open_observations(same).attrs["tr"] == 2000.0
    listed = observe(
        [image], tmp_path / "l.zarr", connectome=CONNECTOME, atlas=atlas, atlas_labels=tmp_path / "atlas.txt",
        log=quiet,
    )  # fmt: skip
    assert np.array_equal(open_observations(listed).fc_bold.values, ds.fc_bold.values)


# --- errors name the file -------------------------------------------------------------------------------


def test_bad_inputs_are_errors_naming_the_file(tmp_path):
    obs = tmp_path / "obs.zarr"
    values = bold_values()

    def refused(files, match, error=ObservationError, **options):
        options = {"connectome": CONNECTOME, "tr": 2000, "log": quiet, **options}
        with pytest.raises(error, match=match):
            observe(files, obs, **options)
        assert not obs.exists()

    unknown = write_table(tmp_path / "unknown.tsv", ["lh-precentral", "lh-nowhere"], values[:, :2])
    refused(
        [unknown],
        r"unknown\.tsv: region label\(s\) not in the connectome .*lh-nowhere; its labels: lh-bankssts",
    )
    twice = write_table(tmp_path / "twice.tsv", ["lh-precentral", "lh-precentral"], values[:, :2])
    refused([twice], r"twice\.tsv: region label\(s\) given twice: lh-precentral")
    nan = values.copy()
    nan[7, 2] = np.nan
    refused(
        [write_table(tmp_path / "nan.tsv", REGIONS, nan)],
        rf"nan\.tsv: region {REGIONS[2]} holds NaN.*sample 7",
    )
    inf = values.copy()
    inf[3, 0] = np.inf
    refused(
        [write_table(tmp_path / "inf.csv", REGIONS, inf, delimiter=",")],
        rf"inf\.csv: region {REGIONS[0]} holds NaN or inf",
    )
    short = write_table(tmp_path / "short.tsv", REGIONS, values[:9])
    refused([short], r"short\.tsv: 9 BOLD samples: too short for functional connectivity \(at least 10\)")
    flat = values.copy()
    flat[:, 1] = 3.0
    refused(
        [write_table(tmp_path / "flat.tsv", REGIONS, flat)],
        rf"flat\.tsv: region\(s\) {REGIONS[1]} are constant",
    )
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("lh-precentral\tlh-postcentral\n1\t2\nx\t3\n")
    refused([ragged], r"ragged\.tsv: line 3")
    refused([tmp_path / "missing.tsv"], r"missing\.tsv: no such file")
    tsv = write_table(tmp_path / "bold.tsv", REGIONS, values)
    refused([tsv], "--tr", error=ConfigError, tr=None)
    refused(
        [tsv, write_table(tmp_path / "again.tsv", REGIONS, values)], r"again\.tsv: a second bold recording"
    )
    refused([tsv], "--connectome", error=ConfigError, connectome=None)
    refused([tsv], "--connectome", error=ConfigError, connectome=str(tmp_path / "brain.txt"))
    np.save(tmp_path / "nolabels.npy", values)
    refused([tmp_path / "nolabels.npy"], r"nolabels\.npy: no region labels")

    image, atlas, labels, _ = nifti_files(tmp_path)
    refused(
        [image],
        r"bold\.nii\.gz: its header gives a TR of 2000 ms, --tr 1000 ms",
        atlas=atlas,
        atlas_labels=labels,
        tr=1000,
    )
    refused([image], r"bold\.nii\.gz: a NIfTI image needs an atlas")
    refused([image, tsv], r"bold\.tsv: a second bold recording", atlas=atlas, atlas_labels=labels, tr=None)
    (tmp_path / "few.tsv").write_text("1 lh-precentral\n2 rh-precentral\n")
    refused(
        [image],
        r"few\.tsv: no label for the atlas values \[3\]",
        atlas=atlas,
        atlas_labels=tmp_path / "few.tsv",
        tr=None,
    )
    nifti_files(tmp_path, unit="unknown")
    refused(
        [image],
        r"bold\.nii\.gz: its header gives no repetition time",
        atlas=atlas,
        atlas_labels=labels,
        tr=None,
    )

    names, data = eeg_signals()
    raw_of(names, data[:, :200]).save(tmp_path / "brief_raw.fif", verbose="error")  # EDF pads to 1 s records
    refused([tmp_path / "brief_raw.fif"], r"brief_raw\.fif: 0\.781 s long: too short for the 1 s segments")
    few = MIN_ELECTRODES - 1
    refused(
        [write_edf(tmp_path / "few.edf", names[:few], data[:few])],
        rf"few\.edf: only {few} usable 10-20 electrodes",
    )
    other = write_edf(tmp_path / "other.edf", [f"E{k}" for k in range(19)], data)
    refused([other], r"other\.edf: no EEG channel with a 10-20 name \(channels: E0, E1")
    dup = write_edf(tmp_path / "dup.edf", ["T3", "T7", *names[8:15]], data[:9])
    refused([dup], r"dup\.edf: channels 'T3' and 'T7' are both the 10-20 electrode T7")
    spoiled = data.copy()
    spoiled[4, 100] = np.nan
    raw = raw_of(names, spoiled)
    raw.save(tmp_path / "nan_raw.fif", verbose="error")
    refused([tmp_path / "nan_raw.fif"], r"nan_raw\.fif: channel Fz holds NaN")
    brief_rates = write_table(tmp_path / "brief_rates.tsv", REGIONS, np.ones((500, len(REGIONS))))
    refused(
        [write_edf(tmp_path / "long.edf", names, data), brief_rates],
        r"brief_rates\.tsv: 500 samples",
        kind="rate",
    )
    garbage = tmp_path / "garbage.edf"
    garbage.write_bytes(b"not an EDF file at all" * 10)
    refused([garbage], r"garbage\.edf: not a readable EEG recording")
    edf = write_edf(tmp_path / "p.edf", names, data)
    refused([edf, write_edf(tmp_path / "q.edf", names, data)], r"q\.edf: a second eeg recording")
    refused([edf], r"p\.edf: bad channel 'Xyz' is not one of its 10-20 channels", bads=["Xyz"])


def test_the_store_is_replaced_only_when_asked_and_only_if_it_is_one(tmp_path):
    edf = write_edf(tmp_path / "p.edf", *eeg_signals(seconds=2.0))
    out = observe([edf], tmp_path / "obs.zarr", log=quiet)
    with pytest.raises(StoreError, match="already exists; pass --overwrite"):
        observe([edf], out, log=quiet)
    observe([edf], out, overwrite=True, log=quiet)
    assert open_observations(out).sizes["time"] == 2000
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    with pytest.raises(StoreError, match="will not overwrite it"):
        observe([edf], folder, overwrite=True, log=quiet)
    assert (folder / "mine.txt").read_text() == "keep me"
    with pytest.raises(StoreError, match="no Zarr store there"):
        open_observations(folder)
    xr.Dataset(attrs={"format": "brainsim-summary", "format_version": 1}).to_zarr(
        tmp_path / "s.zarr", zarr_format=3
    )
    with pytest.raises(StoreError, match="a summary store of a run, not observations"):
        open_observations(tmp_path / "s.zarr")
    xr.Dataset(attrs={"format": FORMAT, "format_version": 99}).to_zarr(tmp_path / "v.zarr", zarr_format=3)
    with pytest.raises(StoreError, match="format_version 99"):
        open_observations(tmp_path / "v.zarr")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no scratch left


# --- the command ----------------------------------------------------------------------------------------


def test_cli_end_to_end(tmp_path):
    names, data = eeg_signals(seconds=3.0)
    edf = write_edf(tmp_path / "patient.edf", [*names, "ECG"], np.vstack([data, data[:1]]))
    tsv = write_table(tmp_path / "bold.tsv", REGIONS, bold_values())
    out = tmp_path / "patient_obs.zarr"
    command = [
        str(BRAINSIM),
        "observe",
        str(edf),
        str(tsv),
        "--connectome",
        CONNECTOME,
        "--tr",
        "2000",
        "-o",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"observations: {out}" in done.stdout
    assert "brainsim: warning:" in done.stderr and "ECG" in done.stderr
    ds = open_observations(out)
    assert {"eeg", "band_power_eeg", "spectrum_eeg", "bold", "fc_bold"} <= set(ds.data_vars)
    assert ds.sizes["electrode"] == 19 and ds.sizes["region"] == len(REGIONS)
    failed = subprocess.run(
        [*command[:4], "--connectome", CONNECTOME, "-o", str(tmp_path / "x.zarr")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert failed.returncode == 2 and "brainsim: config error at '--tr'" in failed.stderr
    unknown = write_table(tmp_path / "unknown.tsv", ["lh-nowhere", "lh-precentral"], bold_values(regions=2))
    failed = subprocess.run(
        [*command[:2], str(unknown), *command[4:8], "-o", str(tmp_path / "y.zarr")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith(f"brainsim: {unknown}: region label(s) not in the connectome")
