"""Runs of a small brain: the regions group, and interventions that change what they target (and only
from when they act)."""

import numpy as np
import pytest
import xarray as xr
import zarr
from support import ROOT, simulate, spikes

from brainsim.engine.interventions import drug_factor

SMALL = "tests/data/small_brain.yaml"
PRECENTRAL, POSTCENTRAL, FRONTAL = [0, 3], [1], [2]  # region indices in small_brain.yaml


def regions(store):
    return xr.open_zarr(store, group="regions")


def mean_rate(ds, start, stop):
    """Mean rate (Hz) per region over the bins starting in [start, stop) ms."""
    return ds.rate.sel(time=slice(start, stop - 1e-9)).mean("time").values


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    store = tmp_path_factory.mktemp("baseline") / "base.zarr"
    simulate(SMALL, output=store)
    return store


def overlay(tmp_path, text):
    path = tmp_path / "intervention.yaml"
    path.write_text(text)
    return path


def run_with(tmp_path, text, overrides=()):
    store = tmp_path / "treated.zarr"
    simulate(SMALL, overrides, output=store, interventions=[overlay(tmp_path, text)])
    return store


def test_regions_group_layout_and_metadata(baseline):
    ds = regions(baseline)
    assert ds.rate.dims == ("time", "region") and ds.rate.shape == (200, 6)
    assert ds.attrs["bin"] == 1.0 and ds.rate.attrs["units"] == "Hz" and ds.v_mean.attrs["units"] == "mV"
    assert list(ds.region.values[:3]) == ["lh-precentral", "lh-postcentral", "lh-superiorfrontal"]
    assert list(ds.hemisphere.values) == ["left"] * 3 + ["right"] * 3
    assert ds.n_cells.values.tolist() == [20] * 6
    assert np.allclose(ds.time.values, np.arange(200.0))
    from brainsim.model.connectome import read_tvb_zip

    c = read_tvb_zip(ROOT / "configs/connectomes/synthetic_68.zip")
    expected = c.centres[[c.labels.index(label) for label in ds.region.values]]
    assert np.allclose(np.column_stack([ds.centre_x, ds.centre_y, ds.centre_z]), expected)
    assert np.isfinite(ds.rate.values).all() and np.isfinite(ds.v_mean.values).all()
    assert 5 < ds.rate.values.mean() < 100  # an active network, not saturated


def test_region_rates_count_the_spikes(baseline):
    ds = regions(baseline)
    gid, time = spikes(baseline)
    counts = np.zeros((200, 6))
    np.add.at(counts, (np.minimum(np.floor(time).astype(int), 199), gid // 20), 1)
    assert counts.sum() > 500
    assert np.allclose(ds.rate.values * 20 * 1e-3, counts, atol=1e-4)


def test_region_mean_potential_is_the_time_average_at_the_somata(tmp_path):
    probe = "probes=[{name: soma, variable: v, cell: '*', cells: all, location: soma(0.5), sampling: 0.025}]"
    store = tmp_path / "v.zarr"
    simulate(SMALL, ["simulation.tstop=20", probe], output=store)
    ds = regions(store)
    v = xr.open_zarr(store, group="traces/soma")
    assert v.gid.values.tolist() == list(range(120))
    samples = v.v.values.astype(float)[1:]  # the state at the end of each step, steps 1..800
    per_bin = samples.reshape(20, 40, 6, 20).mean(axis=(1, 3))  # 40 steps per 1 ms bin, 20 cells per region
    assert np.allclose(ds.v_mean.values, per_bin, atol=1e-3)


def test_bins_that_do_not_divide_the_run(tmp_path):
    store = tmp_path / "b.zarr"
    simulate(SMALL, ["output.region_bin=3", "simulation.tstop=50"], output=store)
    ds = regions(store)
    assert ds.time.values.tolist() == list(range(0, 50, 3)) and ds.attrs["bin"] == 3.0
    gid, time = spikes(store)
    counts = np.zeros((17, 6))
    np.add.at(counts, (np.floor(time / 3).astype(int), gid // 20), 1)
    length = np.array([3.0] * 16 + [2.0])  # the last bin ends at tstop
    assert np.allclose(ds.rate.values * 20 * length[:, None] * 1e-3, counts, atol=1e-4)


def test_drug_factor_ramps_from_onset():
    item = {"onset": 10.0, "ramp": 20.0, "factor": 0.2}
    assert [drug_factor(item, t) for t in (0, 9.99, 10, 20, 30, 100)] == pytest.approx(
        [1, 1, 1, 0.6, 0.2, 0.2]
    )
    assert drug_factor({**item, "ramp": 0.0}, 10.0) == 0.2


def test_sodium_block_lowers_the_rate_of_the_targeted_regions(tmp_path, baseline):
    store = run_with(
        tmp_path,
        "kind: drug\nmechanism: nata\nfactor: 0.3\nregions: [lh-precentral, rh-precentral]\n"
        "onset: 50\nramp: 10\n",
    )
    before, after = regions(baseline), regions(store)
    assert np.array_equal(before.rate[:50].values, after.rate[:50].values)  # nothing changes before onset
    base, treated = mean_rate(before, 70, 200), mean_rate(after, 70, 200)
    assert np.all(treated[PRECENTRAL] < 0.6 * base[PRECENTRAL]), (base, treated)
    untargeted = [1, 2, 4, 5]
    drop = 1 - treated / base
    assert drop[PRECENTRAL].min() > drop[untargeted].max() + 0.2, drop


def test_blocking_a_channel_the_cells_lack_is_an_error(tmp_path):
    from brainsim.errors import ConfigError

    with pytest.raises(ConfigError, match="a mechanism of the targeted cells"):
        run_with(tmp_path, "kind: drug\nmechanism: nap\nfactor: 0.3\n")


def test_stimulation_raises_the_rate_of_the_targeted_region(tmp_path, baseline):
    store = run_with(
        tmp_path,
        "kind: stimulation\nregions: [lh-postcentral]\ncell_types: [pyr]\nlocation: soma(0.5)\n"
        "amplitude: 0.5\nfrequency: 40\npulse_width: 2\nstart: 50\nstop: 150\n",
    )
    before, after = regions(baseline), regions(store)
    assert np.array_equal(before.rate[:50].values, after.rate[:50].values)
    base, treated = mean_rate(before, 50, 150), mean_rate(after, 50, 150)
    assert treated[POSTCENTRAL] > 1.3 * base[POSTCENTRAL], (base, treated)
    # the pulses: nearly every pyramidal cell of the region fires within each 2 ms pulse
    gid, time = spikes(store)
    pyr = (gid >= 20) & (gid < 36)
    for onset in np.arange(50.0, 150.0, 25.0):
        fired = np.unique(gid[pyr & (time >= onset) & (time < onset + 4)])
        assert fired.size >= 14, onset


def test_lesion_silences_the_region_from_its_time_on(tmp_path, baseline):
    store = run_with(tmp_path, "kind: lesion\nat: 50\nregions: [lh-superiorfrontal]\n")
    before, after = regions(baseline), regions(store)
    assert np.array_equal(before.rate[:50].values, after.rate[:50].values)
    assert mean_rate(before, 60, 200)[FRONTAL] > 5
    assert np.all(after.rate.sel(time=slice(55, 200)).values[:, FRONTAL] == 0)
    gid, time = spikes(store)
    assert not np.any((gid // 20 == 2) & (time > 55))


def test_tract_lesion_cuts_the_long_range_input(tmp_path, baseline):
    """With only long-range input, cutting every tract into a region leaves it silent."""
    only_long_range = ["brain.local=[]", "brain.background={}", "brain.long_range.weight=0.01"]
    drive = (
        "stimuli=[{kind: iclamp, cell: 'lh-p*.pyr', location: soma(0.5), delay: 0, duration: 200, "
        "amplitude: 0.5}]"
    )
    tracts = ", ".join(
        f"{{source: {s}, target: rh-postcentral, scale: 0, both_ways: false}}"
        for s in (
            "lh-precentral",
            "lh-postcentral",
            "lh-superiorfrontal",
            "rh-precentral",
            "rh-superiorfrontal",
        )
    )
    cut = run_with(tmp_path, f"kind: lesion\nat: 0\ntracts: [{tracts}]\n", [*only_long_range, drive])
    intact = tmp_path / "intact.zarr"
    simulate(SMALL, [*only_long_range, drive], output=intact)
    assert mean_rate(regions(intact), 0, 200)[4] > 1
    assert mean_rate(regions(cut), 0, 200)[4] == 0
    assert mean_rate(regions(cut), 0, 200)[0] > 1  # the driven regions still fire


def test_patient_is_recorded_in_the_provenance(tmp_path):
    patient = tmp_path / "p.yaml"
    patient.write_text("id: P-42\nlesions: {regions: [rh-postcentral]}\n")
    store = tmp_path / "p.zarr"
    simulate(SMALL, ["simulation.tstop=5"], output=store, patient=patient)
    attrs = zarr.open_group(store, mode="r").attrs.asdict()
    provenance = attrs["provenance"]
    assert provenance["patient_id"] == "P-42" and provenance["overlay_files"] == {"patient": str(patient)}
    assert provenance["connectome"].endswith("synthetic_68.zip")
    assert "rh-postcentral" not in regions(store).region.values
    assert attrs["counts"]["cells"] == 100
