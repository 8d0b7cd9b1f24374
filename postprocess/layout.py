"""The summary store: one xarray Dataset in Zarr v3 (``xarray.open_zarr(path)``), ``format``
"brainsim-summary", ``format_version`` 1.

Dimensions and coordinates::

    time        (time,) ms: start of each bin [time, time + bin) of the run's time grid
    window      (window,) ms: start of each indicator window [window, window + window_ms)
    bold_time   (bold_time,) ms: BOLD sample times (every ``tr`` ms)
    region      (region,) text labels; with hemisphere ("left" | "right" | ""), centre_x/_y/_z (mm, NaN if
                unknown), n_cells, n_excitatory, n_inhibitory (int64). Runs without a brain: one region per
                population, named after it.
    region2     (region2,) the same labels: the second axis of the connectivity matrices
    electrode   (electrode,) the 19 10-20 names (postprocess.signals.ELECTRODES_1020); electrode_x/_y/_z
                (mm): MNE's standard_1020 positions on the fitted scalp sphere, in the frame of the region
                centres (none when no region with cells has a centre)
    band        (band,) delta theta alpha beta gamma; band_low, band_high (Hz)
    frequency   (frequency,) Hz: the Welch spectra's frequencies (1 s segments: 0, 1, 2, ... Hz)
    spike       (spike,) a bounded sample of the raster (see raster_*)

Data variables (attrs: units, long_name)::

    rate            (time, region)      Hz       population firing rate per bin
    signal          (time, region)      mV       region signal, the LFP proxy: the run's mean membrane
                                                 potential (regions/v_mean) minus its time mean; without one,
                                                 the rate smoothed by a 5 ms alpha kernel (units Hz; attr
                                                 signal_source says which, in words)
    eeg             (time, electrode)   uV       scalp EEG: MNE's sphere-model forward solution
                                                 (postprocess.forward) of one radial current dipole per region
                                                 at its centre, moment dipole_per_mv nAm per mV of signal,
                                                 average referenced. Head: a sphere fitted to the electrodes,
                                                 MNE's four shells (brain, CSF, skull, scalp: 0.90, 0.92,
                                                 0.97, 1.0 of the radius; 0.33, 1.0, 0.004, 0.33 S/m).
                                                 Centres in an MNI-like frame (x right, y anterior, z up;
                                                 quarter-turned about z when the right hemisphere lies
                                                 elsewhere, as in TVB's connectivity_76), put in the head
                                                 by MNE's fsaverage transform; those beyond 5 mm inside
                                                 the brain shell pulled in onto that radius; regions
                                                 without a centre or cells add nothing. Orientation:
                                                 the outward ray from the sphere's origin (pyramidal
                                                 cells of a gyral crown; +z at the origin); a positive
                                                 signal is positive above it.
                                                 attrs forward_model (in words, with the fitted sphere),
                                                 montage, dipole_per_mv (nAm/mV), regions_pulled_in (JSON)
    mean_rate       (region,)           Hz       over the whole run
    mean_rate_excitatory, mean_rate_inhibitory   (region,)   Hz   per cell of that kind, over the run (NaN
                                                 without such cells)
    cv_isi          (region,)           1        mean over cells with >= 3 spikes of CV of the ISIs
    synchrony       (region,)           1        Golomb's chi^2 of the population count over the run
    band_power      (region, band)      unit^2   Welch power of signal in each band
    band_power_eeg  (electrode, band)   uV^2     Welch power of eeg in each band
    spectrum        (frequency, region) unit^2/Hz  Welch PSD of signal (1 s Hann segments, half overlap)
    spectrum_eeg    (frequency, electrode) uV^2/Hz  Welch PSD of eeg
    peak_frequency, peak_prominence (region,)  Hz, 1   spectral peak of signal in 1-80 Hz (the lowest two
                                                 bins and the ends left out): the bin highest above the
                                                 aperiodic 1/f background (a power law or a knee, fitted in
                                                 log-log axes without the peaks), and its power over that
                                                 background; clear when above the attribute peak_clear_above
    peak_frequency_eeg, peak_prominence_eeg (electrode,)  the same for each EEG electrode
    eeg_peak_frequency, eeg_peak_prominence ()  the same for the mean of spectrum_eeg over electrodes
    bold            (bold_time, region) %        BOLD signal change (Balloon-Windkessel driven by rate)
    fc_bold         (region, region2)   1        Pearson correlation of BOLD (NaN with < 10 samples)
    fc_rate         (region, region2)   1        Pearson correlation of 10 ms rates (NaN with < 10 samples)
    sc_weights      (region, region2)   a.u.     the run's structural connectivity, weight from region2 to
                                                 region (NaN when the run store holds none)
    sc_tract_lengths (region, region2)  mm       tract length from region2 to region (likewise)
    fc_sc_rate, fc_sc_bold ()           1        Pearson r of fc_rate / fc_bold with sc_weights over the
                                                 region pairs i < j with a finite FC; SC symmetrised
                                                 ((W + W^T) / 2), linear weights, pairs without a tract as 0
    window_rate     (window, region)    Hz       firing rate per window
    hypersynchrony  (window, region)    1        chance-corrected chi^2 per window: 0 independent, 1 lockstep
    ei_balance      (window, region)    1        (r_E - r_I) / (r_E + r_I), per-cell mean rates
    raster_gid, raster_time, raster_region   (spike,) int64, ms, int64 (index into region); `spike` has
                                                 no coordinate

Attributes: format, format_version, brainsim_version, created (ISO 8601), source (absolute path of the
run store), source_name, source_config_hash, source_status ("complete", "failed", "interrupted" or
"running"), source_t_reached (ms), source_t_start (ms: where the summarised outputs start, the fork time
of a fork's future, else 0; every time coordinate starts there), source_parent (a future's parent, else
""), provenance (JSON text: the run's provenance), bin, window_ms, tr (ms),
n_spikes, peak_clear_above (the prominence that a spectrum without a peak exceeds by chance with
probability about 1 %, for this record length: postprocess.signals.clear_peak_level), alert_rules and
alerts (JSON text: lists of rules, as brainsim.config.schema.ALERT, and of matches {rule, variable,
region, start (ms), end (ms), peak}). Readers refuse another format_version.

A patient's observation store (`brainsim observe`; format "brainsim-observations", layout in
brainsim/twin/observe.py) holds what its recordings give under these names, dims and units: eeg (uV, a
recorded EEG: average referenced, its time mean removed; electrode positions MNE's standard_1020 in head
coordinates), band_power_eeg, spectrum_eeg, peak_frequency_eeg, peak_prominence_eeg,
eeg_peak_frequency, eeg_peak_prominence; bold (% change from each region's mean), fc_bold, fc_sc_bold;
rate, mean_rate, fc_rate (a synthetic patient's rates); sc_weights of the connectome. Its time
coordinates start at 0. The absolute EEG power of a recording and of a simulation rest on different
scales (the model's source strength, the patient's skull and amplifier): EEG is compared after
normalisation (relative band power, spectra over their total, peak frequencies).
"""

from pathlib import Path

import xarray as xr

from brainsim.errors import StoreError
from brainsim.io.run_store import STORE_FAULTS, guarded
from brainsim.io.zarr_store import FORMAT as RUN_FORMAT

FORMAT = "brainsim-summary"
FORMAT_VERSION = 1
BANDS = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 80.0),
}


def open_checked(path, fmt, version, what, expected, misnamed, again) -> xr.Dataset:
    """The xarray Zarr v3 store at path of format `fmt` and format_version `version`, opened lazily;
    StoreError if there is none (`expected`: what should be there), it cannot be read, it is of another
    format (`misnamed`: {format: message} for known mix-ups) or version (`again`: what to do)."""
    if not (Path(path) / "zarr.json").is_file():
        raise StoreError(path, f"no Zarr store there (expected {expected})")
    try:
        ds = guarded(xr.open_zarr(path, zarr_format=3), path)
    except STORE_FAULTS as e:
        raise StoreError(path, f"unreadable {what} store ({type(e).__name__}: {e})") from None
    kind = ds.attrs.get("format")
    if kind in misnamed:
        raise StoreError(path, misnamed[kind])
    if kind != fmt:
        raise StoreError(path, f"not a brainsim {what} store (format {kind!r}, expected {fmt!r})")
    if ds.attrs.get("format_version") != version:
        raise StoreError(
            path,
            f"{what} format_version {ds.attrs.get('format_version')!r}; this brainsim reads "
            f"{version}: {again}",
        )
    return ds


def open_summary(path) -> xr.Dataset:
    """The summary store at path, opened lazily; StoreError if there is none, it is not one, it cannot be
    read or it has another format_version."""
    return open_checked(
        path,
        FORMAT,
        FORMAT_VERSION,
        "summary",
        "a summary store from `brainsim summarize`",
        {RUN_FORMAT: f"a run store (format {RUN_FORMAT!r}), not a summary: run `brainsim summarize` first"},
        "summarize the run again",
    )
