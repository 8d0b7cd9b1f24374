"""Where the Dask work runs, and showing its progress.

Schedulers: ``local`` (a LocalCluster of worker processes, one thread each, sized to the machine),
``tcp://host:port`` (a running scheduler), ``slurm`` (workers as SLURM jobs through dask-jobqueue; site
settings from Dask's ``jobqueue.slurm`` configuration, e.g. ``~/.config/dask/jobqueue.yaml``), ``mpi``
(inside ``mpiexec -n N`` / ``srun``: rank 0 runs the scheduler, rank 1 this program, the others are
workers, through dask-mpi), ``threads`` and ``sync`` (in this process: small stores, debugging)."""

import os
import sys
from contextlib import contextmanager

import dask

from brainsim.errors import ConfigError

SCHEDULERS = ("local", "slurm", "mpi", "threads", "sync")


def check_scheduler(name):
    if name not in SCHEDULERS and not name.startswith("tcp://"):
        raise ConfigError("--scheduler", name, f"one of {list(SCHEDULERS)} or tcp://host:port")


@contextmanager
def dask_client(scheduler="local", workers=None, log=print, logs=None):
    """A distributed Client for `scheduler` (None for 'threads' and 'sync'), closed on exit. logs: the
    folder of the SLURM workers' job logs, unless the site's jobqueue.slurm log-directory names one."""
    check_scheduler(scheduler)
    if scheduler in ("threads", "sync"):
        with dask.config.set(scheduler="synchronous" if scheduler == "sync" else "threads"):
            yield None
        return
    from distributed import Client

    if scheduler == "local":
        from distributed import LocalCluster

        n = workers or os.cpu_count() or 1
        log(f"summarize: starting a local Dask cluster of {n} worker process(es)")
        # NaN where a measure is undefined (no cells, no spikes) is intended: workers need not warn of it.
        previous = os.environ.get("PYTHONWARNINGS")
        quiet = "ignore:invalid value encountered:RuntimeWarning,ignore:divide by zero:RuntimeWarning"
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [previous, quiet]))
        try:
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None)
        finally:
            if previous is None:
                del os.environ["PYTHONWARNINGS"]
            else:
                os.environ["PYTHONWARNINGS"] = previous
        with cluster, Client(cluster) as client:
            yield client
    elif scheduler == "slurm":
        from dask_jobqueue import SLURMCluster

        n = workers or 2
        log(f"summarize: submitting {n} Dask worker job(s) to SLURM")
        given = dask.config.get("jobqueue.slurm", {})  # the site's settings win over these defaults
        defaults = {
            "cores": 1,
            "processes": 1,
            "memory": "4GB",
            "walltime": "01:00:00",
            "log_directory": logs,
        }
        options = {k: v for k, v in defaults.items() if given.get(k.replace("_", "-")) is None}
        with SLURMCluster(**options) as cluster, Client(cluster) as client:
            cluster.scale(jobs=n)
            client.wait_for_workers(1)
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
        with Client(scheduler) as client:
            yield client


def compute(client, what, label, log=print):
    """Compute the dask collections/delayed in `what` (a list) together, showing progress; returns the
    results. Graphs are not optimised: fusing would copy tasks shared by several results into each."""
    log(f"summarize: {label}")
    if client is None:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr, dt=1.0):
            return list(dask.compute(*what, optimize_graph=False))
    from distributed import progress

    futures = client.compute(what, optimize_graph=False)
    if sys.stderr.isatty():
        progress(futures)
    return client.gather(futures)
