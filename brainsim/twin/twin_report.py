"""TWIN.html: a twin store (follow.py's TWIN.zarr) as one self-contained HTML page in the summary report's
style (postprocess/report.py: inline PNGs, no outside resources): the follow's inputs and status, its
warnings, the observed features against the members' predictions window by window, the parameter
trajectories, the forecast fan, the filter's health and how to continue.

A running or interrupted follow gets a page too, titled as such. `watch` rewrites the page whenever the
store has another window (the page then reloads itself) until the follow is complete.
"""

import json
import math
import re
import time
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from brainsim.errors import StoreError
from brainsim.postprocess.report import (
    DPI,
    MAX_LABELS,
    esc,
    figure_html,
    label_axis,
    new_figure,
    num,
    page,
    tex_safe,
)

from .fit_report import LABEL
from .follow import open_twin, twin_paths

MAX_SERIES = 16  # most features drawn as panels per variable (those followed worst first)
MAX_PANELS = 24  # most parameters drawn as trajectories (those moved most)
FAN_WINDOWS = 4  # forecasts drawn in a fan: the last window's and up to three earlier ones, faded
MAX_ROWS = 20  # rows of the filter-health table (the last windows)
BAND = (5.0, 95.0)  # percentiles of an ensemble's band
FORECAST, ANALYSIS, OBSERVED = "#4a78b0", "#c0392b", "#111111"
REQUIRED = ("window_start", "window_end", "theta_forecast", "theta", "predicted", "failed", "observed",
            "noise", "innovation", "nis", "misfit", "spread", "forecast_members", "warning_probability",
            "warning", "expected_time", "lead_time", "warning_regions")  # fmt: skip
MEMBER_ID = re.compile(r"-follow-\d+$")


def default_page(store):
    """TWIN.html beside TWIN.zarr."""
    store = Path(store)
    return store.with_name(store.name.removesuffix(".zarr") + ".html")


def write_twin_report(store, out=None, *, refresh=None, log=print) -> Path:
    """Write the twin store `store` as one self-contained HTML page at `out` (default TWIN.html beside it);
    returns its path. refresh: s after which the browser reloads the page (None: never). Raises StoreError
    naming the file when the store is unreadable or not a twin store's, or the page cannot be written."""
    view = _View(Path(store), open_twin(store))
    body = [
        _header(view),
        _warnings(view),
        _observed_section(view),
        _parameter_section(view),
        _fan_section(view),
        _health_section(view),
        _usage(view),
    ]
    status = "" if view.status == "complete" else f" ({view.status})"
    title = f"brainsim twin{status}: {view.patient or view.store.name}"
    head = "" if refresh is None else f'<meta http-equiv="refresh" content="{max(1, round(refresh))}">'
    text = page(title, body, head)
    out = Path(default_page(store) if out is None else out)
    scratch = out.with_name(out.name + ".writing")  # a browser reloading it never reads half a page
    try:
        scratch.write_text(text, encoding="utf-8")
        scratch.replace(out)
    except OSError as e:
        scratch.unlink(missing_ok=True)
        raise StoreError(out, f"cannot write the report there ({e.strerror or e})") from None
    log(f"report: wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {view.n} window(s), {view.status})")
    return out


def watch(store, out=None, *, every=10.0, log=print):
    """Write the page of `store` (write_twin_report), then again whenever it has another window, until the
    follow is complete (Ctrl-C stops it sooner: KeyboardInterrupt); the page reloads itself every `every` s
    meanwhile. Returns the page's path. A store caught between two of the follower's rewrites is read again
    at the next look."""
    store = Path(store)
    every = float(every)
    seen = None
    while True:
        try:
            done, status = _progress(store)
        except StoreError:
            if seen is None:
                raise
            time.sleep(every)
            continue
        if (done, status) != seen:
            try:
                path = write_twin_report(store, out, refresh=None if status == "complete" else every, log=log)
            except StoreError:
                if seen is None:
                    raise
                time.sleep(every)
                continue
            seen = (done, status)
        if status == "complete":
            return path
        time.sleep(every)


def _progress(store):
    """(windows_done, status) from the store's metadata alone."""
    try:
        attrs = json.loads((store / "zarr.json").read_text()).get("attributes") or {}
    except (OSError, ValueError, AttributeError) as e:
        raise StoreError(store, f"unreadable twin store ({type(e).__name__}: {e})") from None
    return attrs.get("windows_done"), attrs.get("status")


class _View:
    """What the page shows of a twin store: its arrays, inputs and the members' bands per window."""

    def __init__(self, store, ds):
        self.store, self.ds = store, ds
        missing = [name for name in REQUIRED if name not in ds.variables]
        if missing:
            raise StoreError(store, f"a twin store without {missing}: written by another brainsim?")
        try:
            self.inputs = json.loads(ds.attrs.get("inputs", ""))
        except (TypeError, ValueError):
            self.inputs = None
        keys = ("window", "horizon", "members", "seed", "rules", "observations")
        if not isinstance(self.inputs, dict) or any(key not in self.inputs for key in keys):
            raise StoreError(store, f"its inputs attribute is not the follow's JSON (with {', '.join(keys)})")
        self.status = str(ds.attrs.get("status", "unknown"))
        self.n = ds.sizes["window"]
        self.names = [str(x) for x in ds["parameter"].values]
        self.labels = [str(x) for x in ds["feature"].values]
        self.rules = [str(x) for x in ds["rule"].values]
        self.start, self.end = ds["window_start"].values, ds["window_end"].values
        self.failed = ds["failed"].values.astype(bool)
        self.g = ds["predicted"].values
        self.ok = ~self.failed & np.isfinite(self.g).all(axis=2)  # (window, member): the member predicted
        self.observed, self.noise = ds["observed"].values, ds["noise"].values
        self.theta, self.theta_f = ds["theta"].values, ds["theta_forecast"].values
        self.scale, self.unit = (1000.0, "s") if self.n and self.end[-1] > 10_000 else (1.0, "ms")
        config, self.patient = _provenance(Path(ds.attrs.get("members_folder", "")))
        self.config = ds.attrs.get("config") or config
        self.patient_file = ds.attrs.get("patient")
        self.warnings_file = twin_paths(store)[1]

    def t(self, ms):
        """Brain times (ms) in the page's unit."""
        return np.asarray(ms, dtype=float) / self.scale

    def bands(self, values, ok=None):
        """(5 %, median, 95 %) over the members of values (window, member, x), only those `ok` (window,
        member) when given; NaN where no member is."""
        out = np.full((3, values.shape[0], values.shape[2]), np.nan)
        for k in range(values.shape[0]):
            rows = values[k] if ok is None else values[k][ok[k]]
            if rows.shape[0]:
                out[:, k] = np.percentile(rows, [BAND[0], 50.0, BAND[1]], axis=0)
        return out


def _provenance(folder):
    """(config file, patient id) from a member's summary in the members folder; None where it has none."""
    for summary in sorted(folder.glob("member-*.summary.zarr")) if folder.is_dir() else []:
        try:
            attrs = json.loads((summary / "zarr.json").read_text()).get("attributes") or {}
            provenance = json.loads(attrs.get("provenance", "{}"))
        except (OSError, ValueError, AttributeError, TypeError):
            continue
        patient = provenance.get("patient_id")
        return provenance.get("config_file"), None if patient is None else MEMBER_ID.sub("", str(patient))
    return None, None


# ------------------------------------------------------------------------------------------------ header


def _header(view):
    """Inputs, status (with a warning unless complete), scheduler, real-time factor, seed."""
    ds, inputs = view.ds, view.inputs
    rate = ds.attrs.get("real_time_factor")
    last_failed = int(view.failed[-1].sum()) if view.n else 0
    rows = {
        "config": view.config or "\u2013 (no member's run left to say)",
        "config hash": inputs.get("config_hash"),
        "--set": ", ".join(inputs.get("set") or []) or "none",
        "patient": f"{view.patient or chr(0x2013)} (file sha256 {inputs.get('patient', '?')})",
        "observations": inputs["observations"],
        "window": f"{num(inputs['window'])} ms",
        "horizon": f"{num(inputs['horizon'])} ms",
        "members": f"{num(inputs['members'])}" + (f" ({last_failed} failed)" if last_failed else ""),
        "windows done": f"{view.n}" + (f" (brain time 0\u2013{num(view.end[-1])} ms)" if view.n else ""),
        "status": view.status,
        "scheduler": ds.attrs.get("scheduler") or "\u2013",
        "real-time factor": "not recorded" if rate is None else f"{num(float(rate))} (wall s per brain s)",
        "seed": num(inputs["seed"]),
        "free parameters": f"{len(view.names)}: {', '.join(view.names)}",
        "features": num(len(view.labels)),
        "alert rules": num(len(view.rules)),
        "brainsim version": ds.attrs.get("brainsim_version"),
    }
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows.items())
    parts = [
        f"<h1>Twin of {esc(view.patient or view.store.name)}</h1>",
        f'<dl class="meta" id="twin-meta">{items}</dl>',
    ]
    if view.status != "complete":
        if view.status == "running":
            what = (
                f"This follow is running: the page shows the {view.n} window(s) completed when it was "
                "written. <code>brainsim report TWIN.zarr --watch</code> rewrites it as windows arrive."
            )
        else:
            what = (
                f"This follow is {esc(view.status)} after {view.n} window(s): the same "
                "<code>brainsim follow</code> command continues it after the last completed window."
            )
        parts.append(f'<p class="warning" id="status-warning">&#9888; {what}</p>')
    failed = int(view.failed.any(axis=0).sum())
    if failed:
        parts.append(
            f'<p class="warning" id="failed-warning">&#9888; {failed} of {view.failed.shape[1]} members '
            "failed (their runs blew up): they drop out of the updates, bands and forecasts after it.</p>"
        )
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------- warnings


def _warnings(view):
    """A prominent table of every warning, or a short "no warning" box; then the rules and the highest
    probability each reached."""
    ds = view.ds
    warned = ds["warning"].values.astype(bool)
    p = ds["warning_probability"].values
    rows = []
    for k, i in zip(*np.nonzero(warned)):
        regions = _regions(str(ds["warning_regions"].values[k, i]))
        times = [float(ds[key].values[k, i]) for key in ("expected_time", "lead_time")]
        cells = [_cell(int(k)), _cell(float(view.end[k])), f"<td>{esc(view.rules[i])}</td>",
                 f"<td>{esc(regions)}</td>", _cell(float(p[k, i])), *map(_cell, times)]  # fmt: skip
        rows.append(f"<tr>{''.join(cells)}</tr>")
    rules = {rule["name"]: rule for rule in view.inputs["rules"] if isinstance(rule, dict)}
    checked = []
    for i, name in enumerate(view.rules):
        rule = rules.get(name, {})
        column = p[:, i] if view.n else np.zeros(0)
        highest = (
            f"highest forecast probability {num(float(np.nanmax(column)))} (window "
            f"{int(np.nanargmax(column))})"
            if np.isfinite(column).any()
            else "no forecast yet"
        )
        checked.append(f"<li>{esc(_rule_text(name, rule))}; {esc(highest)}</li>")
    checked = f"<p>Rules checked on every forecast:</p><ul>{''.join(checked)}</ul>"
    if not rows:
        return (
            '<section class="no-alerts" id="warnings"><h2>Warnings</h2><p>No warning: no forecast crossed a '
            f"rule with at least its probability.</p>{checked}</section>"
        )
    head = ["window", "time issued (ms)", "rule", "regions", "probability", "expected time (ms)",
            "lead time (ms)"]  # fmt: skip
    file = f"<p>Also in {esc(view.warnings_file)}.</p>" if view.warnings_file.exists() else ""
    return (
        f'<section class="alerts" id="warnings"><h2>&#9888; {len(rows)} warning{"s" * (len(rows) != 1)}</h2>'
        '<table id="warnings-table"><thead><tr>'
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{file}{checked}</section>"
    )


def _rule_text(name, rule):
    """An alert rule in words: "name: variable above x for at least t ms in regions, warning at p >= q"."""
    side = "below" if rule.get("above") is None else "above"
    regions = rule.get("regions", "all")
    where = "all regions" if regions == "all" else ", ".join(map(str, regions))
    return (
        f"{name}: {rule.get('variable')} {side} {num(rule.get(side))} for at least "
        f"{num(rule.get('for', 0.0))} ms in {where}, a warning when at least "
        f"{num(rule.get('probability'))} of the members cross it"
    )


# ---------------------------------------------------------------------------------------------- features


def _series(labels):
    """[(variable, [(index, element label)])]: the features grouped by variable, an element per label in
    its brackets (`lh-precentral`, `O1,gamma`), whatever their window suffix."""
    blocks = {}
    for i, label in enumerate(labels):
        match = LABEL.match(label)
        name = label if match is None else match["variable"]
        element = label if match is None or match["inner"] is None else match["inner"]
        blocks.setdefault(name, []).append((i, element))
    return list(blocks.items())


def _observed_section(view):
    if not view.labels or not view.n:
        return _empty("observed", "Observed and predicted")
    bands = view.bands(view.g, view.ok)
    z = view.ds["innovation"].values / view.noise
    cells = []
    for b, (name, elements) in enumerate(_series(view.labels)):
        cells.append(figure_html(f"observed_{b}", f"observed and predicted {name}",
                                 _series_figure(view, name, elements, bands, z)))  # fmt: skip
    cells.append(figure_html("innovation", "innovations", _innovation_figure(view, z)))
    return (
        '<section id="observed"><h2>Observed and predicted</h2>'
        f'<div class="row">{"".join(cells)}</div></section>'
    )


def _series_figure(view, name, elements, bands, z):
    """A panel per feature of the variable (at most MAX_SERIES, the worst followed first): per window the
    observed value with its noise band and the members' predicted median and 5-95 % band."""
    worst = np.array(
        [np.nanmean(np.abs(z[:, i])) if np.isfinite(z[:, i]).any() else -1.0 for i, _ in elements]
    )
    order = np.argsort(-worst, kind="stable")[:MAX_SERIES]
    chosen = [elements[j] for j in order]
    cols = min(4, len(chosen))
    rows = -(-len(chosen) // cols)
    fig = Figure(figsize=(3.2 * cols + 0.4, 0.5 + 2.3 * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
    t = view.t(view.end)
    for a, (i, element) in zip(axes, chosen):
        y, sd = view.observed[:, i], view.noise[:, i]
        a.fill_between(t, y - sd, y + sd, color="0.8", lw=0, label="observed \u00b11 noise sd", step=None)
        a.plot(t, y, "s-", color=OBSERVED, ms=4, lw=1.0, label="observed")
        low, median, high = bands[:, :, i]
        a.fill_between(t, low, high, color=ANALYSIS, alpha=0.25, lw=0, label="predicted 5-95 %")
        a.plot(t, median, "o--", color=ANALYSIS, ms=3, lw=1.0, label="predicted median")
        a.set_title(tex_safe(element), fontsize=8)
        a.tick_params(labelsize=7)
        a.grid(alpha=0.25)
    for a in axes[len(chosen) :]:
        a.set_visible(False)
    for a in axes[(rows - 1) * cols :]:
        a.set_xlabel(f"brain time, window end ({view.unit})", fontsize=8)
    axes[0].legend(fontsize=6, frameon=False)
    n = len(elements)
    which = f"the {len(chosen)} of {n} followed worst (largest mean |innovation|)" if len(chosen) < n else (
        f"all {n}"
    )  # fmt: skip
    return fig, (
        f"{name} per window ({which}), at each window's end: the observed value with its noise (\u00b11 sd, "
        "grey) and the members' prediction of it before the window's update (median and 5-95 % band over "
        "the members that ran). The prediction is made from the parameters before the window is seen."
    )


def _innovation_figure(view, z):
    """The innovations (observed - ensemble mean predicted) in noise units, window x feature."""
    nf = len(view.labels)
    height = float(np.clip(1.6 + 0.16 * nf, 2.6, 9.0)) if nf <= MAX_LABELS else 7.0
    fig, ax = new_figure(7.4, height)
    finite = np.abs(z[np.isfinite(z)])
    limit = max(2.0, float(np.percentile(finite, 98))) if finite.size else 2.0
    t = view.t(np.concatenate([view.start[:1], view.end]))
    image = ax.imshow(z.T, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit,
                      extent=(t[0], t[-1], nf - 0.5, -0.5))  # fmt: skip
    fig.colorbar(image, ax=ax, label="innovation / noise sd")
    label_axis(ax.set_yticks, view.labels)
    ax.set_xlabel(f"brain time ({view.unit})")
    return fig, (
        f"Each feature's innovation over each window, the observed value minus the members' mean prediction, "
        f"in units of its noise sd (colour clipped at \u00b1{num(limit)}): red, the patient above the "
        "twin; blue, below. Persistent colour along a row is what the filter has not yet learnt."
    )


# -------------------------------------------------------------------------------------------- parameters


def _parameter_section(view):
    if not view.n:
        return _empty("parameters", "Parameter trajectories")
    drawn = _parameter_figure(view)
    return (
        '<section id="parameters"><h2>Parameter trajectories</h2>'
        f'<div class="row">{figure_html("parameters", "parameter trajectories", drawn)}</div>'
        f"{_parameter_table(view)}</section>"
    )


def _moved(view):
    """Per parameter: |last analysed median - first forecast median| / first forecast sd."""
    first = view.theta_f[0]
    sd = first.std(axis=0, ddof=1) if first.shape[0] > 1 else np.zeros(first.shape[1])
    return np.abs(np.median(view.theta[-1], axis=0) - np.median(first, axis=0)) / np.where(sd > 0, sd, 1.0)


def _parameter_figure(view):
    """A panel per parameter (at most MAX_PANELS, the most moved first): the forecast ensemble run over
    each window (a step) and the analysed ensemble at its end, median and 5-95 % band."""
    n = len(view.names)
    chosen = np.argsort(-_moved(view), kind="stable")[:MAX_PANELS]
    cols = min(4, len(chosen))
    rows = -(-len(chosen) // cols)
    fig = Figure(figsize=(3.2 * cols + 0.4, 0.5 + 2.3 * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
    live = [~view.failed[k] for k in range(view.n)]
    steps = np.ravel(np.column_stack([view.t(view.start), view.t(view.end)]))
    for a, i in zip(axes, chosen):
        forecast = np.array([np.percentile(view.theta_f[k][live[k], i], [BAND[0], 50.0, BAND[1]])
                             if live[k].any() else [np.nan] * 3 for k in range(view.n)])  # fmt: skip
        analysis = np.array([np.percentile(view.theta[k][live[k], i], [BAND[0], 50.0, BAND[1]])
                             if live[k].any() else [np.nan] * 3 for k in range(view.n)])  # fmt: skip
        low, median, high = (np.repeat(forecast[:, j], 2) for j in range(3))
        a.fill_between(steps, low, high, color=FORECAST, alpha=0.2, lw=0, label="forecast 5-95 %")
        a.plot(steps, median, color=FORECAST, lw=1.2, label="forecast median (run over the window)")
        t = view.t(view.end)
        a.errorbar(t, analysis[:, 1], yerr=np.abs(analysis[:, [1, 2]] - analysis[:, [0, 1]]).T,
                   fmt="o", color=ANALYSIS, ms=3, elinewidth=1.0, capsize=2,
                   label="analysed median, 5-95 % (after the update)")  # fmt: skip
        a.set_title(tex_safe(view.names[i]), fontsize=8)
        a.tick_params(labelsize=7)
        a.grid(alpha=0.25)
    for a in axes[len(chosen) :]:
        a.set_visible(False)
    for a in axes[(rows - 1) * cols :]:
        a.set_xlabel(f"brain time ({view.unit})", fontsize=8)
    axes[0].legend(fontsize=6, frameon=False)
    which = f"the {len(chosen)} of {n} moved most" if len(chosen) < n else f"all {n}"
    return fig, (
        f"Each free parameter's ensemble over the follow ({which}): in blue the parameters the members ran "
        "each window with (the last update plus the random walk), in red the ensemble after the window's "
        "update (at its end), over the members that had not failed. A band that narrows is the data pinning "
        "the parameter; a jump at a window's end is the filter correcting it."
    )


def _parameter_table(view):
    """Per parameter: the first forecast's median, the last analysis's median, 5 %, 95 % and spread."""
    head = ["parameter", "first forecast median", "last median", "last 5 %", "last 95 %", "last sd (spread)"]
    live = ~view.failed[-1]
    spread = view.ds["spread"].values[-1]
    rows = []
    for i, name in enumerate(view.names):
        last = view.theta[-1][live, i] if live.any() else np.full(1, np.nan)
        low, median, high = np.percentile(last, [BAND[0], 50.0, BAND[1]])
        values = [float(np.median(view.theta_f[0][:, i])), float(median), float(low), float(high),
                  float(spread[i])]  # fmt: skip
        rows.append(f"<tr><td>{esc(name)}</td>{''.join(_cell(v) for v in values)}</tr>")
    return (
        '<table id="parameters-table"><thead><tr>'
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p>After window {view.n - 1} (brain time {num(view.end[-1])} ms); the sd is "
        "the store's <code>spread</code>, over every member.</p>"
    )


# ------------------------------------------------------------------------------------------------- fans


def _fan_section(view):
    fans = [name for name in view.ds.data_vars if name.startswith("fan_")]
    cells = [figure_html(name, f"forecast fan of {name.removeprefix('fan_')}", _fan_figure(view, name))
             for name in fans]  # fmt: skip
    if not cells:
        cells = ['<p class="note">No forecast yet: the store holds no fan.</p>']
    return f'<section id="fans"><h2>Forecast fan</h2><div class="row">{"".join(cells)}</div></section>'


def _fan_figure(view, name):
    """The members' forecasts of the last window (and up to FAN_WINDOWS - 1 earlier ones, faded) against
    brain time, the observed counterpart, each rule's threshold and the expected time of its event."""
    variable = name.removeprefix("fan_")
    fan = view.ds[name].values
    lead = view.ds[view.ds[name].dims[2]].values
    drawn = [k for k in range(view.n) if np.isfinite(fan[k]).any()]
    if not drawn:
        return "every member's forecast failed: no fan to draw"
    shown = drawn[-FAN_WINDOWS:]
    last = shown[-1]
    observed = view.ds.get(f"observed_{variable}")
    fig, ax = new_figure(8.4, 4.4)
    for k in shown:
        faded = k != last
        t = view.t(view.end[k] + lead)
        colour, alpha = ("0.55", 0.35) if faded else (ANALYSIS, 0.8)
        for m, trace in enumerate(fan[k]):
            if np.isfinite(trace).any():
                label = None if faded or m else f"members' forecasts from {num(view.end[k])} ms"
                marker = "." if lead.size < 30 else None
                ax.plot(t, trace, "-", color=colour, alpha=alpha, lw=1.0, marker=marker, label=label)
        if faded and k == shown[0]:
            ax.plot([], [], "-", color=colour, alpha=alpha, label="earlier windows' forecasts")
        if observed is not None and np.isfinite(observed.values[k]).any():
            label = "observed" if not faded else "observed (earlier windows)" if k == shown[0] else None
            ax.plot(t, observed.values[k], "s-", color=OBSERVED, ms=3, lw=1.2, alpha=0.45 if faded else 1.0,
                    label=label)  # fmt: skip
    ax.axvline(view.t(view.end[last]), color="0.3", lw=1.0, label=f"window {last}'s end (forecast start)")
    low, high = ax.get_ylim()
    reach = (low - 2 * (high - low), high + 2 * (high - low))  # thresholds farther away are only named
    rules = {rule["name"]: rule for rule in view.inputs["rules"] if isinstance(rule, dict)}
    notes = []
    for i, rule_name in enumerate(view.rules):
        rule = rules.get(rule_name, {})
        if rule.get("variable") != variable:
            continue
        side = "below" if rule.get("above") is None else "above"
        threshold = f"{rule_name}: {side} {num(rule[side])}"
        if reach[0] <= rule[side] <= reach[1]:
            ax.axhline(rule[side], color="#e0a800", lw=1.2, ls="--", label=threshold)
        else:
            ax.plot([], [], color="#e0a800", lw=1.2, ls="--", label=f"{threshold} (off the axis)")
        expected = float(view.ds["expected_time"].values[last, i])
        p = float(view.ds["warning_probability"].values[last, i])
        warned = bool(view.ds["warning"].values[last, i])
        if math.isfinite(expected):
            said = "warning" if warned else "no warning"
            ax.axvline(view.t(expected), color=ANALYSIS if warned else "0.5", lw=1.6, ls=":",
                       label=f"{rule_name}: expected ({said}, p={p:.2f})")  # fmt: skip
        notes.append(
            f"{rule_name}: p = {p:.2f}"
            + (f", expected at {num(expected)} ms" if math.isfinite(expected) else "")
        )
    ax.set(xlabel=f"brain time ({view.unit})", ylabel=f"{variable} (maximum over the rule's regions)")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.25)
    earlier = f" and {len(shown) - 1} earlier one{'s' * (len(shown) != 2)} (faded)" if len(shown) > 1 else ""
    failed = int((~np.isfinite(fan[last]).any(axis=1)).sum())
    return fig, (
        f"Each member's forecast of {variable} (the maximum over the rules' regions) from window "
        f"{last}{earlier}, the observed counterpart where the observations hold it, each rule's threshold "
        "(dashed) and the median time its event is expected (dotted)"
        + (f"; {failed} member(s) gave no forecast" if failed else "")
        + (f". Last window: {'; '.join(notes)}." if notes else ".")
    )


# ------------------------------------------------------------------------------------------------ health


def _health_section(view):
    if not view.n:
        return _empty("health", "Filter health")
    return (
        '<section id="health"><h2>Filter health</h2>'
        f'<div class="row">{figure_html("health", "filter health", _health_figure(view))}</div>'
        f"{_health_table(view)}</section>"
    )


def _health_figure(view):
    """Per window: the normalised innovation squared (expected about 1), every member's misfit and their
    median, and the failed members."""
    fig = Figure(figsize=(7.6, 6.4), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    top, middle, bottom = fig.subplots(3, 1, sharex=True, height_ratios=[3, 3, 1.4])
    t = view.t(view.end)
    nis = view.ds["nis"].values
    top.plot(t, nis, "o-", color=FORECAST, lw=1.4, label="nis")
    top.axhline(1.0, color="k", lw=1.0, ls="--", label="expected (about 1)")
    positive = nis[np.isfinite(nis) & (nis > 0)]
    if positive.size and positive.max() / max(positive.min(), 1e-12) > 30:
        top.set_yscale("log")
    top.set_ylabel("nis")
    misfit = view.ds["misfit"].values
    shown = np.isfinite(misfit) & (misfit > 0)
    x = np.broadcast_to(t[:, None], misfit.shape)
    middle.scatter(x[shown], misfit[shown], s=10, color="0.6", label="members")
    median = np.array([np.median(m[np.isfinite(m)]) if np.isfinite(m).any() else np.nan for m in misfit])
    middle.plot(t, median, "o-", color=ANALYSIS, lw=1.4, ms=4, label="median")
    middle.axhline(1.0, color="k", lw=1.0, ls="--", label="noise level (1)")
    if shown.any():
        middle.set_yscale("log")
    middle.set_ylabel("misfit (noise units)")
    failed = view.failed.sum(axis=1)
    width = 0.8 * (t[1] - t[0]) if t.size > 1 else 0.8 * view.t(view.end[0] - view.start[0])
    bottom.bar(t, failed, width=width, color=ANALYSIS)
    bottom.set_ylim(0, max(1, view.failed.shape[1]))
    bottom.set(ylabel="failed", xlabel=f"brain time, window end ({view.unit})")
    for a in (top, middle):
        a.legend(fontsize=7, frameon=False)
        a.grid(alpha=0.25)
    return fig, (
        "Top: the normalised innovation squared of each window, d\u1d40(C + \u0393)\u207b\u00b9d per "
        "feature: about 1 when the ensemble's spread and the noise explain what was seen, far above 1 when "
        "the patient moved where the twin did not expect (too little spread or drift). Middle: each "
        "member's misfit over the window (mean squared residual in noise units) and their median. Bottom: "
        f"failed members (of {view.failed.shape[1]})."
    )


def _health_table(view):
    ds = view.ds
    first = max(0, view.n - MAX_ROWS)
    rows = []
    for k in range(first, view.n):
        misfit = ds["misfit"].values[k]
        finite = misfit[np.isfinite(misfit)]
        values = [k, float(view.end[k]), float(ds["nis"].values[k]),
                  float(np.median(finite)) if finite.size else math.nan, int(view.failed[k].sum()),
                  int(ds["forecast_members"].values[k])]  # fmt: skip
        rows.append(f"<tr>{''.join(_cell(v) for v in values)}</tr>")
    head = ["window", "end (ms)", "nis", "misfit median", "failed members", "forecast members"]
    shown = f"the last {MAX_ROWS} of {view.n} windows" if first else f"all {view.n} windows"
    return (
        f"<h3>Per window ({shown})</h3>"
        '<table id="health-table"><thead><tr>'
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# ------------------------------------------------------------------------------------------------- usage


def _usage(view):
    inputs = view.inputs
    command = (
        f"brainsim follow {view.config or 'CONFIG'} --patient {view.patient_file or 'PATIENT.yaml'} "
        "--observations "
        f"{inputs['observations']} --window {num(inputs['window'])} --horizon {num(inputs['horizon'])} "
        f"--members {inputs['members']} --alerts RULES.yaml --seed {inputs['seed']} -o {view.store}"
    )
    if view.status == "complete":
        what = (
            f"The follow is complete: its observations ended after {view.n} window(s). Run the same "
            "<code>brainsim follow</code> command on a longer recording's store with another -o to follow on."
        )
    else:
        where = f"after window {view.n - 1}" if view.n else "from the start"
        what = (
            "The same <code>brainsim follow</code> command (the same config, patient, observations, rules "
            f"and options) continues {where}, losing no observation; other inputs are refused."
        )
    lines = [
        command,
        f"brainsim report {view.store} --watch 10   # this page, rewritten as windows arrive",
    ]
    python = "\n".join(
        [
            "import xarray as xr",
            f'twin = xr.open_zarr("{view.store}")',
            'twin.theta.median("member")             # parameter trajectories (window, parameter)',
            'twin.warning.any("rule")                # windows whose forecast warned',
            'twin.observed - twin.predicted.median("member")   # what the twin missed, per feature',
        ]
    )
    return (
        f'<section id="use"><h2>How to continue</h2><p>{what}</p><pre>{esc(chr(10).join(lines))}</pre>'
        f"<p>Reading the store (its layout: brainsim/twin/follow.py):</p><pre>{esc(python)}</pre></section>"
    )


# -------------------------------------------------------------------------------------------------- text


def _regions(text):
    """A warning's regions (a JSON list) as text: "lh-precentral, rh-precentral"."""
    try:
        regions = json.loads(text)
    except ValueError:
        return text
    return ", ".join(map(str, regions)) if isinstance(regions, list) else text


def _empty(key, heading):
    return f'<section id="{key}"><h2>{esc(heading)}</h2><p class="note">No window yet.</p></section>'


def _cell(x):
    """A table number: shown as report.num, exact in data-value (NaN: an en dash)."""
    if isinstance(x, (int, np.integer)):
        return f'<td class="num" data-value="{int(x)}">{num(int(x))}</td>'
    if not np.isfinite(x):
        return '<td class="num">\u2013</td>'
    return f'<td class="num" data-value="{float(x)!r}">{num(float(x))}</td>'
