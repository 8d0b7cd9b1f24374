"""A patient's recordings into an observation store: the same variables, dimensions and units as the
summary store (postprocess.layout), computed by the same functions, so that one code path turns a
simulated twin's summary and a patient's recordings into features.

The store is one xarray Dataset in Zarr v3, attrs ``format`` "brainsim-observations",
``format_version`` 1; read it with `open_observations`. It holds what its recordings give:

EEG (one recording; read by brainsim.twin.eeg_reader: 10-20 channels, bad channels interpolated, average
reference, resampled to one sample per ``bin``)::

    eeg             (time, electrode)      uV      the recording, each channel's time mean removed
    band_power_eeg  (electrode, band)      uV^2    Welch power in the summary's bands
    spectrum_eeg    (frequency, electrode) uV^2/Hz Welch PSD (1 s Hann segments, half overlap)
    peak_frequency_eeg, peak_prominence_eeg (electrode,)  Hz, 1   spectral peak over the 1/f background
    eeg_peak_frequency, eeg_peak_prominence ()  the same for the mean spectrum over electrodes

  Compare EEG power with a summary's after normalisation (relative band power, spectra over their total
  power, peak frequencies): the absolute scales differ (see brainsim.twin.eeg_reader).
  Coordinates electrode_x/_y/_z (mm) are MNE's standard 10-20 positions (head coordinates), not the
  summary's sphere about the region centres.

BOLD (one region time series, a table or a 4-D NIfTI with an atlas; every ``tr`` ms)::

    bold            (bold_time, region)    %       signal change from each region's time mean (when every
                                                   region's mean is > 0, as for scanner intensities; else
                                                   the values minus their mean, units "a.u.")
    fc_bold         (region, region2)      1       Pearson correlation of BOLD
    fc_sc_bold      ()                     1       its correlation with the connectome's weights

Firing rates (one region time series with --kind rate, Hz, every ``bin`` ms; a synthetic patient's)::

    rate            (time, region)         Hz
    mean_rate       (region,)              Hz      over the record
    fc_rate         (region, region2)      1       Pearson correlation of 10 ms rates (NaN with < 10)

Regions are those of the files, in the connectome's order (a subset of its labels; BOLD and rates of one
store cover the same regions), with hemisphere and centre_x/_y/_z (mm, NaN if unknown) from the
connectome, and ``sc_weights`` (region, region2) its weights. EEG and rates share ``time``: the longer
is cut to the shorter, with a warning. Attributes: format, format_version, brainsim_version, created,
sources (JSON: the absolute paths read), bin, tr (ms; NaN without BOLD), connectome (its source, "" if
none), peak_clear_above (with EEG; postprocess.signals.clear_peak_level), eeg_channels (JSON: {file
channel: 10-20 name}), eeg_dropped (JSON: {file channel: why}), eeg_interpolated (JSON list),
eeg_sfreq (Hz of the file), eeg_span (JSON [start, stop]: the stretch of the file used, s from its
first sample), eeg_reference ("average"), bold_units_source, notes (JSON list).
"""

import json
import math
import os
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from zarr.errors import ZarrUserWarning

from brainsim import __version__
from brainsim.errors import ConfigError, ObservationError, StoreError, warn
from brainsim.files import check_writable
from brainsim.io.zarr_store import check_replaceable
from brainsim.model.brain import Brain
from brainsim.postprocess.layout import BANDS, open_checked
from brainsim.postprocess.layout import FORMAT as SUMMARY_FORMAT
from brainsim.postprocess.signals import (
    ELECTRODES_1020,
    band_power,
    clear_peak_level,
    fc_sc_correlation,
    frequencies,
    spectral_peaks,
    spectrum,
)
from brainsim.postprocess.summarize import FC_MIN_SAMPLES, FC_RATE_BIN, correlation

from . import eeg_reader, region_reader

FORMAT = "brainsim-observations"
FORMAT_VERSION = 1
KINDS = ("bold", "rate")  # what a region time-series table holds


def observe(
    files,
    out,
    *,
    connectome=None,
    kind="bold",
    bin_ms=1.0,
    tr=None,
    labels=None,
    atlas=None,
    atlas_labels=None,
    bads=(),
    overwrite=False,
    log=print,
):
    """Read the recordings `files` and write their observation store at `out`; returns its path.

    EEG files (any extension MNE reads) are resampled to one sample per bin_ms ms; tables (.tsv, .csv)
    and NumPy files (.npy, .npz; labels from the file `labels`) are region time series of `kind` "bold"
    (every tr ms) or "rate" (Hz, every bin_ms ms); a 4-D NIfTI (.nii, .nii.gz) is BOLD averaged over
    the regions of the image `atlas` named by `atlas_labels` (TR from its header unless tr is given).
    Region labels must be those of `connectome` (a spec as for `region_reader.read_connectome`). bads:
    more EEG channel names to treat as bad. At most one recording of each kind."""
    ds = observation_dataset(
        files,
        connectome=connectome,
        kind=kind,
        bin_ms=bin_ms,
        tr=tr,
        labels=labels,
        atlas=atlas,
        atlas_labels=atlas_labels,
        bads=bads,
        log=log,
    )
    return write_observations(ds, out, overwrite=overwrite)


def observation_dataset(
    files, *, connectome=None, kind="bold", bin_ms=1.0, tr=None, labels=None, atlas=None, atlas_labels=None,
    bads=(), log=print,
):  # fmt: skip
    """The observation Dataset (in memory) of the recordings `files`; arguments as `observe`."""
    _check_time("--bin", bin_ms)
    if tr is not None:
        _check_time("--tr", tr)
    if kind not in KINDS:
        raise ConfigError("--kind", kind, f"one of {list(KINDS)} (the kind of a region time-series table)")
    if (atlas is None) != (atlas_labels is None):
        raise ConfigError(
            "--atlas" if atlas is None else "--atlas-labels",
            None,
            "--atlas ATLAS.nii.gz and --atlas-labels LABELS.tsv given together",
        )
    recordings = _classify([Path(f) for f in files], kind)
    if "bold_image" in recordings and atlas is None:
        raise ObservationError(
            recordings["bold_image"], "a NIfTI image needs an atlas: --atlas ATLAS.nii.gz --atlas-labels FILE"
        )
    if atlas is not None and "bold_image" not in recordings:
        raise ConfigError("--atlas", str(atlas), "an atlas only with a 4-D NIfTI fMRI image among the files")
    if labels is not None and not any(key in recordings for key in ("bold", "rate")):
        raise ConfigError("--labels", str(labels), "a labels file only with a .npy or .npz time series")
    if "bold" in recordings and tr is None:
        raise ConfigError(
            "--tr", None, f"the sampling interval (ms) of {recordings['bold']}, e.g. 2000 for 2 s"
        )
    regional = [k for k in ("bold", "bold_image", "rate") if k in recordings]
    if regional and connectome is None:
        raise ConfigError(
            "--connectome",
            None,
            "the connectome whose region labels the region time series carry (a run config, a TVB "
            "connectivity, tvb-data:NAME or a brain.connectome mapping)",
        )
    cx = region_reader.read_connectome(connectome) if connectome is not None else None
    eeg = None
    if "eeg" in recordings:
        eeg = eeg_reader.read_eeg(recordings["eeg"], bin_ms, bads)
        log(
            f"observe: {eeg.path.name}: {len(eeg.electrodes)} electrodes, "
            f"{eeg.data.shape[0] * bin_ms / 1000:.4g} s at {eeg.sfreq:g} Hz"
        )
    elif bads:
        raise ConfigError("--bad", list(bads), "bad EEG channels only with an EEG recording among the files")
    series = {}
    for key in regional:
        path = recordings[key]
        if key == "bold_image":
            values, names, header_tr = region_reader.read_image(path, atlas, atlas_labels)
            tr = _image_tr(path, header_tr, tr)
        else:
            values, names = region_reader.read_table(path, labels)
        values, names = region_reader.match_regions(path, values, names, cx)
        _check_values(path, values, names, constant_allowed=key == "rate")
        series["rate" if key == "rate" else "bold"] = (path, values, names)
    if len({tuple(names) for _, _, names in series.values()}) > 1:
        (p, _, a), (q, _, b) = series.values()
        raise ObservationError(
            q, f"covers the regions {', '.join(b[:8])} ...; {p.name} covers {', '.join(a[:8])} ...: the "
            "region time series of one observation cover the same regions",
        )  # fmt: skip
    data, coords, attrs, notes = {}, {}, {"bin": float(bin_ms), "tr": math.nan}, []
    n_time = _common_time(eeg, series.get("rate"), bin_ms, notes)
    if eeg is not None:
        _add_eeg(eeg, eeg.data[:n_time], bin_ms, data, coords, attrs, notes)
    if "bold" in series:
        _add_bold(*series["bold"], tr, cx, data, coords, attrs, log)
    if "rate" in series:
        path, values, names = series["rate"]
        _add_rate(path, values[:n_time], names, bin_ms, data, coords, log)
    if series:
        _add_regions(next(iter(series.values()))[2], cx, data, coords)
    ds = xr.Dataset(
        {
            name: xr.Variable(dims, values, {"units": units, "long_name": doc})
            for name, (dims, values, units, doc) in data.items()
        },
        coords={name: xr.Variable(dim, values, a) for name, (dim, values, a) in coords.items()},
    )
    ds.attrs.update(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "brainsim_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sources": json.dumps([str(p.resolve()) for p in recordings.values()]),
            "connectome": "" if cx is None else str(cx.source),
            **attrs,
            "notes": json.dumps(notes),
        }
    )
    return ds


def write_observations(ds, out, overwrite=False):
    """Write the observation Dataset ds at `out` (Zarr v3); returns its path. An existing store is
    replaced only with overwrite, and only if it is an observation store (or an empty folder); the store
    is written beside it first, so a failure leaves the old one (or none) and no half-written store."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise StoreError(out, "already exists; pass --overwrite to replace it")
        check_replaceable(out, FORMAT)
    check_writable(out, "the observation store")
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
            ds.to_zarr(scratch / "store", mode="w-", zarr_format=3, consolidated=True)
        if out.exists():
            shutil.rmtree(out)
        os.replace(scratch / "store", out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def open_observations(path) -> xr.Dataset:
    """The observation store at path, opened lazily; StoreError if there is none, it is not one, it
    cannot be read or it has another format_version."""
    return open_checked(
        path,
        FORMAT,
        FORMAT_VERSION,
        "observation",
        "an observation store from `brainsim observe`",
        {SUMMARY_FORMAT: "a summary store of a run, not observations (from `brainsim observe`)"},
        "run `brainsim observe` again",
    )


def _check_time(key, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(key, value, "a time > 0 (ms)")


def _classify(files, kind):
    """{recording kind: path}: 'eeg', 'bold' (a table of kind bold), 'bold_image' or 'rate'; at most one
    of each (a BOLD table and a BOLD image are two BOLD recordings)."""
    found = {}
    for path in files:
        extension = region_reader.suffix(path)
        if extension in region_reader.IMAGES:
            key = "bold_image"
        elif extension in region_reader.TABLES or extension in region_reader.ARRAYS:
            key = kind
        else:
            key = "eeg"
        what = "bold" if key == "bold_image" else key
        first = next((p for k, p in found.items() if ("bold" if k == "bold_image" else k) == what), None)
        if first is not None:
            raise ObservationError(
                path,
                f"a second {what} recording (the first: {first}); an observation holds one recording of "
                "each kind (EEG, BOLD, rates)",
            )
        found[key] = path
    if not found:
        raise ConfigError("FILE", [], "at least one recording (EEG, BOLD or rates)")
    return found


def _check_values(path, values, names, constant_allowed):
    """Refuse NaN or infinite values, and (unless constant_allowed: a silent region's rates) a constant
    region, whose correlations are undefined."""
    bad = ~np.isfinite(values)
    if bad.any():
        sample, column = np.argwhere(bad)[0]
        raise ObservationError(
            path, f"region {names[column]} holds NaN or infinite values (first at sample {sample})"
        )
    flat = [name for name, column in zip(names, values.T) if np.ptp(column) == 0]
    if flat and not constant_allowed:
        raise ObservationError(
            path, f"region(s) {', '.join(flat[:8])} are constant: their correlation is undefined"
        )


def _image_tr(path, header_tr, tr):
    """The TR (ms) of a NIfTI image: --tr if given (it must agree with a header that gives one), else
    the header's."""
    if tr is None:
        if header_tr is None:
            raise ObservationError(path, "its header gives no repetition time with a unit: give --tr (ms)")
        return header_tr
    if header_tr is not None and abs(header_tr - tr) > 1e-3 * header_tr:
        raise ObservationError(
            path, f"its header gives a TR of {header_tr:g} ms, --tr {tr:g} ms: leave out --tr or correct it"
        )
    return tr


def _add_eeg(recording, x, bin_ms, data, coords, attrs, notes):
    """eeg x (time, electrode) of the recording and its spectra (postprocess.signals, as the summary
    computes them) into data."""
    n_time = x.shape[0]
    freqs = frequencies(n_time, bin_ms)
    psd = spectrum(x, bin_ms)
    peaks = spectral_peaks(freqs, psd)
    mean_peak = spectral_peaks(freqs, psd.mean(axis=1, keepdims=True))[:, 0]
    units = eeg_reader.UNITS
    data["eeg"] = (("time", "electrode"), x.astype(np.float32), units, "EEG (average reference)")
    data["band_power_eeg"] = (
        ("electrode", "band"),
        band_power(x, bin_ms).T,
        f"{units}^2",
        "Welch band power of the EEG",
    )
    data["spectrum_eeg"] = (("frequency", "electrode"), psd, f"{units}^2/Hz", "Welch PSD of the EEG")
    data["peak_frequency_eeg"] = (("electrode",), peaks[0], "Hz", "spectral peak of the EEG")
    data["peak_prominence_eeg"] = (("electrode",), peaks[1], "1", "power at the peak over the 1/f background")
    data["eeg_peak_frequency"] = ((), mean_peak[0], "Hz", "spectral peak of the EEG's mean spectrum")
    data["eeg_peak_prominence"] = ((), mean_peak[1], "1", "power at that peak over the 1/f background")
    coords["time"] = ("time", np.arange(n_time) * bin_ms, {"units": "ms"})
    coords["frequency"] = ("frequency", freqs, {"units": "Hz"})
    coords["electrode"] = ("electrode", np.array(recording.electrodes, dtype=object), {})
    for k, axis in enumerate("xyz"):
        coords[f"electrode_{axis}"] = ("electrode", recording.positions[:, k], {"units": "mm"})
    coords["band"] = ("band", np.array(list(BANDS), dtype=object), {})
    coords["band_low"] = ("band", np.array([b[0] for b in BANDS.values()]), {"units": "Hz"})
    coords["band_high"] = ("band", np.array([b[1] for b in BANDS.values()]), {"units": "Hz"})
    attrs.update(
        {
            "peak_clear_above": clear_peak_level(n_time, bin_ms),
            "eeg_channels": json.dumps(recording.channels),
            "eeg_dropped": json.dumps(recording.dropped),
            "eeg_interpolated": json.dumps(recording.interpolated),
            "eeg_sfreq": recording.sfreq,
            "eeg_span": json.dumps(list(recording.span)),
            "eeg_reference": "average",
        }
    )
    if recording.dropped:
        shown = ", ".join(f"{name} ({why})" for name, why in list(recording.dropped.items())[:10])
        more = f" and {len(recording.dropped) - 10} more" if len(recording.dropped) > 10 else ""
        warn(f"{recording.path}: channels dropped: {shown}{more}")
        notes.append(f"{recording.path.name}: dropped {', '.join(recording.dropped)}")
    start, stop = recording.span
    if start > 0 or stop < recording.duration:
        notes.append(f"{recording.path.name}: used {start:g}-{stop:g} s, outside segments annotated bad")
    if recording.interpolated:
        warn(f"{recording.path}: bad channels interpolated: {', '.join(recording.interpolated)}")
        notes.append(f"{recording.path.name}: interpolated {', '.join(recording.interpolated)}")


def _add_bold(path, values, names, tr, connectome, data, coords, attrs, log):
    """bold, fc_bold and fc_sc_bold into data."""
    if values.shape[0] < FC_MIN_SAMPLES:
        raise ObservationError(
            path, f"{values.shape[0]} BOLD samples: too short for functional connectivity (at least "
            f"{FC_MIN_SAMPLES})",
        )  # fmt: skip
    if len(names) < 2:
        raise ObservationError(path, f"one region ({names[0]}): functional connectivity needs at least two")
    mean = values.mean(axis=0)
    if (mean > 0).all():
        bold, units, source = 100.0 * (values / mean - 1.0), "%", "percent change from each region's mean"
    else:
        bold, units, source = values - mean, "a.u.", "the file's values minus each region's mean"
    fc = _fc(bold)
    data["bold"] = (("bold_time", "region"), bold, units, "BOLD signal change")
    data["fc_bold"] = (("region", "region2"), fc, "1", "correlation of BOLD")
    weights = _weights(connectome, names)
    data["fc_sc_bold"] = ((), fc_sc_correlation(fc, weights), "1", "Pearson r of fc_bold and the sc_weights")
    attrs.update({"tr": float(tr), "bold_units_source": source})
    coords["bold_time"] = ("bold_time", np.arange(values.shape[0]) * float(tr), {"units": "ms"})
    log(f"observe: {path.name}: BOLD of {len(names)} regions, {values.shape[0]} samples every {tr:g} ms")


def _add_rate(path, values, names, bin_ms, data, coords, log):
    """rate, mean_rate and fc_rate (of FC_RATE_BIN rates, as the summary's) into data."""
    if (values < 0).any():
        sample, column = np.argwhere(values < 0)[0]
        raise ObservationError(
            path, f"region {names[column]} has a negative firing rate at sample {sample}; rates are Hz >= 0"
        )
    per_fc = max(1, int(round(FC_RATE_BIN / bin_ms)))
    n_fc = values.shape[0] // per_fc
    coarse = values[: n_fc * per_fc].reshape(n_fc, per_fc, -1).mean(axis=1)
    data["rate"] = (("time", "region"), values.astype(np.float32), "Hz", "population firing rate")
    data["mean_rate"] = (("region",), values.mean(axis=0), "Hz", "mean rate")
    data["fc_rate"] = (
        ("region", "region2"),
        _fc(coarse),
        "1",
        f"correlation of {FC_RATE_BIN:g} ms rates",
    )
    coords["time"] = ("time", np.arange(values.shape[0]) * bin_ms, {"units": "ms"})
    log(f"observe: {path.name}: rates of {len(names)} regions, {values.shape[0]} samples every {bin_ms:g} ms")


def _fc(x):
    """Pearson correlation (n, n) of the columns of x (time, n) by the summary's function: NaN where a
    column is constant or with fewer than FC_MIN_SAMPLES samples."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        return correlation(da.from_array(x)).compute(scheduler="sync")


def _common_time(eeg, rate, bin_ms, notes):
    """The number of time bins EEG and rates share: the shorter's (a warning when they differ; an error
    when the EEG would be cut below the 1 s of its spectra's segments)."""
    lengths = {}
    if eeg is not None:
        lengths[eeg.path] = eeg.data.shape[0]
    if rate is not None:
        lengths[rate[0]] = rate[1].shape[0]
    if not lengths:
        return 0
    n_time = min(lengths.values())
    if eeg is not None and n_time * bin_ms < 1000.0:
        raise ObservationError(
            rate[0], f"{n_time} samples every {bin_ms:g} ms: the EEG, cut to the rates' length, would be "
            "too short for the 1 s segments of the spectra",
        )  # fmt: skip
    if len(set(lengths.values())) > 1:
        text = " and ".join(f"{path.name} {n} bins" for path, n in lengths.items())
        warn(f"the EEG and the rates share one time axis: {text}; both cut to {n_time} bins")
        notes.append(f"time cut to {n_time} bins ({text})")
    return n_time


def _weights(connectome, names):
    """The connectome's weights (n, n) between the regions `names`, weights[k, j] from j to k."""
    index = [list(connectome.labels).index(name) for name in names]
    return np.asarray(connectome.weights)[np.ix_(index, index)]


def _add_regions(names, connectome, data, coords):
    """The region coordinates (labels, hemisphere, centres) and sc_weights, from the connectome."""
    index = [list(connectome.labels).index(name) for name in names]
    hemispheres = np.asarray(connectome.hemispheres)[index]
    centres = (
        np.full((len(names), 3), np.nan)
        if connectome.centres is None
        else np.asarray(connectome.centres)[index]
    )
    coords["region"] = ("region", np.array(names, dtype=object), {})
    coords["region2"] = ("region2", np.array(names, dtype=object), {})
    coords["hemisphere"] = (
        "region",
        np.array(["right" if h else "left" for h in hemispheres], dtype=object),
        {},
    )
    for k, axis in enumerate("xyz"):
        coords[f"centre_{axis}"] = ("region", centres[:, k], {"units": "mm"})
    data["sc_weights"] = (
        ("region", "region2"),
        _weights(connectome, names),
        "a.u.",
        "the connectome's weight from region2 to region",
    )


def check_observed_labels(obs, config, path):
    """The observations' (obs, read from `path`) regions and electrodes are among those a run of the
    config has; StoreError naming the file and the extra labels otherwise."""
    labels = list(Brain(config).labels)
    for dim, known in (("region", labels), ("electrode", list(ELECTRODES_1020))):
        if dim in obs.dims:
            extra = [str(v) for v in obs[dim].values if str(v) not in known]
            if extra:
                raise StoreError(
                    path, f"{dim}s that a run of the config does not have: {extra} (it has {known})"
                )
