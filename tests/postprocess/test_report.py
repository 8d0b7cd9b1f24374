"""The HTML report of a summary store: self-contained, every figure a decodable PNG, alerts and warnings
shown, NaN variables noted, and the page rendered by headless Chromium."""

import base64
import io
import re

import numpy as np
import pytest
import xarray as xr
from matplotlib import image as mpimg
from support import run_chromium
from synthetic import synthetic_dataset, synthetic_summary, write_summary

from brainsim.errors import StoreError
from brainsim.postprocess.report import MAX_COLUMNS, decimate, write_report

FIRST_PAGE = ("raster", "spectrum_eeg", "rate", "fc_sc")  # in this order, before every other figure
FIGURES = (
    *FIRST_PAGE,
    "fc_rate",
    "fc_bold",
    "band_power",
    "band_power_eeg",
    "bold",
    "hypersynchrony",
    "ei_balance",
)
ALERT = {
    "rule": "hypersync",
    "variable": "hypersynchrony",
    "region": "lh-area0",
    "start": 250.0,
    "end": 400.0,
    "peak": 0.95,
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def render(tmp_path, **kwargs):
    """Write a synthetic summary and its report; returns (HTML text, progress lines, Dataset)."""
    ds = synthetic_summary(tmp_path / "summary.zarr", **kwargs)
    lines = []
    out = write_report(tmp_path / "summary.zarr", tmp_path / "summary.html", log=lines.append)
    return out.read_text(encoding="utf-8"), lines, ds


def figures(page):
    """{data-variable: the <figure> element's HTML}."""
    return dict(re.findall(r'<figure class="\w+" data-variable="(\w+)">(.*?)</figure>', page, re.S))


def png_of(figure_html):
    """The decoded PNG bytes of a figure's <img>."""
    match = re.search(r'<img alt="[^"]+" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', figure_html)
    assert match, f"no inline PNG in {figure_html[:200]}"
    return base64.b64decode(match.group(1), validate=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    return render(tmp_path_factory.mktemp("report"), alerts=[ALERT])


def test_page_is_self_contained(page):
    html, _, _ = page
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert len(re.findall(r"<script>", html)) == 1 and "figuresRendered" in html


def test_every_figure_is_an_inline_png_with_alt_and_caption(page):
    html, _, _ = page
    found = figures(html)
    assert set(found) == set(FIGURES)
    for name in FIGURES:
        data = png_of(found[name])
        assert data.startswith(PNG_MAGIC), name
        pixels = mpimg.imread(io.BytesIO(data), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100, name
        assert pixels[..., :3].std() > 0.05, f"{name} is blank"
        assert re.search(r"<figcaption><b>[^<]+</b>\. [^<]{10,}</figcaption>", found[name]), name


def test_the_page_opens_with_the_brain_at_rest(page):
    """Raster, EEG spectra with the peak, the rate heatmap with population rates, FC beside SC with r."""
    html, _, ds = page
    order = re.findall(r'data-variable="(\w+)"', html)
    assert order[: len(FIRST_PAGE)] == list(FIRST_PAGE)
    assert (
        html.index('id="vitals"') < html.index('<section id="rest">') < html.index('<section id="figures">')
    )
    found = figures(html)
    peak, prominence = float(ds.eeg_peak_frequency), float(ds.eeg_peak_prominence)
    assert prominence > ds.attrs["peak_clear_above"]  # the synthetic EEG has sinusoids
    assert (
        f"mean spectrum: peak at {peak:g} Hz, {prominence:.3g} times the 1/f background"
        in found["spectrum_eeg"]
    )
    assert "excitatory cells" in found["rate"] and "inhibitory cells" in found["rate"]
    r = float(ds.fc_sc_rate)
    assert f"with the FC of BOLD: r = {float(ds.fc_sc_bold):.2f}" in found["fc_sc"]  # a 400 ms run: rate FC
    vitals = re.search(r'<p class="vitals" id="vitals">(.*?)</p>', html).group(1)
    assert f"EEG peak {peak:g} Hz" in vitals and f"FC\u2013SC r {r:.2f} (rates)" in vitals
    fig = mpimg.imread(io.BytesIO(png_of(found["fc_sc"])), format="png")
    assert fig.shape[1] > 2 * fig.shape[0]  # two matrices side by side


def test_a_summary_without_structure_or_spectra_says_so(tmp_path):
    """Summaries of runs whose store has no structural connectivity (NaN), or made before spectra and
    per-kind rates were summarised (absent), still make a page."""
    ds = synthetic_dataset()
    ds["sc_weights"][:] = np.nan
    ds["fc_sc_rate"] = ds["fc_sc_bold"] = np.nan
    write_summary(ds, tmp_path / "nan.zarr")
    old = ds.drop_vars(
        ["spectrum_eeg", "eeg_peak_frequency", "eeg_peak_prominence", "sc_weights", "fc_sc_rate",
         "fc_sc_bold", "mean_rate_excitatory", "mean_rate_inhibitory", "frequency"]
    )  # fmt: skip
    del old.attrs["peak_clear_above"]
    write_summary(old, tmp_path / "old.zarr")
    for name in ("nan", "old"):
        html = write_report(tmp_path / f"{name}.zarr", tmp_path / f"{name}.html", log=lambda line: None)
        found = figures(html.read_text())
        assert "no structural connectivity in this summary" in found["fc_sc"] and "<img" not in found["fc_sc"]
        assert png_of(found["rate"]).startswith(PNG_MAGIC)
    assert "summarise the run again" in found["spectrum_eeg"]
    assert "per cell" in found["rate"]


def test_header_shows_run_provenance_and_parameters(page):
    html, _, ds = page
    for text in (
        "<h1>synthetic</h1>",
        "/synthetic/synthetic.zarr",
        "P-0042",
        "stimulation",
        "synthetic-connectome",
    ):
        assert text in html
    assert "/synthetic/config.yaml" in html
    assert re.search(r"<dt>bin</dt><dd>1 ms</dd>", html)
    assert re.search(r"<dt>window</dt><dd>50 ms</dd>", html)
    assert re.search(r"<dt>BOLD TR</dt><dd>100 ms</dd>", html)
    assert f"<dt>spikes</dt><dd>{ds.attrs['n_spikes']:,}</dd>" in html
    assert 'id="status-warning"' not in html  # the run is complete


def test_alert_table_shows_the_alert(page):
    html, _, _ = page
    section = re.search(r'<section class="alerts" id="alerts">(.*?)</section>', html, re.S)
    assert section, "alerts are not in the prominent alerts box"
    assert "1 alert<" in section.group(1)
    row = re.search(r"<tbody><tr>(.*?)</tr>", section.group(1)).group(1)
    assert re.findall(r"<td>(.*?)</td>", row) == [
        "hypersync",
        "hypersynchrony",
        "lh-area0",
        "250",
        "400",
        "0.95",
    ]


def test_no_alerts_and_incomplete_run_warning(tmp_path):
    html, _, _ = render(tmp_path, status="interrupted")
    section = re.search(r'<section class="no-alerts" id="alerts">(.*?)</section>', html, re.S).group(1)
    assert "No alerts." in section
    assert "<li>hypersync: hypersynchrony above 0.8 for at least 100 ms in all regions</li>" in section
    warning = re.search(r'<p class="warning" id="status-warning">(.*?)</p>', html, re.S)
    assert warning and "interrupted" in warning.group(1) and "400 ms" in warning.group(1)


def test_region_table_values_and_nan_dash(tmp_path):
    ds = synthetic_dataset()
    ds["cv_isi"][2] = np.nan
    ds["ei_balance"][:, 3] = np.nan
    write_summary(ds, tmp_path / "s.zarr")
    html = write_report(tmp_path / "s.zarr", tmp_path / "s.html", log=lambda line: None).read_text()
    body = re.search(r'<section id="regions">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]
    assert [row[0] for row in rows] == list(ds.region.values)
    assert rows[0][:3] == ["lh-area0", "left", "20"]
    assert rows[1][3] == f"{float(ds.mean_rate[1]):.3g}"
    assert rows[2][4] == "\u2013" and rows[3][7] == "\u2013"
    assert rows[0][6] == f"{float(ds.hypersynchrony[:, 0].mean()):.3g}"


def test_all_nan_variables_get_a_note(tmp_path):
    html, _, _ = render(tmp_path, tr=1000.0, n_electrodes=0)  # one BOLD sample: fc_bold is NaN; no electrodes
    found = figures(html)
    for name in ("fc_bold", "band_power_eeg", "spectrum_eeg"):
        assert "<img" not in found[name] and 'class="note"' in found[name], name
    assert "NaN throughout" in found["fc_bold"] and "has no electrode" in found["band_power_eeg"]
    assert "has no electrode" in found["spectrum_eeg"]
    assert png_of(found["fc_rate"]).startswith(PNG_MAGIC)


@pytest.mark.parametrize("n_regions, bold_as", [(20, "a line per region"), (90, "a row per region")])
def test_many_regions(tmp_path, n_regions, bold_as):
    """Every figure is drawn for many regions; past 20 regions BOLD is a heatmap."""
    html, _, _ = render(tmp_path, n_regions=n_regions)
    found = figures(html)
    for name in FIGURES:
        assert png_of(found[name]).startswith(PNG_MAGIC), name
    assert bold_as in found["bold"]


def test_text_from_the_store_is_escaped(tmp_path):
    ds = synthetic_dataset(name="<b>run&1</b>")
    labels = np.array(["<i>r0</i>", *ds.region.values[1:]], dtype=object)
    ds = ds.assign_coords(region=labels, region2=labels)
    write_summary(ds, tmp_path / "s.zarr")
    html = write_report(tmp_path / "s.zarr", tmp_path / "s.html", log=lambda line: None).read_text()
    assert "<b>run&1</b>" not in html and "&lt;b&gt;run&amp;1&lt;/b&gt;" in html
    assert "<i>r0</i>" not in html and "&lt;i&gt;r0&lt;/i&gt;" in html


def test_progress_is_logged(page):
    _, lines, _ = page
    assert lines[0].startswith("report: opening") and lines[-1].startswith("report: wrote")
    assert "report: rendering rate heatmap" in lines


def test_long_summary_is_decimated_lazily(tmp_path):
    synthetic_summary(tmp_path / "long.zarr", n_time=30_000, n_regions=4)
    rate = xr.open_zarr(tmp_path / "long.zarr").rate
    reduced = decimate(rate, "time")
    assert reduced.chunks is not None  # still a Dask array
    assert reduced.sizes["time"] == MAX_COLUMNS
    factor = 15
    np.testing.assert_allclose(reduced.values[1], rate.values[factor : 2 * factor].mean(axis=0))
    assert reduced.time.values[1] == rate.time.values[factor]
    html = write_report(tmp_path / "long.zarr", tmp_path / "long.html", log=lambda line: None).read_text()
    assert "means over 15 ms bins" in figures(html)["rate"]  # at most MAX_COLUMNS columns


def test_run_store_is_refused(tmp_path):
    write_summary(xr.Dataset(attrs={"format": "brainsim-run"}), tmp_path / "run.zarr")
    with pytest.raises(StoreError, match=r"run\.zarr: a run store .*run `brainsim summarize` first"):
        write_report(tmp_path / "run.zarr", tmp_path / "r.html", log=lambda line: None)
    write_summary(xr.Dataset(attrs={"format": "other"}), tmp_path / "x.zarr")
    with pytest.raises(StoreError, match=r"x\.zarr: not a brainsim summary store \(format 'other'"):
        write_report(tmp_path / "x.zarr", tmp_path / "r.html", log=lambda line: None)
    assert not (tmp_path / "r.html").exists()


def test_report_of_a_real_run(run, tmp_path):
    """A small brain run, summarised: every figure drawn (BOLD connectivity needs more than 200 ms: a
    note), every region in the table."""
    from brainsim.postprocess.summarize import summarize

    opened, store = run("tests/data/small_brain.yaml")
    summarize(store, tmp_path / "run.summary.zarr", scheduler="threads", log=lambda line: None)
    out = write_report(tmp_path / "run.summary.zarr", tmp_path / "run.html", log=lambda line: None)
    html = out.read_text()
    found = figures(html)
    assert [name for name in FIGURES if "<img" not in found[name]] == ["fc_bold"]
    assert "fc_bold is NaN throughout" in found["fc_bold"]
    summary = xr.open_zarr(tmp_path / "run.summary.zarr")
    np.testing.assert_array_equal(summary.sc_weights.values, opened.connectivity.sc_weights.values)
    assert np.isfinite(float(summary.fc_sc_rate)) and "correlation of the firing rates" in found["fc_sc"]
    assert "FC of rates" not in found["fc_sc"]  # the figure's title is in the image, the caption names it
    assert (
        "correlation of the firing rates" in found["fc_sc"] and "over 15 region pairs" not in found["fc_sc"]
    )
    labels = list(xr.open_zarr(tmp_path / "run.summary.zarr").region.values)
    body = re.search(r'<section id="regions">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    assert re.findall(r"<tr><td>(.*?)</td>", body) == labels and len(labels) == 6
    assert "<h1>small_brain</h1>" in html and 'id="status-warning"' not in html


# ------------------------------------------------------------------------------------------- Chromium


def test_chromium_renders_every_figure(tmp_path):
    html, _, _ = render(tmp_path)
    url = (tmp_path / "summary.html").as_uri()
    dom = run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    rendered = re.search(r'data-figures-rendered="(\d+)"', body)
    total = re.search(r'data-figures-total="(\d+)"', body)
    assert rendered and total, f"the page's script did not run: {body}"
    assert int(total.group(1)) == html.count("<img ") >= 6
    assert rendered.group(1) == total.group(1)

    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.1, "the screenshot is blank"
    colourful = pixels[..., :3].std(axis=2) > 0.1  # text and page background are grey
    assert colourful.mean() > 0.05, "the figures did not paint: the screenshot has hardly any colour"
