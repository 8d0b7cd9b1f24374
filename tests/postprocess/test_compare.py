"""brainsim.postprocess.compare on small synthetic summary stores with known answers."""

import math
import warnings

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from brainsim.errors import ConfigError, StoreError
from brainsim.postprocess.compare import (
    EPS,
    cohen_d,
    compare,
    fc_distance,
    format_comparison,
    region_features,
)
from brainsim.postprocess.layout import BANDS, FORMAT, FORMAT_VERSION

REGIONS = ["L.A", "L.B", "R.A", "R.B"]
N_FEATURES = 5 + len(BANDS)  # mean_rate, cv_isi, synchrony, hypersynchrony, ei_balance, relative band powers
DIMS = {
    "mean_rate": ("region",),
    "cv_isi": ("region",),
    "synchrony": ("region",),
    "band_power": ("region", "band"),
    "window_rate": ("window", "region"),
    "hypersynchrony": ("window", "region"),
    "ei_balance": ("window", "region"),
    "fc_rate": ("region", "region2"),
}


def summary(window_rate=None, *, regions=REGIONS, source_name="twin", fmt=FORMAT, **variables) -> xr.Dataset:
    """A summary Dataset laid out as in postprocess/layout.py, holding the variables compare reads.

    window_rate is (window, region) in Hz (default 5 windows); mean_rate defaults to its window mean; any
    other variable of DIMS may be given as an array of its layout shape."""
    n = len(regions)
    if window_rate is None:
        window_rate = np.arange(1.0, n + 1) + np.arange(5.0)[:, None]
    window_rate = np.asarray(window_rate, dtype=float)
    n_windows = window_rate.shape[0]
    values = {
        "mean_rate": window_rate.mean(axis=0),
        "cv_isi": np.linspace(0.8, 1.2, n),
        "synchrony": np.linspace(0.1, 0.4, n),
        "band_power": np.outer(np.arange(1.0, n + 1), np.arange(len(BANDS), 0, -1.0)),
        "window_rate": window_rate,
        "hypersynchrony": np.tile(np.linspace(0.1, 0.4, n), (n_windows, 1)),
        "ei_balance": np.tile(np.linspace(-0.2, 0.4, n), (n_windows, 1)),
        "fc_rate": np.corrcoef(np.random.default_rng(0).normal(size=(n, 40))),
        **variables,
    }
    coords = {
        "region": regions,
        "region2": regions,
        "hemisphere": ("region", ["left" if r.startswith("L") else "right" for r in regions]),
        "n_cells": ("region", np.full(n, 100, dtype=np.int64)),
        "window": np.arange(n_windows) * 100.0,
        "band": list(BANDS),
        "band_low": ("band", [low for low, _ in BANDS.values()]),
        "band_high": ("band", [high for _, high in BANDS.values()]),
    }
    attrs = {"format": fmt, "format_version": FORMAT_VERSION, "source_name": source_name, "window_ms": 100.0}
    data = {name: (DIMS[name], np.asarray(value, dtype=float)) for name, value in values.items()}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def store(ds: xr.Dataset, path):
    """Write ds as a consolidated Zarr v3 store at path; returns path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's notes on fixed-length strings and consolidated metadata
        ds.to_zarr(path, zarr_format=3, consolidated=True)
    return path


def rate_rows(comparison, run):
    rows = comparison.differences
    return rows[(rows.run == run) & (rows.feature == "mean_rate")].set_index("region")


# --- differences and effect sizes ---


def test_shifted_region_gives_known_difference_and_cohen_d(tmp_path):
    baseline = np.tile([1.0, 2.0, 3.0, 4.0, 5.0], (4, 1)).T + np.array([0.0, 10.0, 20.0, 30.0])
    treated = baseline.copy()
    treated[:, 1] += 2.0  # region L.B, every window 2 Hz higher
    base = store(summary(baseline, source_name="patient"), tmp_path / "base.zarr")
    drug = store(summary(treated, source_name="drug"), tmp_path / "drug.zarr")

    rows = rate_rows(compare([base, drug]), "drug")

    # windows 1..5 Hz: mean 3, sample variance 10/4 = 2.5 in both runs, so the pooled SD is sqrt(2.5)
    assert rows.loc["L.B", "baseline"] == pytest.approx(13.0)
    assert rows.loc["L.B", "treated"] == pytest.approx(15.0)
    assert rows.loc["L.B", "difference"] == pytest.approx(2.0)
    assert rows.loc["L.B", "relative_difference"] == pytest.approx(2.0 / 13.0)
    assert rows.loc["L.B", "cohen_d"] == pytest.approx(2.0 / math.sqrt(2.5))
    assert rows.loc["L.B", "p_value"] < 0.1
    for region in ["L.A", "R.A", "R.B"]:
        assert rows.loc[region, "difference"] == pytest.approx(0.0)
        assert rows.loc[region, "cohen_d"] == pytest.approx(0.0, abs=1e-12)
        assert rows.loc[region, "p_value"] == pytest.approx(1.0)


def test_cohen_d_and_welch_p_with_unequal_samples(tmp_path):
    baseline = np.tile([1.0, 2.0, 3.0, 4.0, 5.0], (4, 1)).T
    treated = np.tile([2.0, 4.0, 6.0, 8.0, 10.0, 12.0], (4, 1)).T  # six windows: a longer run
    base = store(summary(baseline), tmp_path / "base.zarr")
    drug = store(summary(treated, source_name="drug"), tmp_path / "drug.zarr")

    rows = rate_rows(compare([base, drug]), "drug")

    # baseline: n 5, mean 3, var 2.5; treated: n 6, mean 7, var 70 / 5 = 14
    pooled = math.sqrt((4 * 2.5 + 5 * 14.0) / (5 + 6 - 2))
    se2_t, se2_b = 14.0 / 6, 2.5 / 5
    t = (7.0 - 3.0) / math.sqrt(se2_t + se2_b)
    df = (se2_t + se2_b) ** 2 / (se2_t**2 / 5 + se2_b**2 / 4)
    assert rows.cohen_d.to_numpy() == pytest.approx(np.full(4, 4.0 / pooled))
    assert rows.p_value.to_numpy() == pytest.approx(np.full(4, 2 * stats.t.sf(t, df)))


def test_cohen_d_is_nan_without_spread_or_with_one_window():
    flat = np.full((4, 2), 3.0)
    assert np.isnan(cohen_d(flat + 1.0, flat)).all()
    one = np.array([[1.0, 2.0]])
    assert np.isnan(cohen_d(one, np.array([[1.0, 2.0], [3.0, 4.0]]))).all()
    with_nan = np.array([[1.0], [2.0], [3.0], [np.nan]])
    assert cohen_d(with_nan + 1.0, with_nan)[0] == pytest.approx(1.0)  # 1 Hz shift over SD 1


def test_region_features_are_window_means_and_relative_band_power():
    ds = summary()
    ds["hypersynchrony"][0, 0] = np.nan  # a window without spikes
    features = region_features(ds)
    assert list(features.index) == REGIONS
    assert features.shape == (len(REGIONS), N_FEATURES)
    assert features.loc["L.A", "hypersynchrony"] == pytest.approx(0.1)
    assert features.loc["R.B", "ei_balance"] == pytest.approx(0.4)
    total = sum(range(1, len(BANDS) + 1))
    assert features.loc["L.B", "rel_power_delta"] == pytest.approx(len(BANDS) / total)
    relative = features[[f"rel_power_{band}" for band in BANDS]].sum(axis=1)
    assert relative.to_numpy() == pytest.approx(np.ones(len(REGIONS)))


# --- ranking ---


def shifted(target: xr.Dataset, mean_rate_shift: float, source_name: str) -> xr.Dataset:
    ds = target.copy(deep=True)
    ds["mean_rate"] = ds.mean_rate + mean_rate_shift
    ds.attrs["source_name"] = source_name
    return ds


def test_ranking_orders_treatments_by_known_distance_to_target(tmp_path):
    target = summary(
        source_name="healthy", mean_rate=np.array([2.0, 4.0, 6.0, 8.0])
    )  # SD over regions sqrt(5)
    paths = [
        store(shifted(target, 4.0, "patient"), tmp_path / "patient.zarr"),
        store(shifted(target, 2.0, "far"), tmp_path / "far.zarr"),
        store(shifted(target, 0.0, "same"), tmp_path / "same.zarr"),
        store(shifted(target, 0.5, "near"), tmp_path / "near.zarr"),
    ]
    healthy = store(target, tmp_path / "healthy.zarr")

    comparison = compare(paths, target=healthy)
    ranking = comparison.ranking

    assert list(ranking.run) == ["same", "near", "far", "patient"]
    assert list(ranking["rank"]) == [1, 2, 3, 4]
    assert comparison.target_name == "healthy"
    n_pairs = len(REGIONS) * N_FEATURES  # only the 4 mean_rate pairs differ, each by z = shift / sqrt(5)
    expected = {
        run: math.sqrt(len(REGIONS) * shift**2 / 5 / n_pairs)
        for run, shift in [("same", 0.0), ("near", 0.5), ("far", 2.0), ("patient", 4.0)]
    }
    distances = dict(zip(ranking.run, ranking.distance))
    assert distances == pytest.approx(expected)
    assert distances["same"] == pytest.approx(0.0, abs=1e-12)
    assert ranking.set_index("run").loc["patient", "role"] == "baseline"


def test_feature_without_spread_in_target_is_scaled_by_its_mean(tmp_path):
    target = summary(source_name="healthy", cv_isi=np.full(len(REGIONS), 2.0))
    run = target.copy(deep=True)
    run["cv_isi"] = run.cv_isi + 0.2  # 10 % of the target mean everywhere
    paths = [store(run, tmp_path / "run.zarr"), store(target, tmp_path / "same.zarr")]

    ranking = compare(paths, target=store(target, tmp_path / "healthy.zarr")).ranking

    distances = dict(zip(ranking.path, ranking.distance))
    n_pairs = len(REGIONS) * N_FEATURES
    assert distances[str(paths[0])] == pytest.approx(math.sqrt(len(REGIONS) * 0.1**2 / n_pairs))
    assert EPS < 0.2  # the floor only matters for features whose target mean is about 0


def test_fc_term_adds_one_minus_correlation(tmp_path):
    target = summary(source_name="healthy")
    run = target.copy(deep=True)
    run["fc_rate"] = -run.fc_rate  # off-diagonal pattern reversed: correlation -1
    paths = [store(target, tmp_path / "same.zarr"), store(run, tmp_path / "flipped.zarr")]

    ranking = compare(paths).ranking.set_index("path")
    flipped = ranking.loc[str(paths[1])]
    assert flipped.fc_distance == pytest.approx(2.0)
    assert flipped.distance == pytest.approx(flipped.feature_distance + 2.0)
    assert compare(paths, fc_weight=0.0).ranking.distance.max() == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(fc_distance(np.eye(2), np.eye(2)))  # one pair cannot be correlated


def test_default_target_is_the_baseline_and_names_are_made_unique(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = store(summary(source_name="twin"), tmp_path / "a" / "twin.zarr")
    drug = store(summary(source_name="twin", mean_rate=np.full(4, 9.0)), tmp_path / "b" / "twin.zarr")

    comparison = compare([base, drug])

    assert comparison.names == ["twin (a/twin)", "twin (b/twin)"]
    assert comparison.target_name == "twin (a/twin)"
    assert comparison.ranking.run.iloc[0] == "twin (a/twin)"
    assert comparison.ranking.distance.iloc[0] == 0.0


# --- output ---


def test_writes_csv_and_png(tmp_path):
    baseline = summary(source_name="patient")
    treated = summary(baseline.window_rate.values * 2, source_name="drug")
    paths = [store(baseline, tmp_path / "patient.zarr"), store(treated, tmp_path / "drug.zarr")]
    logged = []

    comparison = compare(paths, out=tmp_path / "out", log=logged.append)

    out = tmp_path / "out"
    assert comparison.files == [out / "differences.csv", out / "ranking.csv", out / "ranking.png"]
    assert logged == [f"wrote {path}" for path in comparison.files]
    differences = pd.read_csv(out / "differences.csv")
    assert len(differences) == len(REGIONS) * N_FEATURES
    assert list(differences.columns) == list(comparison.differences.columns)
    assert differences.difference.to_numpy() == pytest.approx(comparison.differences.difference.to_numpy())
    ranking = pd.read_csv(out / "ranking.csv")
    assert list(ranking.run) == ["patient", "drug"]
    image = matplotlib.image.imread(out / "ranking.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_format_comparison_lists_ranking_and_largest_effects(tmp_path):
    rates = np.tile([1.0, 2.0, 3.0, 4.0, 5.0], (4, 1)).T
    treated = rates + np.array([0.0, 0.5, 3.0, 1.0])  # R.A moves most, then R.B, then L.B
    paths = [
        store(summary(rates, source_name="patient"), tmp_path / "patient.zarr"),
        store(summary(treated, source_name="drug"), tmp_path / "drug.zarr"),
    ]

    text = format_comparison(compare(paths))

    blocks = [block.splitlines() for block in text.split("\n\n")]
    assert blocks[0][0].startswith("Distance to target 'patient'")
    assert [line.split()[1] for line in blocks[0][2:]] == ["patient", "drug"]
    assert blocks[1][0].startswith("drug vs baseline 'patient'")
    assert [line.split()[0] for line in blocks[1][2:]] == ["R.A", "R.B", "L.B", "L.A"]
    assert blocks[1][2].split()[1:] == ["3.00", "6.00", "+3.00", f"{3.0 / math.sqrt(2.5):+.2f}"]
    for block in blocks:
        assert len({len(line) for line in block[1:]}) == 1  # right-aligned last column: equal widths


# --- errors ---


def test_rejects_a_run_store_with_advice(tmp_path):
    run = store(summary(fmt="brainsim-run"), tmp_path / "run.zarr")
    good = store(summary(), tmp_path / "good.zarr")
    with pytest.raises(StoreError, match=r"run\.zarr: a run store .*brainsim summarize"):
        compare([good, run])


def test_rejects_other_formats_and_missing_stores(tmp_path):
    good = store(summary(), tmp_path / "good.zarr")
    other = store(summary(fmt="something-else"), tmp_path / "other.zarr")
    with pytest.raises(StoreError, match=r"other\.zarr: not a brainsim summary store"):
        compare([good, other])
    with pytest.raises(StoreError, match=r"missing\.zarr: no Zarr store"):
        compare([good, tmp_path / "missing.zarr"])
    with pytest.raises(StoreError, match=r"other\.zarr"):
        compare([good, good], target=other)
    (tmp_path / "good.zarr" / "zarr.json").write_text("{broken")
    with pytest.raises(StoreError, match=r"good\.zarr: unreadable summary store \(JSONDecodeError"):
        compare([good, other])


def test_regions_missing_from_a_store_are_left_out(tmp_path):
    """A patient's twin without a resected region is compared on the regions all stores share."""
    good = store(summary(), tmp_path / "good.zarr")
    resected = summary(regions=["L.A", "L.B", "R.B"])
    shorter = store(resected, tmp_path / "shorter.zarr")
    lines = []
    result = compare([good, shorter], log=lines.append)
    assert set(result.differences.region) == {"L.A", "L.B", "R.B"}
    assert any("good.zarr: 1 region(s) not in every store, left out: R.A" in line for line in lines)
    reference = compare([store(summary().sel(region=["L.A", "L.B", "R.B"], region2=["L.A", "L.B", "R.B"]),
                               tmp_path / "same.zarr"), shorter])  # fmt: skip
    np.testing.assert_allclose(result.ranking.distance, reference.ranking.distance)
    elsewhere = store(summary(regions=["X", "Y"]), tmp_path / "elsewhere.zarr")
    with pytest.raises(StoreError, match=r"good\.zarr: shares no region label with .*elsewhere\.zarr"):
        compare([good, elsewhere])


def test_needs_at_least_two_stores(tmp_path):
    good = store(summary(), tmp_path / "good.zarr")
    with pytest.raises(ConfigError, match="got 1; allowed: a baseline and at least one treated"):
        compare([good])
    with pytest.raises(ConfigError, match="got 0"):
        compare([])


def test_feature_near_zero_everywhere_in_target_does_not_dominate(tmp_path):
    """Hypersynchrony about 0 in every region of the target: a change of 0.01 counts as 0.01 / EPS."""
    target = summary(source_name="healthy", hypersynchrony=np.full((5, len(REGIONS)), 1e-4))
    run = target.copy(deep=True)
    run["hypersynchrony"] = run.hypersynchrony + 0.01
    paths = [store(target, tmp_path / "same.zarr"), store(run, tmp_path / "run.zarr")]

    distances = dict(zip(compare(paths).ranking.path, compare(paths).ranking.distance))

    n_pairs = len(REGIONS) * N_FEATURES
    assert distances[str(paths[1])] == pytest.approx(math.sqrt(len(REGIONS) * (0.01 / EPS) ** 2 / n_pairs))
