"""The local one-node SLURM cluster itself: batch jobs, exit codes, arrays, and MPI under srun."""

import sys

PRINT_RANK = "from mpi4py import MPI; c = MPI.COMM_WORLD; print('rank', c.Get_rank(), 'of', c.Get_size())"


def test_wrap_job_completes(slurm, tmp_path):
    command = "hostname; echo partition=$SLURM_JOB_PARTITION"
    job = slurm.sbatch("-o", "out.txt", "--wrap", command, cwd=tmp_path)
    result = slurm.wait(job, timeout=300)
    assert result.ok, result
    assert (tmp_path / "out.txt").read_text().split() == [slurm.node, f"partition={slurm.partition}"]


def test_failing_job_reports_its_exit_code(slurm, tmp_path):
    result = slurm.wait(slurm.sbatch("-o", "out.txt", "--wrap", "exit 3", cwd=tmp_path), timeout=300)
    assert (result.state, result.exit_code) == ("FAILED", 3)


def test_array_tasks_each_report(slurm, tmp_path):
    job = slurm.sbatch("--array=0-2", "-o", "%a.txt", "--wrap", "exit $SLURM_ARRAY_TASK_ID", cwd=tmp_path)
    result = slurm.wait(job, timeout=300)
    assert {i: (t.state, t.exit_code) for i, t in result.tasks.items()} == {
        0: ("COMPLETED", 0),
        1: ("FAILED", 1),
        2: ("FAILED", 2),
    }
    assert (result.state, result.exit_code) == ("FAILED", 1)


def test_mpi_job_under_srun_sees_two_ranks(slurm, tmp_path):
    command = f'srun --mpi=pmix {sys.executable} -c "{PRINT_RANK}"'
    job = slurm.sbatch("-n", "2", "-o", "out.txt", "--wrap", command, cwd=tmp_path)
    result = slurm.wait(job, timeout=300)
    out = (tmp_path / "out.txt").read_text()
    assert result.ok, out
    assert sorted(out.splitlines()) == ["rank 0 of 2", "rank 1 of 2"]
