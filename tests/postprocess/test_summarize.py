"""brainsim summarize on run stores written by the run writer with known contents: Poisson trains of
known rate, lockstep populations, regular firing, sinusoidal region signals; and on a real run."""

import json

import numpy as np
import pytest
import xarray as xr
import zarr

from brainsim.cli import EXIT_ALERT, EXIT_CONFIG, EXIT_FAILED, main
from brainsim.io.zarr_store import RunWriter
from brainsim.postprocess import signals, spikes
from brainsim.postprocess.summarize import summarize

TSTOP = 4000.0  # ms
LABELS = ["lA", "lB", "rC", "rD", "rE"]
CENTRES = np.array(
    [[-40.0, 30.0, 20.0], [-40.0, -60.0, 10.0], [40.0, 30.0, 20.0], [40.0, -60.0, 10.0], [20.0, 0.0, 40.0]]
)
# populations: (region, cell type, count, kind)
POPS = [("lA", "e", 40, "excitatory"), ("lA", "i", 10, "inhibitory"), ("lB", "e", 30, "excitatory"),
        ("rC", "e", 20, "excitatory"), ("rD", "e", 20, "excitatory"),
        ("rE", "e", 10, "excitatory")]  # fmt: skip
ALPHA_HZ, GAMMA_HZ, AMPLITUDE = 10.0, 40.0, 2.0  # signals of lA and lB (mV)
SUMMARY_DEFAULTS = {"bin": None, "window": 50.0, "tr": 100.0, "alerts": []}  # a run config's summary section


def _populations():
    first, table = 0, []
    for region, cell_type, count, kind in POPS:
        table.append(
            {
                "name": f"{region}.{cell_type}",
                "region": region,
                "cell_type": cell_type,
                "first_gid": first,
                "count": count,
                "kind": kind,
            }
        )
        first += count
    return table


def _spike_trains(rng):
    """lA: e Poisson 20 Hz, i Poisson 40 Hz; lB: Poisson 8 Hz until 2000 ms, 30 Hz after; rC: all cells
    in lockstep (one shared 10 Hz Poisson train); rD: each cell regular at 10 Hz; rE: every cell fires
    rC's train (rC and rE perfectly correlated)."""
    pops = _populations()
    gids, times = [], []

    def poisson(first, count, rate, start, stop):
        for g in range(first, first + count):
            n = rng.poisson(rate * (stop - start) / 1000.0)
            gids.append(np.full(n, g))
            times.append(np.sort(rng.uniform(start, stop, n)))

    poisson(pops[0]["first_gid"], 40, 20.0, 0.0, TSTOP)
    poisson(pops[1]["first_gid"], 10, 40.0, 0.0, TSTOP)
    poisson(pops[2]["first_gid"], 30, 8.0, 0.0, TSTOP / 2)
    poisson(pops[2]["first_gid"], 30, 30.0, TSTOP / 2, TSTOP)
    shared = np.sort(rng.uniform(0.0, TSTOP, rng.poisson(10.0 * TSTOP / 1000.0)))
    for g in [
        *range(pops[3]["first_gid"], pops[3]["first_gid"] + 20),
        *range(pops[5]["first_gid"], pops[5]["first_gid"] + 10),
    ]:
        gids.append(np.full(shared.size, g))
        times.append(shared)
    for g in range(pops[4]["first_gid"], pops[4]["first_gid"] + 20):
        regular = np.arange(rng.uniform(0, 100.0), TSTOP, 100.0) + rng.normal(0, 0.5, 40)[: int(TSTOP / 100)]
        regular = np.sort(regular[(regular >= 0) & (regular < TSTOP)])
        gids.append(np.full(regular.size, g))
        times.append(regular)
    gid, time = np.concatenate(gids), np.concatenate(times)
    order = np.lexsort((gid, time))
    return gid[order], time[order]


def write_run(path, *, status="complete", t_reached=TSTOP, alerts=(), seed=1, sc=None):
    """A run store as the engine writes one: spikes, regions group (v_mean sinusoids), populations; sc:
    (weights, tract lengths) of the regions, or None for a store without structural connectivity."""
    rng = np.random.default_rng(seed)
    config = {
        "name": "synthetic_twin",
        "simulation": {"tstop": TSTOP},
        "summary": {**SUMMARY_DEFAULTS, "alerts": list(alerts)},
    }
    counts = {"cells": sum(p[2] for p in POPS), "compartments": 140, "equations": 560}
    store = RunWriter.create(
        path, config=config, counts=counts, config_hash="abc", populations=_populations()
    )
    n_bins = int(TSTOP)
    n_cells = [50, 30, 20, 20, 10]
    store.add_regions(
        bin_ms=1.0, n_bins=n_bins, labels=LABELS, hemisphere=["left", "left", "right", "right", "right"],
        centres=CENTRES, n_cells=n_cells, sc_weights=None if sc is None else sc[0],
        sc_tract_lengths=None if sc is None else sc[1],
    )  # fmt: skip
    t = (np.arange(n_bins) + 0.5) * 1e-3  # s, bin middles
    v = np.full((n_bins, len(LABELS)), -65.0)
    v[:, 0] += AMPLITUDE * np.sin(2 * np.pi * ALPHA_HZ * t)
    v[:, 1] += AMPLITUDE * np.sin(2 * np.pi * GAMMA_HZ * t)
    gid, time = _spike_trains(rng)
    keep = time < t_reached
    store.append_spikes(gid[keep], time[keep])
    rows = int(t_reached)
    store.write_regions(0, np.zeros((rows, len(LABELS))), v[:rows])
    store.flush()
    store.publish(t_reached)
    if status == "complete":
        store.finish("complete")
    else:
        store.finish(status, error="stopped by SIGTERM")
    return path, gid, time


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    run, gid, time = write_run(folder / "run.zarr")
    result = summarize(run, folder / "run.summary.zarr", scheduler="sync", log=lambda line: None)
    return xr.open_zarr(result.path), gid, time, run


def test_rates_of_poisson_trains(synthetic):
    ds, gid, time, _ = synthetic
    assert list(ds.region.values) == LABELS
    expected_lA = (40 * 20.0 + 10 * 40.0) / 50
    # Poisson counts: the SD of a region's mean rate is sqrt(rate / (n T)).
    assert abs(float(ds.mean_rate.sel(region="lA")) - expected_lA) < 4 * np.sqrt(expected_lA / (50 * 4.0))
    late = float(ds.rate.sel(region="lB", time=slice(2000, 4000)).mean())
    early = float(ds.rate.sel(region="lB", time=slice(0, 1999)).mean())
    assert abs(early - 8.0) < 4 * np.sqrt(8.0 / (30 * 2.0)) and abs(late - 30.0) < 4 * np.sqrt(30.0 / 60)
    assert int(ds.attrs["n_spikes"]) == gid.size
    total = ds.rate.sum("time") * 1e-3 * ds.n_cells
    assert int(round(float(total.sum()))) == gid.size  # every spike counted once


def test_irregularity(synthetic):
    ds = synthetic[0]
    assert abs(float(ds.cv_isi.sel(region="lA")) - 1.0) < 0.1  # Poisson: CV 1
    assert float(ds.cv_isi.sel(region="rD")) < 0.05  # 100 ms period, 0.5 ms jitter


def test_synchrony_and_hypersynchrony(synthetic):
    ds = synthetic[0]
    assert float(ds.synchrony.sel(region="rC")) == pytest.approx(1.0, abs=0.02)  # lockstep
    assert float(ds.synchrony.sel(region="lA")) < 0.1  # independent: about 1/50
    hyper = ds.hypersynchrony
    assert float(hyper.sel(region="rC").mean()) > 0.95
    assert abs(float(hyper.sel(region="lA").mean())) < 0.05


def test_ei_balance(synthetic):
    ds = synthetic[0]
    ei = ds.ei_balance.sel(region="lA")
    assert float(ei.mean()) == pytest.approx((20 - 40) / (20 + 40), abs=0.05)
    assert bool(ds.ei_balance.sel(region="lB").isnull().all())  # no inhibitory cells


def test_band_power_of_sinusoids(synthetic):
    ds = synthetic[0]
    power = ds.band_power
    assert power.attrs["units"] == "mV^2"
    # A sinusoid of amplitude A has power A^2 / 2, all in its band.
    assert float(power.sel(region="lA", band="alpha")) == pytest.approx(AMPLITUDE**2 / 2, rel=0.1)
    assert float(power.sel(region="lB", band="gamma")) == pytest.approx(AMPLITUDE**2 / 2, rel=0.1)
    assert float(power.sel(region="lA", band="gamma")) < 1e-3
    assert float(power.sel(region="rC").sum()) < 1e-6  # a constant signal


def test_eeg_follows_the_nearest_region(synthetic):
    ds = synthetic[0]
    alpha = ds.band_power_eeg.sel(band="alpha").values
    position = np.stack([ds[f"electrode_{a}"].values for a in "xyz"], axis=1)
    distance = np.linalg.norm(position - CENTRES[0], axis=1)
    assert alpha[np.argmin(distance)] > 3 * alpha[np.argmax(distance)]
    assert ds.eeg.shape == (int(TSTOP), 19)
    assert np.allclose(ds.eeg.mean("electrode"), 0, atol=1e-5)  # average reference


def test_functional_connectivity(synthetic):
    ds = synthetic[0]
    fc = ds.fc_rate
    assert float(fc.sel(region="rC", region2="rC")) == pytest.approx(1.0)
    assert float(fc.sel(region="rC", region2="rE")) == pytest.approx(1.0)  # the same spike train
    assert float(ds.fc_bold.sel(region="rC", region2="rE")) == pytest.approx(1.0)
    assert float(fc.sel(region="lA", region2="rC")) < 0.2
    assert np.allclose(fc.values, fc.values.T, equal_nan=True)
    # lB's rate steps up half-way: its BOLD falls below its mean level before, and turns up about a
    # second after the step (the hemodynamic lag)
    bold = ds.bold.sel(region="lB").values
    half = bold.size // 2
    assert np.all(np.diff(bold[1:half]) < 0) and bold[half] < -0.2
    assert half < np.argmin(bold) < half + 20 and bold[-1] > bold.min() + 0.1
    assert np.abs(ds.bold.sel(region="rD").values).max() < 0.05  # steady rate, steady BOLD
    assert ds.bold.sizes["bold_time"] == int(TSTOP / 100) + 1


def test_raster_sample(synthetic):
    ds, gid, time, _ = synthetic
    sample_gid, sample_time = ds.raster_gid.values, ds.raster_time.values
    assert sample_gid.size > 0 and np.all(np.diff(sample_time) >= 0)
    chosen = np.isin(gid, np.unique(sample_gid))
    assert np.array_equal(np.sort(time[chosen]), np.sort(sample_time))
    assert set(ds.raster_region.values) == {0, 1, 2, 3, 4}


def test_provenance_and_attrs(synthetic):
    ds, _, _, run = synthetic
    assert ds.attrs["format"] == "brainsim-summary" and ds.attrs["source"] == str(run.resolve())
    assert ds.attrs["source_config_hash"] == "abc" and ds.attrs["source_status"] == "complete"
    assert ds.rate.attrs["units"] == "Hz" and ds.time.attrs["units"] == "ms"
    assert json.loads(ds.attrs["alerts"]) == []


def test_many_tasks_give_the_same_summary(synthetic, tmp_path, monkeypatch):
    """Small tasks and blocks: merging per-cell statistics and assembling counts across task edges."""
    ds, _, _, run = synthetic
    monkeypatch.setattr(spikes, "TASK_SPIKES", 997)
    monkeypatch.setattr(spikes, "BLOCK_BYTES", 5000)
    small = xr.open_zarr(summarize(run, tmp_path / "s.zarr", scheduler="sync", log=lambda line: None).path)
    for name in ("rate", "cv_isi", "synchrony", "hypersynchrony", "ei_balance", "band_power", "bold"):
        np.testing.assert_allclose(small[name].values, ds[name].values, rtol=1e-9, atol=1e-12, err_msg=name)


def test_local_cluster_of_two_workers_agrees(synthetic, tmp_path):
    ds, _, _, run = synthetic
    other = summarize(run, tmp_path / "d.zarr", scheduler="local", workers=2, log=lambda line: None)
    np.testing.assert_allclose(xr.open_zarr(other.path).rate.values, ds.rate.values)


def test_named_variables_are_those_of_the_whole_summary(synthetic, tmp_path):
    """`variables` writes only the variables named (and those an alert rule watches), with the values of
    the whole summary; a name the summary does not have is an error naming it."""
    from brainsim.errors import ConfigError

    ds, _, _, run = synthetic
    rule = {"name": "quiet", "variable": "window_rate", "above": None, "below": 0.0, "for": 100.0,
            "regions": "all", "after": 0.0}  # fmt: skip
    part = summarize(run, tmp_path / "p.zarr", scheduler="sync", variables=["rate", "eeg"], alerts=[rule],
                     log=lambda line: None)  # fmt: skip
    written = xr.open_zarr(part.path)
    assert sorted(written.data_vars) == ["eeg", "rate", "window_rate"]
    for name in written.data_vars:
        np.testing.assert_array_equal(written[name].values, ds[name].values, err_msg=name)
    assert list(written["electrode"].values) == list(ds["electrode"].values)
    with pytest.raises(ConfigError, match="fc_eeg"):
        summarize(
            run, tmp_path / "q.zarr", scheduler="sync", variables=["rate", "fc_eeg"], log=lambda line: None
        )


def test_alerts_from_config_and_file(tmp_path, capsys):
    rules = [{"name": "seizure-like", "variable": "hypersynchrony", "above": 0.8, "below": None, "for": 200.0,
              "regions": "all"}]  # fmt: skip
    run, _, _ = write_run(tmp_path / "run.zarr", alerts=rules)
    more = tmp_path / "alerts.yaml"
    more.write_text("alerts:\n  - {name: too fast, variable: rate, above: 100000}\n")
    code = main(["summarize", str(run), "--scheduler", "sync", "--alerts", str(more), "--fail-on-alert"])
    out = capsys.readouterr().out
    assert code == EXIT_ALERT
    assert "ALERT seizure-like: rC hypersynchrony from" in out and "too fast" not in out
    ds = xr.open_zarr(tmp_path / "run.summary.zarr")
    matches = json.loads(ds.attrs["alerts"])
    # rC and rE are in lockstep wherever they fire (windows without spikes have no synchrony: no match)
    assert {(m["rule"], m["region"]) for m in matches} == {("seizure-like", "rC"), ("seizure-like", "rE")}
    for m in matches:
        hyper = ds.hypersynchrony.sel(region=m["region"]).values
        assert m["end"] - m["start"] >= 200 and m["peak"] == pytest.approx(1.0)
        inside = hyper[int(m["start"] / 50) : int(m["end"] / 50)]
        assert np.all(inside > 0.8)
    assert main(["summarize", str(run), "--scheduler", "sync", "--overwrite"]) == 0  # no --fail-on-alert


def test_alert_runs_split_by_time_blocks(tmp_path, monkeypatch):
    """A match longer than the alert reader's block is one match, with its true start, end and peak."""
    from brainsim.postprocess import alerts

    rule = {
        "name": "fast",
        "variable": "rate",
        "above": 20.0,
        "below": None,
        "for": 1000.0,
        "regions": ["lB"],
    }
    rate = np.r_[np.full(1500, 8.0), np.full(2500, 31.0)]
    rate[3000] = 45.0
    ds = xr.Dataset(
        {"rate": (("time", "region"), np.stack([rate, rate * 0], axis=1))},
        coords={"time": np.arange(4000.0), "region": ["lB", "x"]},
        attrs={"bin": 1.0},
    )
    monkeypatch.setattr(alerts, "BLOCK_ROWS", 333)
    assert alerts.evaluate(ds, [rule]) == [
        {"rule": "fast", "variable": "rate", "region": "lB", "start": 1500.0, "end": 4000.0, "peak": 45.0}
    ]
    assert alerts.evaluate(ds, [{**rule, "for": 2600.0}]) == []
    late = alerts.evaluate(ds, [{**rule, "after": 2000.0}])
    assert [(m["start"], m["end"], m["peak"]) for m in late] == [(2000.0, 4000.0, 45.0)]


def test_bad_alert_rules_are_clear_errors(tmp_path, capsys):
    run, _, _ = write_run(tmp_path / "run.zarr")
    bad = tmp_path / "bad.yaml"
    bad.write_text("alerts:\n  - {name: x, variable: rate, above: 1, regions: [nowhere]}\n")
    assert main(["summarize", str(run), "--scheduler", "sync", "--alerts", str(bad)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "'--alerts[0].regions': got 'nowhere'" in err and "unknown region" in err and "lA" in err
    bad.write_text("alerts:\n  - {name: x, variable: speed, above: 1}\n")
    assert main(["summarize", str(run), "--scheduler", "sync", "--alerts", str(bad)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert str(bad) in err and "alerts[0].variable" in err and "hypersynchrony" in err
    bad.write_text("alerts:\n  - {name: x, variable: rate, above: 1, below: 0}\n")
    assert main(["summarize", str(run), "--scheduler", "sync", "--alerts", str(bad)]) == EXIT_CONFIG
    assert "exactly one of 'above' and 'below'" in capsys.readouterr().err
    bad.write_text("- {name: x}\n")
    assert main(["summarize", str(run), "--scheduler", "sync", "--alerts", str(bad)]) == EXIT_CONFIG
    assert f"(from {bad})" in capsys.readouterr().err
    missing = tmp_path / "missing.yaml"
    assert main(["summarize", str(run), "--scheduler", "sync", "--alerts", str(missing)]) == EXIT_CONFIG
    assert f"'--alerts': got '{missing}'" in capsys.readouterr().err


def test_interrupted_run_is_summarised_up_to_where_it_stopped(tmp_path, capsys):
    run, _, _ = write_run(tmp_path / "run.zarr", status="interrupted", t_reached=1000.0)
    assert main(["summarize", str(run), "--scheduler", "sync"]) == 0
    assert "the run is 'interrupted'; summarising its first 1000 ms" in capsys.readouterr().err
    ds = xr.open_zarr(tmp_path / "run.summary.zarr")
    assert ds.sizes["time"] == 1000 and ds.attrs["source_status"] == "interrupted"
    assert ds.attrs["source_t_reached"] == 1000.0


def test_existing_output_and_wrong_inputs(tmp_path, capsys):
    run, _, _ = write_run(tmp_path / "run.zarr")
    assert main(["summarize", str(run), "--scheduler", "sync"]) == 0
    assert main(["summarize", str(run), "--scheduler", "sync"]) == EXIT_FAILED
    assert "run.summary.zarr: already exists; pass --overwrite" in capsys.readouterr().err
    summary = tmp_path / "run.summary.zarr"
    assert main(["summarize", str(summary), "--scheduler", "sync", "-o", "x.zarr"]) == EXIT_FAILED
    assert "run.summary.zarr: not a run store (format 'brainsim-summary'" in capsys.readouterr().err
    assert main(["summarize", str(tmp_path / "nowhere.zarr"), "--scheduler", "sync"]) == EXIT_FAILED
    assert "nowhere.zarr: not a run store (nothing there" in capsys.readouterr().err
    assert (
        main(["summarize", str(run), "--scheduler", "sync", "--window", "2.5", "--overwrite"]) == EXIT_CONFIG
    )
    assert "'--window': got 2.5; allowed: a multiple of the bin (1 ms)" in capsys.readouterr().err
    long_bins = ["--bin", "5000", "--window", "5000", "--tr", "5000", "--overwrite"]
    assert main(["summarize", str(run), "--scheduler", "sync", *long_bins]) == EXIT_FAILED
    assert "holds 4000 ms of output, less than one bin (5000 ms)" in capsys.readouterr().err
    assert main(["summarize", str(run), "--scheduler", "nowhere", "--overwrite"]) == EXIT_CONFIG
    assert "'--scheduler': got 'nowhere'" in capsys.readouterr().err


def steady(u):
    """s, f, v, q and BOLD of the balloon at rest under the constant drive u."""
    f = 1 + u / signals.GAMMA
    v = f**signals.ALPHA
    q = v * (1 - (1 - signals.RHO) ** (1 / f)) / signals.RHO
    return 0.0, f, v, q, bold_of(f, v, q)


def bold_of(f, v, q):
    return 100 * signals.V0 * (signals.K1 * (1 - q) + signals.K2 * (1 - q / v) + signals.K3 * (1 - v))


def balloon_numpy(u, dt, every):
    """NumPy twin of signals.balloon: the same Euler steps, vectorised over regions."""
    s, f, v, q, rest = steady(u.mean(axis=0))
    s = np.zeros(u.shape[1])
    out = [np.zeros(u.shape[1])]
    for i in range(u.shape[0]):
        ds = u[i] - signals.KAPPA * s - signals.GAMMA * (f - 1)
        dv = (f - v ** (1 / signals.ALPHA)) / signals.TAU
        dq = (
            f * (1 - (1 - signals.RHO) ** (1 / f)) / signals.RHO - v ** (1 / signals.ALPHA) * q / v
        ) / signals.TAU
        s, f, v, q = s + dt * ds, f + dt * s, v + dt * dv, q + dt * dq
        if (i + 1) % every == 0:
            out.append(bold_of(f, v, q) - rest)
    return np.array(out)


def test_balloon_kernel_matches_numpy_and_steady_state():
    rng = np.random.default_rng(3)
    u = rng.uniform(0, 0.6, (3000, 3))
    np.testing.assert_allclose(
        signals.balloon(u, 1e-3, 10), balloon_numpy(u, 1e-3, 10), rtol=1e-10, atol=1e-13
    )
    assert np.abs(signals.balloon(np.full((5000, 2), 0.3), 1e-3, 100)).max() < 1e-12  # at rest throughout
    # A step of the drive from 0 to 0.2 (mean 0.1): the BOLD settles at the analytic difference.
    u = np.r_[np.zeros(30_000), np.full(60_000, 0.2)][:, None]
    out = signals.balloon(u, 1e-3, 90_000)
    assert out[-1, 0] == pytest.approx(steady(0.2)[4] - steady(u.mean())[4], rel=1e-3)
    assert out[-1, 0] > 0  # more activity, more BOLD


def test_real_run_summary_matches_the_engines_region_rates(tmp_path):
    """A small brain run: the rates the summary derives from the spikes equal the rates the engine
    reduced across ranks during the run."""
    from support import simulate

    _, store = simulate("tests/data/small_brain.yaml", output=tmp_path / "run.zarr")
    code = main(["summarize", str(store), "--scheduler", "threads"])
    assert code == 0
    ds = xr.open_zarr(tmp_path / "run.summary.zarr")
    run_regions = xr.open_zarr(store, group="regions")
    assert list(ds.region.values) == list(run_regions.region.values)
    np.testing.assert_allclose(ds.rate.values, run_regions.rate.values, rtol=1e-6)
    assert np.all(ds.n_excitatory.values == 16) and np.all(ds.n_inhibitory.values == 4)
    assert np.isfinite(ds.cv_isi.values).all() and np.isfinite(ds.band_power.sel(band="gamma")).all()
    assert np.isfinite(ds.eeg.values).all() and ds.signal.attrs["units"] == "mV"
    assert zarr.open_group(tmp_path / "run.summary.zarr").attrs["source_name"] == "small_brain"


def test_a_run_written_again_at_the_same_path_is_read_anew(tmp_path):
    """Summaries in one process of two different runs written one after the other at the same path (as a
    follower's windows or a fit's members may be) each see their own spikes."""
    import shutil

    first, _, _ = write_run(tmp_path / "run.zarr", seed=1)
    a = summarize(first, tmp_path / "a.zarr", scheduler="sync", log=lambda line: None)
    shutil.rmtree(first)
    write_run(tmp_path / "run.zarr", seed=2, t_reached=TSTOP / 2, status="interrupted")
    b = summarize(first, tmp_path / "b.zarr", scheduler="sync", log=lambda line: None)
    rate_a, rate_b = (xr.open_zarr(x.path)["rate"] for x in (a, b))
    assert rate_b.sizes["time"] < rate_a.sizes["time"]
    assert not np.array_equal(rate_a.values[: rate_b.sizes["time"]], rate_b.values)


def test_cell_statistics_kernel_matches_numpy_twin():
    rng = np.random.default_rng(7)
    gid = rng.integers(0, 300, 20_000)
    time = np.sort(rng.uniform(0, 1000, gid.size))
    fast, twin = spikes.cell_stats(gid, time, 400), spikes.cell_stats_numpy(gid, time)
    for name in ("gid", "n", "first", "last", "isi_sum", "isi_sq"):
        np.testing.assert_allclose(getattr(fast, name), getattr(twin, name), rtol=1e-12, err_msg=name)
    # Split anywhere, merged: the same as in one piece (the ISI across the split included).
    merged = spikes.cell_stats(gid[:7_777], time[:7_777], 400).merge(
        spikes.cell_stats(gid[7_777:], time[7_777:], 400)
    )
    for name in ("gid", "n", "first", "last", "isi_sum", "isi_sq"):
        np.testing.assert_allclose(getattr(merged, name), getattr(twin, name), rtol=1e-9, err_msg=name)


def test_run_without_a_brain_has_a_region_per_population(tmp_path):
    """Populations outside a brain are the summary's regions; their signal is the smoothed rate."""
    rng = np.random.default_rng(2)
    pops = [{"name": n, "region": None, "cell_type": n, "first_gid": f, "count": 50, "kind": k}
            for n, f, k in (("exc", 0, "excitatory"), ("inh", 50, "inhibitory"))]  # fmt: skip
    config = {"name": "net", "simulation": {"tstop": 1000.0}, "summary": SUMMARY_DEFAULTS}
    counts = {"cells": 100, "compartments": 100, "equations": 400}
    store = RunWriter.create(tmp_path / "net.zarr", config=config, counts=counts, populations=pops)
    n = rng.poisson(np.r_[np.full(50, 10.0), np.full(50, 30.0)])
    gid = np.repeat(np.arange(100), n)
    time = rng.uniform(0, 1000.0, gid.size)
    store.append_spikes(gid, time)
    store.finish("complete", t_reached=1000.0)
    ds = xr.open_zarr(summarize(tmp_path / "net.zarr", scheduler="sync", log=lambda line: None).path)
    assert list(ds.region.values) == ["exc", "inh"] and ds.sizes["electrode"] == 0
    np.testing.assert_allclose(ds.mean_rate.values, [n[:50].sum() / 50, n[50:].sum() / 50])
    assert ds.signal.attrs["units"] == "Hz" and "alpha kernel" in ds.signal.attrs["signal_source"]
    # the alpha kernel keeps the mean: the signal's mean is the rate's (up to the start-up ramp)
    np.testing.assert_allclose(ds.signal[50:].mean("time"), ds.rate[50:].mean("time"), rtol=0.05)
    assert ds.n_excitatory.values.tolist() == [50, 0] and ds.n_inhibitory.values.tolist() == [0, 50]
