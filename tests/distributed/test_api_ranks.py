"""The Python API under mpiexec: a Simulation advanced in pieces, its state set back, and brainsim.run, on
2 ranks give the spikes and store of one rank."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from mpi_runs import MPI_ENV, read, same
from support import ROOT

import brainsim

RING = str(ROOT / "configs/bench/m2_ring.yaml")
SET = {"cells.ring.count": 6, "simulation.tstop": 40}
SCRIPT = f"""
import json, sys
import brainsim
cfg = brainsim.load_config({RING!r}, {SET!r})
sim = brainsim.Simulation(brainsim.Recipe(cfg))
sim.record()
sim.run(until=12.5)
saved = sim.state()
sim.run(until=20.0)
sim.set_state(saved)
sim.run()
store = brainsim.run(cfg, sys.argv[1], progress=False)
if sim.context.is_root:
    spikes = sim.spikes()
    print(json.dumps({{"gid": spikes.gid.values.tolist(), "time": spikes.time.values.tolist(),
                      "ranks": sim.context.size, "status": store.status}}))
"""


def test_pieces_state_and_run_on_two_ranks_match_one(tmp_path):
    mpiexec = shutil.which("mpiexec") or pytest.skip("no mpiexec on PATH")
    done = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, "-c", SCRIPT, str(tmp_path / "two.zarr")],
        cwd=tmp_path,
        env={**os.environ, **MPI_ENV},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    two = json.loads(done.stdout.strip().splitlines()[-1])
    assert two["ranks"] == 2 and two["status"] == "complete"
    cfg = brainsim.load_config(RING, SET)
    one = brainsim.Simulation(brainsim.Recipe(cfg))
    one.record()
    one.run()
    assert len(two["gid"]) >= 6
    assert two["gid"] == one.spikes().gid.values.tolist()
    assert np.array_equal(two["time"], one.spikes().time.values)
    brainsim.run(cfg, tmp_path / "one.zarr", progress=False)
    assert same(read(tmp_path / "one.zarr"), read(tmp_path / "two.zarr"))
