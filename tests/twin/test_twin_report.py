"""`brainsim report TWIN.zarr` (brainsim/twin/twin_report.py): the page of a real follow (test_follow's
patient, its first two windows) is self-contained, its figures decode (in headless Chromium too) and its
tables hold the store's numbers; edited stores give a running follow of one window with a failed member
and a fired warning, and many features and parameters drawn with their caps; `--watch` rewrites the page
until the follow is complete and stops cleanly on Ctrl-C; a broken store is a one-line error."""

import json
import re
import shutil
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr
from support import ROOT, run_chromium
from test_fit_report import _check_figures, _meta, _table
from test_follow import HORIZON, MEMBERS, SEED, WINDOW
from test_follow import patient as patient  # the fixture: the truth's rates of three regions, observed
from zarr.errors import ZarrUserWarning

from brainsim.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED, main
from brainsim.errors import StoreError
from brainsim.postprocess.report import num
from brainsim.twin.twin_report import MAX_PANELS, MAX_SERIES, write_twin_report

FIGURES = ("observed_0", "innovation", "parameters", "fan_window_rate", "health")
WINDOWS = 2  # of the truth's four, followed


def _quiet(line):
    pass


@pytest.fixture(scope="module")
def twin(patient):
    """A real follow of the truth's first two windows (4 members, forecasts of 100 ms), then its page."""
    folder = patient["folder"] / "report"
    folder.mkdir()
    rows = (patient["folder"] / "rates.tsv").read_text().splitlines()
    table = folder / "rates.tsv"
    table.write_text("\n".join(rows[: 1 + int(WINDOWS * WINDOW)]) + "\n")
    observations = folder / "obs.zarr"
    common = ["--kind", "rate", "--connectome", str(patient["config"]), "-o", str(observations)]
    assert main(["observe", str(table), *common]) == 0
    out = folder / "twin.zarr"
    command = [
        "follow", patient["config"], "--patient", patient["patient"], "--observations", observations,
        "--parameters", patient["fit"], "--window", WINDOW, "--horizon", HORIZON, "--members", MEMBERS,
        "--alerts", patient["rules"], "--seed", SEED, "-o", out,
    ]  # fmt: skip
    assert main([str(a) for a in command]) == 0
    assert main(["report", str(out)]) == 0
    return {"store": out, "page": folder / "twin.html", "patient": patient}


def _store(path):
    return xr.open_zarr(path).load()


def _write(ds, path):
    """ds as a twin store at path, written the way follow.py writes it."""
    shutil.rmtree(path, ignore_errors=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
        warnings.filterwarnings("ignore", ".*does not have a Zarr V3 specification", UserWarning)
        ds.to_zarr(path, mode="w", zarr_format=3, consolidated=True)


def _warning_rows(page):
    """The warnings table: [(window, time, rule, regions, probability, expected time, lead time)]."""
    body = re.search(r'<table id="warnings-table">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r'<td(?: class="num")?(?: data-value="([^"]*)")?>([^<]*)</td>', row)
        values = [float(v) if v else (None if text == "\u2013" else text) for v, text in cells]
        rows.append(tuple(values))
    return rows


def test_a_follow_gets_a_self_contained_page(twin):
    page = twin["page"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "<link" not in page
    assert len(re.findall(r"<script>", page)) == 1 and "figuresRendered" in page
    assert "<title>brainsim twin: followed</title>" in page and 'http-equiv="refresh"' not in page
    found = _check_figures(page, FIGURES)
    assert (
        "all 1)" in found["observed_0"]
        and "from window 1 and 1 earlier one (faded)" in found["fan_window_rate"]
    )
    meta = _meta(page)
    assert meta["config"] == str(twin["patient"]["config"]) and meta["patient"].startswith(
        "followed (file sha256"
    )
    assert meta["observations"] == str(twin["store"].parent / "obs.zarr")
    assert meta["window"] == "200 ms" and meta["horizon"] == "100 ms" and meta["members"] == str(MEMBERS)
    assert meta["windows done"] == "2 (brain time 0\u2013400 ms)" and meta["status"] == "complete"
    rtf = float(xr.open_zarr(twin["store"]).attrs["real_time_factor"])
    assert (
        meta["seed"] == str(SEED)
        and meta["scheduler"] == "local"
        and meta["real-time factor"] == f"{num(rtf)} (wall s per brain s)"
    )
    assert 'id="status-warning"' not in page and 'id="failed-warning"' not in page
    assert f"-o {twin['store']}" in page and "xr.open_zarr" in page


def test_the_tables_hold_the_store_numbers(twin):
    ds = _store(twin["store"])
    page = twin["page"].read_text(encoding="utf-8")
    rules = [str(r) for r in ds.rule.values]
    expected = [
        (float(k), float(ds.window_end.values[k]), rules[i],
         ", ".join(json.loads(str(ds.warning_regions.values[k, i]))),
         *(float(ds[name].values[k, i]) for name in ("warning_probability", "expected_time", "lead_time")))
        for k, i in zip(*np.nonzero(ds.warning.values))
    ]  # fmt: skip
    assert len(expected) == WINDOWS and all(
        row[2] == "active" for row in expected
    )  # every forecast is active
    assert _warning_rows(page) == expected
    records = [
        json.loads(line) for line in (twin["store"].parent / "twin.warnings.jsonl").read_text().splitlines()
    ]
    assert [(r["window"], r["time"], r["probability"], r["expected_time"]) for r in records] == [
        (int(w), t, p, e) for w, t, _, _, p, e, _ in expected
    ]
    assert "runaway excitation: window_rate above 1,000 for at least 50 ms" in page
    theta, first = ds.theta.values[-1], ds.theta_forecast.values[0]
    (name, values), *_ = _table(page, "parameters-table")
    assert name == "drive[lh-precentral]"
    band = [float(np.percentile(theta[:, 0], q)) for q in (5, 95)]
    medians = [float(np.median(first[:, 0])), float(np.median(theta[:, 0]))]
    assert values == [*medians, *band, float(ds.spread.values[-1, 0])]
    health = _table(page, "health-table")
    assert [int(w) for w, _ in health] == list(range(WINDOWS))
    assert [v[1] for _, v in health] == [float(x) for x in ds.nis.values]
    assert [v[2] for _, v in health] == [float(np.median(m)) for m in ds.misfit.values]


def test_chromium_decodes_every_figure(twin, tmp_path):
    page = twin["page"].read_text(encoding="utf-8")
    dom = run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", twin["page"].as_uri()).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    rendered = re.search(r'data-figures-rendered="(\d+)"', body)
    total = re.search(r'data-figures-total="(\d+)"', body)
    assert rendered and total, f"the page's script did not run: {body}"
    assert int(total.group(1)) == page.count("<img ") == len(FIGURES)
    assert rendered.group(1) == total.group(1)


def _running(twin, tmp_path):
    """The follow's first window as a running store with member 2 failed and a warning of the runaway
    rule (p 0.75, expected 60 ms after the window's end), a real-time factor recorded."""
    ds = _store(twin["store"]).isel(window=slice(0, 1))
    runaway = [str(r) for r in ds.rule.values].index("runaway excitation")
    ds.failed.values[0, 2] = True
    ds.predicted.values[0, 2] = np.nan
    ds.misfit.values[0, 2] = np.nan
    ds.fan_window_rate.values[0, 2] = np.nan
    ds.warning.values[0, runaway] = True
    ds.warning_probability.values[0, runaway] = 0.75
    ds.expected_time.values[0, runaway] = 260.0
    ds.lead_time.values[0, runaway] = 60.0
    ds.forecast_members.values[0] = 3
    ds.warning_regions.values[0, runaway] = '["lh-precentral"]'
    ds = ds.assign_attrs(status="running", windows_done=1, real_time_factor=12.5)
    out = tmp_path / "running.zarr"
    _write(ds, out)
    return out, ds


def test_a_running_follow_with_a_failed_member_and_a_warning(twin, tmp_path):
    out, ds = _running(twin, tmp_path)
    page = write_twin_report(out, log=_quiet).read_text()
    assert "<title>brainsim twin (running): followed</title>" in page
    assert 'id="status-warning"' in page and "This follow is running" in page and "--watch" in page
    assert 'id="failed-warning"' in page and "1 of 4 members failed" in page
    found = _check_figures(page, FIGURES)
    assert "1 member(s) gave no forecast" in found["fan_window_rate"]
    assert "runaway excitation: p = 0.75, expected at 260 ms" in found["fan_window_rate"]
    meta = _meta(page)
    assert meta["windows done"] == "1 (brain time 0\u2013200 ms)" and meta["members"] == "4 (1 failed)"
    assert meta["real-time factor"] == "12.5 (wall s per brain s)"
    rows = _warning_rows(page)
    assert (0.0, 200.0, "runaway excitation", "lh-precentral", 0.75, 260.0, 60.0) in rows and len(rows) == 2
    health = _table(page, "health-table")
    ok = np.isfinite(ds.misfit.values[0])
    assert health[0][1][2:5] == [float(np.median(ds.misfit.values[0][ok])), 1, 3]
    assert "continues after window 0" in page
    refreshed = write_twin_report(out, tmp_path / "live.html", refresh=5, log=_quiet).read_text()
    assert '<meta charset="utf-8"><meta http-equiv="refresh" content="5">' in refreshed


def test_many_features_and_parameters_are_capped(twin, tmp_path):
    """40 features of two variables and 30 parameters over 3 windows: panels of the features followed worst
    and of the parameters moved most, every feature in the innovation heatmap."""
    template = _store(twin["store"])
    rng = np.random.default_rng(1)
    n, j, p = 3, 6, 30
    labels = [f"mean_rate[r{i:02d}]" for i in range(20)] + [f"band_power[r{i:02d},gamma]" for i in range(20)]
    names = [f"drive[r{i:02d}]" for i in range(p)]
    observed = rng.normal(2.0, 0.5, (n, len(labels)))
    predicted = observed[:, None, :] + rng.normal(0.0, 0.3, (n, j, len(labels)))
    theta = rng.lognormal(0.0, 0.1, (n, j, p)) * np.linspace(1.0, 1.5, p)
    ds = template.drop_dims(["feature", "parameter", "member", "window"]).assign(
        window_start=("window", np.arange(n) * 200.0),
        window_end=("window", (np.arange(n) + 1) * 200.0),
        theta_forecast=(("window", "member", "parameter"), theta),
        theta=(("window", "member", "parameter"), theta),
        predicted=(("window", "member", "feature"), predicted),
        failed=(("window", "member"), np.zeros((n, j), dtype=bool)),
        observed=(("window", "feature"), observed),
        noise=(("window", "feature"), np.full((n, len(labels)), 0.1)),
        innovation=(("window", "feature"), observed - predicted.mean(axis=1)),
        nis=("window", np.array([3.0, 1.2, 0.9])),
        misfit=(("window", "member"), rng.lognormal(0.0, 1.0, (n, j))),
        spread=(("window", "parameter"), theta.std(axis=1, ddof=1)),
        forecast_members=("window", np.full(n, j)),
        warning_probability=(("window", "rule"), np.zeros((n, 2))),
        warning=(("window", "rule"), np.zeros((n, 2), dtype=bool)),
        expected_time=(("window", "rule"), np.full((n, 2), np.nan)),
        lead_time=(("window", "rule"), np.full((n, 2), np.nan)),
        warning_regions=(("window", "rule"), np.full((n, 2), "[]", dtype=object)),
    )
    ds = ds.assign_coords(
        window=np.arange(n), member=np.arange(j), feature=np.array(labels, dtype=object),
        parameter=np.array(names, dtype=object),
    )  # fmt: skip
    out = tmp_path / "many.zarr"
    _write(ds, out)
    page = write_twin_report(out, log=_quiet).read_text()
    found = _check_figures(page, ("observed_0", "observed_1", "innovation", "parameters", "health"))
    assert (
        f"the {MAX_SERIES} of 20 followed worst" in found["observed_0"]
        and "band_power per window" in found["observed_1"]
    )
    assert f"the {MAX_PANELS} of 30 moved most" in found["parameters"]
    assert "No forecast yet" in page and 'class="no-alerts"' in page and "No warning" in page
    assert [name for name, _ in _table(page, "parameters-table")] == names


def _replace(store, source):
    """Put the store `source` at `store` the way follow.py rewrites it (two renames)."""
    staging = store.with_name(store.name + ".writing")
    shutil.copytree(source, staging)
    old = store.with_name(store.name + ".old")
    store.rename(old)
    staging.rename(store)
    shutil.rmtree(old)


def _watch(store, page):
    command = [sys.executable, "-m", "brainsim.cli", "report", str(store), "--watch", "0.2", "-o", str(page)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_page(process, page):
    for line in process.stderr:
        if line.startswith(f"report: wrote {page}"):
            return line
    raise AssertionError(f"the watch ended without writing {page}: {process.wait()}")


def test_watch_rewrites_the_page_until_the_follow_is_complete(twin, tmp_path):
    store, _ = _running(twin, tmp_path)
    page = tmp_path / "watched.html"
    process = _watch(store, page)
    try:
        assert "1 window(s), running" in _wait_for_page(process, page)
        assert 'http-equiv="refresh" content="1"' in page.read_text()  # 0.2 s, at least 1
        _replace(store, twin["store"])
        assert "2 window(s), complete" in _wait_for_page(process, page)
        out, err = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out == f"report: {page}\n"
    text = page.read_text()
    assert 'http-equiv="refresh"' not in text and "<title>brainsim twin: followed</title>" in text


def test_watch_stops_on_ctrl_c(twin, tmp_path):
    store, _ = _running(twin, tmp_path)
    page = tmp_path / "watched.html"
    process = _watch(store, page)
    try:
        _wait_for_page(process, page)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED
    assert err == f"brainsim: stopped watching {store} (Ctrl-C)\n"


def test_broken_stores_are_one_line_errors(twin, tmp_path, capsys):
    out = tmp_path / "broken.zarr"
    shutil.copytree(twin["store"], out)
    assert main(["report", str(out), "--watch", "0"]) == EXIT_CONFIG
    assert main(["report", str(twin["patient"]["observations"]), "--watch"]) == EXIT_CONFIG
    capsys.readouterr()

    chunk = next(p for p in (out / "theta").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(b"not a chunk")
    assert main(["report", str(out)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"brainsim: {out}: unreadable twin store") and err.count("\n") == 1
    assert "Traceback" not in err

    ds = _store(twin["store"])
    _write(ds.assign_attrs(inputs="{ not json"), out)
    assert main(["report", str(out)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err == f"brainsim: {out}: its inputs attribute is not the follow's JSON (with window, horizon, " \
        "members, seed, rules, observations)\n"  # fmt: skip

    _write(ds.drop_vars("nis"), out)
    with pytest.raises(StoreError, match=r"a twin store without \['nis'\]"):
        write_twin_report(out, log=_quiet)
    _write(ds.assign_attrs(format_version=2), out)
    with pytest.raises(StoreError, match="not a brainsim twin store"):
        write_twin_report(out, log=_quiet)
    _write(ds, out)
    assert main(["report", str(out), "-o", str(tmp_path / "nowhere" / "page.html")]) == EXIT_FAILED
    assert "cannot write the report there" in capsys.readouterr().err
