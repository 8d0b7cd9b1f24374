"""FIT_DIR/report.html: a fit (fit.py) as one self-contained HTML page in the summary report's style
(postprocess/report.py: inline PNGs, no outside resources): the fit's inputs and method, the misfit of
every member per ensemble, the observed features against the first and last ensembles', and each
parameter's prior and posterior ensemble with the posterior's table (fit.json's).

A fit that is still running or was interrupted (no fit.json yet) gets a page from fit.zarr alone, titled
as such: its last evaluated ensemble stands in for the posterior.
"""

import json
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from brainsim.errors import StoreError
from brainsim.postprocess.report import (
    DPI,
    MAX_LABELS,
    esc,
    figure_html,
    label_axis,
    new_figure,
    num,
    tex_safe,
    write_page,
)

from .fit_store import ensemble_summary, open_fit, read_record

MAX_POINTS = 40  # most features of one block drawn value by value; more are drawn as sorted residuals
MAX_PANELS = 24  # most parameters drawn as histograms (those the data moved most)
WORST = 15  # rows of the worst-fitted features table
BAND = (5.0, 95.0)  # percentiles of an ensemble's band
PRIOR, POSTERIOR, OBSERVED = "#4a78b0", "#c0392b", "#111111"
LABEL = re.compile(r"^(?P<variable>[^\[@]+)(\[(?P<inner>[^\]]*)\])?(?P<window>@.*)?$")


def write_fit_report(fit_dir, out=None, *, log=print) -> Path:
    """Write the fit in the folder `fit_dir` (fit.zarr, and fit.json once complete) as one self-contained
    HTML page at `out` (default FIT_DIR/report.html); returns its path. Raises StoreError naming the file
    when fit.zarr or fit.json is missing, unreadable or not a fit's, or the page cannot be written."""
    fit_dir = Path(fit_dir)
    store = fit_dir / "fit.zarr"
    if not store.is_dir():
        raise StoreError(fit_dir, "not a fit's folder: it holds no fit.zarr (`brainsim fit -o FIT_DIR`)")
    ds = open_fit(store)
    if ds.sizes["iteration"] == 0:
        raise StoreError(store, "holds no evaluated ensemble yet: nothing to report (resume the fit first)")
    view = _View(fit_dir, ds)
    body = [
        _header(view),
        _misfit_section(view),
        _feature_section(view),
        _parameter_section(view),
        _usage(view),
    ]
    status = "" if view.complete else f" ({view.status})"
    title = f"brainsim fit{status}: {Path(view.inputs['config']).stem}"
    return write_page(fit_dir / "report.html" if out is None else out, title, body, log=log)


class _View:
    """What the page shows of a fit: fit.zarr's arrays, fit.json's record (None unless complete), the
    method, and the first and last ensembles' names and statistics."""

    def __init__(self, fit_dir, ds):
        self.fit_dir, self.ds = fit_dir, ds
        self.status = str(ds.attrs.get("status", "unknown"))
        self.complete = self.status == "complete"
        try:
            self.inputs = json.loads(ds.attrs.get("inputs", ""))
        except (TypeError, ValueError):
            self.inputs = None
        if not isinstance(self.inputs, dict) or not isinstance(self.inputs.get("method"), dict):
            raise StoreError(fit_dir / "fit.zarr", "its inputs attribute is not the fit's JSON")
        record = fit_dir / "fit.json"
        self.record = read_record(record, ("method",)) if self.complete and record.exists() else None
        self.method = (self.record or self.inputs)["method"]
        self.cmaes = self.method["kind"] == "cmaes"
        self.names = [str(x) for x in ds["parameter"].values]
        self.labels = [str(x) for x in ds["feature"].values]
        self.theta = ds["theta"].values
        self.g = ds["features"].values
        self.misfit = ds["misfit"].values
        self.observed, self.noise = ds["observed"].values, ds["noise"].values
        if "noise_covariance" in ds:  # each feature's error sd: the replicates' spread and the noise
            self.noise = np.sqrt(np.diag(ds["noise_covariance"].values))
        self.ok = np.isfinite(self.g).all(axis=2)  # (iteration, member): the member's run gave features
        self.k = self.theta.shape[0] - 1  # the last ensemble evaluated
        self.first = "first generation" if self.cmaes else "prior ensemble"
        if not self.complete:
            self.last = f"last evaluated {'generation' if self.cmaes else 'ensemble'} ({self.k})"
        else:
            self.last = "last generation" if self.cmaes else "posterior ensemble"
        if self.record is not None and "posterior" in self.record:
            self.posterior = self.record["posterior"]
        else:
            self.posterior = ensemble_summary(self.names, self.theta[self.k])
        self.prior = ensemble_summary(self.names, self.theta[0])

    def bands(self, k):
        """(5 %, median, 95 %) of ensemble k's features over its members that ran, or None if none did."""
        ok = self.ok[k]
        if not ok.any():
            return None
        return np.percentile(self.g[k][ok], [BAND[0], 50.0, BAND[1]], axis=0)


# ------------------------------------------------------------------------------------------------ header


def _header(view):
    """Inputs, method, status (with a warning unless complete), scheduler, wall time and member runs."""
    record, inputs, method = view.record or {}, view.inputs, view.method
    ensembles, members = view.theta.shape[0], view.theta.shape[1]
    failed = int((~view.ok).sum())
    wall = record.get("wall_s", view.ds.attrs.get("wall_s"))
    parameters_file = record.get("parameters_file") or f"(sha256 {inputs.get('parameters', '?')})"
    rows = {
        "config": record.get("config", inputs["config"]),
        "--set": ", ".join(record.get("set", inputs.get("set")) or []) or "none",
        "observations": record.get("observations", inputs.get("observations")),
        "parameters file": parameters_file,
        "method": (
            f"{'CMA-ES' if view.cmaes else 'ensemble Kalman inversion'} ({method['kind']}), "
            f"{method.get('members')} members, at most {method.get('iterations')} iterations, "
            f"seed {method.get('seed')}"
        ),
        "status": view.status,
        "ensembles evaluated": f"{ensembles} ({view.k} iteration{'s' * (view.k != 1)})",
        "scheduler": record.get("scheduler", view.ds.attrs.get("scheduler")),
        "wall time": _duration(wall),
        "member runs": num(ensembles * members),
        "free parameters": num(len(view.names)),
        "features": num(len(view.labels)),
        "estimate": record.get("estimate", "none yet (the fit is not complete)"),
        "brainsim version": view.ds.attrs.get("brainsim_version"),
    }
    if failed:
        rows["failed member runs"] = f"{failed} (their runs blew up: no features, misfit infinite)"
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows.items())
    name = Path(inputs["config"]).stem
    parts = [f"<h1>Fit of {esc(name)}</h1>", f'<dl class="meta" id="fit-meta">{items}</dl>']
    if not view.complete:
        parts.append(
            f'<p class="warning" id="status-warning">&#9888; This fit is {esc(view.status)}, not complete: '
            f"it has evaluated {ensembles} of at most {method.get('iterations', 0) + 1} ensembles. The "
            f"{esc(view.last)} stands in for the posterior below; fit.json, patient.yaml and posterior/ "
            "are written when the fit completes (continue it with <code>brainsim fit ... --resume</code>)."
            "</p>"
        )
    if failed:
        parts.append(
            f'<p class="warning" id="failed-warning">&#9888; {failed} of {ensembles * members} member runs '
            "failed (their runs blew up): they are left out of the medians and bands below.</p>"
        )
    return "\n".join(parts)


def _duration(seconds):
    if seconds is None:
        return "\u2013"
    seconds = float(seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ------------------------------------------------------------------------------------------------ misfit


def _misfit_section(view):
    rows = []
    steps = view.ds["step"].values
    entries = (view.record or {}).get("misfit") or []  # fit.json's numbers, once complete
    done = 0.0
    for k in range(view.theta.shape[0]):
        m = view.misfit[k]
        entry = entries[k] if k < len(entries) and isinstance(entries[k], dict) else {}
        median = entry.get("median", _finite(np.median(m)))
        best = entry.get("best", _finite(m.min()))
        cells = [_cell(k), _cell(median), _cell(best)]
        if not view.cmaes:
            cells += [_cell(_finite(steps[k])), _cell(done)]
            done += float(np.nan_to_num(steps[k]))
        cells.append(_cell(int((~view.ok[k]).sum())))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = ["ensemble", "median misfit", "best misfit"]
    head += [] if view.cmaes else ["step after it", "assimilated before it"]
    head.append("failed members")
    table = (
        '<table id="misfit-table"><thead><tr>'
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return (
        '<section id="misfit"><h2>Misfit per ensemble</h2>'
        f'<div class="row">{figure_html("misfit", "misfit per ensemble", _misfit_figure(view))}</div>'
        f"{table}</section>"
    )


def _misfit_figure(view):
    """Every member's misfit (grey), the median per ensemble, the noise level (1); log scale."""
    fig, ax = new_figure(7.4, 4.2)
    k = np.arange(view.misfit.shape[0])
    shown = np.isfinite(view.misfit) & (view.misfit > 0)
    x = np.broadcast_to(k[:, None], view.misfit.shape)
    ax.scatter(x[shown], view.misfit[shown], s=14, color="0.6", zorder=2, label="members")
    median = np.median(view.misfit, axis=1)
    fine = np.isfinite(median) & (median > 0)
    ax.plot(k[fine], median[fine], "o-", color=POSTERIOR, lw=1.8, zorder=3, label="median")
    ax.axhline(1.0, color="k", lw=1.0, ls="--", label="noise level (1)")
    failed = (~view.ok).sum(axis=1)
    if failed.any():
        top = blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter(k[failed > 0], np.full(int((failed > 0).sum()), 0.96), marker="x", color=POSTERIOR,
                   transform=top, label="ensemble with failed members")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xticks(k)
    ax.set(xlabel="generation" if view.cmaes else "ensemble (0: prior)", ylabel="misfit (noise units)")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(which="major", alpha=0.25)
    return fig, (
        "Each member's misfit, the mean over the features of the squared residual in noise units (1: the "
        f"features are matched to within their noise), over the {view.misfit.shape[1]} members of each "
        "ensemble; the line joins the medians. Failed members (no features) have an infinite misfit and are "
        "not drawn."
    )


# ---------------------------------------------------------------------------------------------- features


def _blocks(labels):
    """[(block name, [(index, element label)])] in the order of the features: a block per variable and
    window (`mean_rate@0-400`), an element per label inside its brackets (`lh-V1`, `O1,gamma`)."""
    blocks = {}
    for i, label in enumerate(labels):
        match = LABEL.match(label)
        if match is None:
            name, element = label, label
        else:
            name = match["variable"] + (match["window"] or "")
            element = match["inner"] if match["inner"] is not None else match["variable"]
        blocks.setdefault(name, []).append((i, element))
    return list(blocks.items())


def _feature_section(view):
    prior, posterior = view.bands(0), view.bands(view.k)
    cells = []
    for b, (name, elements) in enumerate(_blocks(view.labels)):
        index = np.array([i for i, _ in elements])
        drawn = _feature_figure(view, name, [e for _, e in elements], index, prior, posterior)
        cells.append(figure_html(f"features_{b}", f"features {name}", drawn))
    return (
        '<section id="features"><h2>Observed and fitted features</h2>'
        f'<div class="row">{"".join(cells)}</div>{_worst_table(view, prior, posterior)}</section>'
    )


def _feature_figure(view, name, elements, index, prior, posterior):
    """The block's observed values (±1 and ±2 noise sd) and the first and last ensembles' medians and
    5-95 % bands, value by value; for more than MAX_POINTS, the residuals in noise units, sorted."""
    if prior is None and posterior is None:
        return "every member run failed: no fitted features to draw"
    observed, noise = view.observed[index], view.noise[index]
    n = len(index)
    ensembles = [(view.first, prior, PRIOR, -0.22), (view.last, posterior, POSTERIOR, 0.22)]
    if view.k == 0:
        ensembles = ensembles[1:]
    fig, ax = new_figure(float(np.clip(3.5 + 0.22 * n, 6.0, 12.4)), 4.4)
    if n <= MAX_POINTS:
        x = np.arange(n)
        ax.errorbar(x, observed, yerr=2 * noise, fmt="none", ecolor=OBSERVED, elinewidth=0.8, capsize=3)
        ax.errorbar(x, observed, yerr=noise, fmt="s", color=OBSERVED, ms=5, elinewidth=2.4,
                    label="observed \u00b11 and \u00b12 sd", zorder=4)  # fmt: skip
        for what, bands, colour, shift in ensembles:
            if bands is not None:
                low, median, high = bands[:, index]
                ax.errorbar(x + shift, median, yerr=[median - low, high - median], fmt="o", color=colour,
                            ms=4, elinewidth=1.4, label=f"{what}: median, 5-95 %")  # fmt: skip
        label_axis(ax.set_xticks, elements, rotation=90 if max(map(len, elements)) > 4 else 0)
        ax.set_ylabel("value (as fitted, after the fit file's transform)")
        drawn = "value by value"
    else:
        order = np.argsort(-np.abs(_residual(posterior if posterior is not None else prior, index, view)[1]))
        x = np.arange(n)
        ax.axhspan(-2, 2, color="0.92", zorder=0, label="\u00b12 noise sd")
        ax.axhspan(-1, 1, color="0.82", zorder=0, label="\u00b11 noise sd")
        for what, bands, colour, _ in ensembles:
            if bands is not None:
                low, median, high = (_residual(bands, index, view)[j][order] for j in range(3))
                ax.fill_between(x, low, high, color=colour, alpha=0.25, lw=0, step="mid")
                ax.plot(x, median, ".", color=colour, ms=3, label=f"{what}: median, 5-95 %")
        label_axis(ax.set_xticks, [elements[i] for i in order], rotation=90)
        ax.set(xlabel="features, the worst fitted first", ylabel="(value \u2212 observed) / noise sd")
        drawn = f"as residuals in noise units, sorted by the {view.last}'s median (worst first)"
    ax.set_title(tex_safe(name), fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="best")
    ax.grid(axis="y", alpha=0.25)
    ran = [f"{int(view.ok[k].sum())} of {view.ok.shape[1]}" for k in sorted({0, view.k})]
    return fig, (
        f"{n} feature{'s' * (n != 1)} of {name}, {drawn}: the observed value with its noise (thick: \u00b11 "
        f"sd, thin: \u00b12 sd), the {view.first}'s and the {view.last}'s median and 5-95 % band over their "
        f"members that ran ({' and '.join(ran)})."
    )


def _residual(bands, index, view):
    """(low, median, high) of bands at the features `index`, as (value - observed) / noise."""
    return (bands[:, index] - view.observed[index]) / view.noise[index]


def _worst_table(view, prior, posterior):
    """The WORST features whose last-ensemble median is farthest from the observed value, in noise sd."""
    if posterior is None:
        return f'<p class="note">No member of the {esc(view.last)} ran: no fitted features.</p>'
    distance = np.abs(posterior[1] - view.observed) / view.noise
    worst = np.argsort(-distance, kind="stable")[:WORST]
    head = ["feature", "observed", "noise sd", f"{view.first} median", f"{view.last} median",
            "|last median \u2212 observed| / noise", "|first median \u2212 observed| / noise"]  # fmt: skip
    rows = []
    for i in worst:
        before = np.nan if prior is None else abs(prior[1][i] - view.observed[i]) / view.noise[i]
        values = [view.observed[i], view.noise[i], np.nan if prior is None else prior[1][i], posterior[1][i]]
        values += [distance[i], before]
        rows.append(f"<tr><td>{esc(view.labels[i])}</td>{''.join(_cell(v) for v in values)}</tr>")
    shown = f"the {len(worst)} worst" if len(worst) < len(view.labels) else "all"
    return (
        f'<h3>Worst-fitted features ({shown} of {len(view.labels)})</h3><table id="worst-features"><thead>'
        + "<tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# -------------------------------------------------------------------------------------------- parameters


def _parameter_section(view):
    shift = _shifts(view)
    cells = [
        figure_html("intervals", "parameter intervals", _interval_figure(view)),
        figure_html("marginals", "parameter marginals", _marginal_figure(view, shift)),
    ]
    return (
        '<section id="parameters"><h2>Parameter marginals</h2>'
        f'<div class="row">{"".join(cells)}</div>{_posterior_table(view)}</section>'
    )


def _shifts(view):
    """Per parameter: |posterior mean - prior ensemble mean| / prior ensemble sd."""
    return np.array(
        [
            abs(view.posterior[n]["mean"] - view.prior[n]["mean"]) / (view.prior[n]["sd"] or 1.0)
            for n in view.names
        ]
    )


def _interval_figure(view):
    """Every parameter on one axis, in prior ensemble units: the prior ensemble's 5-95 % range and the
    posterior mean ± 2 sd."""
    n = len(view.names)
    height = float(np.clip(1.4 + 0.22 * n, 2.6, 11.0)) if n <= MAX_LABELS else 8.0
    fig, ax = new_figure(6.2, height)
    y = np.arange(n)
    centre = np.array([view.prior[p]["mean"] for p in view.names])
    scale = np.array([view.prior[p]["sd"] or 1.0 for p in view.names])
    low, high = (np.percentile(view.theta[0], q, axis=0) for q in BAND)
    ax.hlines(y, (low - centre) / scale, (high - centre) / scale, color=PRIOR, lw=5, alpha=0.45,
              label=f"{view.first}: 5-95 %")  # fmt: skip
    mean = (np.array([view.posterior[p]["mean"] for p in view.names]) - centre) / scale
    sd = np.array([view.posterior[p]["sd"] for p in view.names]) / scale
    what = "best member \u00b1 2 sd" if view.cmaes and view.complete else "mean \u00b1 2 sd"
    ax.errorbar(mean, y, xerr=2 * sd, fmt="o", color=POSTERIOR, ms=4, capsize=2,
                label=f"{view.last}: {what}")  # fmt: skip
    ax.axvline(0.0, color="0.5", lw=0.8)
    ax.set_ylim(n - 0.5, -0.5)
    label_axis(ax.set_yticks, view.names)
    ax.set_xlabel(f"(value \u2212 {view.first} mean) / {view.first} sd")
    ax.legend(fontsize=7, frameon=False, loc="best")
    ax.grid(axis="x", alpha=0.25)
    return fig, (
        f"All {n} parameters in units of the {view.first} (0: its mean, 1: one of its sd): its 5-95 % range "
        f"and the {view.last}'s {what} (the table's numbers). How far the data moved each parameter, and "
        "how much they narrowed it."
    )


def _marginal_figure(view, shift):
    """A histogram panel per parameter (at most MAX_PANELS, those moved most): the first and last
    ensembles, the posterior mean and ± 2 sd."""
    n = len(view.names)
    chosen = np.sort(np.argsort(-shift, kind="stable")[:MAX_PANELS])
    cols = min(4, len(chosen))
    rows = -(-len(chosen) // cols)
    fig = Figure(figsize=(3.1 * cols, 0.4 + 2.2 * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    members = view.theta.shape[1]
    for a, i in zip(axes, chosen):
        name, prior, last = view.names[i], view.theta[0, :, i], view.theta[view.k, :, i]
        p = view.posterior[name]
        edges = np.histogram_bin_edges(np.concatenate([prior, last]), bins=int(np.clip(members // 2, 5, 20)))
        a.axvspan(p["mean"] - 2 * p["sd"], p["mean"] + 2 * p["sd"], color=POSTERIOR, alpha=0.12, lw=0,
                  label="\u00b12 sd")  # fmt: skip
        if view.k > 0:
            a.hist(prior, bins=edges, color=PRIOR, alpha=0.5, label=view.first)
        a.hist(last, bins=edges, color=POSTERIOR, alpha=0.6, label=view.last)
        a.axvline(p["mean"], color=POSTERIOR, lw=1.5, label="best member" if view.cmaes else "mean")
        a.set_title(tex_safe(name), fontsize=8)
        a.tick_params(labelsize=7)
    for a in axes[len(chosen) :]:
        a.set_visible(False)
    axes[0].legend(fontsize=6, frameon=False)
    which = f"the {len(chosen)} of {n} the data moved most" if len(chosen) < n else f"all {n}"
    return fig, (
        f"Each parameter's histogram over the {members} members of the {view.first} and of the "
        f"{view.last}, with the {view.last}'s {'best member' if view.cmaes else 'mean'} and \u00b12 sd "
        f"(shaded); {which} parameters."
    )


def _posterior_table(view):
    """fit.json's posterior (or the last evaluated ensemble's statistics) beside the prior ensemble's."""
    head = ["parameter", "mean", "sd", "2.5 %", "97.5 %", f"{view.first} mean", f"{view.first} sd"]
    if view.cmaes:
        head[1] = "best member"
    rows = []
    for name in view.names:
        p, q = view.posterior[name], view.prior[name]
        values = [p["mean"], p["sd"], p["q2.5"], p["q97.5"], q["mean"], q["sd"]]
        rows.append(f"<tr><td>{esc(name)}</td>{''.join(_cell(v) for v in values)}</tr>")
    if not view.complete:
        what = f"Over the {view.last}'s members: the fit is {view.status}, this is not its posterior."
    elif view.cmaes:
        what = (
            f"fit.json's estimate: {view.record.get('estimate', 'best member (CMA-ES)')}. The best member "
            "is the one of least misfit over every generation; its sd, 2.5 % and 97.5 % are those of a "
            "normal about it with the last generation's spread, not a posterior's."
        )
    else:
        what = (
            f"fit.json's posterior ({view.record.get('estimate', 'posterior mean')}): mean, sd and "
            f"percentiles over the {view.theta.shape[1]} members of the posterior ensemble."
        )
    return (
        '<table id="posterior-table"><thead><tr>'
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f'</tr></thead><tbody>{"".join(rows)}</tbody></table><p id="posterior-note">{esc(what)}</p>'
    )


# ------------------------------------------------------------------------------------------------- usage


def _usage(view):
    config, fit_dir = view.inputs["config"], view.fit_dir
    if view.complete:
        lines = [
            f"brainsim run {config} --patient {fit_dir / 'patient.yaml'}   # the fitted twin",
            f"brainsim fork {fit_dir} --at T --intervention a.yaml --intervention b.yaml -o FUTURES"
            "   # treatments from every posterior member",
            f"brainsim report {fit_dir}   # this page again",
        ]
        what = (
            f"patient.yaml holds the {view.record.get('estimate', 'estimate')} as a patient overlay; "
            "posterior/member-NNN.yaml each member of the last ensemble."
        )
    else:
        lines = [
            f"brainsim fit {config} --observations {view.inputs.get('observations')} --parameters FIT.yaml "
            f"-o {fit_dir} --resume   # the same inputs as before",
        ]
        what = "The fit is not complete: resume it to get its patient overlay and posterior."
    return (
        f'<section id="use"><h2>Using the result</h2><p>{esc(what)}</p>'
        f"<pre>{esc(chr(10).join(lines))}</pre></section>"
    )


# -------------------------------------------------------------------------------------------------- text


def _finite(x):
    x = float(x)
    return x if np.isfinite(x) else None


def _cell(x):
    """A table number: shown as report.num, exact in data-value (NaN and None: an en dash)."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return '<td class="num">\u2013</td>'
    if isinstance(x, (int, np.integer)):
        return f'<td class="num" data-value="{int(x)}">{num(int(x))}</td>'
    return f'<td class="num" data-value="{float(x)!r}">{num(float(x))}</td>'
