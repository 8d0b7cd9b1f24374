"""Where the Dask work runs, and showing its progress.

Schedulers: ``local`` (a LocalCluster of worker processes, one thread each, sized to the machine),
``tcp://host:port`` (a running scheduler), ``slurm`` (workers as SLURM jobs through dask-jobqueue; site
settings from Dask's ``jobqueue.slurm`` configuration, e.g. ``~/.config/dask/jobqueue.yaml``), ``mpi``
(inside ``mpiexec -n N`` / ``srun``: rank 0 runs the scheduler, rank 1 this program, the others are
workers, through dask-mpi), ``threads`` and ``sync`` (in this process: small stores, debugging)."""

import logging
import os
import socket
import sys
from contextlib import contextmanager

import dask

from brainsim.errors import BrainsimError, ConfigError

SCHEDULERS = ("local", "slurm", "mpi", "threads", "sync")


CONNECT_TIMEOUT = 10.0
"""s: how long connecting to a running scheduler (tcp://host:port) may take before it is given up."""


def check_scheduler(name, workers=None):
    """The --scheduler and --workers options: a known scheduler, and a worker count >= 1 if given."""
    if name not in SCHEDULERS and not name.startswith("tcp://"):
        raise ConfigError("--scheduler", name, f"one of {list(SCHEDULERS)} or tcp://host:port")
    if workers is not None and workers < 1:
        raise ConfigError("--workers", workers, "a whole number of Dask workers >= 1")


@contextmanager
def dask_client(scheduler="local", workers=None, log=print, logs=None):
    """A distributed Client for `scheduler` (None for 'threads' and 'sync'), closed on exit. logs: the
    folder of the SLURM workers' job logs, unless the site's jobqueue.slurm log-directory names one."""
    check_scheduler(scheduler, workers)
    if scheduler in ("threads", "sync"):
        with dask.config.set(scheduler="synchronous" if scheduler == "sync" else "threads"):
            yield None
        return
    from distributed import Client

    if scheduler == "local":
        n = workers or os.cpu_count() or 1
        log(f"summarize: starting a local Dask cluster of {n} worker process(es)")
        with local_cluster(n) as cluster, Client(cluster) as client:
            client.run(_quiet_task_failures)
            yield client
    elif scheduler == "slurm":
        n = workers or 2
        log(f"summarize: submitting {n} Dask worker job(s) to SLURM")
        with slurm_client(n, logs) as client:
            yield client
    elif scheduler == "mpi":
        import logging

        import dask_mpi

        for name in ("distributed", "tornado", "asyncio"):  # the workers' noise when the run shuts them down
            logging.getLogger(name).setLevel(logging.CRITICAL)
        dask_mpi.initialize(nthreads=1, dashboard=False)  # only rank 1 returns to run this program
        with Client() as client:
            yield client
    else:
        log(f"summarize: connecting to {scheduler}")
        with connect(scheduler) as client:
            yield client


def local_cluster(n):
    """A LocalCluster of n worker processes of one thread each, without a dashboard (not yet entered)."""
    from distributed import LocalCluster

    # NaN where a measure is undefined (no cells, no spikes) is intended: workers need not warn of it.
    previous = os.environ.get("PYTHONWARNINGS")
    quiet = "ignore:invalid value encountered:RuntimeWarning,ignore:divide by zero:RuntimeWarning"
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [previous, quiet]))
    try:
        return LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None)
    finally:
        if previous is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = previous


@contextmanager
def slurm_client(jobs, logs=None, site=None):
    """A Client of Dask workers submitted as `jobs` SLURM jobs through dask-jobqueue (one worker of one core
    each), once the first has started; closed on exit. Settings: `site` (SLURMCluster arguments, e.g. from
    a site profile: queue, account, job_script_prologue, python) win over the site's Dask configuration
    (jobqueue.slurm), which wins over these defaults; logs: the workers' job-log folder by default."""
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    given = dask.config.get("jobqueue.slurm", {})
    defaults = {
        "cores": 1,
        "processes": 1,
        "memory": "4GB",
        "walltime": "01:00:00",
        "log_directory": logs,
    }
    options = {k: v for k, v in defaults.items() if given.get(k.replace("_", "-")) is None}
    options.update(site or {})
    with SLURMCluster(**options) as cluster, Client(cluster) as client:
        cluster.scale(jobs=jobs)
        client.wait_for_workers(1)
        yield client


def connect(address):
    """A Client of the scheduler at address (tcp://host:port), or a BrainsimError within CONNECT_TIMEOUT
    saying it cannot be reached (a closed port fails at once, an unreachable host after the timeout)."""
    from distributed import Client

    host, _, port = address.removeprefix("tcp://").rpartition(":")
    unreachable = f"--scheduler {address}: cannot reach a Dask scheduler there"
    hint = "start one (`dask scheduler`) or use --scheduler local"
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
        return Client(address, timeout=CONNECT_TIMEOUT)
    except ValueError:
        raise ConfigError("--scheduler", address, "tcp://host:port with a port number") from None
    except OSError as e:  # refused, unreachable, timed out, or no answer from a scheduler
        raise BrainsimError(f"{unreachable} ({e.strerror or e}): {hint}") from None


def _quiet_task_failures():
    """Run in each local worker: it no longer logs the tasks that fail (with their traceback), since each
    failure is raised where the results are gathered (a damaged store's StoreError as a `brainsim:` line)."""
    logging.getLogger("distributed.worker").addFilter(_not_a_task_failure)


def _not_a_task_failure(record):
    return not record.getMessage().startswith("Compute Failed")


def compute(client, what, label, log=print):
    """Compute the dask collections/delayed in `what` (a list) together, showing progress on a terminal
    (stderr a TTY: no bars in log files or in an ensemble's workers); returns the results. Graphs are not
    optimised: fusing would copy tasks shared by several results into each."""
    log(f"summarize: {label}")
    if client is None:
        if not sys.stderr.isatty():
            return list(dask.compute(*what, optimize_graph=False))
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr, dt=0.1, minimum=1.0):  # a bar for computations over a second
            return list(dask.compute(*what, optimize_graph=False))
    from distributed import progress

    futures = client.compute(what, optimize_graph=False)
    if sys.stderr.isatty():
        progress(futures)
    return client.gather(futures)
