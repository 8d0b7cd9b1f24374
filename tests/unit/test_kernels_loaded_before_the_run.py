"""A run's compiled kernels are loaded (from numba's cache, or compiled) while the simulation is built, so
that its timed part (`run_s`, what the benchmarks compare with NEURON and Arbor) never includes loading
them: the first call of a cached kernel takes milliseconds (M1 ran 62 instead of 47 ms when the event
kernels loaded inside the run). Checked in a new process, where nothing else has called them yet."""

import json
import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "bench" / "random_net.yaml"

BUILD = """
import json, sys
import brainsim
from brainsim.engine.simulation import Simulation
from brainsim.kernels import events
from brainsim.model.recipe import Recipe

kernels = {"pop_due": events.pop_due, "spike_events": events.spike_events, "take_due": events.take_due}
before = {name: len(k.signatures) for name, k in kernels.items()}
Simulation(Recipe(brainsim.load_config(sys.argv[1], ["simulation.method=METHOD"])))
print(json.dumps({"before": before, "after": {name: len(k.signatures) for name, k in kernels.items()}}))
"""


def _signatures(method):
    code = BUILD.replace("METHOD", method)
    cmd = [sys.executable, "-c", code, str(CONFIG)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_event_kernels_are_loaded_while_the_simulation_is_built():
    for method in ("staggered", "petsc"):
        seen = _signatures(method)
        assert set(seen["before"].values()) == {0}, seen  # a new process: nothing loaded yet
        assert all(n >= 1 for n in seen["after"].values()), (method, seen)
