"""Members for the runner tests, importable by worker processes, SLURM jobs and MPI ranks (this folder on
their PYTHONPATH). As a script, under mpiexec, `runner_members.py OUT.npz FUNCTION TASKS_JSON ...` maps
FUNCTION over each list of tasks (one batch each) with the mpi runner and saves the results."""

import json
import sys
from pathlib import Path

import numpy as np

SMALL = Path(__file__).resolve().parents[1] / "data" / "small_brain.yaml"


def spikes(task, context=None):
    """The small brain run for task['tstop'] ms with seed task['seed'] on context (default: this process
    alone): its spikes as rows (gid, time in ms)."""
    from mpi4py import MPI

    import brainsim
    from brainsim.parallel.context import Context

    config = brainsim.load_config(
        SMALL, set={"simulation.tstop": task["tstop"], "simulation.seed": task["seed"], "probes": []}
    )
    sim = brainsim.Simulation(brainsim.Recipe(config), context=context or Context(MPI.COMM_SELF))
    sim.record()
    sim.run()
    out = sim.spikes()
    sim.close()
    return np.column_stack([out.gid.values.astype(np.float64), out.time.values])


def fails(task, context=None):
    """Raises for a task with 'fail' set (under mpi on that rank of the member's group only), else returns
    the task's seed."""
    rank = 0 if context is None else context.rank
    if task.get("fail") and task.get("fail_rank", 0) == rank:
        raise ValueError(f"member with seed {task['seed']} refuses")
    return task["seed"]


def main(out, function, *batches):
    from brainsim.errors import BrainsimError
    from brainsim.twin.runners import make_runner

    fn = globals()[function]
    with make_runner("mpi") as runner:
        if not runner.driver:
            runner.serve()
            return 0
        try:
            results = [runner.map(fn, json.loads(tasks)) for tasks in batches]
        except BrainsimError as e:
            print(f"brainsim: {e}", file=sys.stderr)
            return 1
        arrays = {
            f"batch{b}_member{i}": np.asarray(r) for b, rs in enumerate(results) for i, r in enumerate(rs)
        }
        np.savez(out, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
