"""What a run needs before it is submitted, from the model and the measured per-compartment-step cost.

The cost per compartment-step comes from `brainsim calibrate` on the target machine (a JSON file,
$BRAINSIM_CALIBRATION or ~/.config/brainsim/calibration.json); without one, DEFAULT_NS, measured on the
default whole brain on one core of a Zen-3-class machine."""

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..io.run_store import RunStore

DEFAULT_NS = {"staggered": 90.0, "petsc": 2200.0}  # ns per compartment-step, whole brain, one core
BYTES_PER_EQUATION = 135.0  # peak RSS slope of detailed cells (state, gates, Jacobian work arrays)
BYTES_PER_SYNAPSE = 64.0  # connection weight, delay, source and queued events
BASE_BYTES = 0.2e9  # a process before any cell (numba, petsc4py, zarr)
EXCHANGE_OVERHEAD = 1.05  # spike exchange and load imbalance not in the cost model (measured 2-5 %)


def calibration_file():
    return Path(os.environ.get("BRAINSIM_CALIBRATION", Path.home() / ".config/brainsim/calibration.json"))


def cost_ns(method):
    """(ns per compartment-step of method, where it came from)."""
    path = calibration_file()
    if path.is_file():
        table = json.loads(path.read_text())
        if method in table.get("ns_per_compartment_step", {}):
            return table["ns_per_compartment_step"][method], f"calibrated on {table['host']} ({path})"
    return DEFAULT_NS[method], "default (brainsim calibrate measures this machine)"


def plan(config, ranks, cores_per_node=None, target_s=None):
    """Cells, compartments, equations, synapses and memory per rank of config on `ranks` ranks, and the
    expected wall time per simulated second; with target_s (wall seconds for the whole run), the ranks
    and nodes that meet it. Returns a dict."""
    from ..model.checks import check_model
    from ..model.recipe import Recipe
    from ..parallel.partition import Decomposition, cell_costs

    recipe = Recipe(config)
    check_model(recipe)
    per_cell = {}
    for pop in recipe.populations:
        cell = recipe.cell_type(pop.name)
        per_cell[pop.name] = (cell.geometry.n_compartments, cell.n_equations, recipe.expected_indegree(pop))
    arrays = {
        k: np.concatenate([np.full(p.count, per_cell[p.name][i], dtype=float) for p in recipe.populations])
        for i, k in enumerate(("compartments", "equations", "synapses"))
    }
    decomposition = Decomposition.balanced(cell_costs(recipe), ranks)
    bounds = decomposition.bounds
    per_rank = {k: np.add.reduceat(v, bounds[:-1]) if v.size else np.zeros(ranks) for k, v in arrays.items()}
    empty = np.diff(bounds) == 0
    for v in per_rank.values():
        v[empty] = 0.0
    memory = (
        BASE_BYTES + BYTES_PER_EQUATION * per_rank["equations"] + BYTES_PER_SYNAPSE * per_rank["synapses"]
    )
    method = config["simulation"]["method"]
    ns, source = cost_ns(method)
    steps_per_s = 1000.0 / config["simulation"]["dt"]
    wall_per_s = per_rank["compartments"].max() * steps_per_s * ns * 1e-9 * EXCHANGE_OVERHEAD
    tstop_s = config["simulation"]["tstop"] * 1e-3
    out = {
        "cells": recipe.num_cells,
        "compartments": int(arrays["compartments"].sum()),
        "equations": int(arrays["equations"].sum()),
        "synapses": int(arrays["synapses"].sum()),
        "ranks": ranks,
        "memory_per_rank_gb": (float(memory.min()) / 1e9, float(memory.max()) / 1e9),
        "method": method,
        "ns_per_compartment_step": ns,
        "cost_source": source,
        "wall_s_per_simulated_s": wall_per_s,
        "wall_s": wall_per_s * tstop_s,
    }
    if target_s is not None:
        total = arrays["compartments"].sum() * steps_per_s * tstop_s * ns * 1e-9 * EXCHANGE_OVERHEAD
        need = max(1, math.ceil(total / target_s))
        cap = max(1, recipe.num_cells)  # a rank needs a cell at least
        out["recommended_ranks"] = min(need, cap)
        if cores_per_node:
            out["recommended_nodes"] = math.ceil(out["recommended_ranks"] / cores_per_node)
            out["recommended_ntasks_per_node"] = min(cores_per_node, out["recommended_ranks"])
    return out


def calibrate(config_path, overrides=(), tstop=5.0, out=None, log=print):
    """Measure ns per compartment-step of each method on this machine (one rank, config at config_path
    for tstop ms), write them to the calibration file (or out) and return the table."""
    table = {}
    with tempfile.TemporaryDirectory() as folder:
        for method in DEFAULT_NS:
            store = Path(folder) / f"{method}.zarr"
            command = [sys.executable, "-m", "brainsim.cli", "run", str(config_path), "-q", "-o", str(store)]
            command += [
                "--overwrite",
                "--set",
                f"simulation.method={method}",
                "--set",
                f"simulation.tstop={tstop}",
            ]
            for item in overrides:
                command += ["--set", item]
            log(f"calibrate: {method} on {config_path} ({tstop:g} ms)")
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"calibration run failed: {done.stderr.strip()[-2000:]}")
            table[method] = RunStore.open(store).timing["ns_per_compartment_step"]
    record = {
        "host": platform.node(),
        "machine": platform.processor() or platform.machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": str(config_path),
        "ns_per_compartment_step": table,
    }
    path = Path(out) if out else calibration_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    log(f"calibrate: written {path}")
    return record
