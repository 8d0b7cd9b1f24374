"""A patient's EEG recording, read through MNE-Python, on the summary's electrodes, reference and time
grid.

`mne.io.read_raw` chooses the reader by the file's extension (EDF/BDF, BrainVision .vhdr, FIF, EEGLAB
.set and the other formats MNE reads). Then:

* channels: only channels of type EEG are kept whose name is one of the 10-20 electrodes of the summary
  (postprocess.signals.ELECTRODES_1020), compared without regard to case after removing an "EEG " prefix
  and a "-REF" suffix ("EEG Fp1-REF" is Fp1), the old names T3, T4, T5, T6 read as T7, T8, P7, P8. The
  others (ECG, EOG, stimulus channels, names of other systems) are dropped and listed;
* bad channels (the file's own, `bads` given by the caller, and flat ones) are interpolated from the
  good ones by MNE's spherical splines on MNE's standard 10-20 positions (the file's own positions are
  not used), or dropped where MNE cannot interpolate them; a recording with fewer than MIN_ELECTRODES
  good electrodes is refused;
* segments annotated as bad (BAD..., among them MNE's BAD_ACQ_SKIP over the padding of an EDF's last
  data record) are left out: the longest stretch outside them is used;
* re-referenced to the average of the kept electrodes (the summary's EEG is average-referenced),
  resampled with MNE's `resample` (which low-passes before downsampling) to one sample per bin, and each
  channel's time mean removed (as the summary's region signal has its time mean removed).

Units: microvolts (uV), as the summary's EEG. The absolute power of a recording and of a simulation
rest on different scales (the model's assumed source strength; the patient's skull, electrodes and
amplifier): features compare EEG after normalisation (relative band power, spectra over their total
power, peak frequencies), not in absolute units.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainsim.errors import ObservationError
from brainsim.postprocess.signals import ELECTRODES_1020

MIN_ELECTRODES = 8
"""Fewest usable 10-20 electrodes of a recording (the average reference and a scalp map need a spread)."""
OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
UNITS = "uV"
_BY_KEY = {name.casefold(): name for name in ELECTRODES_1020} | {
    old.casefold(): new for old, new in OLD_NAMES.items()
}


@dataclass(frozen=True)
class EEGRecording:
    """A recording on the 10-20 electrodes it has, in ELECTRODES_1020's order."""

    path: Path
    data: np.ndarray  # (time, electrode) uV, average reference, time mean removed, one sample per bin
    electrodes: list  # 10-20 names
    positions: np.ndarray  # (electrode, 3) mm: MNE's standard 10-20 positions, head coordinates
    sfreq: float  # Hz: the file's sampling rate
    channels: dict  # {file's channel name: the 10-20 name it became}
    dropped: dict = field(default_factory=dict)  # {file's channel name: why it was dropped}
    interpolated: list = field(default_factory=list)  # 10-20 names of the bad channels interpolated
    span: tuple = (0.0, 0.0)  # s: the stretch of the file used, from its first sample
    duration: float = 0.0  # s: the file's length


def electrode_name(channel):
    """The 10-20 name (as in ELECTRODES_1020) a channel name stands for, or None."""
    name = channel.strip()
    if name[:4].casefold() == "eeg ":
        name = name[4:].strip()
    if name[-4:].casefold() == "-ref":
        name = name[:-4].strip()
    return _BY_KEY.get(name.casefold())


def read_eeg(path, bin_ms, bads=()):
    """The EEG recording at path on its 10-20 electrodes, resampled to one sample per bin_ms ms; `bads`:
    more channel names to treat as bad (file names or 10-20 names). ObservationError naming the file
    if it cannot be read or used."""
    import mne

    path = Path(path)
    if not path.exists():
        raise ObservationError(path, "no such file")
    try:
        raw = mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as e:  # MNE's readers raise errors of many kinds on a corrupt or foreign file
        raise ObservationError(path, f"not a readable EEG recording ({type(e).__name__}: {e})") from None
    sfreq = float(raw.info["sfreq"])
    channels, dropped = match_channels(path, raw.ch_names, raw.get_channel_types())
    if not channels:
        raise ObservationError(
            path,
            f"no EEG channel with a 10-20 name (channels: {', '.join(raw.ch_names[:20])}); allowed names: "
            f"{', '.join(ELECTRODES_1020)} (also T3/T4/T5/T6, 'EEG ' prefixes and '-REF' suffixes)",
        )
    raw.pick(list(channels))
    raw.rename_channels(channels)
    bad = bad_electrodes(path, raw, channels, bads)
    data = raw.get_data()
    if not np.isfinite(data).all():
        ch, sample = np.argwhere(~np.isfinite(data))[0]
        raise ObservationError(
            path, f"channel {raw.ch_names[ch]} holds NaN or infinite values (first at sample {sample})"
        )
    duration = raw.n_times / sfreq
    span = _clean_span(path, raw)
    data = raw.get_data()
    flat = [name for name, row in zip(raw.ch_names, data) if np.ptp(row) == 0 and name not in bad]
    bad += flat
    order, interpolated = on_electrodes(path, raw, channels, bad, dropped)
    target = 1000.0 / bin_ms
    if abs(sfreq - target) > 1e-9 * target:
        raw.resample(target, verbose="error")
    values = raw.get_data(units=UNITS).T
    if values.shape[0] < round(1000.0 / bin_ms):
        raise ObservationError(
            path,
            f"{raw.n_times / target:.3g} s long: too short for the 1 s segments of the spectra (at least "
            "1 s of recording)",
        )
    positions = np.array([raw.info["chs"][k]["loc"][:3] for k in range(len(order))]) * 1e3
    return EEGRecording(
        path=path,
        data=values - values.mean(axis=0),
        electrodes=order,
        positions=positions,
        sfreq=sfreq,
        channels={_file_name(channels, name): name for name in order},
        dropped=dropped,
        interpolated=[name for name in interpolated if name in order],
        span=span,
        duration=duration,
    )


def on_electrodes(path, raw, channels, bad, dropped):
    """Put raw (its channels renamed to 10-20 names; `channels` {file's name: 10-20 name}) on its
    electrodes, in place: the `bad` ones interpolated (or dropped, noted in `dropped`), reordered as
    ELECTRODES_1020 and average-referenced; returns (the electrodes, the interpolated ones). A spatial
    step only: it applies to a whole recording and to each chunk of a stream alike."""
    import mne

    good = [name for name in raw.ch_names if name not in bad]
    if len(good) < MIN_ELECTRODES:
        flagged = f"; bad: {', '.join(bad)}" if bad else ""
        raise ObservationError(
            path,
            f"only {len(good)} usable 10-20 electrodes ({', '.join(good) or 'none'}{flagged}); at least "
            f"{MIN_ELECTRODES} of {', '.join(ELECTRODES_1020)} are needed",
        )
    raw.set_montage(mne.channels.make_standard_montage("standard_1020"), verbose="error")
    raw.info["bads"] = list(bad)
    interpolated = []
    if bad:
        try:
            raw.interpolate_bads(reset_bads=True, verbose="error")
            interpolated = sorted(bad, key=list(ELECTRODES_1020).index)
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as e:
            for name in bad:
                dropped[_file_name(channels, name)] = f"bad, not interpolated ({e})"
            raw.drop_channels(bad)
    order = [name for name in ELECTRODES_1020 if name in raw.ch_names]
    raw.reorder_channels(order)
    raw.set_eeg_reference("average", projection=False, verbose="error")
    return order, interpolated


def _clean_span(path, raw):
    """Crop raw to its longest stretch outside segments annotated BAD... (artefacts marked in the file;
    the padding of a last EDF data record, BAD_ACQ_SKIP); returns that stretch (start, stop) in s from
    the first sample."""
    outside = np.isfinite(raw.get_data(reject_by_annotation="NaN", verbose="error")).all(axis=0)
    if outside.all():
        return 0.0, raw.n_times / raw.info["sfreq"]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], outside.astype(np.int8), [0]])))
    starts, stops = edges[::2], edges[1::2]
    if starts.size == 0:
        raise ObservationError(path, "every sample lies in a segment annotated as bad (BAD...)")
    k = int(np.argmax(stops - starts))
    sfreq = raw.info["sfreq"]
    raw.crop(tmin=starts[k] / sfreq, tmax=(stops[k] - 1) / sfreq, include_tmax=True)
    return starts[k] / sfreq, stops[k] / sfreq


def match_channels(path, names, types):
    """({channel: 10-20 name} of the usable channels, {channel: why dropped}) of channels `names` of
    MNE channel `types` (a file's or a stream's)."""
    channels, dropped, seen = {}, {}, {}
    for name, kind in zip(names, types):
        electrode = electrode_name(name)
        if kind != "eeg":
            dropped[name] = f"a {kind} channel, not EEG"
        elif electrode is None:
            dropped[name] = "not a 10-20 electrode name"
        elif electrode in seen:
            raise ObservationError(
                path, f"channels {seen[electrode]!r} and {name!r} are both the 10-20 electrode {electrode}"
            )
        else:
            channels[name], seen[electrode] = electrode, name
    return channels, dropped


def bad_electrodes(path, raw, channels, bads):
    """The 10-20 names of the kept channels marked bad in the file or named in `bads`."""
    names = {**{name: name for name in channels.values()}, **channels}
    marked = []
    for name in bads:
        if name in names:
            marked.append(names[name])
        elif electrode_name(name) in channels.values():
            marked.append(electrode_name(name))
        else:
            raise ObservationError(
                path,
                f"bad channel {name!r} is not one of its 10-20 channels ({', '.join(channels.values())})",
            )
    from_file = [name for name in raw.info["bads"] if name in names.values()]  # renamed by now
    return list(dict.fromkeys(from_file + marked))


def _file_name(channels, electrode):
    """The file's channel name that became `electrode`."""
    return next(name for name, e in channels.items() if e == electrode)
