"""Test helpers: run a config in this process and read its output back; open HTML reports in Chromium."""

import copy
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "reference"
CHROMIUM_TIMEOUT_S = 30


def simulate(config, overrides=(), output=None, patient=None, interventions=()):
    """Run a config file (path relative to the repository) in this process, with optional patient and
    intervention overlay files; returns (the store opened for reading, its path)."""
    import brainsim

    cfg = brainsim.load_config(ROOT / config, list(overrides), patient=patient, interventions=interventions)
    store = brainsim.run(cfg, output, overwrite=True, progress=False)
    return store, store.path


TINY = {
    "name": "tiny",
    "simulation": {"tstop": 1.0, "dt": 0.025, "method": "petsc"},
    "cells": [
        {
            "name": "c",
            "count": 1,
            "morphology": {"kind": "cylinder", "length": 20, "diameter": 20},
            "discretization": {"per_branch": 1},
            "regions": {"all": {"mechanisms": {"hh": {}}}},
        }
    ],
    "output": {"path": "out/tiny.zarr", "overwrite": True},
}
"""A one-compartment HH cell for 1 ms: the smallest config that runs."""


def edited(raw, **edits):
    """A deep copy of the config mapping raw with dotted edits, e.g. edited(raw, **{"simulation.tstop": -1})
    (list items by index: "cells.0.count")."""
    raw = copy.deepcopy(raw)
    for key, value in edits.items():
        *parents, last = [int(k) if k.isdigit() else k for k in key.split(".")]
        node = raw
        for k in parents:
            node = node[k]
        node[last] = value
    return raw


def checked(config):
    """The Recipe of a config, after every model-level check (what `brainsim validate` runs)."""
    from brainsim.model.checks import check_model
    from brainsim.model.recipe import Recipe

    recipe = Recipe(config)
    check_model(recipe)
    return recipe


def spikes(store):
    ds = xr.open_zarr(store, group="spikes")
    return ds.gid.values, ds.time.values


def trace(store, name):
    ds = xr.open_zarr(store, group=f"traces/{name}")
    var = next(iter(ds.data_vars))
    return ds.time.values, ds[var].values.astype(float), ds


def crossings(t, v, threshold):
    """Upward threshold crossings of a sampled trace, linearly interpolated (how MODELS.md compares)."""
    i = np.nonzero((v[:-1] < threshold) & (v[1:] >= threshold))[0]
    return t[i] + (threshold - v[i]) * (t[i + 1] - t[i]) / (v[i + 1] - v[i])


def chromium():
    """The headless browser that checks HTML reports (skips the test where there is none)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("no chromium or chromium-browser on PATH (setup.sh installs Debian's chromium)")
    return binary


def run_chromium(tmp_path, *args):
    """Headless Chromium with its profile in tmp_path and the arguments args; the finished process."""
    command = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=True)
