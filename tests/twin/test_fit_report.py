"""FIT_DIR/report.html (brainsim/twin/fit_report.py): written by a real fit, one self-contained page whose
figures decode (in headless Chromium too) and whose tables hold fit.json's numbers; `brainsim report
FIT_DIR` writes it again, also for an interrupted fit, for failed members, CMA-ES and 76 parameters, and
refuses a broken fit.zarr with a one-line error."""

import base64
import io
import json
import re
import shutil
import warnings

import numpy as np
import pytest
import xarray as xr
from matplotlib import image as mpimg
from support import run_chromium
from test_fit_resume import SET, SMALL, _fit_file
from test_fit_resume import observations as observations  # the fixture: rates of 6 regions, observed
from zarr.errors import ZarrUserWarning

from brainsim.cli import EXIT_FAILED, main
from brainsim.errors import StoreError
from brainsim.twin.fit import fit
from brainsim.twin.fit_report import MAX_PANELS, write_fit_report
from brainsim.twin.fit_store import ensemble_summary

FIGURES = ("misfit", "features_0", "intervals", "marginals")


def _quiet(line):
    pass


@pytest.fixture(scope="module")
def fitted(observations, tmp_path_factory):
    """A real fit (2 parameters, 6 features, 4 members, 2 updates: 12 member runs of 100 ms)."""
    folder = tmp_path_factory.mktemp("fit")
    parameters = folder / "fit.yaml"
    parameters.write_text(_fit_file("eki"))
    fit(SMALL, observations, parameters, folder / "fit", overrides=SET, log=_quiet)
    return folder / "fit"


def _copy(fitted, tmp_path):
    out = tmp_path / "fit"
    shutil.copytree(fitted, out)
    (out / "report.html").unlink()
    return out


def _rewrite(out, ds):
    """ds as out/fit.zarr, written the way fit.py writes it."""
    ds = ds.load()
    shutil.rmtree(out / "fit.zarr")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
        ds.to_zarr(out / "fit.zarr", mode="w", zarr_format=3, consolidated=True)


def _figures(page):
    """{data-variable: the <figure> element's HTML}."""
    return dict(re.findall(r'<figure class="\w+" data-variable="(\w+)">(.*?)</figure>', page, re.S))


def _pixels(figure):
    """The figure's inline PNG, decoded: (height, width, channels)."""
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', figure)
    assert match, figure[:300]
    return mpimg.imread(io.BytesIO(base64.b64decode(match.group(1), validate=True)), format="png")


def _table(page, table_id):
    """The rows of a table: [(first cell's text, [data-value of each number cell, as float or None])]."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*?(?: data-value=\"([^\"]*)\")?>([^<]*)</td>", row)
        rows.append((cells[0][1], [float(v) if v else None for v, _ in cells[1:]]))
    return rows


def _meta(page):
    return dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page))


def _check_figures(page, names):
    found = _figures(page)
    assert set(found) == set(names)
    for name in names:
        pixels = _pixels(found[name])
        assert pixels.shape[0] > 150 and pixels.shape[1] > 150, name
        assert pixels.shape[0] < 1500 and pixels.shape[1] < 1500, f"{name}: {pixels.shape} too large"
        assert pixels[..., :3].std() > 0.05, f"{name} is blank"
        assert re.search(r"<figcaption><b>[^<]+</b>\. [^<]{20,}</figcaption>", found[name]), name
    return found


def test_a_fit_writes_a_self_contained_report(fitted):
    record = json.loads((fitted / "fit.json").read_text())
    assert not (fitted / "report.png").exists()
    page = (fitted / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "<link" not in page
    assert len(re.findall(r"<script>", page)) == 1 and "figuresRendered" in page
    assert "<title>brainsim fit: small_brain</title>" in page
    _check_figures(page, FIGURES)
    meta = _meta(page)
    assert meta["config"] == str(SMALL) and meta["observations"] == record["observations"]
    assert meta["parameters file"] == record["parameters_file"]
    assert meta["method"] == "ensemble Kalman inversion (eki), 4 members, at most 2 iterations, seed 5"
    assert meta["status"] == "complete" and meta["scheduler"] == record["scheduler"] == "local"
    wall = record["wall_s"]
    assert meta["member runs"] == "12" and meta["wall time"] in (f"{wall:.0f} s", f"{wall / 60:.1f} min")
    assert "failed member runs" not in meta and 'id="status-warning"' not in page
    assert f"--patient {fitted / 'patient.yaml'}" in page and f"brainsim fork {fitted} --at T" in page


def test_the_tables_hold_the_fit_json_numbers(fitted):
    record = json.loads((fitted / "fit.json").read_text())
    page = (fitted / "report.html").read_text(encoding="utf-8")
    posterior = _table(page, "posterior-table")
    assert [name for name, _ in posterior] == list(record["posterior"])
    for name, values in posterior:
        p = record["posterior"][name]
        assert values[:4] == [p["mean"], p["sd"], p["q2.5"], p["q97.5"]], name
    misfit = _table(page, "misfit-table")
    assert [(ensemble, values[:3]) for ensemble, values in misfit] == [
        (str(m["iteration"]), [m["median"], m["best"], m["step"]]) for m in record["misfit"]
    ]
    ds = xr.open_zarr(fitted / "fit.zarr").load()
    distance = np.abs(np.median(ds.features.values[-1], axis=0) - ds.observed.values) / ds.noise.values
    worst = _table(page, "worst-features")
    order = np.argsort(-distance, kind="stable")
    assert [name for name, _ in worst] == [str(ds.feature.values[i]) for i in order]
    np.testing.assert_allclose([values[4] for _, values in worst], distance[order], rtol=1e-12)
    assert "mean, sd and percentiles over the 4 members of the posterior ensemble" in page


def test_chromium_decodes_every_figure(fitted, tmp_path):
    page = (fitted / "report.html").read_text(encoding="utf-8")
    url = (fitted / "report.html").as_uri()
    dom = run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    rendered = re.search(r'data-figures-rendered="(\d+)"', body)
    total = re.search(r'data-figures-total="(\d+)"', body)
    assert rendered and total, f"the page's script did not run: {body}"
    assert int(total.group(1)) == page.count("<img ") == len(FIGURES)
    assert rendered.group(1) == total.group(1)


def test_brainsim_report_writes_it_again_and_refuses_a_broken_store(fitted, tmp_path, capsys):
    out = _copy(fitted, tmp_path)
    assert main(["report", str(out)]) == 0
    again = (out / "report.html").read_text().replace(str(out), str(fitted))
    assert again == (fitted / "report.html").read_text()  # the same page, figures and all
    assert main(["report", str(out), "-o", str(tmp_path / "elsewhere.html")]) == 0
    assert "<h1>Fit of small_brain</h1>" in (tmp_path / "elsewhere.html").read_text()
    capsys.readouterr()

    (out / "fit.zarr" / "zarr.json").write_text("{ not json")
    assert main(["report", str(out)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"brainsim: {out / 'fit.zarr'}: unreadable fit store") and err.count("\n") == 1
    assert "Traceback" not in err

    shutil.rmtree(out / "fit.zarr")
    xr.Dataset(attrs={"format": "brainsim-summary"}).to_zarr(out / "fit.zarr", zarr_format=3)
    with pytest.raises(StoreError, match=r"fit\.zarr: not a brainsim fit store"):
        write_fit_report(out, log=_quiet)
    shutil.rmtree(out / "fit.zarr")
    with pytest.raises(StoreError, match="holds no fit.zarr"):
        write_fit_report(out, log=_quiet)


def test_an_interrupted_fit_gets_a_report_titled_so(fitted, tmp_path):
    out = _copy(fitted, tmp_path)
    for name in ("fit.json", "patient.yaml"):
        (out / name).unlink()
    shutil.rmtree(out / "posterior")
    ds = xr.open_zarr(fitted / "fit.zarr").isel(iteration=slice(0, 2))
    _rewrite(out, ds.assign_attrs(status="interrupted"))
    page = write_fit_report(out, log=_quiet).read_text()
    assert "<title>brainsim fit (interrupted): small_brain</title>" in page
    assert 'id="status-warning"' in page and "evaluated 2 of at most 3 ensembles" in page
    _check_figures(page, FIGURES)
    theta = ds.theta.values[1]
    summary = ensemble_summary([str(x) for x in ds.parameter.values], theta)
    for name, values in _table(page, "posterior-table"):
        s = summary[name]
        assert values[:4] == [s["mean"], s["sd"], s["q2.5"], s["q97.5"]]
    assert "this is not its posterior" in page and "--resume" in page and "--patient" not in page
    assert _meta(page)["parameters file"].startswith("(sha256 ")


def test_failed_members_and_a_cmaes_estimate(fitted, tmp_path):
    """Members whose runs blew up (NaN features, infinite misfit) are counted and left out; a CMA-ES fit's
    table says its spread is the last generation's."""
    out = _copy(fitted, tmp_path)
    ds = xr.open_zarr(fitted / "fit.zarr").load()
    for k, m in ((0, 1), (2, 3)):
        ds.features.values[k, m] = np.nan
        ds.misfit.values[k, m] = np.inf
    ds.step.values[:] = np.nan
    inputs = json.loads(ds.attrs["inputs"])
    inputs["method"]["kind"] = "cmaes"
    _rewrite(out, ds.assign_attrs(inputs=json.dumps(inputs, sort_keys=True)))
    record = json.loads((out / "fit.json").read_text())
    record["method"]["kind"] = "cmaes"
    record["estimate"] = "best member (CMA-ES)"
    (out / "fit.json").write_text(json.dumps(record))

    page = write_fit_report(out, log=_quiet).read_text()
    _check_figures(page, FIGURES)
    meta = _meta(page)
    assert meta["failed member runs"].startswith("2 ") and 'id="failed-warning"' in page
    assert meta["method"].startswith("CMA-ES (cmaes), 4 members")
    misfit = _table(page, "misfit-table")
    assert [values for _, values in misfit][0][2:] == [1] and len(misfit[0][1]) == 3  # no step column
    assert [values[-1] for _, values in misfit] == [1, 0, 1]
    assert "<th>best member</th>" in page and "the last generation&#x27;s spread" in page
    assert "fit.json&#x27;s estimate: best member (CMA-ES)" in page
    ok = np.isfinite(ds.features.values[2]).all(axis=1)
    median = np.median(ds.features.values[2][ok], axis=0)
    distance = np.sort(np.abs(median - ds.observed.values) / ds.noise.values)[::-1]
    np.testing.assert_allclose([v[4] for _, v in _table(page, "worst-features")], distance, rtol=1e-12)


def test_many_parameters_and_features_stay_readable(fitted, tmp_path):
    """76 parameters and 152 features (76 regions' rates, 76 electrodes' gamma power): histograms of the
    parameters moved most, every parameter in the interval figure and the table, residual strips."""
    out = _copy(fitted, tmp_path)
    template = xr.open_zarr(fitted / "fit.zarr").load()
    rng = np.random.default_rng(0)
    names = [f"drive[r{i:02d}]" for i in range(76)]
    labels = [f"mean_rate[r{i:02d}]@0-100" for i in range(76)]
    labels += [f"band_power_eeg[E{i:02d},gamma]@0-100" for i in range(76)]
    n, j = 3, 20
    theta = rng.lognormal(0.0, 0.1, (n, j, 76)) * np.linspace(1.0, 0.6, n)[:, None, None]
    observed = rng.normal(2.0, 0.5, len(labels))
    features = observed + rng.normal(0.0, 1.0, (n, j, len(labels))) * np.linspace(3, 0.5, n)[:, None, None]
    misfit = (((features - observed) / 0.1) ** 2).mean(axis=2)
    ds = xr.Dataset(
        {
            "theta": (("iteration", "member", "parameter"), theta),
            "features": (("iteration", "member", "feature"), features),
            "misfit": (("iteration", "member"), misfit),
            "step": (("iteration",), np.array([0.3, 0.7, np.nan])),
            "seed": (("iteration", "member"), np.arange(n * j, dtype=np.int64).reshape(n, j)),
            "observed": (("feature",), observed),
            "noise": (("feature",), np.full(len(labels), 0.1)),
        },
        coords={
            "iteration": np.arange(n),
            "member": np.arange(j),
            "parameter": np.array(names, dtype=object),
            "feature": np.array(labels, dtype=object),
        },
        attrs=template.attrs,
    )
    _rewrite(out, ds)
    record = json.loads((out / "fit.json").read_text())
    record["posterior"] = ensemble_summary(names, theta[-1])
    record["misfit"] = [
        {"iteration": k, "median": float(np.median(m)), "best": float(m.min()), "step": s}
        for k, (m, s) in enumerate(zip(misfit, [0.3, 0.7, None]))
    ]
    (out / "fit.json").write_text(json.dumps(record))

    page = write_fit_report(out, log=_quiet).read_text()
    found = _check_figures(page, ("misfit", "features_0", "features_1", "intervals", "marginals"))
    assert f"the {MAX_PANELS} of 76 the data moved most" in found["marginals"]
    assert "All 76 parameters" in found["intervals"]
    for block in ("features_0", "features_1"):
        assert "as residuals in noise units, sorted" in found[block]
    assert "76 features of band_power_eeg@0-100" in found["features_1"]
    assert [name for name, _ in _table(page, "posterior-table")] == names
    assert len(_table(page, "worst-features")) == 15
