"""Ensemble runners: the members of one iteration of a fit as one batch, on the scheduler the user names.

    with make_runner("dask", workers=4) as runner:
        if not runner.driver:            # --scheduler mpi: every rank but 0 serves batches until stopped
            runner.serve()
        else:
            features = runner.map(run_member, tasks)     # one result per task, in the order of tasks

Schedulers (`--scheduler`):

* ``local``: in this process, one member after another.
* ``threads``: refused. A Simulation is not safe in threads of one process: PETSc is built without
  thread safety here (Debian's, like most sites'), its options database is one per process, and every
  member sets up its integrator through it (engine/integrators.py make_integrator), so members building
  at the same time read each other's method options (two threads building members of different
  ``ts_type`` got each other's, or had theirs refused as unread). The numba kernels release the GIL and
  mpi4py provides MPI_THREAD_MULTIPLE; PETSc is what forbids it. Worker processes (``dask``) are the
  parallel choice.
* ``dask``: a dask.distributed LocalCluster of worker processes of one thread each (``workers``, default
  one per core).
* ``tcp://host:port``: a running Dask scheduler and its workers. A worker process runs one member at a
  time whatever its thread count (start workers with ``--nthreads 1``, as many as cores).
* ``slurm``: Dask workers submitted as SLURM jobs through dask-jobqueue (``workers`` jobs, default 2), with
  the partition, account, modules, setup lines, python and #SBATCH lines of a site profile
  (slurm/profiles), when one is named, over the site's jobqueue.slurm Dask configuration.
* ``slurm-array``: one SLURM job array per batch (slurm/templates/members.sbatch, the site profile's
  lines), at most ``workers`` tasks at once; each task runs one member from the task file written under
  the work folder and writes its result file there; every result is checked before it is used.
* ``mpi``: the ranks of MPI_COMM_WORLD (``mpiexec -n N``) split into groups, as many as members (at most
  N, at most ``workers``); each group runs its share of the members on its own communicator, so a
  member may span several ranks (N > members) and a group may run several members (N < members). Rank 0
  drives; the others serve batches until it stops them.

`fn` is a top-level (picklable) function of one task, called as fn(task), under ``mpi`` as
fn(task, context=Context(group communicator)). A member that raises stops the batch: MemberFailure names
the member's index, the scheduler (and where it ran) and the member's error.
"""

import io
import os
import pickle
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
import time as clock
import traceback
from contextlib import ExitStack
from pathlib import Path

from ..errors import BrainsimError, ConfigError
from ..files import writing
from ..hpc.jobs import render, sbatch, script_values, seconds
from ..hpc.profiles import load_profile
from ..hpc.status import slurm_state
from ..parallel.context import Context, init_petsc

SCHEDULERS = ("local", "threads", "dask", "slurm", "slurm-array", "mpi")

THREADS_REFUSED = (
    "a Simulation is not thread-safe: PETSc is built without thread safety and every member sets up its "
    "integrator through PETSc's one options database per process, so members in threads would read each "
    "other's method options; use --scheduler dask (worker processes, --workers N) or local"
)

POLL_S = 2.0
"""s between two looks at a submitted job array's state (how often, not how long: the wait has no limit,
as a queued job may wait as long as its cluster makes it)."""

_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
           "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED"}  # fmt: skip
"""SLURM job states after which a job still runs (again)."""


class MemberFailure(BrainsimError):
    """A member of a batch failed: names its index, the scheduler, where it ran and its error."""

    def __init__(self, index, scheduler, error, where=""):
        self.index, self.scheduler, self.error, self.where = index, scheduler, error, where
        super().__init__(f"member {index} failed (--scheduler {scheduler}{where}): {error}")

    def __reduce__(self):
        return MemberFailure, (self.index, self.scheduler, self.error, self.where)


def check_scheduler(scheduler, workers=None):
    """The --scheduler and --workers options: a known scheduler, and a whole number >= 1 of workers if
    given; ConfigError naming the option otherwise ('threads' is refused, saying why)."""
    allowed = f"one of {[s for s in SCHEDULERS if s != 'threads']} or tcp://host:port"
    if scheduler == "threads":
        raise ConfigError("--scheduler", scheduler, allowed, detail=THREADS_REFUSED)
    if scheduler not in SCHEDULERS and not str(scheduler).startswith("tcp://"):
        raise ConfigError("--scheduler", scheduler, allowed)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError("--workers", workers, "a whole number >= 1 of workers (groups of ranks for mpi)")


def make_runner(scheduler, workers=None, *, profile=None, work=None, time="01:00:00", log=print):
    """The runner of `scheduler` (see the module's list), to be entered with `with`. workers: worker
    processes, SLURM jobs or array tasks at once, or the most groups of ranks (mpi); profile: the site
    profile (a name in slurm/profiles or a file) of 'slurm' and 'slurm-array'; work: the folder of the
    job arrays' task and result files (a shared filesystem; default jobs/ensemble); time: each array
    task's time limit (HH:MM:SS); log: where progress lines go."""
    check_scheduler(scheduler, workers)
    if scheduler == "local":
        return LocalRunner()
    if scheduler == "mpi":
        return MPIRunner(workers)
    if scheduler == "slurm-array":
        return SlurmArrayRunner(workers, load_profile(profile), work, time, log)
    site = _site_options(load_profile(profile)) if scheduler == "slurm" and profile else {}
    return DaskRunner(scheduler, workers, site, log)


class Runner:
    """Runs batches of members; `with` starts and stops what it needs (a cluster, jobs, groups of ranks)."""

    scheduler = None
    driver = True
    """Whether this process drives the fit (every rank but 0 of 'mpi' serves instead)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Stop what the runner started."""

    @property
    def description(self):
        """Where the members run, in words (for progress lines and the fit's record)."""
        return self.scheduler


class LocalRunner(Runner):
    """In this process, one member after another."""

    scheduler = "local"

    def map(self, fn, tasks):
        results = []
        for i, task in enumerate(tasks):
            try:
                results.append(fn(task))
            except Exception as e:  # noqa: BLE001 - every member error is reported naming the member
                raise MemberFailure(i, self.scheduler, _text(e)) from e
        return results


def _text(error):
    """An exception as one line: its type and message, and for an unexpected one (not a BrainsimError)
    the innermost place it was raised."""
    text = f"{type(error).__name__}: {error}"
    frames = traceback.extract_tb(error.__traceback__)
    if frames and not isinstance(error, BrainsimError):
        last = frames[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return text


class _Failed(Exception):
    """A member's error as text: picklable whatever the member raised (a Dask worker sends it back)."""


_one_member = threading.Lock()


def _call(task, fn):
    """fn(task) in a Dask worker, one member at a time per process whatever the worker's thread count (a
    Simulation is not thread-safe: see the module's notes); its error as _Failed. Dask work of the member
    itself (its summary) runs in its own thread: sent to the cluster, it would wait for a thread that
    members waiting for this one hold, on every worker at once."""
    import dask

    with _one_member, dask.config.set(scheduler="synchronous"):
        try:
            return fn(task)
        except Exception as e:  # noqa: BLE001 - sent back as text, named with the member by the runner
            raise _Failed(_text(e)) from None


class DaskRunner(Runner):
    """Members as Dask tasks: a LocalCluster ('dask'), a running scheduler (tcp://) or SLURM jobs."""

    def __init__(self, scheduler, workers, site, log):
        self.scheduler, self.workers, self.site, self.log = scheduler, workers, site, log
        self.client, self._stack = None, ExitStack()

    def __enter__(self):
        from distributed import Client

        from ..postprocess.cluster import connect, local_cluster, slurm_client

        try:
            if self.scheduler == "dask":
                n = self.workers or os.cpu_count() or 1
                self.log(f"ensemble: starting a local Dask cluster of {n} worker process(es)")
                cluster = self._stack.enter_context(local_cluster(n))
                self.client = self._stack.enter_context(Client(cluster))
            elif self.scheduler == "slurm":
                n = self.workers or 2
                self.log(f"ensemble: submitting {n} Dask worker job(s) to SLURM")
                self.client = self._stack.enter_context(slurm_client(n, site=self.site))
            else:
                self.log(f"ensemble: connecting to {self.scheduler}")
                self.client = self._stack.enter_context(connect(self.scheduler))
        except BaseException:
            self._stack.close()
            raise
        return self

    def close(self):
        self._stack.close()

    @property
    def description(self):
        workers = len(self.client.scheduler_info()["workers"]) if self.client is not None else 0
        return f"{self.scheduler} ({workers} Dask worker(s) now)"

    def map(self, fn, tasks):
        from distributed import as_completed

        futures = self.client.map(_call, list(tasks), fn=fn, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        for future in as_completed(futures):
            if future.status == "error":
                error = future.exception()
                self.client.cancel(futures)
                text = str(error) if isinstance(error, _Failed) else _text(error)
                raise MemberFailure(index[future.key], self.scheduler, text)
        return self.client.gather(futures)


def _site_options(profile):
    """dask-jobqueue SLURMCluster arguments from a site profile: its partition, account, setup, python and
    extra #SBATCH lines (those it sets)."""
    options = {
        "queue": profile["partition"],
        "account": profile["account"],
        "python": profile["python"],
        "job_script_prologue": [f"module load {m}" for m in profile["modules"]] + profile["setup"],
        "job_extra_directives": profile["sbatch"],
    }
    return {key: value for key, value in options.items() if value}


class MPIRunner(Runner):
    """Groups of the ranks of MPI_COMM_WORLD, each running its share of a batch's members on its own
    communicator. Protocol: rank 0 broadcasts each batch (the pickled function and tasks) and, on leaving
    `with`, a stop; the others wait for either in serve(). Results and errors are gathered onto rank 0."""

    scheduler = "mpi"

    def __init__(self, workers=None):
        from mpi4py import MPI

        self.MPI, self.world, self.limit = MPI, MPI.COMM_WORLD, workers
        self.rank, self.size = self.world.Get_rank(), self.world.Get_size()
        self.driver = self.rank == 0
        self._groups = {}  # number of groups -> (this rank's group communicator, its group's index)
        self._stopped = False
        init_petsc(comm=self.world)  # every rank at once: the members then build on their groups alone

    @property
    def description(self):
        return f"mpi ({self.size} rank(s))"

    def close(self):
        if self.driver and not self._stopped:
            self._stopped = True
            self.world.bcast(None, root=0)
        for comm, _ in self._groups.values():
            comm.Free()
        self._groups.clear()

    def serve(self):
        """Run batches as rank 0 sends them, until it stops (every rank but 0)."""
        while (payload := self.world.bcast(None, root=0)) is not None:
            self._batch(payload)

    def map(self, fn, tasks):
        if not self.driver:
            raise BrainsimError(
                f"--scheduler mpi: rank {self.rank} serves batches (serve()), rank 0 maps them"
            )
        payload = pickle.dumps((fn, list(tasks)))  # before any message: what cannot be pickled fails here
        self.world.bcast(payload, root=0)
        return self._batch(payload)

    def _group(self, groups):
        """This rank's group communicator and group index when the ranks form `groups` contiguous groups."""
        if groups not in self._groups:
            color = self.rank * groups // self.size
            self._groups[groups] = (self.world.Split(color, self.rank), color)
        return self._groups[groups]

    def _ranks(self, color, groups):
        ranks = [r for r in range(self.size) if r * groups // self.size == color]
        return f"{ranks[0]}-{ranks[-1]}" if len(ranks) > 1 else f"{ranks[0]}"

    def _batch(self, payload):
        """This rank's part of a batch (collective over every rank); on rank 0 the batch's results."""
        error = None
        try:
            fn, tasks = pickle.loads(payload)
        except Exception as e:  # noqa: BLE001 - e.g. a module this rank cannot import: every rank learns it
            error = _text(e)
        problems = [(r, text) for r, text in enumerate(self.world.allgather(error)) if text is not None]
        if problems:
            if self.driver:
                rank, text = problems[0]
                raise BrainsimError(f"--scheduler mpi: rank {rank} could not read the batch: {text}")
            return None
        groups = max(1, min(self.size, len(tasks), self.limit or self.size))
        comm, color = self._group(groups)
        results, errors = {}, []
        for i in range(color, len(tasks), groups):
            failed = None
            try:
                value = fn(tasks[i], context=Context(comm))
            except Exception as e:  # noqa: BLE001 - reported to rank 0 naming the member and the rank
                failed = _text(e)
                errors.append((i, self.rank, failed))
            if failed is None and comm.Get_rank() == 0:
                results[i] = value
            if comm.allreduce(int(failed is not None), op=self.MPI.MAX):
                break  # the group stops at a failure on any of its ranks
        gathered = self.world.gather((results, errors), root=0)
        if not self.driver:
            return None
        errors = sorted(e for _, errs in gathered for e in errs)
        if errors:
            first = [e for e in errors if e[0] == errors[0][0]]
            # the rank where it happened rather than those stopped with it (parallel.context.RankFailure)
            i, rank, text = next((e for e in first if not e[2].startswith("RankFailure")), first[0])
            where = f" on rank {rank} of {self.size}, group of ranks {self._ranks(i % groups, groups)}"
            raise MemberFailure(i, self.scheduler, text, where)
        merged = {i: value for part, _ in gathered for i, value in part.items()}
        return [merged[i] for i in range(len(tasks))]


class SlurmArrayRunner(Runner):
    """One SLURM job array per batch: task files under the work folder, one array task per member, the
    result files read back with checks once the array has left the queue."""

    scheduler = "slurm-array"

    def __init__(self, workers, profile, work, time, log):
        seconds(time)  # what sbatch would refuse, refused first
        self.workers, self.profile, self.time, self.log = workers, profile, time, log
        self.work = Path(work or Path("jobs") / "ensemble").resolve()
        self.batches = 0

    @property
    def description(self):
        return f"slurm-array (profile {self.profile['name']}, batches in {self.work})"

    def map(self, fn, tasks):
        tasks = list(tasks)
        if not tasks:
            return []
        self.batches += 1
        token = secrets.token_hex(6)
        folder = self.work / f"batch-{self.batches:03d}-{token}"
        with writing(folder, "the batch's member tasks"):
            folder.mkdir(parents=True)
            for i, task in enumerate(tasks):
                record = {"batch": token, "index": i, "fn": fn, "task": task}
                (folder / f"task-{i}.pkl").write_bytes(pickle.dumps(record))
            script = folder / "members.sbatch"
            script.write_text(self._script(folder))
        limit = f"%{self.workers}" if self.workers else ""
        job = sbatch(script, f"--array=0-{len(tasks) - 1}{limit}")
        self.log(f"ensemble: submitted job array {job} of {len(tasks)} member(s) ({script})")
        try:
            self._wait(job, folder, len(tasks))
        except BaseException:  # Ctrl-C or a failure while waiting: the array is not left running
            if shutil.which("scancel"):
                subprocess.run(["scancel", str(job)], capture_output=True)
            raise
        return [self._result(folder, token, job, i) for i in range(len(tasks))]

    def _script(self, folder):
        values = script_values(folder.name, f"bs-{folder.name}", folder, self.profile)
        log = shlex.quote(str(folder / "slurm-%A_%a.out"))
        return render(
            "members.sbatch",
            {
                **values,
                "command": "fit",
                "time": self.time,
                "output": log,
                "launcher": self.profile["launcher"],
            },
        )

    def _wait(self, job, folder, n):
        """Until every member has written its result, or the array has left the queue."""
        done = -1
        while True:
            finished = sum((folder / f"result-{i}.pkl").is_file() for i in range(n))
            if finished != done:
                done = finished
                self.log(f"ensemble: job array {job}: {done} of {n} member(s) done")
            if done == n:
                return
            state, _ = slurm_state(job)
            if not set(state.split(",")) & _ACTIVE:
                return
            clock.sleep(POLL_S)

    def _result(self, folder, token, job, i):
        """Member i's result, checked: present, readable as plain data, of this batch and member, and a
        success (else MemberFailure naming the member, the array task and why)."""
        path = folder / f"result-{i}.pkl"
        where = f", array task {job}_{i}"
        if not path.is_file():
            state, detail = slurm_state(f"{job}_{i}")
            text = f"no result ({state}, {detail}): {_log_tail(folder, job, i)}"
            raise MemberFailure(i, self.scheduler, text, where)
        try:
            record = _load_plain(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
            text = f"{path}: unreadable result ({type(e).__name__}: {e})"
            raise MemberFailure(i, self.scheduler, text, where) from None
        if not (
            isinstance(record, dict)
            and record.get("batch") == token
            and record.get("index") == i
            and isinstance(record.get("ok"), bool)
            and (record["ok"] and "value" in record or isinstance(record.get("error"), str))
        ):
            raise MemberFailure(i, self.scheduler, f"{path}: not a result of member {i} of this batch", where)
        if not record["ok"]:
            raise MemberFailure(i, self.scheduler, record["error"], where)
        return record["value"]


def _log_tail(folder, job, index):
    """The last lines of an array task's log (what the job said before it ended without a result)."""
    log = folder / f"slurm-{job}_{index}.out"
    if not log.is_file():
        return "no log: the task did not start"
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-3:]) or "an empty log"


_PLAIN = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("builtins", "complex"),
}
"""What a result file may name besides pickle's own numbers, strings, lists, tuples and dicts: NumPy arrays
and scalars. Anything else (which unpickling would import and call) is refused."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _PLAIN:
            raise pickle.UnpicklingError(
                f"{module}.{name} is not plain data (numbers, strings, NumPy arrays)"
            )
        return super().find_class(module, name)


def _load_plain(data):
    return _PlainUnpickler(io.BytesIO(data)).load()


def run_task(folder, index):
    """One array task: member `index` of the batch in folder, its result (or its error) written to
    result-<index>.pkl beside its task file; returns the exit code (0, or 1 when the member failed)."""
    folder = Path(folder)
    token = folder.name.rpartition("-")[2]
    try:
        record = pickle.loads((folder / f"task-{index}.pkl").read_bytes())
        if record["index"] != index or record["batch"] != token:
            raise BrainsimError(f"{folder}/task-{index}.pkl: a task of another batch or member")
        value = record["fn"](record["task"])
        data = pickle.dumps({"batch": token, "index": index, "ok": True, "value": value})
        _load_plain(data)  # a result the reader would refuse fails here, saying why
        code = 0
    except Exception as e:  # noqa: BLE001 - the error travels in the result file
        data = pickle.dumps({"batch": token, "index": index, "ok": False, "error": _text(e)})
        code = 1
    partial = folder / f".result-{index}.pkl.partial"
    partial.write_bytes(data)
    os.replace(partial, folder / f"result-{index}.pkl")  # a result is there whole or not at all
    return code


if __name__ == "__main__":
    sys.exit(run_task(sys.argv[1], int(sys.argv[2])))
