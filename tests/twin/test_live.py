"""The live observation store and `brainsim feed`: recordings (a real EDF through MNE's export and rate
TSVs, through `brainsim observe`) replayed chunk by chunk, read window by window while a feed runs in
another process, stopped by signals, an LSL stream played on loopback, and hostile stores refused with
errors naming the file."""

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_observe import CONNECTOME, REGIONS, eeg_signals, quiet, write_edf, write_table

from brainsim.errors import ConfigError, ObservationError, StoreError
from brainsim.twin.feed import Pacer, feed
from brainsim.twin.live import LIVE_FILE, LiveObservations, LiveWriter
from brainsim.twin.observe import observation_dataset, observe, open_observations, write_observations

BRAINSIM = Path(sys.executable).with_name("brainsim")
SECONDS = 6.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """(observation store of 6 s of EEG and region rates, its EDF file)."""
    folder = tmp_path_factory.mktemp("recording")
    edf = write_edf(folder / "patient.edf", *eeg_signals(seconds=SECONDS))
    rates = np.abs(np.random.default_rng(3).normal(5.0, 2.0, (int(SECONDS * 1000), len(REGIONS))))
    tsv = write_table(folder / "rates.tsv", REGIONS, rates)
    return observe([edf, tsv], folder / "obs.zarr", connectome=CONNECTOME, kind="rate", log=quiet), edf


def run_feed(*args):
    return subprocess.run([str(BRAINSIM), "feed", *map(str, args)], capture_output=True, text=True)


def start_feed(*args):
    return subprocess.Popen(
        [str(BRAINSIM), "feed", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def assert_same_series(window, source, t0, t1):
    """window's eeg and rate are source's over [t0, t1) ms, value for value, with their coordinates."""
    part = source.sel(time=slice(t0, t1 - 0.5))
    for name in ("eeg", "rate"):
        assert (
            window[name].dims == part[name].dims and window[name].attrs["units"] == part[name].attrs["units"]
        )
        np.testing.assert_array_equal(window[name].values, part[name].values)
    np.testing.assert_array_equal(window["time"].values, part["time"].values)
    assert list(window.electrode.values) == list(source.electrode.values)
    assert list(window.region.values) == list(source.region.values)


# --- writer and reader ----------------------------------------------------------------------------------


def test_feed_round_trip_chunks_and_windows(recording, tmp_path):
    obs, _ = recording
    live = tmp_path / "live.zarr"
    result = feed(obs, live, speed=0, chunk=500, log=quiet)
    assert result["complete"] and result["t_start"] == 0.0 and result["t_available"] == SECONDS * 1000
    assert result["slept_s"] == 0.0  # speed 0 never waits
    info = json.loads((live / LIVE_FILE).read_text())
    assert info["complete"] is True and info["bin"] == 1.0 and info["sources"] == [str(obs.resolve())]
    ds = open_observations(live)  # an observation store like any other
    assert ds.attrs["live"] is True and set(ds.data_vars) == {"eeg", "rate"}
    assert json.loads(ds.attrs["sources"]) == [str(obs.resolve())]
    # chunked along time by the feed's chunk: each append wrote its own chunk files
    meta = json.loads((live / "eeg" / "zarr.json").read_text())
    assert meta["chunk_grid"]["configuration"]["chunk_shape"][0] == 500
    assert len(list((live / "eeg" / "c").iterdir())) == SECONDS * 1000 / 500
    reader, source = LiveObservations(live), open_observations(obs)
    assert reader.available() == (SECONDS * 1000, True)
    window = reader.window(1250.0, 3750.0)
    assert_same_series(window, source, 1250.0, 3750.0)
    assert window.attrs["bin"] == 1.0 and window.attrs["format"] == source.attrs["format"]
    # an ordinary observation store is a finished feed
    finished = LiveObservations(obs)
    assert finished.available() == (SECONDS * 1000, True)
    assert finished.wait_for(2000.0) is True and finished.wait_for(SECONDS * 1000 + 1) is False
    assert_same_series(finished.window(0.0, 1000.0), source, 0.0, 1000.0)


def test_an_eeg_file_is_fed_as_observe_reads_it(recording, tmp_path):
    _, edf = recording
    live = tmp_path / "live.zarr"
    feed(edf, live, speed=0, chunk=250, start=1000, stop=5000, bin_ms=2.0, log=quiet)
    expected = observation_dataset([edf], bin_ms=2.0, log=quiet).sel(time=slice(1000, 4999))
    reader = LiveObservations(live)
    assert reader.available() == (5000.0, True)
    window = reader.window(1000.0, 5000.0)
    np.testing.assert_array_equal(window.eeg.values, expected.eeg.values.astype(np.float32))
    assert window.time.values[0] == 1000.0 and window.attrs["bin"] == 2.0


def test_pacing_on_the_monotonic_clock():
    """Pacer(speed).wait(t) returns only once elapsed * speed >= t; speed 0 never sleeps."""
    fast = Pacer(0)
    fast.wait(1e9)
    assert fast.slept == 0.0
    pacer = Pacer(4.0)
    pacer.wait(0.2)
    assert pacer.elapsed() * 4.0 >= 0.2 and pacer.slept > 0
    stopped = Pacer(1e-9)
    stopped.wait(1e9, stopped=lambda: True)  # a stop ends the wait
    assert stopped.slept == 0.0


def test_a_reader_follows_a_feed_in_another_process(recording, tmp_path):
    obs, _ = recording
    live, speed = tmp_path / "live.zarr", 4.0
    launched = time.monotonic()
    process = start_feed(obs, "--to", live, "--speed", speed, "--chunk", 100)
    reader, seen = LiveObservations(live), []
    while process.poll() is None or not seen or not seen[-1][1]:
        if (live / LIVE_FILE).exists():
            t_available, complete = reader.available()
            elapsed = time.monotonic() - launched
            assert t_available <= elapsed * speed * 1000.0  # never ahead of the recording's own time
            seen.append((t_available, complete))
            if complete:
                break
        time.sleep(0.02)
    out, err = process.communicate()
    assert process.returncode == 0, err
    times = [t for t, _ in seen]
    assert times == sorted(times) and len(set(times)) >= 2  # it grew while being read
    assert seen[-1] == (SECONDS * 1000, True) and "live:" in out and "real time" in err
    assert_same_series(reader.window(0.0, SECONDS * 1000), open_observations(obs), 0.0, SECONDS * 1000)


@pytest.mark.parametrize("stop,code", [(signal.SIGTERM, 75), (signal.SIGINT, 130)])
def test_a_stopped_feed_is_valid_and_incomplete(recording, tmp_path, stop, code):
    obs, _ = recording
    live = tmp_path / "live.zarr"
    process = start_feed(obs, "--to", live, "--speed", 1, "--chunk", 250)
    reader = LiveObservations(live)
    while not (live / LIVE_FILE).exists() and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(stop)
    _, err = process.communicate()
    assert process.returncode == code, err
    assert f"feed stopped by {signal.Signals(stop).name}" in err and "Traceback" not in err
    t_available, complete = reader.available()
    assert not complete and 250.0 <= t_available < SECONDS * 1000
    assert_same_series(reader.window(0.0, t_available), open_observations(obs), 0.0, t_available)
    assert reader.wait_for(t_available) is True
    assert reader.wait_for(SECONDS * 1000, poll_s=0.01, stop=lambda: True) is None  # the caller stops
    with pytest.raises(StoreError, match="outside the data available"):
        reader.window(0.0, t_available + 250.0)


# --- hostile input --------------------------------------------------------------------------------------


@pytest.fixture
def small_live(recording, tmp_path):
    live = tmp_path / "live.zarr"
    feed(recording[0], live, speed=0, chunk=1000, stop=3000, log=quiet)
    return live


def edit_live(live, **changes):
    info = json.loads((live / LIVE_FILE).read_text())
    (live / LIVE_FILE).write_text(json.dumps({**info, **changes}))


def test_broken_or_lying_live_json_is_refused(small_live):
    reader = LiveObservations(small_live)
    assert reader.available() == (3000.0, True)
    edit_live(small_live, t_available=2000.0)
    with pytest.raises(StoreError, match="went backwards") as e:
        reader.available()
    assert str(small_live / LIVE_FILE) in str(e.value)
    edit_live(small_live, t_available=4000.0)
    with pytest.raises(StoreError, match="beyond the stored data"):
        LiveObservations(small_live).available()
    edit_live(small_live, t_available=3000.0, bin=2.0)
    with pytest.raises(StoreError, match="bin 2 ms"):
        LiveObservations(small_live).available()
    edit_live(small_live, bin=1.0, complete="yes")
    with pytest.raises(StoreError, match="complete is 'yes'"):
        LiveObservations(small_live).available()
    (small_live / LIVE_FILE).write_text('{"t_available": 3000')
    with pytest.raises(StoreError, match="unreadable") as e:
        LiveObservations(small_live).window(0, 1000)
    assert str(small_live / LIVE_FILE) in str(e.value)
    (small_live / LIVE_FILE).unlink()
    with pytest.raises(StoreError, match="missing"):
        LiveObservations(small_live).available()


def test_nan_is_refused_by_the_writer_and_the_reader(recording, tmp_path):
    source = open_observations(recording[0])[["eeg", "rate"]].isel(time=slice(0, 2000)).load()
    writer = LiveWriter(tmp_path / "live.zarr", sources=["test"])
    writer.append(source.isel(time=slice(0, 1000)))
    bad = source.isel(time=slice(1000, 2000)).copy(deep=True)
    bad["rate"].values[500, 1] = np.nan
    with pytest.raises(StoreError, match="NaN or infinite rate at t=1500 ms") as e:
        writer.append(bad)
    assert str(tmp_path / "live.zarr") in str(e.value)
    assert LiveObservations(tmp_path / "live.zarr").available() == (1000.0, False)  # nothing appended
    with pytest.raises(StoreError, match="starting at t=0 ms"):
        writer.append(source.isel(time=slice(0, 1000)))  # not the continuation
    stored = open_observations(recording[0]).load()
    stored["eeg"].values[1234, 3] = np.nan
    path = write_observations(stored, tmp_path / "nan.zarr")
    with pytest.raises(StoreError, match="eeg holds NaN or infinite values at t=1234 ms") as e:
        LiveObservations(path).window(1000, 2000)
    assert str(path) in str(e.value)


def test_bad_sources_and_targets_are_refused(recording, small_live, tmp_path):
    obs, edf = recording
    with pytest.raises(ObservationError, match="no such file"):
        feed(tmp_path / "missing.edf", tmp_path / "a.zarr", log=quiet)
    with pytest.raises(ObservationError, match="brainsim observe"):
        feed(write_table(tmp_path / "r.tsv", REGIONS, np.ones((10, 5))), tmp_path / "a.zarr", log=quiet)
    with pytest.raises(ConfigError, match="--bin"):
        feed(obs, tmp_path / "a.zarr", bin_ms=2.0, log=quiet)
    with pytest.raises(ConfigError, match="--chunk"):
        feed(obs, tmp_path / "a.zarr", chunk=0.5, log=quiet)
    with pytest.raises(ConfigError, match="--start"):
        feed(obs, tmp_path / "a.zarr", start=7000, log=quiet)
    with pytest.raises(StoreError, match="already exists"):
        feed(obs, small_live, speed=0, log=quiet)
    feed(obs, small_live, speed=0, overwrite=True, log=quiet)  # a live store is replaced
    assert LiveObservations(small_live).available() == (SECONDS * 1000, True)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="will not overwrite"):
        feed(obs, other, overwrite=True, log=quiet)
    assert (other / "keep.txt").exists()
    with pytest.raises(StoreError, match="no Zarr store"):
        LiveObservations(tmp_path / "nothing.zarr").available()
    # the command: one line naming the file, no traceback
    result = run_feed(tmp_path / "missing.edf", "--to", tmp_path / "b.zarr")
    assert result.returncode == 1 and "missing.edf: no such file" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "b.zarr").exists()
    result = run_feed(obs, "--to", tmp_path / "b.zarr", "--speed", "-1")
    assert result.returncode == 2 and "--speed" in result.stderr and "Traceback" not in result.stderr


# --- Lab Streaming Layer --------------------------------------------------------------------------------


def test_an_lsl_stream_played_on_loopback_is_fed(recording, tmp_path):
    pytest.importorskip("mne_lsl", reason="mne-lsl (the twin extra) is not installed")
    from mne_lsl.player import PlayerLSL

    _, edf = recording
    name = f"brainsim-test-{uuid.uuid4().hex[:8]}"
    try:
        player = PlayerLSL(edf, chunk_size=16, name=name, n_repeat=1)
        player.start()
    except Exception as e:  # liblsl could not open a stream on this machine's loopback
        pytest.skip(f"liblsl cannot open a loopback stream here ({type(e).__name__}: {e})")
    try:
        result = feed(f"lsl://{name}", tmp_path / "live.zarr", chunk=250, duration=3.0, log=quiet)
    finally:
        player.stop()
    assert result["complete"] and result["t_available"] == 3000.0
    window = LiveObservations(tmp_path / "live.zarr").window(0.0, 3000.0)
    reference = observation_dataset([edf], log=quiet)
    assert list(window.electrode.values) == list(reference.electrode.values)
    assert json.loads(window.attrs["sources"]) == [f"lsl://{name}"] and window.eeg.attrs["units"] == "uV"
    # the same signal at the file's level, average-referenced
    power = xr.apply_ufunc(np.square, window.eeg).mean().item()
    expected = xr.apply_ufunc(np.square, reference.eeg).mean().item()
    assert 0.8 * expected < power < 1.2 * expected
    np.testing.assert_allclose(window.eeg.mean("electrode").values, 0.0, atol=1e-3)  # average reference
