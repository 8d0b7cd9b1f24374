"""`brainsim follow`: an ensemble of twins kept in step with a patient's observations as they arrive,
corrected by an ensemble Kalman filter, forecasting ahead and warning before an alert rule's event.

The J members are patient overlays of CONFIG (parameters.member_config) whose free parameters are those
of the fit file (FIT_DIR/fit.json's, or --parameters); they start from the fit's last ensemble (the first
J members, or drawn with replacement), or from the priors without a fit's folder. Member m keeps one
simulation seed (SeedSequence([seed, 3, m])): its network never changes. Window k covers [k W, (k+1) W)
ms of the observations (time 0: the members' start, after the config's warm-up). For each window:

1. advance: every member continues its state from k W to (k+1) W with its forecast parameters (window 0:
   from the start) and gives its features over the window (the fit file's, each `window` replaced by the
   current one) and its state at (k+1) W (member_state files);
2. wait until the observations reach (k+1) W (live.LiveObservations; a complete feed short of it ends
   the follow);
3. analysis: one stochastic ensemble Kalman filter update of the parameters in the inversion's space u
   (eki.update with step 1: perturbed observations, rng SeedSequence([seed, 4, k])), augmented with the
   rates v of the parameters that have a trend (below): u and v are both moved by their ensemble
   covariances with the features (a region's from its own region's features and those of no region
   when the fit file's method.localise is regions, the default). Members whose run failed keep their
   parameters and drop out. Cell states are not updated (spiking states have no Gaussian update that
   keeps them a state of the model): the parameters carry the correction;
4. forecast: every member continues from its state at (k+1) W with its analysed parameters for
   `horizon` ms H (a fork whose states are not kept), its summary's alert rules are evaluated, and each
   rule matched by at least its `probability` of the members is a warning. A parameter with a trend is
   extrapolated over the horizon: a mechanism factor (patient.factors.<region>.<type>.<mechanism>.
   <parameter> of a density mechanism, at a value > 0) as a `drug` intervention of the forecast in that
   region and cell type, ramping from 1 at (k+1) W to to_theta(u + v H) / to_theta(u) at (k+1) W + H
   (the parameter itself goes linearly from to_theta(u) to to_theta(u + v H)); any other parameter is
   held at its value at the horizon's middle, to_theta(u + v H / 2).

The next window's forecast parameters follow a random walk in u (the fit file's per-family `drift`,
per sqrt(s); rng SeedSequence([seed, 6, k])): u <- u + N(0, drift^2 W / 1000 s). A family with a
`trend` (per s per sqrt(s)) has a rate v (u per s) that walks first and then moves u:
v <- v + N(0, trend^2 W / 1000 s) (rng SeedSequence([seed, 9, k])), u <- u + N(0, drift^2 W / 1000 s) +
v W / 1000 s, so that the window's features depend on the rate it was given; the advance holds u
constant over the window (a step at its start: u is the window's mean). v starts at 0 in every member:
nothing of window 0 depends on it (an initial spread would only be moved by the ensemble's chance
correlations), and the walk gives it its spread from window 1 on. Members run as batches of
follow_member.follow_member on any runner of runners.make_runner.

TWIN.zarr (Zarr v3, rewritten whole after every completed window: a staging store renamed into place)::

    window_start, window_end (window,)           ms
    theta_forecast, theta  (window, member, parameter)  parameters before / after the update
    rate_forecast, rate    (window, member, parameter)  their rates v before / after the update (u per
                                                 s; NaN for a family without a trend)
    predicted        (window, member, feature)   the members' features over the window (NaN: failed)
    failed           (window, member)            the member's run failed (in this window or before)
    observed, noise  (window, feature)           observed features and their standard deviations
    innovation       (window, feature)           observed - ensemble mean predicted
    nis              (window,)                   d^T (C_gg + Gamma)^-1 d / n_features (about 1 when the
                                                 ensemble's spread and the noise explain the innovation)
    misfit           (window, member)            mean squared residual in noise units
    spread           (window, parameter)         sd of theta over the members
    warning_probability, warning, expected_time, lead_time, warning_regions   (window, rule): the
                     fraction of forecast members matching, whether it warned, the median first match
                     start (ms), its lead over the window's end (ms; NaN: no member matched), the
                     regions (JSON list)
    fan_<variable>   (window, member, lead | lead_bin | lead_tr)  each watched variable's forecast,
                     maximum over the rule's regions, at lead ms after the window's end (windowed
                     variables on `lead`, rates on `lead_bin`, BOLD on `lead_tr`)
    observed_<variable>  (window, lead...)       the same from the observations where they hold it
                     (rate, window_rate from the observed rates; NaN where not yet observed)
    attrs: format "brainsim-twin", format_version 1, status running / complete / interrupted, inputs
    (JSON: what a resumed follow must share), windows_done, members_folder, scheduler

Beside it: TWIN.members/ (the member states of the last completed window and of the one in progress,
and the members' last run and summary stores) and TWIN.warnings.jsonl (one JSON object per warning).
Running the same command again continues after the last completed window.
"""

import hashlib
import json
import math
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from zarr.errors import ZarrUserWarning

from brainsim import __version__
from brainsim.api import load_config
from brainsim.config.load import read_yaml, without_nulls
from brainsim.errors import BrainsimError, ConfigError, StoreError
from brainsim.model.brain import Brain
from brainsim.postprocess.alerts import check_regions

from . import eki
from .features import PINNED, WINDOWED, feature_blocks, value_regions
from .fit_store import open_fit, read_record
from .follow_member import ADVANCE, FORECAST, FollowTask, follow_member
from .live import LiveObservations
from .member_state import load_state, remove_states
from .observe import check_observed_labels, open_observations
from .options import is_multiple, whole, window_ms
from .parameters import load_fit, member_config
from .runners import MemberFailure, make_runner
from .stop_signals import STOP_SIGNALS, StopSignals, interrupt_name

FORMAT = "brainsim-twin"
FORMAT_VERSION = 1
LEAD_DIMS = {"window": "lead", "time": "lead_bin", "bold_time": "lead_tr"}
"""The lead dimension of a forecast fan, by the time dimension of the variable watched."""


class FollowStopped(BrainsimError):
    """The follow was stopped by a signal; TWIN.zarr holds every window completed before it."""

    def __init__(self, signal_name, out, done):
        self.signal_name, self.out, self.done = signal_name, out, done
        super().__init__(
            f"follow stopped by {signal_name}: {out} holds {done} completed window(s); continue with the "
            "same command"
        )


def follow(
    config,
    patient,
    observations,
    out,
    *,
    window,
    horizon,
    members,
    rules,
    parameters=None,
    seed=None,
    scheduler="local",
    workers=None,
    profile=None,
    member_time="01:00:00",
    fail_on_warning=False,
    poll_s=0.25,
    overwrite=False,
    overrides=(),
    log=print,
    say=print,
):
    """Follow the observation store `observations` (a live store being fed, or a finished one) with J =
    `members` twins of CONFIG under the patient overlay `patient`, writing TWIN.zarr `out`; returns the
    follow's record {windows_done, status, warnings (dicts), stopped_on_warning}.

    window, horizon: ms; rules: resolved alert rules; parameters: the fit file (default FIT_DIR's, when
    `patient` lies in a fit's folder); seed: of the whole follow (default the fit file's); scheduler,
    workers, profile, member_time: where the members run (runners.make_runner); fail_on_warning: stop
    after the first window that warned (stopped_on_warning); poll_s: s between looks at a live store;
    overrides: --set items of CONFIG; log: progress lines; say: warning lines. Raises FollowStopped after
    a stop signal."""
    job = _Follow(config, patient, observations, out, window, horizon, members, rules, parameters, seed,
                  overrides, log, say)  # fmt: skip
    with make_runner(scheduler, workers, profile=profile, work=job.members / "ensemble", time=member_time,
                     log=log) as runner:  # fmt: skip
        if not runner.driver:
            runner.serve()
            return None
        return job.run(runner, overwrite, fail_on_warning, poll_s)


def twin_paths(out):
    """(members folder, warnings JSON-lines file) beside TWIN.zarr `out`."""
    out = Path(out)
    stem = out.name.removesuffix(".zarr")
    return out.with_name(stem + ".members"), out.with_name(stem + ".warnings.jsonl")


def open_twin(store):
    """The twin store at `store`, loaded; StoreError naming it when it is unreadable or not one."""
    try:
        ds = xr.open_zarr(store, zarr_format=3).load()
    except Exception as e:  # noqa: BLE001 - any unreadable store is named
        raise StoreError(store, f"unreadable twin store ({type(e).__name__}: {e})") from None
    if ds.attrs.get("format") != FORMAT or ds.attrs.get("format_version") != FORMAT_VERSION:
        raise StoreError(store, f"not a brainsim twin store ({FORMAT!r} version {FORMAT_VERSION})")
    return ds


class _Follow:
    def __init__(self, config, patient, observations, out, window, horizon, members, rules, parameters, seed,
                 overrides, log, say):  # fmt: skip
        self.log, self.say = log, say
        self.out = Path(out)
        self.members, self.warnings_file = twin_paths(self.out)
        patient = Path(patient)
        folder = patient.parent
        self.fit_dir = folder if (folder / "fit.json").is_file() and (folder / "fit.zarr").is_dir() else None
        fitted = []
        if self.fit_dir is not None:
            record = read_record(self.fit_dir / "fit.json", ("parameters_file",))
            fitted = list(record.get("set") or [])
            if parameters is None:
                parameters = record["parameters_file"]
        elif parameters is None:
            raise ConfigError(
                "--parameters", None, "a fit file naming the free parameters and features, when --patient is "
                "not the patient.yaml of a fit's folder (one with fit.json and fit.zarr)",
            )  # fmt: skip
        self.overrides = [*fitted, *overrides]
        self.config = load_config(config, self.overrides)
        self.source = None if self.config.source is None else str(Path(self.config.source).resolve())
        self.raw = read_yaml(config) or {}
        self.spec = load_fit(parameters, self.config, self.raw, self.overrides)
        with_patient = load_config(config, self.overrides, patient=patient)
        self.member_raw = {**self.raw, "patient": without_nulls(with_patient.data["patient"])}
        self.patient_id = with_patient["patient"]["id"]
        self.j = whole("--members", members, 2)
        self.seed = int(self.spec.method["seed"] if seed is None else whole("--seed", seed, 0))
        self.window = window_ms("--window", window, self.config)
        self.horizon = window_ms("--horizon", horizon, self.config)
        self.rules = [dict(rule) for rule in rules]
        if not self.rules:
            raise ConfigError("--alerts", [], "at least one alert rule (the forecasts' warnings)")
        labels = list(Brain(self.config).labels)
        check_regions(self.rules, labels, "alerts")
        self.obs_path = Path(observations).resolve()
        self.live = LiveObservations(self.obs_path)
        obs = open_observations(self.obs_path)
        check_observed_labels(obs, self.config, self.obs_path)
        self.bin = float(obs.attrs["bin"])
        if not is_multiple(self.window, self.bin):
            raise ConfigError("--window", window, f"a multiple of the observations' bin ({self.bin:g} ms)")
        self.features = _pin(obs, self.spec.features, self.spec.file)
        self.obs_series = {name: obs[name].dims for name in ("rate",) if name in obs}
        self.parameters_file = Path(parameters).resolve()
        self.config_file, self.patient_file = str(Path(config).resolve()), str(patient.resolve())
        self.inputs = {
            "config_hash": self.config.hash(),
            "set": self.overrides,
            "patient": _file_hash(patient),
            "parameters": _file_hash(self.parameters_file),
            "observations": str(self.obs_path),
            "window": self.window,
            "horizon": self.horizon,
            "members": self.j,
            "seed": self.seed,
            "rules": self.rules,
        }
        self.names = self.spec.names
        self.local = None  # per unknown (u, then the trends' v), the indices of its features; None: all

    # -- the loop ----------------------------------------------------------------------------------

    def run(self, runner, overwrite, fail_on_warning, poll_s):
        done = self._start(overwrite)
        if done is not None:
            return done
        h = self.history
        self.log(
            f"follow: {self.j} members, {len(self.names)} parameters, windows of {self.window:g} ms, "
            f"forecasts of {self.horizon:g} ms, {len(self.rules)} rule(s), members on {runner.description}"
            + (f"; resuming after window {len(h['theta']) - 1}" if h["theta"] else "")
        )
        self.scheduler = runner.description
        started = time.monotonic()
        warned_once = False
        with StopSignals(STOP_SIGNALS, interrupt=True) as stop:
            try:
                while True:
                    k = len(h["theta"])
                    t0, t1 = k * self.window, (k + 1) * self.window
                    t_available, complete = self.live.available()
                    if complete and t_available < t1 - 1e-9:
                        self._write("complete")
                        self.log(
                            f"follow: the observations end at {t_available:g} ms: complete after {k} "
                            "window(s)"
                        )
                        break
                    begun = time.monotonic()
                    theta_f, v_f = self._forecast_parameters(k)
                    g, failed = self._advance(runner, k, theta_f)
                    advance_s = time.monotonic() - begun
                    waited = time.monotonic()
                    if t_available < t1:
                        self.log(f"follow: waiting for observations up to {t1:g} ms")
                    if not self.live.wait_for(t1, poll_s=poll_s, stop=lambda: stop.received is not None):
                        if stop.received:
                            raise KeyboardInterrupt(stop.received)
                        self._write("complete")
                        self.log(f"follow: the feed ended before {t1:g} ms: complete after {k} window(s)")
                        break
                    wait_s = time.monotonic() - waited
                    begun = time.monotonic()
                    y, labels, sd = self._observe(t0, t1)
                    g = np.array([row if row.size else np.full(y.size, np.nan) for row in g], dtype=float)
                    failed |= ~np.isfinite(g).all(axis=1)
                    theta_a, v_a = self._analysis(k, theta_f, v_f, g, y, sd, failed)
                    forecast = self._forecast(runner, k, theta_a, v_a, failed)
                    step_s = advance_s + time.monotonic() - begun
                    self.compute_s += step_s
                    if "labels" not in h:
                        h["labels"] = [label.rsplit("@", 1)[0] for label in labels]
                    found = self._warnings(k, forecast, failed)
                    self._record(k, (theta_f, v_f), (theta_a, v_a), g, failed, y, sd, forecast, found)
                    self._append_warnings(k, found)
                    self._write("running")
                    remove_states(self.members, keep={k})
                    self._progress(k, g, y, sd, theta_a, step_s, wait_s, failed)
                    for w in found:
                        self.say(w["line"])
                    warned_once = warned_once or bool(found)
                    stop.check(FollowStopped, self.out, k + 1)
                    if found and fail_on_warning:
                        return self._result("running", stopped_on_warning=True)
            except (KeyboardInterrupt, MemberFailure) as e:
                name = stop.received or interrupt_name(e)
                if name is None:
                    raise
                self._write("interrupted")
                raise FollowStopped(name, self.out, len(h["theta"])) from None
        self.log(f"follow: {len(h['theta'])} window(s) in {self.out} ({time.monotonic() - started:.0f} s)")
        return self._result("complete", stopped_on_warning=False)

    def _result(self, status, stopped_on_warning):
        return {
            "windows_done": len(self.history["theta"]),
            "status": status,
            "warnings": [w for per in self.history["warnings"] for w in per],
            "stopped_on_warning": stopped_on_warning,
        }

    # -- the ensemble ------------------------------------------------------------------------------

    def _initial(self):
        """The first window's parameters (J, p): the fit's last ensemble, or draws of the priors."""
        if self.fit_dir is None:
            rng = np.random.default_rng([self.seed, 0])
            return np.stack([p.sample(rng, self.j) for p in self.spec.parameters], axis=1)
        store = self.fit_dir / "fit.zarr"
        ds = open_fit(store)
        names = [str(n) for n in ds["parameter"].values]
        if names != self.names:
            raise StoreError(store, f"fitted the parameters {names}, the fit file names {self.names}")
        last = np.asarray(ds["theta"].values[-1], dtype=float)
        if self.j <= last.shape[0]:
            return last[: self.j].copy()
        rng = np.random.default_rng([self.seed, 7])
        return last[rng.integers(0, last.shape[0], self.j)]

    def _forecast_parameters(self, k):
        """(theta_forecast, rate_forecast) of window k: the initial ensemble (rates drawn from their
        prior), or the last analysis moved by its rates plus the random walks (see the module's doc)."""
        trend = np.array([p.trend for p in self.spec.parameters])
        has = trend > 0
        if k == 0:
            v = np.full((self.j, len(self.names)), np.nan)
            v[:, has] = 0.0
            return self._initial(), v
        theta, v = self.history["theta"][k - 1], self.history["rate"][k - 1]
        rng = np.random.default_rng([self.seed, 6, k])
        dt = self.window / 1000.0
        u = self._u(theta)
        sd = np.array([p.drift for p in self.spec.parameters]) * math.sqrt(dt)
        u = u + rng.standard_normal(u.shape) * sd
        v = v.copy()
        if has.any():
            walk = np.random.default_rng([self.seed, 9, k]).standard_normal((self.j, int(has.sum())))
            v[:, has] += walk * trend[has] * math.sqrt(dt)
            u[:, has] += v[:, has] * dt
        return self._theta(u), v

    def _u(self, theta):
        return np.stack([p.to_u(theta[:, i]) for i, p in enumerate(self.spec.parameters)], axis=1)

    def _theta(self, u):
        return np.stack([p.to_theta(u[:, i]) for i, p in enumerate(self.spec.parameters)], axis=1)

    def _analysis(self, k, theta_f, v_f, g, y, sd, failed):
        """(theta, rate) of window k after the filter's update of u and, where a family has a trend, v."""
        ok = ~failed
        if ok.sum() < 2:
            raise BrainsimError(
                f"follow: {int(failed.sum())} of {self.j} members failed (their runs blew up) by window {k}: "
                "fewer than 2 are left to update"
            )
        rng = np.random.default_rng([self.seed, 4, k])
        p = len(self.names)
        has = np.array([q.trend > 0 for q in self.spec.parameters])
        x = np.concatenate([self._u(theta_f), v_f[:, has]], axis=1)
        x[ok] = eki.update(x[ok], g[ok], y, sd**2, 1.0, rng, self.local)
        v = v_f.copy()
        v[:, has] = x[:, p:]
        return self._theta(x[:, :p]), v

    def _observe(self, t0, t1):
        """(observed features y, their labels, their standard deviations) of the window [t0, t1) ms."""
        features = [{**f, "window": [t0, t1]} for f in self.features]
        observed = self.live.window(t0, t1)
        blocks = feature_blocks(observed, features)
        if self.local is None and self.spec.method["localise"] == "regions":
            owners = [p.region for p in self.spec.parameters]
            owners += [p.region for p in self.spec.parameters if p.trend > 0]
            self.local = eki.localisation(owners, value_regions(observed, features))
        y = np.concatenate([b[0] for b in blocks])
        bad = [label for b in blocks for label, v in zip(b[1], b[0]) if not np.isfinite(v)]
        if bad:
            raise StoreError(
                self.obs_path, f"observed features of [{t0:g}, {t1:g}) ms that are not finite: {bad[:10]}"
            )
        sd = [f["noise"] * np.maximum(np.abs(v) if f["relative"] else np.ones_like(v), 1e-12)
              for f, (v, _) in zip(features, blocks)]  # fmt: skip
        return y, [label for b in blocks for label in b[1]], np.concatenate(sd)

    def _tasks(self, kind, k, theta, failed, t0, t1, start, rates=None):
        tasks = []
        for m, row in enumerate(theta):
            if failed[m]:
                continue
            raw, row = self.member_raw, np.asarray(row, dtype=float)
            if rates is not None:
                raw, row = self._extrapolated(row, rates[m], t0, t1 - t0)
            member = member_config(self.spec, raw, self.overrides, self.config.source, row,
                                   f"{self.patient_id}-follow-{m:03d}")  # fmt: skip
            features = tuple({**f, "window": [t0, t1]} for f in self.features) if kind == ADVANCE else ()
            tasks.append(
                FollowTask(
                    kind,
                    m,
                    k,
                    t0,
                    t1,
                    member.data,
                    self.source,
                    _member_seed(self.seed, m),
                    start,
                    str(self.members.resolve()),
                    str(self.members.resolve()),
                    features,
                    rules=tuple(self.rules) if kind == FORECAST else (),
                )  # fmt: skip
            )
        return tasks

    def _advance(self, runner, k, theta_f):
        failed = self._failed_before()
        t0, t1 = k * self.window, (k + 1) * self.window
        tasks = self._tasks(ADVANCE, k, theta_f, failed, t0, t1, None if k == 0 else k - 1)
        results = runner.map(follow_member, tasks)
        g = [np.zeros(0)] * self.j
        for task, result in zip(tasks, results):
            g[task.member] = result.features
            if result.failed:
                failed[task.member] = True
                self.log(f"follow: member {task.member} failed in window {k}: {result.failed}")
        return g, failed

    def _extrapolated(self, theta, rate, t0, horizon):
        """(the member's raw config, its parameters) for a forecast of `horizon` ms from t0 that carries
        each parameter with a trend along its rate (see the module's doc): drug interventions ramping the
        mechanism factors, the horizon's middle value for the others."""
        theta, drugs = theta.copy(), []
        for i, p in enumerate(self.spec.parameters):
            if not p.trend > 0 or not np.isfinite(rate[i]) or rate[i] == 0:
                continue
            u = float(p.to_u(theta[i]))
            if p.path[0] == "factors" and _density(p.path[3], self.config.mechanisms) and theta[i] > 0:
                mechanism, parameter = p.path[3].split(".", 1)
                end = float(p.to_theta(u + rate[i] * horizon / 1000.0))
                drugs.append({
                    "kind": "drug", "mechanism": mechanism, "parameter": parameter,
                    "factor": end / float(theta[i]), "regions": _targets(p.path[1]),
                    "cell_types": _targets(p.path[2]), "onset": float(t0), "ramp": float(horizon),
                })  # fmt: skip
            else:
                theta[i] = float(p.to_theta(u + rate[i] * horizon / 2000.0))
        if not drugs:
            return self.member_raw, theta
        return {
            **self.member_raw,
            "interventions": [*(self.member_raw.get("interventions") or []), *drugs],
        }, theta

    def _failed_before(self):
        failed = self.history["failed"]
        return failed[-1].copy() if failed else np.zeros(self.j, dtype=bool)

    def _forecast(self, runner, k, theta_a, v_a, failed):
        t0 = (k + 1) * self.window
        tasks = self._tasks(FORECAST, k, theta_a, failed, t0, t0 + self.horizon, k, rates=v_a)
        results = runner.map(follow_member, tasks)
        out = [None] * self.j
        for task, result in zip(tasks, results):
            if result.failed:
                self.log(f"follow: member {task.member}'s forecast from window {k} failed: {result.failed}")
                continue
            out[task.member] = result
        return out

    # -- warnings ----------------------------------------------------------------------------------

    def _warnings(self, k, forecast, failed):
        """The warnings of window k's forecast: per rule, its probability, regions, expected time."""
        t_end = (k + 1) * self.window
        ran = [r for r in forecast if r is not None]
        rows = []
        for rule in self.rules:
            firsts, regions = [], {}
            for result in ran:
                hits = [m for m in result.matches if m["rule"] == rule["name"]]
                if hits:
                    firsts.append(min(m["start"] for m in hits))
                    for label in dict.fromkeys(m["region"] for m in hits):
                        regions[label] = regions.get(label, 0) + 1
            p = len(firsts) / len(ran) if ran else 0.0
            expected = float(np.median(firsts)) if firsts else math.nan
            chosen = [r for r, n in regions.items() if n >= len(firsts) / 2] if firsts else []
            if firsts and not chosen:
                chosen = [max(regions, key=regions.get)]
            rows.append(
                {
                    "window": k,
                    "time": t_end,
                    "rule": rule["name"],
                    "probability": p,
                    "warning": bool(firsts) and p >= rule["probability"] - 1e-12,
                    "regions": chosen,
                    "expected_time": expected,
                    "lead_time": expected - t_end if firsts else math.nan,
                    "members": len(ran),
                }
            )
        self.history.setdefault("rule_rows", []).append(rows)
        found = []
        for row in rows:
            if row["warning"]:
                row["line"] = (
                    f"WARNING t={row['time']:g}ms: rule {row['rule']!r} in {','.join(row['regions'])} with "
                    f"p={row['probability']:.2f}, expected at {row['expected_time']:g} ms (lead "
                    f"{row['lead_time']:g} ms)"
                )
                found.append(row)
        return found

    def _append_warnings(self, k, found):
        with open(self.warnings_file, "a") as f:
            for row in found:
                f.write(json.dumps({key: value for key, value in row.items() if key != "line"}) + "\n")

    # -- TWIN.zarr ---------------------------------------------------------------------------------

    def _start(self, overwrite):
        """Set self.history (the windows completed so far) from a store to resume, or empty; returns the
        record to give back at once when the store is complete, else None."""
        self.history = {"theta": [], "theta_f": [], "rate": [], "rate_f": [], "g": [], "failed": [], "y": [],
                        "sd": [], "fan": [], "warnings": [], "rule_rows": []}  # fmt: skip
        self.compute_s = 0.0  # wall s spent on the windows completed (not waiting), over every resume
        store = self.out / "zarr.json"
        old = self.out.with_name(self.out.name + ".old")
        if not self.out.exists() and (old / "zarr.json").is_file():  # stopped between two renames in _write
            old.rename(self.out)
        if self.out.exists() and overwrite:
            if store.is_file():
                open_twin(self.out)
            elif any(self.out.iterdir()):
                raise StoreError(self.out, "is not a twin store: not replaced")
            shutil.rmtree(self.out)
        if not self.out.exists():
            _clear(self.members)
            self.warnings_file.unlink(missing_ok=True)
            self.members.mkdir(parents=True, exist_ok=True)
            return None
        ds = open_twin(self.out)
        mine, theirs = self.inputs, json.loads(ds.attrs.get("inputs", "{}"))
        differ = sorted(key for key in set(mine) | set(theirs) if _jsonable(mine.get(key)) != theirs.get(key))
        if differ:
            shown = "; ".join(
                f"{key}: {theirs.get(key)!r} there, {_jsonable(mine.get(key))!r} now" for key in differ
            )
            raise StoreError(
                self.out, f"was written by a follow of other inputs ({shown}): pass --overwrite to replace "
                "it, or -o to write elsewhere",
            )  # fmt: skip
        n = int(ds.attrs["windows_done"])
        self._load(ds, n)
        self.compute_s = float(ds.attrs.get("compute_s", 0.0))
        if ds.attrs.get("status") == "complete":
            self.log(f"follow: {self.out} is complete ({n} window(s)): nothing to do")
            return self._result("complete", stopped_on_warning=False)
        self._drop_warnings(n)
        if n:
            for m in np.flatnonzero(~self.history["failed"][-1]):
                load_state(self.members, int(m), n - 1, n * self.window)  # every state is there, unaltered
        return None

    def _load(self, ds, n):
        h = self.history
        h["theta"] = list(ds["theta"].values)
        h["theta_f"] = list(ds["theta_forecast"].values)
        h["rate"] = list(ds["rate"].values)
        h["rate_f"] = list(ds["rate_forecast"].values)
        h["g"] = list(ds["predicted"].values)
        h["failed"] = list(ds["failed"].values.astype(bool))
        h["y"] = list(ds["observed"].values)
        h["sd"] = list(ds["noise"].values)
        if n:
            h["labels"] = [str(x) for x in ds["feature"].values]
        fans = {
            name.removeprefix("fan_"): ds[name].values for name in ds.data_vars if name.startswith("fan_")
        }
        leads = {v: ds[ds[f"fan_{v}"].dims[2]].values for v in fans}
        h["fan"] = [{v: (leads[v], fans[v][k]) for v in fans} for k in range(n)]
        rules = [r["name"] for r in self.rules]
        h["rule_rows"] = [
            [
                {
                    "window": k,
                    "time": float(ds["window_end"].values[k]),
                    "rule": name,
                    "probability": float(ds["warning_probability"].values[k, i]),
                    "warning": bool(ds["warning"].values[k, i]),
                    "regions": json.loads(str(ds["warning_regions"].values[k, i])),
                    "expected_time": float(ds["expected_time"].values[k, i]),
                    "lead_time": float(ds["lead_time"].values[k, i]),
                    "members": int(ds["forecast_members"].values[k]),
                }
                for i, name in enumerate(rules)
            ]
            for k in range(n)
        ]
        h["warnings"] = [[row for row in rows if row["warning"]] for rows in h["rule_rows"]]

    def _drop_warnings(self, n):
        """Keep only the warning lines of the n completed windows (a stopped window's are written again)."""
        if not self.warnings_file.exists():
            return
        kept = [line for line in self.warnings_file.read_text().splitlines()
                if line.strip() and json.loads(line)["window"] < n]  # fmt: skip
        scratch = self.warnings_file.with_name(self.warnings_file.name + ".writing")
        scratch.write_text("".join(line + "\n" for line in kept))
        scratch.replace(self.warnings_file)

    def _record(self, k, forecast_parameters, analysed, g, failed, y, sd, forecast, found):
        """Keep window k's results: forecast_parameters and analysed are (theta, rate) pairs."""
        h = self.history
        h["theta_f"].append(forecast_parameters[0])
        h["rate_f"].append(forecast_parameters[1])
        h["theta"].append(analysed[0])
        h["rate"].append(analysed[1])
        h["g"].append(g)
        h["failed"].append(failed.copy())
        h["y"].append(y)
        h["sd"].append(sd)
        fan = {}
        template = next((r.fan for r in forecast if r is not None), None)
        for variable, (lead, _) in (template or {}).items():
            values = np.full((self.j, lead.size), np.nan)
            for m, result in enumerate(forecast):
                if result is not None:
                    values[m] = result.fan[variable][1][: lead.size]
            fan[variable] = (lead, values)
        h["fan"].append(fan)
        h["warnings"].append(found)

    def _write(self, status):
        h = self.history
        n = len(h["theta"])
        p, labels = len(self.names), h.get("labels", [])
        nf = len(labels)
        rules = [r["name"] for r in self.rules]
        rows = h["rule_rows"][:n]
        shape3 = (n, self.j, p)
        g = np.array(h["g"], dtype=float).reshape(n, self.j, nf)
        y = np.array(h["y"], dtype=float).reshape(n, nf)
        sd = np.array(h["sd"], dtype=float).reshape(n, nf)
        theta = np.array(h["theta"], dtype=float).reshape(shape3)
        failed = np.array(h["failed"], dtype=bool).reshape(n, self.j)
        innovation, nis = np.full((n, nf), np.nan), np.full(n, np.nan)
        for k in range(n):
            ok = ~failed[k]
            innovation[k], nis[k] = _innovation(g[k][ok], y[k], sd[k])
        theta_f = np.array(h["theta_f"], dtype=float).reshape(shape3)
        rate = np.array(h["rate"], dtype=float).reshape(shape3)
        rate_f = np.array(h["rate_f"], dtype=float).reshape(shape3)
        misfit = np.array([eki.misfit(g[k], y[k], sd[k] ** 2) for k in range(n)]).reshape(n, self.j)
        spread = theta.std(axis=1, ddof=1) if n else np.zeros((0, p))
        members = np.array([r[0]["members"] if r else 0 for r in rows], dtype=np.int64)
        data = {
            "window_start": (("window",), np.arange(n) * self.window, {"units": "ms"}),
            "window_end": (("window",), (np.arange(n) + 1) * self.window, {"units": "ms"}),
            "theta_forecast": (("window", "member", "parameter"), theta_f, {}),
            "theta": (("window", "member", "parameter"), theta, {}),
            "rate_forecast": (("window", "member", "parameter"), rate_f, {"units": "1/s"}),
            "rate": (("window", "member", "parameter"), rate, {"units": "1/s"}),
            "predicted": (("window", "member", "feature"), g, {}),
            "failed": (("window", "member"), failed, {}),
            "observed": (("window", "feature"), y, {}),
            "noise": (("window", "feature"), sd, {}),
            "innovation": (("window", "feature"), innovation, {}),
            "nis": (("window",), nis, {}),
            "misfit": (("window", "member"), misfit, {}),
            "spread": (("window", "parameter"), spread, {}),
            "forecast_members": (("window",), members, {}),
        }

        def per_rule(key, dtype):
            return np.array([[row[key] for row in r] for r in rows], dtype=dtype).reshape(n, len(rules))

        data["warning_probability"] = (("window", "rule"), per_rule("probability", float), {})
        data["warning"] = (("window", "rule"), per_rule("warning", bool), {})
        data["expected_time"] = (("window", "rule"), per_rule("expected_time", float), {"units": "ms"})
        data["lead_time"] = (("window", "rule"), per_rule("lead_time", float), {"units": "ms"})
        regions = [[json.dumps(row["regions"]) for row in r] for r in rows]
        data["warning_regions"] = (
            ("window", "rule"),
            np.array(regions, dtype=object).reshape(n, len(rules)),
            {},
        )
        coords = {
            "window": np.arange(n),
            "member": np.arange(self.j),
            "parameter": np.array(self.names, dtype=object),
            "feature": np.array(labels, dtype=object),
            "rule": np.array(rules, dtype=object),
        }
        self._fans(data, coords, n)
        ds = xr.Dataset(
            {name: xr.Variable(dims, values, attrs) for name, (dims, values, attrs) in data.items()},
            coords=coords,
            attrs={
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "brainsim_version": __version__,
                "status": status,
                "inputs": json.dumps(_jsonable(self.inputs), sort_keys=True),
                "windows_done": n,
                "compute_s": self.compute_s,
                "real_time_factor": self.compute_s / (n * self.window / 1000.0) if n else None,
                "config": self.config_file,
                "patient": self.patient_file,
                "parameters_file": str(self.parameters_file),
                "members_folder": str(self.members.resolve()),
                "scheduler": getattr(self, "scheduler", ""),
            },
        )
        staging = self.out.with_name(self.out.name + ".writing")
        shutil.rmtree(staging, ignore_errors=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
            warnings.filterwarnings("ignore", ".*does not have a Zarr V3 specification", UserWarning)
            ds.to_zarr(staging, mode="w", zarr_format=3, consolidated=True)
        old = self.out.with_name(self.out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.out.exists():
            self.out.rename(old)
        staging.rename(self.out)
        shutil.rmtree(old, ignore_errors=True)

    def _fans(self, data, coords, n):
        """fan_<variable> and observed_<variable> of every forecast into data (and their lead coords)."""
        fans = self.history["fan"][:n]
        template = next((f for f in fans if f), None)
        if template is None:
            return
        t_available, _ = self.live.available()
        for variable, (lead, _) in template.items():
            dim = LEAD_DIMS[self._time_dim(variable)]
            coords[dim] = xr.Variable(dim, lead, {"units": "ms"})
            values = np.full((n, self.j, lead.size), np.nan)
            for k, fan in enumerate(fans):
                if variable in fan:
                    values[k] = fan[variable][1]
            data[f"fan_{variable}"] = ((("window", "member", dim)), values, {})
            observed = self._observed_fan(variable, lead, n, t_available)
            if observed is not None:
                data[f"observed_{variable}"] = (("window", dim), observed, {})

    def _time_dim(self, variable):
        return "time" if variable == "rate" else "bold_time" if variable == "bold" else "window"

    def _observed_fan(self, variable, lead, n, t_available):
        """The observed counterpart of a fan (window, lead): region-maximum of the observed rates (rate), or
        of their means over the summary's windows (window_rate); None for other variables."""
        if variable not in ("rate", "window_rate") or "rate" not in self.obs_series:
            return None
        step = self.bin if variable == "rate" else float(self.config["summary"]["window"])
        if not is_multiple(step, self.bin):
            return None
        regions = set()
        for rule in self.rules:
            if rule["variable"] == variable:
                regions |= {"all"} if rule["regions"] == "all" else set(rule["regions"])
        out = np.full((n, lead.size), np.nan)
        for k in range(n):
            t0 = (k + 1) * self.window
            t1 = min(t0 + lead.size * step, math.floor((t_available - t0) / step + 1e-9) * step + t0)
            if t1 <= t0:
                continue
            rate = self.live.window(t0, t1)["rate"]
            labels = [str(x) for x in rate["region"].values]
            columns = [i for i, label in enumerate(labels) if "all" in regions or label in regions]
            if not columns:
                return None
            x = np.asarray(rate.values, dtype=float)[:, columns]
            per = int(round(step / self.bin))
            blocks = x.shape[0] // per
            means = x[: blocks * per].reshape(blocks, per, -1).mean(axis=1)
            out[k, :blocks] = means.max(axis=1)
        return out

    def _progress(self, k, g, y, sd, theta, step_s, wait_s, failed):
        misfit = eki.misfit(g[~failed], y, sd**2)
        _, nis = _innovation(g[~failed], y, sd)
        spread = " ".join(f"{n}={s:.3g}" for n, s in zip(self.names, theta.std(axis=0, ddof=1)))
        brain_s = (k + 1) * self.window / 1000.0
        self.log(
            f"follow: window {k} [{k * self.window:g}, {(k + 1) * self.window:g}) ms: misfit median "
            f"{np.median(misfit):.3g}, nis {nis:.3g}"
            + (f", {int(failed.sum())} failed" if failed.any() else "")
            + f"; {step_s:.1f} s, real-time factor {self.compute_s / brain_s:.3g} (wall s per brain s), "
            f"waited {wait_s:.1f} s"
        )
        self.log(f"follow:   spread (sd): {spread}")


# -- helpers ---------------------------------------------------------------------------------------


def _innovation(g, y, sd):
    """(observed - ensemble mean, normalised innovation squared) of members' outputs g (finite rows)."""
    if g.shape[0] < 2:
        return np.full(y.shape, np.nan), math.nan
    d = y - g.mean(axis=0)
    dg = g - g.mean(axis=0)
    c = dg.T @ dg / (g.shape[0] - 1) + np.diag(sd**2)
    return d, float(d @ np.linalg.solve(c, d) / d.size)


def _pin(obs, features, file):
    """The fit file's features for windows of the observation store `obs`: each a windowed variable whose
    time series the store holds, its labels along PINNED dimensions taken from the store."""
    out = []
    for i, feature in enumerate(features):
        name = feature["variable"]
        if name not in WINDOWED:
            raise ConfigError(
                f"features[{i}].variable", name, f"one of {sorted(WINDOWED)}: the follower computes every "
                "feature over each window", file=file,
            )  # fmt: skip
        series = WINDOWED[name][0]
        if series not in obs.data_vars:
            raise ConfigError(
                f"features[{i}].variable", name, f"a variable whose time series ({series}) the observations "
                f"hold (they hold {sorted(obs.data_vars)})", file=file,
            )  # fmt: skip
        column = obs[series].dims[1]
        select = dict(feature["select"])
        if column in PINNED and column not in select:
            select[column] = [str(v) for v in obs[column].values]
        out.append({**feature, "select": select, "window": None})
    return out


def _density(name, mechanisms):
    """Whether a patient factor's '<mechanism>.<parameter>' is one a drug intervention can ramp (a density
    mechanism of `mechanisms`, the config's)."""
    mechanism, _, parameter = name.partition(".")
    return mechanism in mechanisms.of_kind("density") and bool(parameter)


def _targets(label):
    """A drug's regions or cell_types for a patient factor's label or type ('all' stays 'all')."""
    return "all" if label == "all" else [label]


def _member_seed(seed, m):
    return int(np.random.SeedSequence([seed, 3, m]).generate_state(1)[0] % 2**31)


def _file_hash(path):
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError as e:
        raise ConfigError("--patient", str(path), "a readable file", detail=e.strerror or str(e)) from None


def _jsonable(value):
    return json.loads(json.dumps(value))


def _clear(folder):
    """Remove a members folder of an earlier follow (member states and stores only)."""
    if not folder.exists():
        return
    strangers = [
        p.name for p in folder.iterdir() if not (p.name.startswith("member-") or p.name == "ensemble")
    ]
    if strangers:
        raise StoreError(
            folder, f"holds files that are not a follower's members ({strangers[:5]}): not replaced"
        )
    shutil.rmtree(folder)
