"""Treatments forked from one state (`brainsim fork`): the state hash, futures bit-identical to the
uninterrupted run, checkpoints as sources, the errors, a fitted posterior's forks, and summaries and
comparisons of futures."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from support import ROOT

import brainsim
from brainsim.cli import main
from brainsim.errors import BrainsimError, ConfigError, StoreError
from brainsim.postprocess.compare import compare_futures
from brainsim.postprocess.summarize import summarize
from brainsim.twin.fork import fork

SMALL = ROOT / "tests" / "data" / "small_brain.yaml"
TSTOP, AT = 60.0, 30.0


def drug(path, onset, factor=0.3, regions="all"):
    """An intervention file: the sodium conductance of every cell scaled by factor from onset (ms)."""
    item = {"kind": "drug", "mechanism": "nata", "parameter": "gbar", "factor": factor, "onset": onset}
    item.update(regions=regions, cell_types="all")
    path.write_text(yaml.safe_dump(item))
    return path


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The uninterrupted run of small_brain to TSTOP, with checkpoints every 10 ms (the last two kept:
    at 50 and 60 ms)."""
    folder = tmp_path_factory.mktemp("full")
    cfg = brainsim.load_config(SMALL, {"simulation.tstop": TSTOP})
    return brainsim.run(cfg, folder / "full.zarr", overwrite=True, progress=False, checkpoint_every=10.0)


def assert_continues(full, future):
    """The future holds exactly the uninterrupted run's outputs from its fork time to the run's end."""
    t, end = future.fork_time, full.tstop
    a, b = full.spikes.load(), future.spikes.load()
    after, until = a.time.values > t, b.time.values <= end
    assert until.sum() == after.sum() > 0
    np.testing.assert_array_equal(a.time.values[after], b.time.values[until])
    np.testing.assert_array_equal(a.gid.values[after], b.gid.values[until])
    ta, tb = full.traces["soma_v"], future.traces["soma_v"]
    assert tb.time.values[0] == t
    tb = tb.sel(time=slice(None, end))
    np.testing.assert_array_equal(ta.v.sel(time=tb.time).values, tb.v.values)
    ra, rb = full.regions, future.regions
    assert rb.time.values[0] == t
    rb = rb.sel(time=slice(None, end - 1e-9))
    for name in ("rate", "v_mean"):
        np.testing.assert_array_equal(ra[name].sel(time=rb.time).values, rb[name].values)


def test_state_hash_leaves_out_interventions_from_the_fork_time(tmp_path):
    base = brainsim.load_config(SMALL)
    later = brainsim.load_config(SMALL, interventions=[drug(tmp_path / "a.yaml", AT)])
    earlier = brainsim.load_config(SMALL, interventions=[drug(tmp_path / "b.yaml", AT - 5)])
    assert later.hash() != base.hash() != earlier.hash()
    assert later.state_hash(AT) == base.state_hash(AT) == base.state_hash(0.0)
    assert earlier.state_hash(AT) != base.state_hash(AT)
    assert earlier.state_hash(AT - 5) == base.state_hash(AT)
    assert brainsim.load_config(SMALL, {"simulation.seed": 6}).state_hash(AT) != base.state_hash(AT)


def test_untreated_future_is_the_uninterrupted_run(full, tmp_path):
    lines = []
    futures = fork(
        SMALL,
        AT,
        [drug(tmp_path / "sodium.yaml", AT)],
        tmp_path / "forks",
        overrides=[f"simulation.tstop={TSTOP}"],
        progress=False,
        log=lines.append,
    )
    assert [f.label for f in futures] == ["none", "sodium"]
    assert any("simulating [0, 30] ms once, in memory, from the start" in line for line in lines)
    none, treated = (brainsim.open_run(f.path) for f in futures)
    assert none.status == treated.status == "complete"
    assert_continues(full, none)
    assert none.parent == str(SMALL.resolve()) and none.fork_time == AT == treated.fork_time
    assert none.state_hash == treated.state_hash == full.config_hash == none.config_hash
    assert treated.config_hash != full.config_hash
    assert treated.spikes.sizes["spike"] < none.spikes.sizes["spike"]  # a sodium block
    assert brainsim.open_run(full.path).fork_time == 0.0 and full.parent is None


def test_fork_from_a_store_starts_at_its_checkpoints(full, tmp_path):
    lines = []
    futures = fork(full.path, 50.0, [], tmp_path / "at50", progress=False, log=lines.append)
    assert any("the state at 50 ms from checkpoint" in line for line in lines)
    assert_continues(full, brainsim.open_run(futures[0].path))
    lines = []
    futures = fork(full.path, 55.0, [], tmp_path / "at55", progress=False, log=lines.append)
    assert any("simulating [50, 55] ms once" in line for line in lines)
    future = brainsim.open_run(futures[0].path)
    assert_continues(full, future)
    assert future.parent == str(full.path.resolve())


def test_fork_from_a_checkpoint_folder(full, tmp_path):
    folder = full.path.with_name("full.checkpoint")
    futures = fork(folder, 50.0, [], tmp_path / "forks", tstop=80.0, progress=False, log=None)
    future = brainsim.open_run(futures[0].path)
    assert future.status == "complete" and future.t_reached == 80.0
    assert future.parent == str(folder.resolve())
    assert_continues(full, future)  # to 60 ms, the end of the uninterrupted run
    other = tmp_path / "other.yaml"
    other.write_text(SMALL.read_text().replace("seed: 5", "seed: 6").replace("../../", f"{ROOT}/"))
    with pytest.raises(StoreError, match="no checkpoint there can start the futures at 50 ms"):
        fork(folder, 50.0, [], tmp_path / "other", config=other, progress=False, log=None)


def test_fork_refuses_treatments_before_the_fork_and_a_state_of_another_model(tmp_path):
    early = drug(tmp_path / "early.yaml", AT - 10)
    with pytest.raises(
        ConfigError, match=r"'onset' \(from .*early.yaml\): got 20.0; allowed: a time >= the fork"
    ):
        fork(SMALL, AT, [early], tmp_path / "f", progress=False, log=None)
    with pytest.raises(ConfigError, match="--at"):
        fork(SMALL, 30.5, [], tmp_path / "f", progress=False, log=None)  # not on the 1 ms region bins
    with pytest.raises(ConfigError, match="distinct stems"):
        fork(SMALL, AT, [drug(tmp_path / "none.yaml", AT)], tmp_path / "f", progress=False, log=None)
    cfg = brainsim.load_config(SMALL, {"simulation.tstop": 40})
    sim = brainsim.Simulation(brainsim.Recipe(cfg))
    sim.run(until=AT)
    from brainsim.engine.run import ForkStart, run_simulation
    from brainsim.engine.settings import SimulationSettings
    from brainsim.parallel.context import Context

    start = ForkStart("memory", AT, cfg.state_hash(AT), state=sim.state())
    other = brainsim.load_config(SMALL, {"simulation.tstop": 40, "brain.background.pyr.rate": 900.0})
    with pytest.raises(BrainsimError, match="is not the start of the run"):
        run_simulation(
            brainsim.Recipe(other),
            Context.world(),
            SimulationSettings.from_config(other),
            tmp_path / "x.zarr",
            fork=start,
            progress=False,
        )
    sim.close()


def posterior(fit, gains, overrides=()):
    """A fit's folder of small_brain whose posterior members scale the pyramidal sodium conductance by
    `gains`, fitted with the --set items `overrides`."""
    (fit / "posterior").mkdir(parents=True)
    (fit / "fit.json").write_text(json.dumps({"config": str(SMALL), "set": list(overrides)}))
    for k, gain in enumerate(gains):
        member = {"id": f"member-{k:03d}", "factors": {"all": {"pyr": {"nata.gbar": gain}}}}
        (fit / "posterior" / f"member-{k:03d}.yaml").write_text(yaml.safe_dump(member))
    return fit


def test_forks_of_a_posterior_give_effects_with_intervals(tmp_path, capsys):
    fit = posterior(tmp_path / "fit", (0.9, 1.1))
    block, mild = drug(tmp_path / "block.yaml", AT, 0.3), drug(tmp_path / "mild.yaml", AT, 0.8)
    out = tmp_path / "forks"
    argv = ["fork", str(fit), "--at", str(AT), "--tstop", "130", "-o", str(out), "-q", "--summarize"]
    assert main([*argv, "--intervention", str(block), "--intervention", str(mild)]) == 0
    for k in range(2):
        for label in ("none", "block", "mild"):
            store = brainsim.open_run(out / f"member-{k:03d}" / f"{label}.zarr")
            assert store.fork_time == AT and store.parent == str(fit / "posterior" / f"member-{k:03d}.yaml")
    summary = brainsim.postprocess.layout.open_summary(out / "member-000" / "none.summary.zarr")
    assert summary.time.values[0] == AT and summary.window.values[0] == AT
    assert summary.attrs["source_t_start"] == AT
    capsys.readouterr()
    assert main(["compare", str(out), "--goal", "lower", "-o", str(tmp_path / "cmp")]) == 0
    text = capsys.readouterr().out
    assert "P(row beats column)" in text and "block" in text
    result = compare_futures(out, goal="lower", log=None)
    assert result.members == ["member-000", "member-001"] and result.treatments == ["block", "mild"]
    block_scores = result.scores[result.scores.treatment == "block"].score.to_numpy()
    assert (block_scores < 0).all()  # the block lowers the rate in both members
    assert result.beats.loc["block", "none"] == 1.0 and result.beats.loc["none", "block"] == 0.0
    row = result.intervals.query("treatment == 'block' and region == 'all' and feature == 'mean_rate'").iloc[
        0
    ]
    assert row.low <= row["median"] <= row.high and row.members == 2
    np.testing.assert_allclose(row["median"], block_scores.mean())  # the median of two is their mean
    for name in ("effects.csv", "intervals.csv", "scores.csv", "beats.csv", "effects.png"):
        assert (tmp_path / "cmp" / name).is_file()


def assert_same_forks(a, b, members=2, labels=("none", "block")):
    """The forks of every member in folders a and b hold the same stores and summaries."""
    for k in range(members):
        for label in labels:
            x, y = (brainsim.open_run(where / f"member-{k:03d}" / f"{label}.zarr") for where in (a, b))
            assert x.status == y.status == "complete"
            assert (x.parent, x.fork_time, x.state_hash) == (y.parent, y.fork_time, y.state_hash)
            assert x.config_hash == y.config_hash and x.spikes.sizes["spike"] > 0
            for name in ("time", "gid"):
                np.testing.assert_array_equal(x.spikes.load()[name].values, y.spikes.load()[name].values)
            for name in ("rate", "v_mean"):
                np.testing.assert_array_equal(x.regions[name].values, y.regions[name].values)
            np.testing.assert_array_equal(x.traces["soma_v"].v.values, y.traces["soma_v"].v.values)
            sx, sy = (
                brainsim.postprocess.layout.open_summary(where / f"member-{k:03d}" / f"{label}.summary.zarr")
                for where in (a, b)
            )
            np.testing.assert_array_equal(sx.mean_rate.values, sy.mean_rate.values)


def test_posterior_forks_are_the_same_on_every_scheduler_and_keep_the_fits_set(tmp_path, capsys):
    fit = posterior(tmp_path / "fit", (0.9, 1.1), ["brain.background.pyr.rate=900.0"])
    block = drug(tmp_path / "block.yaml", AT, 0.3)
    argv = ["fork", str(fit), "--at", str(AT), "--tstop", str(TSTOP), "--intervention", str(block), "-q"]
    argv += ["--summarize"]
    assert main([*argv, "-o", str(tmp_path / "local")]) == 0
    assert main([*argv, "-o", str(tmp_path / "dask"), "--scheduler", "dask", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"block: {tmp_path / 'dask' / 'member-001' / 'block.zarr'}" in printed
    first = brainsim.open_run(tmp_path / "local" / "member-000" / "none.zarr")
    assert first.config["brain"]["background"]["pyr"]["rate"] == 900.0  # the fit's --set
    other = brainsim.open_run(tmp_path / "local" / "member-001" / "none.zarr")
    assert first.spikes.sizes["spike"] != other.spikes.sizes["spike"]  # the members differ
    assert_same_forks(tmp_path / "local", tmp_path / "dask")
    mpiexec = shutil.which("mpiexec") or pytest.skip("no mpiexec on PATH: the mpi scheduler not compared")
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    command = [mpiexec, "-n", "2", sys.executable, "-m", "brainsim.cli", *argv, "--scheduler", "mpi"]
    done = subprocess.run(
        [*command, "-o", str(tmp_path / "mpi")], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "on mpi (2 rank(s))" in done.stderr
    assert_same_forks(tmp_path / "local", tmp_path / "mpi")


def test_posterior_forks_refuse_before_any_member_runs(tmp_path, capsys):
    fit = posterior(tmp_path / "fit", (0.9, 1.1))
    early = drug(tmp_path / "early.yaml", AT - 10)
    out = tmp_path / "forks"
    argv = ["fork", str(fit), "--at", str(AT), "--tstop", str(TSTOP), "-o", str(out), "-q"]
    assert main([*argv, "--intervention", str(early), "--scheduler", "dask"]) == 2
    assert "'onset' (from" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--scheduler", "threads"]) == 2
    assert "--scheduler" in capsys.readouterr().err
    assert main(["fork", str(SMALL), "--at", str(AT), "-o", str(out), "--scheduler", "dask"]) == 2
    assert "only with a fit's folder" in capsys.readouterr().err
    (fit / "fit.json").write_text(json.dumps({"config": str(SMALL), "set": "simulation.tstop=90"}))
    assert main(argv) == 1
    assert "is not a list of KEY.PATH=VALUE" in capsys.readouterr().err


def test_summary_of_a_future_matches_the_full_run_over_its_window(full, tmp_path):
    futures = fork(full.path, 50.0, [], tmp_path / "f", progress=False, log=None)
    ds = summarize(
        futures[0].path, scheduler="sync", bin_ms=1.0, window_ms=5.0, tr=5.0, log=lambda line: None
    )
    future = brainsim.postprocess.layout.open_summary(ds.path)
    assert future.time.values[0] == 50.0 and future.sizes["time"] == 10
    rates = full.regions.rate.sel(time=slice(50.0, None)).values
    np.testing.assert_allclose(future.rate.values, rates, rtol=1e-5)


def test_fork_on_two_ranks_continues_the_run_of_one(full, tmp_path):
    mpiexec = shutil.which("mpiexec") or pytest.skip("no mpiexec on PATH")
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    args = [
        "fork",
        str(SMALL),
        "--at",
        str(AT),
        "--set",
        f"simulation.tstop={TSTOP}",
        "-o",
        str(tmp_path),
        "-q",
    ]
    command = [mpiexec, "-n", "2", sys.executable, "-m", "brainsim.cli", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    future = brainsim.open_run(tmp_path / "none.zarr")
    assert future.timing["ranks"] == 2
    assert_continues(full, future)
