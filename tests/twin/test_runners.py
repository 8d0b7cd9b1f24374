"""The ensemble runners: every scheduler maps real simulations (the small brain) to the same results as the
in-process runner, in order; member failures name the member and the scheduler; bad schedulers and
unreachable ones are clear errors; job-array results are checked before they are used."""

import importlib.util
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from runner_members import fails, spikes

from brainsim.errors import BrainsimError, ConfigError
from brainsim.twin import runners
from brainsim.twin.runners import MemberFailure, make_runner

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TASKS = [{"seed": 1, "tstop": 40.0}, {"seed": 2, "tstop": 40.0}, {"seed": 3, "tstop": 40.0}]
FAILING = [{"seed": 1}, {"seed": 2, "fail": True}, {"seed": 3}]

_spec = importlib.util.spec_from_file_location("hpc_slurm_fixture", ROOT / "tests/hpc/conftest.py")
_hpc = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hpc)
slurm = _hpc.slurm  # the one-node SLURM cluster of tests/hpc (skips where SLURM cannot start)
MPI_ENV = {  # as tests/distributed/mpi_runs.py: Open MPI as root, more ranks than cores
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
}


@pytest.fixture(scope="module")
def expected():
    """Each task's spikes from the in-process runner (each differs from the others: seeds matter)."""
    with make_runner("local") as runner:
        results = runner.map(spikes, TASKS)
    assert all(r.shape[0] > 50 for r in results)
    assert not np.array_equal(results[0], results[1])
    return results


@pytest.fixture
def importable(monkeypatch):
    """Processes started by SLURM (which inherit this environment) import runner_members."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))


def same(results, expected):
    assert len(results) == len(expected)
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_local_runs_in_order_and_names_a_failing_member():
    with make_runner("local") as runner:
        assert runner.map(fails, [{"seed": 5}, {"seed": 7}]) == [5, 7]
        with pytest.raises(MemberFailure, match=r"member 1 failed \(--scheduler local\): ValueError: member "
                           r"with seed 2 refuses \(at runner_members.py:\d+ in fails\)") as info:  # fmt: skip
            runner.map(fails, FAILING)
    assert info.value.index == 1 and isinstance(info.value.__cause__, ValueError)


def test_dask_local_cluster_gives_the_local_results(expected):
    with make_runner("dask", workers=2, log=lambda line: None) as runner:
        same(runner.map(spikes, TASKS), expected)
        with pytest.raises(MemberFailure, match=r"member 1 failed \(--scheduler dask\): ValueError: member "):
            runner.map(fails, FAILING)
        assert runner.map(fails, [{"seed": 4}]) == [4]  # the runner still works after a failed batch


def test_running_scheduler_with_a_two_thread_worker_gives_the_local_results(expected):
    """tcp://: a scheduler started elsewhere. Its one worker has two threads, and still runs one member at
    a time (two Simulations at once in one process would share PETSc's options)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster:
        with make_runner(cluster.scheduler_address, log=lambda line: None) as runner:
            same(runner.map(spikes, TASKS), expected)


def test_an_unreachable_scheduler_is_a_clear_error():
    """A closed port is refused at once (the connect timeout, CONNECT_TIMEOUT, only bounds waiting for a
    host that does not answer: a property of the network, not of this machine's speed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BrainsimError, match=rf"--scheduler tcp://127.0.0.1:{port}: cannot reach a Dask "):
        with make_runner(f"tcp://127.0.0.1:{port}", log=lambda line: None):
            pass
    with pytest.raises(ConfigError, match="tcp://host:port with a port number"):
        with make_runner("tcp://127.0.0.1:port", log=lambda line: None):
            pass


def test_unknown_scheduler_lists_the_allowed_and_threads_is_refused_saying_why():
    with pytest.raises(ConfigError, match=r"'--scheduler': got 'spark'; allowed: one of \['local', 'dask', "
                       r"'slurm', 'slurm-array', 'mpi'\] or tcp://host:port"):  # fmt: skip
        make_runner("spark")
    with pytest.raises(ConfigError, match="not thread-safe: PETSc is built without thread safety.*use "
                       "--scheduler dask"):  # fmt: skip
        make_runner("threads")
    for workers in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="'--workers'"):
            make_runner("dask", workers)


def mpi(ranks, tmp_path, function, *batches):
    """runner_members.py under mpiexec -n ranks: (CompletedProcess, saved results or None)."""
    mpiexec = shutil.which("mpiexec") or pytest.skip("no mpiexec on PATH")
    out = tmp_path / f"mpi{ranks}.npz"
    out.unlink(missing_ok=True)
    command = [mpiexec, "-n", str(ranks), sys.executable, str(HERE / "runner_members.py"), str(out), function]
    env = {**os.environ, **MPI_ENV}
    done = subprocess.run([*command, *map(json.dumps, batches)], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)  # fmt: skip
    return done, (np.load(out) if out.is_file() else None)


@pytest.mark.parametrize("ranks", [2, 3])
def test_mpi_groups_give_the_local_results(ranks, tmp_path, expected):
    """2 ranks, 3 members: groups of one rank, one running two members. 3 ranks, 2 members: a group of two
    ranks runs one member across both (the same spikes on any rank count). Then a batch of one member: all
    ranks in one group. Each batch is split anew; the serving ranks stop when rank 0 is done."""
    batches = [TASKS, TASKS[1:]] if ranks == 3 else [TASKS, TASKS[:1]]
    done, saved = mpi(ranks, tmp_path, "spikes", *batches)
    assert done.returncode == 0, done.stderr[-3000:]
    for b, tasks in enumerate(batches):
        want = [expected[TASKS.index(t)] for t in tasks]
        same([saved[f"batch{b}_member{i}"] for i in range(len(tasks))], want)
    assert len(saved.files) == sum(map(len, batches))


def test_mpi_a_failure_on_any_rank_stops_every_rank(tmp_path):
    """3 ranks, 2 members: ranks 0-1 run member 0, rank 2 member 1. A member failing on rank 2 (after a first
    batch that succeeded), then one failing on rank 1 only of its group of ranks 0-1: each time every rank
    ends, rank 0 saying which member failed on which rank."""
    done, saved = mpi(3, tmp_path, "fails", [{"seed": 1}], [{"seed": 1}, {"seed": 2, "fail": True}])
    assert done.returncode != 0 and saved is None
    failed = "brainsim: member 1 failed (--scheduler mpi on rank 2 of 3, group of ranks 2): ValueError"
    assert f"{failed}: member with seed 2 refuses" in done.stderr, done.stderr[-3000:]
    wide = [{"seed": 1, "fail": True, "fail_rank": 1}, {"seed": 2}]  # member 0 on ranks 0-1, failing on 1
    done, saved = mpi(3, tmp_path, "fails", wide)
    assert done.returncode != 0 and saved is None
    assert "member 0 failed (--scheduler mpi on rank 1 of 3, group of ranks 0-1): ValueError" in done.stderr


def test_slurm_dask_workers_give_the_local_results(slurm, expected, importable):
    with make_runner("slurm", workers=2, profile="local", log=lambda line: None) as runner:
        assert "#SBATCH -p debug" in runner.client.cluster.job_script()  # the profile's partition
        same(runner.map(spikes, TASKS[:2]), expected[:2])


def test_slurm_job_array_gives_the_local_results_and_names_a_failing_member(slurm, tmp_path, expected,
                                                                            importable):  # fmt: skip
    lines = []
    with make_runner("slurm-array", workers=2, profile="local", work=tmp_path, log=lines.append) as runner:
        same(runner.map(spikes, TASKS), expected)
        with pytest.raises(MemberFailure, match=r"member 1 failed \(--scheduler slurm-array, array task "
                           r"\d+_1\): ValueError: member with seed 2 refuses"):  # fmt: skip
            runner.map(fails, FAILING)
    batches = sorted(tmp_path.glob("batch-*"))
    assert [b.name[:9] for b in batches] == ["batch-001", "batch-002"]
    script = (batches[0] / "members.sbatch").read_text()
    assert "#SBATCH --partition=debug" in script and "srun --mpi=pmix" in script
    assert any("3 of 3 member(s) done" in line for line in lines)


def batch(tmp_path, fn, task, token="a1b2c3"):
    """A batch folder of one member's task file, as SlurmArrayRunner writes it."""
    folder = tmp_path / f"batch-001-{token}"
    folder.mkdir()
    (folder / "task-0.pkl").write_bytes(pickle.dumps({"batch": token, "index": 0, "fn": fn, "task": task}))
    return folder


def test_array_task_results_are_checked_before_use(tmp_path):
    """run_task (what each array task runs) writes the member's result; the reader takes it only when it
    is plain data of this batch and member."""
    reader = make_runner("slurm-array", profile="local", work=tmp_path)
    folder = batch(tmp_path, fails, {"seed": 9})
    assert runners.run_task(folder, 0) == 0
    assert reader._result(folder, "a1b2c3", "77", 0) == 9
    with pytest.raises(MemberFailure, match="not a result of member 0 of this batch"):
        reader._result(folder, "ffffff", "77", 0)  # a result left by another batch
    result = folder / "result-0.pkl"
    result.write_bytes(pickle.dumps({"batch": "a1b2c3", "index": 0, "ok": True, "value": Path("/")}))
    with pytest.raises(
        MemberFailure, match=r"unreadable result \(UnpicklingError: pathlib.*is not plain data"
    ):
        reader._result(folder, "a1b2c3", "77", 0)
    result.write_bytes(result.read_bytes()[:20])  # cut short
    with pytest.raises(MemberFailure, match="unreadable result"):
        reader._result(folder, "a1b2c3", "77", 0)


def test_an_array_task_reports_a_member_error_and_a_result_that_is_not_plain_data(tmp_path):
    failing = batch(tmp_path, fails, {"seed": 2, "fail": True})
    assert runners.run_task(failing, 0) == 1
    reader = make_runner("slurm-array", profile="local", work=tmp_path)
    with pytest.raises(MemberFailure, match="member 0 failed .*ValueError: member with seed 2 refuses"):
        reader._result(failing, "a1b2c3", "77", 0)
    odd = batch(tmp_path, Path, "/", token="d4e5f6")  # returns a Path: not plain data
    assert runners.run_task(odd, 0) == 1
    with pytest.raises(MemberFailure, match="UnpicklingError: pathlib.*is not plain data"):
        reader._result(odd, "d4e5f6", "77", 0)


FIT_FILE = """
parameters:
  - name: drive
    key: patient.background.{region}.pyr
    regions: [lh-precentral, rh-precentral]
    prior: {kind: lognormal, median: 1.0, sigma: 0.1}
    bounds: [0.6, 1.6]
    as: factor
features:
  - {variable: mean_rate, transform: log, window: [0, 100], noise: 0.1}
method: {kind: eki, members: 4, iterations: 1, seed: 1}
"""


@pytest.fixture(scope="module")
def small_fit(tmp_path_factory):
    """A fit of two drive factors of the small brain (100 ms members, 4 members, one update) to a rates
    recording, run in this process: (inputs of fit(), the fit's arrays)."""
    from brainsim.twin.fit import fit
    from brainsim.twin.observe import observe

    folder = tmp_path_factory.mktemp("fit")
    labels = ["lh-precentral", "lh-postcentral", "lh-superiorfrontal", "rh-precentral", "rh-postcentral",
              "rh-superiorfrontal"]  # fmt: skip
    rates = np.random.default_rng(3).gamma(4.0, 2.0, size=(200, len(labels)))
    table = folder / "rates.tsv"
    np.savetxt(table, rates, delimiter="\t", header="\t".join(labels), comments="", fmt="%.6g")
    observations = observe([table], folder / "obs.zarr", connectome=str(SMALL), kind="rate", log=quiet)
    (folder / "fit.yaml").write_text(FIT_FILE)
    inputs = {"config": SMALL, "observations": observations, "parameters": folder / "fit.yaml"}
    fit(**inputs, out=folder / "local", overrides=["simulation.tstop=100"], log=quiet)
    return inputs, fit_arrays(folder / "local")


SMALL = ROOT / "tests/data/small_brain.yaml"


def quiet(line):
    pass


def fit_arrays(out):
    import xarray as xr

    ds = xr.open_zarr(out / "fit.zarr")
    arrays = {name: ds[name].values for name in ("theta", "features", "misfit", "seed")}
    assert ds.attrs["status"] == "complete" and arrays["theta"].shape == (2, 4, 2)
    return arrays


def same_fit(got, want):
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_the_same_fit_on_dask_and_mpi_as_in_process(small_fit, tmp_path):
    """Same seeds, same fit: every member's parameters, features and misfit in every iteration are
    identical with worker processes and with 3 MPI ranks driving 4 members (the real `brainsim fit`)."""
    from brainsim.twin.fit import fit

    inputs, want = small_fit
    fit(**inputs, out=tmp_path / "dask", scheduler="dask", workers=2, overrides=["simulation.tstop=100"],
        log=quiet)  # fmt: skip
    same_fit(fit_arrays(tmp_path / "dask"), want)
    mpiexec = shutil.which("mpiexec") or pytest.skip("no mpiexec on PATH")
    argv = [mpiexec, "-n", "3", sys.executable, "-m", "brainsim.cli", "fit", str(inputs["config"]),
            "--observations", str(inputs["observations"]), "--parameters", str(inputs["parameters"]),
            "--scheduler", "mpi", "--set", "simulation.tstop=100", "-o", str(tmp_path / "mpi")]  # fmt: skip
    done = subprocess.run(argv, env={**os.environ, **MPI_ENV}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    same_fit(fit_arrays(tmp_path / "mpi"), want)


def test_the_same_fit_on_slurm_as_in_process(slurm, small_fit, tmp_path):
    """Dask workers as SLURM jobs, and one job array per iteration, give the in-process fit exactly; the
    arrays' task and result files are kept in FIT_DIR/ensemble."""
    from brainsim.twin.fit import fit

    inputs, want = small_fit
    for scheduler in ("slurm", "slurm-array"):
        fit(**inputs, out=tmp_path / scheduler, scheduler=scheduler, workers=2, profile="local",
            member_time="00:20:00", overrides=["simulation.tstop=100"], log=quiet)  # fmt: skip
        same_fit(fit_arrays(tmp_path / scheduler), want)
    batches = sorted((tmp_path / "slurm-array" / "ensemble").glob("batch-*"))
    assert len(batches) == 2 and all(len(list(b.glob("result-*.pkl"))) == 4 for b in batches)
    assert "#SBATCH --time=00:20:00" in (batches[0] / "members.sbatch").read_text()
