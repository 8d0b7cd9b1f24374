"""Render a summary store as one self-contained HTML page: header, alerts, figures (inline PNG), region table.

The page loads nothing from outside: figures are PNGs drawn by matplotlib's Agg renderer and embedded as
base64 data URLs, and the one inline script only counts the figures the browser decoded (into
``body.dataset.figuresRendered`` and ``figuresTotal``), so that a headless browser can check them. Long
series are block-averaged along their time axis (lazily, with Dask) to at most MAX_COLUMNS samples.
"""

import base64
import html
import io
import json
import math
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from brainsim.errors import StoreError

from .layout import open_summary
from .signals import background, peak_bins

MAX_COLUMNS = 2000  # most samples drawn along a time axis
MAX_LABELS = 80  # most regions or electrodes named on a figure axis
MAX_LINES = 20  # most regions drawn as BOLD lines; more are drawn as a heatmap
DPI = 100
TIME_DIMS = ("time", "window", "bold_time")
RATE_DISPLAY_BIN = 10.0  # ms: the first page's rate heatmap shows means over at least this long
BOLD_FC_MIN_MS = 60_000.0  # shortest run whose BOLD FC the first page shows (BOLD is slow), else rate FC
SEPARATOR = " \u00b7 "  # between the items of the vitals line
KIND_COLOURS = {"excitatory": "#c0392b", "inhibitory": "#2e6fb5"}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 { margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.meta { display: grid; grid-template-columns: repeat(3, max-content auto); gap: 0.15em 1em;
  font-size: 0.85em; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.vitals { font-size: 1.05em; background: #eef3f8; border: 1px solid #9bb3cc; padding: 0.5em 1em; }
dl.meta dt { font-weight: bold; }
.warning { background: #fff3cd; border: 2px solid #e0a800; padding: 0.6em 1em; font-weight: bold; }
.alerts { background: #fde2e1; border: 3px solid #c0392b; padding: 0.6em 1em; }
.alerts h2 { color: #c0392b; margin-top: 0.2em; }
.no-alerts { background: #e6f4ea; border: 1px solid #5b9b6b; padding: 0.4em 1em; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 1em 0; flex: 1 1 560px; min-width: 0; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
.note { font-style: italic; color: #666; border: 1px dashed #aaa; padding: 1em; }
"""

SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.from(document.images);
  document.body.dataset.figuresTotal = images.length;
  document.body.dataset.figuresRendered = images.filter(function (img) {
    return img.complete && img.naturalWidth > 0;
  }).length;
});
"""


def write_report(summary, out, *, log=print) -> Path:
    """Write the summary store at `summary` as one self-contained HTML page at `out`; returns out.

    log(line) receives progress lines. Raises StoreError when the store is not a brainsim summary or the
    page cannot be written.
    """
    log(f"report: opening {summary}")
    ds = open_summary(summary)
    body = [_header(ds), _vitals(ds), _alerts(ds), *_figures(ds, log), _region_table(ds)]
    return write_page(out, f"brainsim summary: {ds.attrs.get('source_name', '')}", body, log=log)


# ---------------------------------------------------------------------------------------------- page parts


def write_page(out, title, body, *, log=print) -> Path:
    """Write page(title, body) at `out`; returns out. Raises StoreError when it cannot be written."""
    out = Path(out)
    try:
        out.write_text(page(title, body), encoding="utf-8")
    except OSError as e:
        raise StoreError(out, f"cannot write the report there ({e.strerror or e})") from None
    log(f"report: wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return out


def page(title, body, head=""):
    """The self-contained HTML page: STYLE, the body parts (HTML text) in order, SCRIPT; head: more of
    <head> (HTML text, a <meta> refresh)."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            f'<html lang="en"><head><meta charset="utf-8">{head}',
            f"<title>{esc(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head><body>",
            *body,
            f"<script>{SCRIPT}</script>",
            "</body></html>",
        ]
    )


def _header(ds):
    """Run name, source, status (with a warning unless complete), versions, provenance, parameters."""
    a = ds.attrs
    provenance = _json_attr(a, "provenance", {})
    status = a.get("source_status", "")
    rows = {
        "source": a.get("source"),
        "source status": status,
        "reached": f"{num(a.get('source_t_reached'))} ms",
        "brainsim version": a.get("brainsim_version"),
        "created": a.get("created"),
        "patient": provenance.get("patient_id"),
        "interventions": ", ".join(map(str, provenance.get("interventions") or [])) or "none",
        "connectome": provenance.get("connectome"),
        "config file": provenance.get("config_file"),
        "config hash": a.get("source_config_hash"),
        "bin": f"{num(a.get('bin'))} ms",
        "window": f"{num(a.get('window_ms'))} ms",
        "BOLD TR": f"{num(a.get('tr'))} ms",
        "spikes": num(a.get("n_spikes")),
    }
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(_text(v))}</dd>" for k, v in rows.items())
    parts = [f"<h1>{esc(a.get('source_name', ''))}</h1>", f'<dl class="meta">{items}</dl>']
    if status != "complete":
        reached = num(a.get("source_t_reached"))
        parts.append(
            f'<p class="warning" id="status-warning">&#9888; The source run is {esc(status or "unknown")}, '
            f"not complete: this summary covers only its first {esc(reached)} ms.</p>"
        )
    return "\n".join(parts)


def _vitals(ds):
    """One line of what says whether the brain is at rest: rates per cell kind, irregularity, the EEG
    peak and the FC-SC correlation (what the summary holds of them)."""
    parts = []
    for kind in KIND_COLOURS:
        if f"mean_rate_{kind}" in ds and f"n_{kind}" in ds.coords:
            rate, cells = ds[f"mean_rate_{kind}"].values, ds[f"n_{kind}"].values
            known = np.isfinite(rate) & (cells > 0)
            if known.any():
                mean = np.sum(rate[known] * cells[known]) / cells[known].sum()
                parts.append(f"{kind} {num(mean)} Hz")
    with _quiet():
        cv = float(np.nanmean(ds.cv_isi.values)) if "cv_isi" in ds else np.nan
    parts.append(f"CV of ISI {num(cv)}")
    if "eeg_peak_frequency" in ds:
        peak, prominence = float(ds.eeg_peak_frequency), float(ds.eeg_peak_prominence)
        clear = prominence > float(ds.attrs.get("peak_clear_above", np.inf))
        parts.append(f"EEG peak {num(peak)} Hz (\u00d7{num(prominence)})" if clear else "no clear EEG peak")
    for which, what in (("rate", "rates"), ("bold", "BOLD")):
        if f"fc_sc_{which}" in ds and np.isfinite(float(ds[f"fc_sc_{which}"])):
            parts.append(f"FC\u2013SC r {_r(float(ds[f'fc_sc_{which}']))} ({what})")
    return f'<p class="vitals" id="vitals">{esc(SEPARATOR.join(parts))}</p>'


def _alerts(ds):
    """A prominent table of the alert matches, or a short "no alerts" box; then the rules checked."""
    alerts = _json_attr(ds.attrs, "alerts", [])
    rules = [f"<li>{esc(_rule_text(rule))}</li>" for rule in _json_attr(ds.attrs, "alert_rules", [])]
    checked = (
        f"<p>Rules checked:</p><ul>{''.join(rules)}</ul>" if rules else "<p>No alert rules were given.</p>"
    )
    if not alerts:
        return f'<section class="no-alerts" id="alerts"><h2>Alerts</h2><p>No alerts.</p>{checked}</section>'
    columns = ("rule", "variable", "region", "start", "end", "peak")
    head = "".join(f"<th>{c}{' (ms)' if c in ('start', 'end') else ''}</th>" for c in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(_text(alert.get(c)))}</td>" for c in columns) + "</tr>"
        for alert in alerts
    )
    return (
        f'<section class="alerts" id="alerts"><h2>&#9888; {len(alerts)} alert{"s" * (len(alerts) != 1)}</h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{checked}</section>"
    )


def _rule_text(rule):
    """An alert rule (brainsim.config.schema.ALERT) in words: "name: variable above x for at least t ms"."""
    if not isinstance(rule, dict):
        return _text(rule)
    side = "below" if rule.get("above") is None else "above"
    regions = rule.get("regions", "all")
    where = "all regions" if regions == "all" else ", ".join(map(str, regions))
    return (
        f"{rule.get('name')}: {rule.get('variable')} {side} {num(rule.get(side))} "
        f"for at least {num(rule.get('for', 0.0))} ms in {where}"
    )


def _region_table(ds):
    """Per-region statistics; window indicators averaged over the run."""
    with _quiet():
        stats = xr.Dataset(
            {
                "mean_rate": ds.mean_rate,
                "cv_isi": ds.cv_isi,
                "synchrony": ds.synchrony,
                "hypersynchrony": ds.hypersynchrony.mean("window"),
                "ei_balance": ds.ei_balance.mean("window"),
            }
        ).compute()
    columns = {
        "mean_rate": "mean rate (Hz)",
        "cv_isi": "CV ISI",
        "synchrony": "synchrony",
        "hypersynchrony": "mean hypersynchrony",
        "ei_balance": "mean E/I balance",
    }
    head = "".join(f"<th>{esc(c)}</th>" for c in ("region", "hemisphere", "cells", *columns.values()))
    rows = []
    for i, label in enumerate(ds.region.values):
        cells = [label, ds.hemisphere.values[i], num(ds.n_cells.values[i])]
        cells += [num(stats[key].values[i]) for key in columns]
        text = "".join(f"<td>{esc(x)}</td>" for x in cells[:2])
        numbers = "".join(f'<td class="num">{esc(x)}</td>' for x in cells[2:])
        rows.append(f"<tr>{text}{numbers}</tr>")
    return (
        '<section id="regions"><h2>Regions</h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


# ------------------------------------------------------------------------------------------------ figures


def _sections():
    """(id, heading, rows of (variable, title, drawing function)) of the page's figure sections: first
    what shows a brain at rest, then the rest."""
    return (
        (
            "rest",
            "The brain at rest",
            (
                (("raster", "spike raster", _raster), ("spectrum_eeg", "EEG spectra", _spectra)),
                (("rate", "rate heatmap", _rate),),
                (("fc_sc", "functional and structural connectivity", _fc_sc),),
            ),
        ),
        (
            "figures",
            "More figures",
            (
                (("fc_rate", "rate FC matrix", _fc), ("fc_bold", "BOLD FC matrix", _fc)),
                (
                    ("band_power", "band power", _band_power),
                    ("band_power_eeg", "EEG band power", _band_power),
                ),
                (("bold", "BOLD time series", _bold),),
                (("hypersynchrony", "hypersynchrony", _indicator),),
                (("ei_balance", "E/I balance", _indicator),),
            ),
        ),
    )


def _figures(ds, log):
    """One section per entry of _sections(), one HTML row per group of figures, each a <figure> with an
    image or a note."""
    rows = []
    for key, heading, groups in _sections():
        rows.append(f'<section id="{key}"><h2>{esc(heading)}</h2>')
        for group in groups:
            cells = []
            for name, title, draw in group:
                log(f"report: rendering {title}")
                cells.append(figure_html(name, title, draw(ds, name)))
            rows.append(f'<div class="row">{"".join(cells)}</div>')
        rows.append("</section>")
    return rows


def figure_html(name, title, drawn):
    """<figure> for (Figure, caption) or, when there is nothing to draw, for a note (str)."""
    if isinstance(drawn, str):
        kind, content, caption = "empty", f'<p class="note">{esc(title)}: {esc(drawn)}</p>', "Not drawn."
    else:
        fig, caption = drawn
        kind, content = "drawn", f'<img alt="{esc(title)} ({name})" src="data:image/png;base64,{png(fig)}">'
    return (
        f'<figure class="{kind}" data-variable="{name}">{content}'
        f"<figcaption><b>{esc(title[0].upper() + title[1:])}</b>. {esc(caption)}</figcaption></figure>"
    )


def _raster(ds, name):
    """Raster sample: spike time vs gid, one colour per region."""
    gid, time, region = (ds[f"raster_{k}"].values for k in ("gid", "time", "region"))
    if len(gid) == 0:
        return "no spikes in the raster sample"
    fig, ax = new_figure(7.4, 4.4)
    scale, unit = _time_unit(time)
    colours = _region_colours(ds.sizes["region"])
    ax.scatter(time / scale, gid, s=4, c=colours[region], marker="|", linewidths=0.8, rasterized=True)
    ax.set(xlabel=f"time ({unit})", ylabel="cell gid")
    _region_legend(ax, ds.region.values, colours)
    total = num(ds.attrs.get("n_spikes"))
    return fig, f"A sample of {len(gid):,} of the run's {total} spikes, coloured by region."


def _rate(ds, name):
    """Region rate heatmap over time (means over at least RATE_DISPLAY_BIN ms), beside each region's mean
    rate per cell kind."""
    bin_ms = float(ds.attrs.get("bin") or 1.0)
    rate = ds[name]
    factor = max(math.ceil(rate.sizes["time"] / MAX_COLUMNS), round(RATE_DISPLAY_BIN / bin_ms), 1)
    if rate.sizes["time"] >= 2 * factor:
        rate = rate.coarsen(time=factor, boundary="trim", coord_func="min").mean()
    shown = _reduced(rate)
    if shown is None:
        return _note(ds[name])
    n = ds.sizes["region"]
    fig = Figure(figsize=(12.4, float(np.clip(1.6 + 0.06 * n, 3.5, 6.5))), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax, side = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [4.2, 1.0]})
    finite = shown.values[np.isfinite(shown.values)]
    top = float(np.percentile(finite, 99)) if finite.size else 1.0
    _heatmap(
        fig, ax, shown, "time", "region", f"rate ({_units(shown)})", cmap="viridis", vmin=0, vmax=top or 1.0
    )
    overall = _population_rates(ds, side)
    step = num(factor * bin_ms)
    return fig, (
        f"Population firing rate ({_units(shown)}) per region over time, means over {step} ms bins (colour "
        f"scale to the 99th percentile, {num(top)} Hz); right: each region's mean rate per cell of each "
        f"kind over the run. Brain-wide: {overall}."
    )


def _population_rates(ds, ax):
    """Horizontal bars of each region's mean rate per excitatory and inhibitory cell (the mean rate of all
    cells where the summary has no per-kind rates) on ax; returns the brain-wide means in words."""
    y = np.arange(ds.sizes["region"])
    kinds = [k for k in KIND_COLOURS if f"mean_rate_{k}" in ds]
    if not kinds:
        rate = ds.mean_rate.values
        ax.barh(y, np.nan_to_num(rate), height=0.8, color="#555")
        ax.set_xlabel("mean rate (Hz)")
        cells = ds.n_cells.values
        return f"{num(np.nansum(rate * cells) / max(cells.sum(), 1))} Hz per cell"
    words = []
    for offset, kind in zip((-0.2, 0.2), kinds):
        rate = ds[f"mean_rate_{kind}"].values
        ax.barh(y + offset, np.nan_to_num(rate), height=0.4, color=KIND_COLOURS[kind], label=kind)
        cells = ds[f"n_{kind}"].values if f"n_{kind}" in ds.coords else np.ones_like(rate)
        known = np.isfinite(rate)
        mean = np.sum(rate[known] * cells[known]) / cells[known].sum() if cells[known].sum() else np.nan
        words.append(f"{kind} cells {num(mean)} Hz")
    ax.set_xlabel("mean rate per cell (Hz)")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    ax.tick_params(axis="y", left=False)
    ax.grid(axis="x", alpha=0.3)
    return ", ".join(words)


def _spectra(ds, name):
    """EEG power spectra on log-log axes: every electrode thin, their mean bold with its 1/f background
    and the peak marked."""
    if name not in ds:
        return "not in this summary (made before brainsim stored spectra: summarise the run again)"
    psd = _reduced(ds[name])
    if psd is None or psd.sizes.get("electrode", 0) == 0:
        return _note(ds[name])
    freqs = psd.frequency.values
    inside = peak_bins(freqs)
    if not inside.any():
        return "the run is too short for a spectrum between 1 and 80 Hz"
    fig, ax = new_figure(5.6, 4.4)
    shown = inside & np.all(psd.values > 0, axis=1)
    for j in range(psd.sizes["electrode"]):
        ax.plot(freqs[shown], psd.values[shown, j], color="#9aa5b1", lw=0.6, alpha=0.7)
    mean = psd.values.mean(axis=1)
    ax.plot(freqs[shown], mean[shown], color="#111", lw=1.8, label="mean over electrodes")
    peak, prominence = (
        float(ds[v]) if v in ds else np.nan for v in ("eeg_peak_frequency", "eeg_peak_prominence")
    )
    level = float(ds.attrs.get("peak_clear_above", np.inf))
    if shown.sum() >= 5 and np.all(mean[inside] > 0):
        ax.plot(freqs[inside], 10 ** background(freqs[inside], mean[inside]), "--", color="#e67e22", lw=1.2,
                label="1/f background")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="frequency (Hz)", ylabel=f"power ({_units(psd)})")
    ticks = [t for t in (1, 2, 5, 10, 20, 40, 80) if freqs[inside][0] <= t <= freqs[inside][-1]]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    if np.isfinite(peak):
        at = mean[np.argmin(np.abs(freqs - peak))]
        clear = prominence > level
        text = (
            f"{num(peak)} Hz, \u00d7{num(prominence)}"
            if clear
            else f"no clear peak (\u00d7{num(prominence)})"
        )
        ax.plot(
            [peak], [at], "v" if clear else "o", color="#c0392b", ms=9, mfc="#c0392b" if clear else "none"
        )
        if clear:
            side = "right" if peak > 40 else "left" if peak < 4 else "center"  # inside the axes
            ax.annotate(text, (peak, at), xytext=(0, 12), textcoords="offset points", ha=side,
                        fontsize=10, weight="bold", color="#c0392b")  # fmt: skip
        else:
            ax.text(0.03, 0.96, text, transform=ax.transAxes, va="top", fontsize=10, weight="bold",
                    color="#c0392b")  # fmt: skip
        verdict = (
            f"peak at {num(peak)} Hz, {num(prominence)} times the 1/f background there"
            if clear
            else f"no clear peak: the highest, at {num(peak)} Hz, is {num(prominence)} times the background"
        )
    else:
        verdict = "no peak could be measured"
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    ax.grid(which="both", alpha=0.2)
    return fig, (
        f"Welch power spectra of the scalp EEG, {psd.sizes['electrode']} electrodes (grey) and their mean "
        f"(black), {num(freqs[inside][0])}-{num(freqs[inside][-1])} Hz; mean spectrum: {verdict} "
        f"(clear above {num(level)} times, a level noise reaches by chance in about 1% of spectra)."
    )


def _fc_sc(ds, name):
    """Functional connectivity (of BOLD over runs of at least BOLD_FC_MIN_MS, else of rates) beside the
    structural weights (symmetrised), the same region order, with their correlation."""
    if "sc_weights" not in ds or bool(ds.sc_weights.isnull().all()):
        return (
            "no structural connectivity in this summary: the run has no brain, or its store was written "
            "before brainsim stored the connectome there"
        )
    long = float(ds.attrs.get("source_t_reached") or 0.0) >= BOLD_FC_MIN_MS
    which = "bold" if long and "fc_sc_bold" in ds and np.isfinite(float(ds.fc_sc_bold)) else "rate"
    fc = _reduced(ds[f"fc_{which}"])
    if fc is None:
        return _note(ds[f"fc_{which}"])
    sc = ds.sc_weights.values
    sc = 0.5 * (sc + sc.T)
    r = float(ds[f"fc_sc_{which}"]) if f"fc_sc_{which}" in ds else np.nan
    i, j = np.triu_indices(fc.shape[0], 1)
    pairs = int(np.isfinite(fc.values[i, j]).sum())
    fig = Figure(figsize=(12.4, 5.2), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    values = fc.values.copy()
    np.fill_diagonal(values, np.nan)  # 1 by definition; the colour scale is for the pairs
    off = np.abs(values[np.isfinite(values)])
    limit = max(0.1, float(np.percentile(off, 99))) if off.size else 1.0
    image = left.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    fig.colorbar(image, ax=left, label="Pearson r", shrink=0.85)
    left.set_title(f"FC of {'BOLD' if which == 'bold' else 'rates'}")
    positive = sc[sc > 0]
    top = float(np.percentile(positive, 99)) if positive.size else 1.0
    image = right.imshow(sc, cmap="magma_r", vmin=0, vmax=top, interpolation="nearest")
    fig.colorbar(image, ax=right, label=f"weight ({_units(ds.sc_weights)})", shrink=0.85)
    right.set_title("SC: connectome weights, symmetrised")
    for ax in (left, right):
        label_axis(ax.set_yticks, ds.region.values)
        label_axis(ax.set_xticks, ds.region2.values, rotation=90)
    fig.suptitle(
        f"FC\u2013SC correlation r = {_r(r)} over {pairs:,} region pairs", fontsize=13, weight="bold"
    )
    what = "BOLD signal" if which == "bold" else "firing rates"
    other = "rate" if which == "bold" else "bold"
    also = ""
    if f"fc_sc_{other}" in ds:
        named = "rates" if other == "rate" else "BOLD"
        also = f"; with the FC of {named}: r = {_r(float(ds[f'fc_sc_{other}']))}"
    return fig, (
        f"Functional connectivity (Pearson correlation of the {what}; diagonal blank, colour scale \u00b1"
        f"{num(limit)}) next to the structural connectivity it was simulated on, (W + W\u1d40)/2, colour "
        "scale to the 99th percentile of the weights. r: Pearson "
        "correlation of the two over the region pairs i < j with a finite FC (linear weights, pairs without "
        f"a tract as 0){also}. Resting-state whole-brain models report 0.2-0.5."
    )


def _fc(ds, name):
    """Correlation matrix, colour scale -1..1."""
    da = _reduced(ds[name])
    if da is None:
        return _note(ds[name])
    fig, ax = new_figure(5.8, 5.0)
    image = ax.imshow(da.values, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="Pearson r", shrink=0.8)
    label_axis(ax.set_yticks, ds.region.values)
    label_axis(ax.set_xticks, ds.region2.values, rotation=90)
    what = "firing rate" if name == "fc_rate" else "BOLD signal"
    return fig, f"Functional connectivity: Pearson correlation of the {what} between regions."


def _band_power(ds, name):
    """Band power heatmap (log10), regions or electrodes by band."""
    da = _reduced(ds[name])
    if da is None:
        return _note(ds[name])
    rows = da.dims[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        power = np.where(da.values > 0, np.log10(da.values), np.nan)
    fig, ax = new_figure(6, _height(da.sizes[rows]))
    image = ax.imshow(power, aspect="auto", cmap="magma", interpolation="nearest")
    fig.colorbar(image, ax=ax, label=f"log10 power ({_units(da)})")
    bands = [
        f"{b}\n{lo:g}-{hi:g} Hz" for b, lo, hi in zip(da.band.values, da.band_low.values, da.band_high.values)
    ]
    ax.set_xticks(range(len(bands)), bands, fontsize=8)
    label_axis(ax.set_yticks, da[rows].values)
    ax.set_ylabel(rows)
    source = "region signal" if rows == "region" else "scalp EEG"
    return (
        fig,
        f"Welch power of the {source} in each frequency band, log10 scale ({_units(da)}); blank: no value.",
    )


def _bold(ds, name):
    """BOLD signal: one thin line per region, or a heatmap for many regions."""
    da = _reduced(ds[name])
    if da is None:
        return _note(ds[name])
    n = ds.sizes["region"]
    if n > MAX_LINES:
        fig, ax = new_figure(11, _height(n))
        limit = float(np.nanmax(np.abs(da.values))) or 1.0
        label = f"BOLD ({_units(da)})"
        _heatmap(fig, ax, da, "bold_time", "region", label, cmap="RdBu_r", vmin=-limit, vmax=limit)
        drawn = "a row per region"
    else:
        fig, ax = new_figure(11, 4)
        scale, unit = _time_unit(da.bold_time.values)
        colours = _region_colours(n)
        for i in range(n):
            ax.plot(da.bold_time.values / scale, da.values[:, i], lw=0.8, color=colours[i])
        ax.set(xlabel=f"time ({unit})", ylabel=f"BOLD ({_units(da)})")
        _region_legend(ax, ds.region.values, colours)
        drawn = "a line per region"
    return fig, f"BOLD signal change ({_units(da)}), {drawn}{_decimated(ds[name], da)}."


def _indicator(ds, name):
    """Window indicator heatmap: hypersynchrony on 0..1, E/I balance on -1..1."""
    da = _reduced(ds[name])
    if da is None:
        return _note(ds[name])
    fig, ax = new_figure(11, _height(ds.sizes["region"]))
    if name == "hypersynchrony":
        _heatmap(fig, ax, da, "window", "region", "hypersynchrony", cmap="inferno", vmin=0, vmax=1)
        what = "Hypersynchrony (chance-corrected chi^2: 0 independent, 1 lockstep)"
    else:
        _heatmap(fig, ax, da, "window", "region", "E/I balance", cmap="PuOr_r", vmin=-1, vmax=1)
        what = "E/I balance (r_E - r_I) / (r_E + r_I)"
    window = num(ds.attrs.get("window_ms"))
    return fig, f"{what} per {window} ms window and region{_decimated(ds[name], da)}."


# ------------------------------------------------------------------------------------------ figure helpers


def _reduced(da):
    """da block-averaged to at most MAX_COLUMNS samples along its time dimension and loaded; None when it
    has no finite value."""
    if da.size == 0:
        return None
    for dim in set(da.dims) & set(TIME_DIMS):
        da = decimate(da, dim)
    with _quiet():
        da = da.compute()
    return None if np.isnan(da.values).all() else da


def decimate(da, dim, limit=MAX_COLUMNS):
    """Block means along dim so that at most `limit` samples remain, each labelled by its first
    coordinate; stays lazy (Dask) when da is."""
    factor = math.ceil(da.sizes[dim] / limit)
    if factor <= 1:
        return da
    return da.coarsen({dim: factor}, boundary="pad", coord_func="min").mean()


NAN_REASONS = {
    "fc_bold": ": the run is too short for BOLD correlations",
    "band_power_eeg": ": region centres are unknown",
}


def _note(da):
    """Why da is not drawn: an empty dimension, or NaN throughout."""
    if da.size == 0:
        return f"no data ({da.name} has no {' or '.join(d for d in da.dims if da.sizes[d] == 0)})"
    return f"no data ({da.name} is NaN throughout{NAN_REASONS.get(da.name, '')})"


def _heatmap(fig, ax, da, x, y, label, **kwargs):
    """da (x, y) as an image with x (ms) horizontal, the y labels down the left side and a colour bar
    named label; kwargs go to imshow."""
    scale, unit = _time_unit(da[x].values)
    step = (da[x].values[1] - da[x].values[0]) if da.sizes[x] > 1 else 1.0
    extent = (da[x].values[0] / scale, (da[x].values[-1] + step) / scale, da.sizes[y] - 0.5, -0.5)
    image = ax.imshow(
        da.transpose(y, x).values, aspect="auto", extent=extent, interpolation="nearest", **kwargs
    )
    fig.colorbar(image, ax=ax, label=label)
    ax.set(xlabel=f"{x.replace('_', ' ')} ({unit})", ylabel=y)
    label_axis(ax.set_yticks, da[y].values)


def label_axis(set_ticks, labels, rotation=0):
    """Name each tick when there are at most MAX_LABELS labels; otherwise leave the default index ticks."""
    if len(labels) <= MAX_LABELS:
        size = 8 if len(labels) <= 30 else 5
        set_ticks(range(len(labels)), [tex_safe(x) for x in labels], fontsize=size, rotation=rotation)


def _region_colours(n):
    """RGBA rows, one per region: tab20's ten strong colours first, then its ten light ones, repeating."""
    i = np.arange(n) % 20
    return colormaps["tab20"](2 * (i % 10) + i // 10)


def _region_legend(ax, labels, colours):
    """A colour key right of the axes, for at most MAX_LINES regions."""
    if len(labels) <= MAX_LINES:
        handles = [
            ax.scatter([], [], color=colours[i], marker="s", label=tex_safe(x)) for i, x in enumerate(labels)
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)


def new_figure(width, height):
    """A figure of width x height inches outside pyplot (freed with its last reference)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def png(fig):
    """The figure as base64 PNG text."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _height(n_rows):
    """Figure height (inches) for a heatmap of n_rows rows: room for their labels, if they get some."""
    return float(np.clip(1.5 + 0.12 * n_rows, 3, 11)) if n_rows <= MAX_LABELS else 6.0


def _time_unit(ms):
    """(divisor, unit) to show times given in ms: seconds past 10 s."""
    span = float(np.nanmax(ms) - np.nanmin(ms)) if len(ms) else 0.0
    return (1000.0, "s") if span > 10_000 else (1.0, "ms")


def _decimated(original, shown):
    """Caption text saying how much `shown` was block-averaged from `original` ("" if not at all)."""
    dims = [d for d in TIME_DIMS if d in original.dims and original.sizes[d] != shown.sizes[d]]
    if not dims:
        return ""
    d = dims[0]
    return f" (means over blocks of {math.ceil(original.sizes[d] / shown.sizes[d])} samples)"


# ----------------------------------------------------------------------------------------------- text


def _json_attr(attrs, key, default):
    """An attribute stored as JSON text (already decoded values are returned as they are)."""
    value = attrs.get(key)
    if value is None:
        return default
    return json.loads(value) if isinstance(value, str) else value


def _units(da):
    return da.attrs.get("units", "")


def num(x):
    """Numbers for people: integers as they are, floats to 3 significant digits, NaN/None as an en dash."""
    if x is None or (isinstance(x, (float, np.floating)) and not np.isfinite(x)):
        return "\u2013"
    if isinstance(x, (int, np.integer)) or (isinstance(x, (float, np.floating)) and float(x).is_integer()):
        return f"{int(x):,}"
    return f"{x:.3g}"


def _r(x):
    """A correlation coefficient to two decimals, NaN as an en dash."""
    return f"{x:.2f}" if np.isfinite(x) else "\u2013"


def _text(x):
    """Any JSON value as table text: numbers as num, lists and mappings as JSON."""
    if isinstance(x, (float, int, np.number)) or x is None:
        return num(x)
    if isinstance(x, (dict, list)):
        return json.dumps(x)
    return str(x)


def esc(x):
    return html.escape(str(x), quote=True)


def tex_safe(label):
    """A label matplotlib draws as it is ($ would start mathtext)."""
    return str(label).replace("$", r"\$")


@contextmanager
def _quiet():
    """Silence NumPy's warnings about means of all-NaN slices (they become NaN, shown as such)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        yield
