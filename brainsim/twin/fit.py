"""`brainsim fit`: personalise a brain to a patient's observations by ensemble Kalman inversion (the
default, method kind eki) or CMA-ES (kind cmaes).

Each iteration runs the whole ensemble as one batch on a runner (runners.make_runner), one member run
per member (member.run_member: simulate, summarise, features), then moves the ensemble by one adaptive
Kalman step (eki); a fit of K iterations evaluates K + 1 ensembles (the last is the posterior's). Fewer
when the adaptive steps complete the data assimilation early. With cmaes each ensemble is a generation
of the search (cma.Search), K + 1 of them, and the fit's estimate is the best member evaluated.

FIT_DIR holds::

    fit.zarr     theta (iteration, member, parameter) the parameter values of every member evaluated;
                 features (iteration, member, feature) its features (NaN: its run blew up); misfit
                 (iteration, member) mean squared residual in noise units (1: the noise level); step
                 (iteration,) the Kalman step taken after that ensemble (NaN for the last, and for
                 cmaes); seed (iteration, member) the member's simulation seed; observed (feature,),
                 noise (feature,) the observed features and their standard deviations. With the fit
                 file's `representation`: replicates (replicate, feature) the features of the runs at the
                 priors' medians, replicate_seed (replicate,) their seeds, noise_covariance (feature,
                 feature2) the Γ every misfit and update uses (their shrunk covariance + diag(noise²)).
                 Attributes:
                 format "brainsim-fit", format_version 1, status ("running", "complete",
                 "interrupted"), inputs (JSON: what a resumed fit must share), scheduler.
    fit.json     config (absolute path), set, observations, parameters file, scheduler, members,
                 iterations, member_runs (replicates included), status, wall_s, estimate (what posterior
                 holds), noise_covariance {replicates, used, shrinkage} (with a representation), posterior
                 {parameter: mean, sd, q2.5, q97.5} over the last ensemble (cmaes: the best member and
                 the last generation's spread about it, see cma), misfit per iteration (median, best),
                 the noise level (1)
    posterior/member-NNN.yaml   each last member as a patient overlay (`--patient`)
    patient.yaml the posterior mean (cmaes: the best member) as a patient overlay
    report.html  the fit as one self-contained page (fit_report.py): misfit per ensemble, observed and
                 fitted features, parameter marginals (`brainsim report FIT_DIR` writes it again)

Seeds: the prior ensemble, each update's perturbed observations and each member's simulation seed
derive from the fit's seed alone (member j of iteration k: SeedSequence([seed, 2, k, j])), so a fit
gives the same result on every runner and when resumed. Replicate r runs with SeedSequence([seed, 3, r]);
they run once, before the first ensemble, and a resumed fit takes them from fit.zarr.
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
import yaml
from zarr.errors import ZarrUserWarning

from brainsim import __version__
from brainsim.api import load_config
from brainsim.config.load import read_yaml
from brainsim.errors import BrainsimError, StoreError

from . import cma, eki
from .features import feature_blocks, pin, value_regions
from .fit_report import write_fit_report
from .fit_store import FORMAT, FORMAT_VERSION, ensemble_summary, open_fit
from .member import MemberTask, run_member
from .observe import check_observed_labels, open_observations
from .options import whole
from .parameters import load_fit, member_config
from .runners import MemberFailure, make_runner
from .stop_signals import STOP_SIGNALS, StopSignals, interrupt_name


class FitStopped(BrainsimError):
    """The fit was stopped by a signal; FIT_DIR holds every ensemble evaluated before it."""

    def __init__(self, signal_name, fit_dir, done):
        self.signal_name, self.fit_dir, self.done = signal_name, fit_dir, done
        super().__init__(
            f"fit stopped by {signal_name}: {fit_dir} holds {done} evaluated ensemble(s); continue with "
            "`brainsim fit ... --resume`"
        )


def fit(
    config,
    observations,
    parameters,
    out,
    *,
    members=None,
    iterations=None,
    scheduler="local",
    workers=None,
    profile=None,
    member_time="01:00:00",
    seed=None,
    overrides=(),
    overwrite=False,
    resume=False,
    log=print,
):
    """Fit the config's patient parameters (the fit file `parameters`) to the observation store, writing
    FIT_DIR `out`; returns the fit's record (fit.json's content). members, iterations, seed: override the
    fit file's method; scheduler, workers, profile: where the members run (runners.make_runner; a
    slurm-array's task files go to FIT_DIR/ensemble), member_time: a slurm-array task's time limit;
    overrides: --set items for the config; resume: continue the fit in `out`. Raises FitStopped after a
    stop signal, with everything evaluated so far written."""
    job = _Fit(config, observations, parameters, out, members, iterations, seed, overrides, log)  # checked
    work = Path(out) / "ensemble"
    with make_runner(scheduler, workers, profile=profile, work=work, time=member_time, log=log) as runner:
        if not runner.driver:  # --scheduler mpi: this rank runs members for rank 0
            runner.serve()
            return None
        return job.run(runner, overwrite, resume)


def fit_method(spec, members=None, iterations=None, seed=None):
    """The fit file's method (spec: parameters.FitSpec) with --members, --iterations and --seed laid over
    it; ConfigError naming the option for a value that is not a whole number of the least allowed."""
    method = dict(spec.method)
    for key, value, least in (("members", members, 2), ("iterations", iterations, 1), ("seed", seed, 0)):
        if value is not None:
            method[key] = whole(f"--{key}", value, least)
    return method


def member_overrides(features, overrides):
    """The --set items of every member run: overrides and, when every feature has a window, simulation.tstop
    at the last window's end (ms): a member simulates only as far as the features look."""
    windows = [f["window"] for f in features]
    out = list(overrides)
    if all(w is not None for w in windows):
        out.append(f"simulation.tstop={max(w[1] for w in windows)!r}")
    return out


class _Fit:
    def __init__(self, config, observations, parameters, out, members, iterations, seed, overrides, log):
        self.config_file = Path(config).resolve()
        self.config = load_config(config, overrides)
        self.overrides = list(overrides)
        self.raw = read_yaml(config) or {}
        self.spec = load_fit(parameters, self.config, self.raw, self.overrides)
        self.method = fit_method(self.spec, members, iterations, seed)
        self.search = None  # the CMA-ES search (cmaes), made when first needed
        self.obs_path = Path(observations).resolve()
        obs = open_observations(observations)
        check_observed_labels(obs, self.config, self.obs_path)
        self.features = pin(obs, self.spec.features)
        blocks = feature_blocks(obs, self.features)
        self.observed = np.concatenate([b[0] for b in blocks])
        self.labels = [label for b in blocks for label in b[1]]
        self.local = None  # per unknown, the indices of the features it is updated from (None: all)
        if self.method["localise"] == "regions":
            owners = [p.region for p in self.spec.parameters]
            self.local = eki.localisation(owners, value_regions(obs, self.features))
        bad = [label for label, v in zip(self.labels, self.observed) if not np.isfinite(v)]
        if bad:
            raise StoreError(self.obs_path, f"observed features that are not finite numbers: {bad[:10]}")
        sd = []
        for feature, (values, _) in zip(self.features, blocks):
            scale = np.abs(values) if feature["relative"] else np.ones_like(values)
            sd.append(feature["noise"] * np.maximum(scale, 1e-12))
        self.sd = np.concatenate(sd)
        self.gamma = self.sd**2  # the data's error: a variance per feature, or a covariance (replicates)
        self.replicates = None  # (R, features) of the runs at the priors' medians, once run
        self.shrinkage = None  # the intensity that shrank their covariance
        self.out = Path(out)
        self.log = log
        self.parameters_file = Path(parameters).resolve()
        self.inputs = json.dumps(
            {
                "config": str(self.config_file),
                "config_hash": self.config.hash(),
                "set": self.overrides,
                "observations": str(self.obs_path),
                "parameters": hashlib.sha256(self.parameters_file.read_bytes()).hexdigest()[:16],
                "method": self.method,
            },
            sort_keys=True,
        )

    # -- the loop ----------------------------------------------------------------------------------

    def run(self, runner, overwrite, resume):
        theta, g, steps = self._start(overwrite, resume)
        j, k_max = self.method["members"], self.method["iterations"]
        names = self.spec.names
        self.log(
            f"fit: {len(names)} parameters, {len(self.labels)} features, {j} members, at most {k_max} "
            f"iterations ({k_max + 1} ensembles), members on {runner.description}"
        )
        started, batch_s = time.monotonic(), []
        with StopSignals(STOP_SIGNALS, interrupt=True) as stop:
            try:
                if self.spec.representation is not None and self.replicates is None:
                    self._replicate(runner)
                    self._write(theta, g, steps, "running", runner, started)
                    stop.check(FitStopped, self.out, 0)
                while not (g and self._final(len(g) - 1, steps)):
                    k = len(g)
                    if k == 0:
                        theta = [self._first()]
                    elif len(theta) == k:
                        theta.append(self._next(theta, g, steps))
                    begun = time.monotonic()
                    g.append(
                        np.array(runner.map(run_member, self._tasks(theta[k], self._seeds(k))), dtype=float)
                    )
                    batch_s.append(time.monotonic() - begun)
                    t = float(np.sum(steps[:k]))
                    final = self._final(k, steps)
                    steps.append(np.nan if final else self._step(g[k], t, last=k + 1 >= k_max))
                    self._write(theta, g, steps, "complete" if final else "running", runner, started)
                    self._progress(k, k_max, theta[k], g[k], t, batch_s, final)
                    stop.check(FitStopped, self.out, len(g))
            except (KeyboardInterrupt, MemberFailure) as e:
                name = stop.received or interrupt_name(e)
                if name is None:
                    raise
                n = len(g)
                self._write(theta[:n], g, steps[:n], "interrupted", runner, started)
                raise FitStopped(name, self.out, n) from None
        return self._finish(theta, g, steps, runner, started)

    def _replicate(self, runner):
        """Run the representation's replicates at the priors' medians (one batch) and set Γ from them."""
        r = self.spec.representation["replicates"]
        self.log(f"fit: {r} replicate runs at the priors' medians (the features' covariance between "
                 "network realisations)")  # fmt: skip
        median = np.array([p.median for p in self.spec.parameters], dtype=float)
        x = runner.map(run_member, self._tasks(np.tile(median, (r, 1)), self._replicate_seeds()))
        self._use_replicates(np.array(x, dtype=float).reshape(r, len(self.labels)))

    def _replicate_seeds(self):
        r = self.spec.representation["replicates"]
        return [int(np.random.SeedSequence([self.method["seed"], 3, i]).generate_state(1)[0] % 2**31)
                for i in range(r)]  # fmt: skip

    def _use_replicates(self, x):
        """Γ = the replicates' (x: replicate × feature) covariance shrunk towards its diagonal +
        diag(noise²); replicates whose run blew up are left out."""
        ok = np.isfinite(x).all(axis=1)
        if ok.sum() < 3:
            raise BrainsimError(
                f"fit: {int((~ok).sum())} of {x.shape[0]} replicate runs at the priors' medians failed "
                "(their runs blew up): fewer than 3 left to estimate the features' covariance"
            )
        covariance, self.shrinkage = eki.shrunk_covariance(x[ok], self.spec.representation["shrinkage"])
        self.replicates = x
        self.gamma = covariance + np.diag(self.sd**2)
        spread = np.sqrt(np.diag(covariance))
        self.log(f"fit: replicates' sd {spread.min():.3g}-{spread.max():.3g} per feature (noise "
                 f"{self.sd.min():.3g}-{self.sd.max():.3g}), shrinkage {self.shrinkage:.3g}")  # fmt: skip

    def _final(self, k, steps):
        """Whether ensemble k is the last: the iterations are spent or (eki) the steps before it sum to 1."""
        if self.method["kind"] == "cmaes":
            return k >= self.method["iterations"]
        return k >= self.method["iterations"] or float(np.sum(steps[:k])) >= 1.0 - 1e-9

    def _first(self):
        """The first ensemble: draws of the prior (eki), the search's first generation (cmaes)."""
        if self.method["kind"] == "cmaes":
            return self._search().generation([], [], self.observed, self.gamma)
        rng = np.random.default_rng([self.method["seed"], 0])
        return np.stack([p.sample(rng, self.method["members"]) for p in self.spec.parameters], axis=1)

    def _search(self):
        if self.search is None:
            self.search = cma.Search(self.spec.parameters, self.method["members"], self.method["seed"])
        return self.search

    def _step(self, g, t, last):
        if self.method["kind"] == "cmaes":
            return np.nan
        ok = np.isfinite(g).all(axis=1)
        return eki.step_size(g[ok], self.observed, self.gamma, t, last=last)

    def _next(self, thetas, gs, steps):
        """The ensemble after those evaluated (thetas, gs, steps: lists per ensemble)."""
        if self.method["kind"] == "cmaes":
            return self._search().generation(thetas, gs, self.observed, self.gamma)
        k = len(gs) - 1
        theta, g, step = thetas[k], gs[k], steps[k]
        ok = np.isfinite(g).all(axis=1)
        if ok.sum() < max(2, theta.shape[0] // 2):
            raise BrainsimError(
                f"fit: {int((~ok).sum())} of {theta.shape[0]} members of ensemble {k} failed (their runs "
                "blew up): narrow the priors or bounds"
            )
        u = np.stack([p.to_u(theta[:, i]) for i, p in enumerate(self.spec.parameters)], axis=1)
        rng = np.random.default_rng([self.method["seed"], 1, k])
        moved = u.copy()
        moved[ok] = eki.update(u[ok], g[ok], self.observed, self.gamma, step, rng, self.local)
        return np.stack([p.to_theta(moved[:, i]) for i, p in enumerate(self.spec.parameters)], axis=1)

    def _seeds(self, k):
        """The simulation seeds of ensemble k's members."""
        return [int(np.random.SeedSequence([self.method["seed"], 2, k, m]).generate_state(1)[0] % 2**31)
                for m in range(self.method["members"])]  # fmt: skip

    def _tasks(self, theta, seeds):
        tasks = []
        overrides = member_overrides(self.features, self.overrides)
        for m, (row, seed) in enumerate(zip(theta, seeds)):
            member = member_config(
                self.spec, self.raw, overrides, self.config.source, row, _member_id(self.config, m)
            )
            data = member.data
            source = None if self.config.source is None else str(Path(self.config.source).resolve())
            tasks.append(MemberTask(data, source, seed, tuple(self.features), len(self.labels)))
        return tasks

    def _progress(self, k, k_max, theta, g, t, batch_s, final):
        misfit = eki.misfit(g, self.observed, self.gamma)
        failed = int((~np.isfinite(misfit)).sum())
        spread = " ".join(f"{n}={s:.3g}" for n, s in zip(self.spec.names, theta.std(axis=0, ddof=1)))
        left = 0 if final else k_max - k
        eta = f", ETA {_duration(left * float(np.mean(batch_s)))}" if left else ""
        if self.method["kind"] == "cmaes":
            last, where = " (last generation)" if final else "", "CMA-ES generation"
        else:
            last, where = " (posterior)" if final else "", f"assimilated {t:.2f}"
        self.log(
            f"fit: ensemble {k}/{k_max}{last}: misfit median {np.median(misfit):.3g}, "
            f"best {misfit.min():.3g} (noise level 1){f', {failed} failed' if failed else ''}; "
            f"{where}; {_duration(batch_s[-1])}{eta}"
        )
        self.log(f"fit:   spread (sd): {spread}")

    # -- FIT_DIR -----------------------------------------------------------------------------------

    def _start(self, overwrite, resume):
        """(theta list, g list, steps list) to start from: empty, or those of the fit being resumed."""
        store = self.out / "fit.zarr"
        if resume:
            if not store.exists():
                raise StoreError(self.out, "no fit to resume here (fit.zarr is missing)")
            ds = open_fit(store)
            if ds.attrs.get("inputs") != self.inputs:
                raise StoreError(
                    store, "was fitted with other inputs (config, --set, observations, fit file or method): "
                    "start a new fit in another folder, or --overwrite it",
                )  # fmt: skip
            theta = list(ds["theta"].values)
            g = list(ds["features"].values)
            steps = [float(x) for x in ds["step"].values]
            if "replicates" in ds:
                self._use_replicates(ds["replicates"].values)
            self.log(f"fit: resuming {self.out}: {len(g)} ensemble(s) evaluated")
            return theta, g, steps
        if self.out.exists() and any(self.out.iterdir()):
            if not overwrite:
                raise StoreError(self.out, "already exists and is not empty; pass --overwrite or --resume")
            if not (self.out / "fit.zarr").exists():
                held = sorted(p.name for p in self.out.iterdir())[:5]
                raise StoreError(self.out, f"is not a fit's folder (it holds {held}): not replaced")
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        return [], [], []

    def _write(self, theta, g, steps, status, runner, started):
        n = len(g)
        seeds = np.array([self._seeds(k) for k in range(n)], dtype=np.int64).reshape(
            n, self.method["members"]
        )
        features = np.array(g, dtype=float).reshape(n, self.method["members"], len(self.labels))
        ds = xr.Dataset(
            {
                "theta": (
                    ("iteration", "member", "parameter"),
                    np.array(theta[:n], dtype=float).reshape(n, self.method["members"], len(self.spec.names)),
                ),
                "features": (("iteration", "member", "feature"), features),
                "misfit": (
                    ("iteration", "member"),
                    np.array([eki.misfit(x, self.observed, self.gamma) for x in features]).reshape(
                        n, self.method["members"]
                    ),
                ),
                "step": (("iteration",), np.array(steps[:n], dtype=float)),
                "seed": (("iteration", "member"), seeds),
                "observed": (("feature",), self.observed),
                "noise": (("feature",), self.sd),
            },  # fmt: skip
            coords={
                "iteration": np.arange(n),
                "member": np.arange(self.method["members"]),
                "parameter": np.array(self.spec.names, dtype=object),
                "feature": np.array(self.labels, dtype=object),
            },
            attrs={
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "brainsim_version": __version__,
                "status": status,
                "inputs": self.inputs,
                "scheduler": runner.description,
                "wall_s": time.monotonic() - started,
            },
        )
        if self.replicates is not None:
            ds["replicates"] = (("replicate", "feature"), self.replicates)
            ds["replicate_seed"] = (("replicate",), np.array(self._replicate_seeds(), dtype=np.int64))
            ds["noise_covariance"] = (("feature", "feature2"), self.gamma)
            ds = ds.assign_coords(feature2=np.array(self.labels, dtype=object))
        staging = self.out / "fit.zarr.writing"
        shutil.rmtree(staging, ignore_errors=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
            ds.to_zarr(staging, mode="w", zarr_format=3, consolidated=True)
        shutil.rmtree(self.out / "fit.zarr", ignore_errors=True)
        staging.rename(self.out / "fit.zarr")

    def _finish(self, theta, g, steps, runner, started):
        last = theta[len(g) - 1]
        posterior = self.out / "posterior"
        shutil.rmtree(posterior, ignore_errors=True)
        posterior.mkdir()
        for m, row in enumerate(last):
            overlay = self.spec.overlay(self.raw.get("patient"), row, _member_id(self.config, m))
            _write_yaml(posterior / f"member-{m:03d}.yaml", overlay, f"posterior member {m} of the fit")
        if self.method["kind"] == "cmaes":
            posterior_of, estimate = cma.estimate(self.spec.parameters, theta[: len(g)], g, self.observed,
                                                  self.gamma)  # fmt: skip
            what = "best member (CMA-ES)"
        else:
            posterior_of, estimate = ensemble_summary(self.spec.names, last), last.mean(axis=0)
            what = "posterior mean"
        _write_yaml(
            self.out / "patient.yaml",
            self.spec.overlay(self.raw.get("patient"), estimate, _patient_id(self.config) + "-fitted"),
            f"the fit's {what}",
        )
        misfits = [eki.misfit(x, self.observed, self.gamma) for x in g]
        record = {
            "config": str(self.config_file),
            "set": self.overrides,
            "observations": str(self.obs_path),
            "parameters_file": str(self.parameters_file),
            "scheduler": runner.description,
            "method": self.method,
            "members": self.method["members"],
            "iterations": len(g) - 1,
            "status": "complete",
            "wall_s": round(time.monotonic() - started, 3),
            "noise_level": 1.0,
            "member_runs": len(g) * self.method["members"]
            + (0 if self.replicates is None else len(self.replicates)),
            "estimate": what,
            "posterior": posterior_of,
            "misfit": [
                {
                    "iteration": k,
                    "median": _number(np.median(m)),
                    "best": _number(m.min()),
                    "step": _number(s),
                }
                for k, (m, s) in enumerate(zip(misfits, steps))
            ],
        }
        if self.replicates is not None:
            record["noise_covariance"] = {
                "replicates": len(self.replicates),
                "used": int(np.isfinite(self.replicates).all(axis=1).sum()),
                "shrinkage": self.shrinkage,
            }
        (self.out / "fit.json").write_text(json.dumps(record, indent=2) + "\n")
        write_fit_report(self.out, log=self.log)
        self.log(f"fit: {what} in {self.out / 'patient.yaml'}; members in {posterior}")
        return record


def _member_id(config, m):
    return f"{_patient_id(config)}-member-{m:03d}"


def _patient_id(config):
    return (config["patient"] or {}).get("id") or config["name"]


def _write_yaml(path, overlay, what):
    path.write_text(
        f"# {what}: a patient overlay (brainsim run CONFIG --patient {path.name})\n"
        + yaml.safe_dump(overlay, sort_keys=False)
    )


def _number(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
