"""Test helpers: run a config in this process and read its output back; open HTML reports in Chromium."""

import copy
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "reference"
CHROMIUM_TIMEOUT_S = 300
"""A guard against a hung browser, not a measure of speed: a loaded machine starts Chromium slowly."""
L5PC = Path(os.environ.get("BRAINSIM_L5PC") or ROOT.parent / "shared" / "reference" / "l5pc")
"""Blue Brain's L5PC reference folder (read there, never copied; $BRAINSIM_L5PC elsewhere)."""
L5PC_BUILT_IN = {
    "NaTa_t": "nata", "NaTs2_t": "nats", "Nap_Et2": "nap", "SKv3_1": "kv31", "K_Pst": "kp", "K_Tst": "kt",
    "Im": "im", "Ih": "ih", "Ca_HVA": "cahva", "Ca_LVAst": "calva", "SK_E2": "sk", "CaDynamics_E2": "cadyn",
}  # fmt: skip
"""Each L5PC .mod file's mechanism -> the built-in mechanism written from it."""


HH_MOD = """
TITLE a Hodgkin-Huxley channel set written for the tests
NEURON {
    SUFFIX hhx
    USEION na READ ena WRITE ina
    USEION k READ ek WRITE ik
    NONSPECIFIC_CURRENT il
    RANGE gnabar, gkbar, gl, el
}
PARAMETER {
    gnabar = 0.12 (S/cm2)
    gkbar = 0.036 (S/cm2)
    gl = 0.0003 (S/cm2)
    el = -54.3 (mV)
}
STATE { m h n }
ASSIGNED { v (mV) celsius (degC) ena (mV) ek (mV) ina (mA/cm2) ik (mA/cm2) il (mA/cm2)
           minf hinf ninf mtau (ms) htau (ms) ntau (ms) }
BREAKPOINT {
    SOLVE states METHOD cnexp
    ina = gnabar*m*m*m*h*(v - ena)
    ik = gkbar*n^4*(v - ek)
    il = gl*(v - el)
}
INITIAL {
    rates(v)
    m = minf
    h = hinf
    n = ninf
}
DERIVATIVE states {
    rates(v)
    m' = (minf - m)/mtau
    h' = (hinf - h)/htau
    n' = (ninf - n)/ntau
}
PROCEDURE rates(v (mV)) { LOCAL alpha, beta, sum, q10
    TABLE minf, mtau FROM -100 TO 100 WITH 200
    q10 = 3^((celsius - 6.3)/10)
    alpha = .1 * vtrap(-(v + 40), 10)
    beta = 4 * exp(-(v + 65)/18)
    sum = alpha + beta
    mtau = 1/(q10*sum)
    minf = alpha/sum
    alpha = .07 * exp(-(v + 65)/20)
    beta = 1 / (exp(-(v + 35)/10) + 1)
    sum = alpha + beta
    htau = 1/(q10*sum)
    hinf = alpha/sum
    alpha = .01*vtrap(-(v + 55), 10)
    beta = .125*exp(-(v + 65)/80)
    sum = alpha + beta
    ntau = 1/(q10*sum)
    ninf = alpha/sum
}
FUNCTION vtrap(x, y) {
    if (fabs(x/y) < 1e-6) {
        vtrap = y*(1 - x/y/2)
    } else {
        vtrap = x/(exp(x/y) - 1)
    }
}
"""
"""A Hodgkin-Huxley channel set as a .mod file (NEURON's hh.mod rewritten for the tests: the built-in
`hh`'s equations and parameter names), SUFFIX hhx."""


EXP2SYN_MOD = """
TITLE a double-exponential synapse written for the tests (NEURON's Exp2Syn rewritten)
NEURON {
    POINT_PROCESS e2mod
    RANGE tau1, tau2, e, i
    NONSPECIFIC_CURRENT i
}
UNITS { (nA) = (nanoamp) (mV) = (millivolt) (uS) = (microsiemens) }
PARAMETER {
    tau1 = 0.5 (ms)
    tau2 = 2.0 (ms)
    e = 0 (mV)
}
ASSIGNED { v (mV) i (nA) g (uS) factor }
STATE { A (uS) B (uS) }
INITIAL { LOCAL tp
    if (tau1/tau2 > 0.9999) {
        tau1 = 0.9999*tau2
    }
    A = 0
    B = 0
    tp = (tau1*tau2)/(tau2 - tau1) * log(tau2/tau1)
    factor = -exp(-tp/tau1) + exp(-tp/tau2)
    factor = 1/factor
}
BREAKPOINT {
    SOLVE state METHOD cnexp
    g = B - A
    i = g*(v - e)
}
DERIVATIVE state {
    A' = -A/tau1
    B' = -B/tau2
}
NET_RECEIVE(weight (uS)) {
    A = A + weight*factor
    B = B + weight*factor
}
"""
"""A double-exponential conductance synapse as a .mod file (the built-in `exp2syn`'s equations and
parameter names), POINT_PROCESS e2mod."""


def assert_one_error_line(captured, message):
    """A command's output (pytest's capsys.readouterr()) is one `brainsim: ` line on stderr naming
    message, with no traceback and nothing on stdout."""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("brainsim: ") and message in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


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
