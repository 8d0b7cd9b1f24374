"""A fit stopped by a signal between batches keeps every ensemble evaluated and, resumed with --resume,
ends exactly where the uninterrupted fit ends (same seeds), for ensemble Kalman inversion and CMA-ES; a
resume with other inputs is refused. CMA-ES reports its best member as the estimate."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from brainsim.cli import EXIT_CHECKPOINTED
from brainsim.errors import StoreError
from brainsim.twin import eki
from brainsim.twin.fit import fit
from brainsim.twin.observe import observe

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "tests/data/small_brain.yaml"
LABELS = ["lh-precentral", "lh-postcentral", "lh-superiorfrontal", "rh-precentral", "rh-postcentral",
          "rh-superiorfrontal"]  # fmt: skip
SET = ["simulation.tstop=100"]


def _fit_file(kind):
    return f"""
parameters:
  - name: drive
    key: patient.background.{{region}}.pyr
    regions: [lh-precentral, rh-precentral]
    prior: {{kind: lognormal, median: 1.0, sigma: 0.1}}
    bounds: [0.6, 1.6]
    as: factor
features:
  - {{variable: mean_rate, transform: log, window: [0, 100], noise: 0.1}}
method: {{kind: {kind}, members: 4, iterations: 2, seed: 5}}
"""


@pytest.fixture(scope="module")
def observations(tmp_path_factory):
    folder = tmp_path_factory.mktemp("obs")
    rates = np.random.default_rng(3).gamma(4.0, 2.0, size=(200, len(LABELS)))
    table = folder / "rates.tsv"
    np.savetxt(table, rates, delimiter="\t", header="\t".join(LABELS), comments="", fmt="%.6g")
    return observe([table], folder / "obs.zarr", connectome=str(SMALL), kind="rate", log=_quiet)


def _quiet(line):
    pass


def _arrays(out):
    ds = xr.open_zarr(out / "fit.zarr")
    return ds.attrs["status"], {name: ds[name].values for name in ("theta", "features", "misfit", "seed")}


def _command(observations, parameters, out, *extra):
    return [sys.executable, "-m", "brainsim.cli", "fit", str(SMALL), "--observations", str(observations),
            "--parameters", str(parameters), "--set", SET[0], "-o", str(out), *extra]  # fmt: skip


@pytest.mark.parametrize("kind", ["eki", "cmaes"])
def test_a_fit_stopped_by_sigterm_resumes_to_the_uninterrupted_result(kind, observations, tmp_path):
    parameters = tmp_path / "fit.yaml"
    parameters.write_text(_fit_file(kind))
    fit(SMALL, observations, parameters, tmp_path / "whole", overrides=SET, log=_quiet)
    status, whole = _arrays(tmp_path / "whole")
    assert status == "complete" and whole["theta"].shape == (3, 4, 2)

    out = tmp_path / "stopped"
    process = subprocess.Popen(
        _command(observations, parameters, out), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    seen = []
    for line in process.stderr:  # the first ensemble is written before its progress line
        seen.append(line)
        if line.startswith("fit: ensemble 0/"):
            process.send_signal(signal.SIGTERM)
            break
    rest = process.stderr.read()
    assert process.wait(timeout=600) == EXIT_CHECKPOINTED, "".join(seen) + rest
    assert "fit stopped by SIGTERM" in rest and "--resume" in rest
    status, stopped = _arrays(out)
    assert status == "interrupted" and 1 <= stopped["theta"].shape[0] < 3
    for name, values in stopped.items():  # what was kept is the uninterrupted fit's beginning
        np.testing.assert_array_equal(values, whole[name][: values.shape[0]], err_msg=name)

    done = subprocess.run(_command(observations, parameters, out, "--resume"), capture_output=True, text=True,
                          cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming {out}: {stopped['theta'].shape[0]} ensemble(s) evaluated" in done.stderr
    status, resumed = _arrays(out)
    assert status == "complete"
    for name in whole:
        np.testing.assert_array_equal(resumed[name], whole[name], err_msg=name)
    record = json.loads((out / "fit.json").read_text())
    assert record == {**json.loads((tmp_path / "whole" / "fit.json").read_text()), "wall_s": record["wall_s"],
                      "scheduler": record["scheduler"]}  # fmt: skip

    parameters.write_text(_fit_file(kind).replace("noise: 0.1", "noise: 0.2"))
    with pytest.raises(StoreError, match="other inputs"):
        fit(SMALL, observations, parameters, out, overrides=SET, resume=True, log=_quiet)


def test_cmaes_reports_its_best_member(observations, tmp_path):
    parameters = tmp_path / "fit.yaml"
    parameters.write_text(_fit_file("cmaes"))
    record = fit(SMALL, observations, parameters, tmp_path / "fit", overrides=SET, log=_quiet)
    ds = xr.open_zarr(tmp_path / "fit" / "fit.zarr")
    misfit = ds["misfit"].values
    best = np.unravel_index(np.argmin(misfit), misfit.shape)
    assert record["estimate"] == "best member (CMA-ES)" and record["member_runs"] == 12
    assert np.isnan(ds["step"].values).all()
    for i, name in enumerate(ds["parameter"].values):
        p = record["posterior"][name]
        assert p["mean"] == ds["theta"].values[best][i]
        assert p["q2.5"] < p["mean"] < p["q97.5"] and p["sd"] > 0
    # the generations differ: the search moved after each
    assert not np.array_equal(ds["theta"].values[0], ds["theta"].values[1])


def test_a_fit_stopped_after_its_replicates_resumes_without_rerunning_them(observations, tmp_path):
    """With a representation the replicates run once, before the first ensemble: Γ is their shrunk
    covariance plus diag(noise²), stored with them, and a resumed fit takes them from fit.zarr."""
    parameters = tmp_path / "fit.yaml"
    parameters.write_text(_fit_file("eki") + "representation: {replicates: 5}\n")
    record = fit(SMALL, observations, parameters, tmp_path / "whole", overrides=SET, log=_quiet)
    whole = xr.open_zarr(tmp_path / "whole" / "fit.zarr").load()
    assert whole["replicates"].shape == (5, len(LABELS)) and record["member_runs"] == 3 * 4 + 5
    shrunk, lam = eki.shrunk_covariance(whole["replicates"].values)
    np.testing.assert_allclose(whole["noise_covariance"].values, shrunk + np.diag(whole["noise"].values ** 2))
    assert record["noise_covariance"] == {"replicates": 5, "used": 5, "shrinkage": lam}
    misfit = eki.misfit(
        whole["features"].values[0], whole["observed"].values, whole["noise_covariance"].values
    )
    np.testing.assert_array_equal(whole["misfit"].values[0], misfit)
    # distinct seeds: the replicates differ from each other and from the members
    seeds = whole["replicate_seed"].values
    assert len(set(seeds)) == 5 and not set(seeds) & set(whole["seed"].values.ravel())
    assert np.ptp(whole["replicates"].values, axis=0).min() > 0

    out = tmp_path / "stopped"
    process = subprocess.Popen(
        _command(observations, parameters, out), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith("fit: replicates' sd"):
            process.send_signal(signal.SIGTERM)
            break
    rest = process.stderr.read()
    assert process.wait(timeout=600) == EXIT_CHECKPOINTED, "".join(seen) + rest
    stopped = xr.open_zarr(out / "fit.zarr").load()
    assert stopped.attrs["status"] == "interrupted" and stopped["theta"].shape[0] < 3
    np.testing.assert_array_equal(stopped["replicates"].values, whole["replicates"].values)

    done = subprocess.run(_command(observations, parameters, out, "--resume"), capture_output=True, text=True,
                          cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicate runs" not in done.stderr
    resumed = xr.open_zarr(out / "fit.zarr").load()
    for name in ("theta", "features", "misfit", "seed", "replicates", "noise_covariance"):
        np.testing.assert_array_equal(resumed[name].values, whole[name].values, err_msg=name)
    assert json.loads((out / "fit.json").read_text())["member_runs"] == record["member_runs"]
