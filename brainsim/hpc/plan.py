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

from ..errors import BrainsimError, ConfigError
from ..files import check_writable, writing
from ..io.run_store import RunStore

DEFAULT_NS = {"staggered": 90.0, "petsc": 370.0}
"""ns per compartment-step of the whole brain on one core where no calibration file says otherwise: the
staggered figure of a slow machine, and the PETSc default's measured ratio to it (4.1x: 51.9-55.0 against
12.7-13.6 ns, AMD EPYC family 26 model 2)."""
BYTES_PER_EQUATION = {"staggered": 111.0, "petsc": 200.0}
"""Peak RSS slope of detailed cells per equation (networks of 16 and 256 L5PCs): the state, the mechanisms'
parameters and accumulators; the implicit path adds x∞, τ and the Jacobian's arrays."""
BYTES_PER_SYNAPSE = 48.0
"""Peak RSS per connection: its target, weight and delay (20 B) and the build's sorting by source (41-48 B
measured by benchmarks/memory.py: the whole brain at scale 4, long-range input on and off)."""
BYTES_PER_CELL = 1200.0
"""Per cell beyond its equations: its Poisson stream's drawn times and generator state, spike detector
and bookkeeping (benchmarks/memory.py: the whole brain's cells of 15 equations cost ~190 B per equation
beyond their synapses, against the detailed cells' 111)."""
BASE_BYTES = 0.25e9  # a process before any cell (numba, petsc4py, zarr; the whole brain's intercept)
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


def plan(config, ranks, cores_per_node=None, target_s=None, recipe=None):
    """Cells, compartments, equations, synapses and memory per rank of config on `ranks` ranks, and the
    expected wall time per simulated second; with target_s (wall seconds for the whole run), the ranks
    and nodes that meet it. recipe: config's Recipe, its checks passed, when one is at hand. Works from
    the populations' counts (nothing is allocated per cell). Returns a dict."""
    from ..model.checks import check_model
    from ..model.recipe import Recipe
    from ..parallel.partition import Decomposition, Runs, cost_runs

    if recipe is None:
        recipe = Recipe(config)
        check_model(recipe)
    per_cell = {
        "compartments": lambda p: recipe.cell_type(p.name).geometry.n_compartments,
        "equations": lambda p: recipe.cell_type(p.name).n_equations,
        "synapses": recipe.expected_indegree,
    }
    runs = {
        k: Runs.per_population(recipe, f, np.int64 if k != "synapses" else float) for k, f in per_cell.items()
    }
    bounds = Decomposition.balanced(cost_runs(recipe), ranks).bounds
    per_rank = {k: v.sums(bounds).astype(float) for k, v in runs.items()}
    totals = {k: v.sums([0, recipe.num_cells])[0] for k, v in runs.items()}
    method = config["simulation"]["method"]
    per_equation = BYTES_PER_EQUATION[method]
    per_rank["cells"] = np.diff(np.asarray(bounds, dtype=float))
    memory = BASE_BYTES + _bytes(per_equation, per_rank["equations"], per_rank["synapses"], per_rank["cells"])
    cell_bytes = [
        (_bytes(per_equation, per_cell["equations"](p), per_cell["synapses"](p), 1), p.name)
        for p in recipe.populations
        if p.count
    ]
    largest_cell = max(cell_bytes, default=(0.0, None))
    cells_bytes = _bytes(per_equation, totals["equations"], totals["synapses"], recipe.num_cells)
    ns, source = cost_ns(method)
    steps_per_s = 1000.0 / config["simulation"]["dt"]
    wall_per_s = per_rank["compartments"].max() * steps_per_s * ns * 1e-9 * EXCHANGE_OVERHEAD
    tstop_s = (config["simulation"]["tstop"] + config["simulation"]["warmup"]) * 1e-3  # both are simulated
    out = {
        "cells": recipe.num_cells,
        "compartments": int(totals["compartments"]),
        "equations": int(totals["equations"]),
        "synapses": int(totals["synapses"]),
        "ranks": ranks,
        "memory_per_rank_gb": (float(memory.min()) / 1e9, float(memory.max()) / 1e9),
        "largest_cell": (largest_cell[1], (BASE_BYTES + largest_cell[0]) / 1e9),  # (population, GB alone)
        "cells_memory_gb": cells_bytes / 1e9,  # every cell's, without the processes' own
        "method": method,
        "ns_per_compartment_step": ns,
        "cost_source": source,
        "wall_s_per_simulated_s": wall_per_s,
        "wall_s": wall_per_s * tstop_s,
    }
    if target_s is not None:
        total = totals["compartments"] * steps_per_s * tstop_s * ns * 1e-9 * EXCHANGE_OVERHEAD
        need = max(1, math.ceil(total / target_s))
        cap = max(1, recipe.num_cells)  # a rank needs a cell at least
        out["recommended_ranks"] = min(need, cap)
        if cores_per_node:
            out["recommended_nodes"] = math.ceil(out["recommended_ranks"] / cores_per_node)
            out["recommended_ntasks_per_node"] = min(cores_per_node, out["recommended_ranks"])
    return out


def _bytes(per_equation, equations, synapses, cells):
    """Memory of cells (bytes) beyond the process's own: their equations, synapses and per-cell part."""
    return per_equation * equations + BYTES_PER_SYNAPSE * synapses + BYTES_PER_CELL * cells


def memory_bound(memory_per_rank_gb=None, profile=None):
    """(GB one rank may use, where the figure comes from): memory_per_rank_gb, else a site profile's
    memory_per_node_gb / cores_per_node (a rank per core), else the memory of this machine."""
    if memory_per_rank_gb is not None:
        return memory_per_rank_gb, "--memory-per-rank"
    if profile is not None and profile["memory_per_node_gb"] and profile["cores_per_node"]:
        per_rank = profile["memory_per_node_gb"] / profile["cores_per_node"]
        return per_rank, f"profile {profile['name']}: memory_per_node_gb / cores_per_node"
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return machine, f"the memory of this machine, {platform.node()}; --memory-per-rank or --profile set it"


def gb(x):
    """A memory figure in GB, e.g. 0.203, 25.3, 11,547."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def ranks_needed(p, per_rank_gb):
    """About the fewest ranks of per_rank_gb each that the cells of plan p fit in (None if no number)."""
    spare = per_rank_gb - BASE_BYTES / 1e9  # what a rank holds besides the process itself
    return max(1, math.ceil(p["cells_memory_gb"] / spare)) if spare > 0 else None


def check_memory(p, recipe, bound, ranks_given):
    """Refuse (ConfigError) a plan p of recipe with a cell that no rank of `bound` = (GB, source) can hold
    or, when the rank count was given, a rank that needs more than the bound, with the figures."""
    limit, source = bound
    name, cell_gb = p["largest_cell"]
    if name is not None and cell_gb > limit:
        pop = recipe.population(name)
        path = f"cells[{pop.index}]" if pop.index >= 0 else f"brain.cell_types.{pop.cell_type}"
        raise ConfigError(
            path,
            name,
            f"cells that fit in one rank of {gb(limit)} GB ({source})",
            detail=f"a rank holding one cell of '{name}' alone needs {gb(cell_gb)} GB",
        )
    high = p["memory_per_rank_gb"][1]
    if ranks_given and high > limit:
        need = ranks_needed(p, limit)
        raise ConfigError(
            "--ranks",
            p["ranks"],
            f"ranks that each need at most {gb(limit)} GB ({source}): "
            + (f"about {need:,} or more" if need else "no number of them"),
            detail=f"on {p['ranks']:,} ranks the largest needs {gb(high)} GB",
        )


def calibrate(config_path, overrides=(), tstop=5.0, out=None, log=print):
    """Measure ns per compartment-step of each method on this machine (one rank, config at config_path
    for tstop ms), write them to the calibration file (or out) and return the table."""
    path = Path(out) if out else calibration_file()
    check_writable(path, "the calibration file")
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
                "--set",
                "simulation.warmup=0",  # the timing covers the recorded steps only
            ]
            for item in overrides:
                command += ["--set", item]
            log(f"calibrate: {method} on {config_path} ({tstop:g} ms)")
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                why = done.stderr.strip()[-2000:].removeprefix("brainsim: ")
                raise BrainsimError(f"the calibration run of {config_path} ({method}) failed: {why}")
            table[method] = RunStore.open(store).timing["ns_per_compartment_step"]
    record = {
        "host": platform.node(),
        "machine": platform.processor() or platform.machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": str(config_path),
        "ns_per_compartment_step": table,
    }
    with writing(path, "the calibration file"):
        path.write_text(json.dumps(record, indent=2))
    log(f"calibrate: written {path}")
    return record
