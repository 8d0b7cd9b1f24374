"""Session fixture `slurm`: the one-node SLURM cluster of slurm/local/up.sh, started on demand.

The cluster stays up after the session (the next one reuses it at once); `slurm/local/down.sh` stops it,
or set BRAINSIM_SLURM_DOWN=1 to stop it when the session ends. BRAINSIM_SLURM_STATE picks the state
folder (default /tmp/brainsim-slurm).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "slurm" / "local"
COMMANDS = ("sbatch", "srun", "squeue", "scancel", "scontrol", "sinfo", "slurmctld", "slurmd", "munged")
# Job states after which a job does not run again (REQUEUED, PENDING, COMPLETING... are not final).
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
         "BOOT_FAIL", "DEADLINE"}  # fmt: skip
_FIELD = re.compile(r" (?=[A-Za-z][\w:/]*=)")


def fields(line: str) -> dict[str, str]:
    """Key=Value pairs of one `scontrol show job -o` or jobcomp/filetxt line."""
    return dict(item.split("=", 1) for item in _FIELD.split(line.strip()) if "=" in item)


@dataclass
class JobResult:
    """Final state of a job; for a job array, `tasks` maps each task index to its result and the job's
    state/exit code are those of the first task that did not complete with 0."""

    job_id: str
    state: str
    exit_code: int
    signal: int = 0
    restarts: int = 0
    tasks: dict[int, JobResult] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED" and self.exit_code == 0

    @classmethod
    def from_fields(cls, info: dict[str, str]) -> JobResult:
        code, _, sig = info.get("ExitCode", "0:0").partition(":")
        restarts = int(info.get("Restarts", 0))
        return cls(info["JobId"], info["JobState"], int(code or 0), int(sig or 0), restarts, info=info)


@dataclass
class LocalSlurm:
    """The running local cluster, with helpers to submit jobs and wait for them."""

    state_dir: Path
    partition: str
    node: str
    jobcomp: Path
    env: dict[str, str]
    submitted: list[str] = field(default_factory=list)

    def run(
        self, *command: str, timeout: float = 30, check: bool = True, **kw
    ) -> subprocess.CompletedProcess[str]:
        """Run a SLURM command with this cluster's configuration; text output captured."""
        env = {**os.environ, **self.env, **kw.pop("env", {})}
        kw.update(capture_output=True, text=True, timeout=timeout, check=check, env=env)
        return subprocess.run(command, **kw)

    def sbatch(self, *args: str, cwd: str | Path | None = None) -> str:
        """Submit with `sbatch --parsable ARGS`; returns the job id."""
        proc = self.run("sbatch", "--parsable", *args, cwd=cwd, check=False)
        if proc.returncode:
            raise RuntimeError(f"sbatch {' '.join(args)} failed: {proc.stderr.strip()}")
        job_id = proc.stdout.strip().split(";")[0]
        self.submitted.append(job_id)
        return job_id

    def records(self, job_id: str) -> list[dict[str, str]]:
        """One dict per job record (per array task): scontrol while slurmctld keeps the job (MinJobAge),
        completed by the last line per job in the jobcomp file."""
        proc = self.run("scontrol", "show", "job", "-o", str(job_id), check=False)
        live = [fields(line) for line in proc.stdout.splitlines() if line.startswith("JobId=")]
        base, _, task = str(job_id).partition("_")
        done: dict[str, dict[str, str]] = {}
        for line in self.jobcomp.read_text().splitlines() if self.jobcomp.exists() else ():
            info = fields(line)
            array = info.get("ArrayJobId")
            own = not task and info.get("JobId") == base
            if own or (array == base and (not task or info.get("ArrayTaskId") == task)):
                done[info["JobId"]] = info
        for info in live:
            done.pop(info.get("JobId"), None)
        return live + list(done.values())

    def wait(self, job_id: str, timeout: float = 60) -> JobResult:
        """Poll until the job (all tasks of an array) reached a final state; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records(job_id)
            if records and all(r.get("JobState") in FINAL for r in records):
                return self._result(str(job_id), records)
            if time.monotonic() > deadline:
                states = ", ".join(f"{r.get('JobId')}:{r.get('JobState')}" for r in records) or "unknown"
                raise TimeoutError(f"SLURM job {job_id} not finished after {timeout:g} s ({states})")
            time.sleep(0.25)

    @staticmethod
    def _result(job_id: str, records: list[dict[str, str]]) -> JobResult:
        results = [JobResult.from_fields(r) for r in records]
        tasks = {int(r.info["ArrayTaskId"]): r for r in results if r.info.get("ArrayTaskId", "").isdigit()}
        if not tasks or "_" in job_id:
            return results[0]
        worst = next((r for _, r in sorted(tasks.items()) if not r.ok), results[0])
        return JobResult(job_id, worst.state, worst.exit_code, worst.signal, worst.restarts, tasks)

    def cancel_submitted(self) -> None:
        """Cancel what this session submitted and is still queued or running."""
        if self.submitted:
            self.run("scancel", *self.submitted, check=False)


def _missing() -> list[str]:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [c for c in COMMANDS if shutil.which(c, path=path) is None]


@pytest.fixture(scope="session")
def slurm():
    """A running one-node SLURM cluster (skips only where SLURM is not installed)."""
    if _missing():
        pytest.skip("SLURM not installed: slurm/local/install.sh (setup.sh runs it)")
    if os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode:
        pytest.skip("the local SLURM cluster needs root (or password-less sudo) to start slurmd")
    state = os.environ.get("BRAINSIM_SLURM_STATE", "/tmp/brainsim-slurm")
    try:
        proc = subprocess.run([str(LOCAL / "up.sh"), state], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"slurm/local/up.sh {state} timed out:\n{(e.stderr or b'')[-3000:]!r}", pytrace=False)
    if proc.returncode:
        reason = f"slurm/local/up.sh {state} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        pytest.fail(reason, pytrace=False)
    settings = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    # Commands run by the code under test (sbatch from brainsim) see the cluster through SLURM_CONF.
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = settings["SLURM_CONF"]
    cluster = LocalSlurm(
        state_dir=Path(settings["BRAINSIM_SLURM_STATE"]),
        partition=settings["BRAINSIM_SLURM_PARTITION"],
        node=settings["BRAINSIM_SLURM_NODE"],
        jobcomp=Path(settings["BRAINSIM_SLURM_JOBCOMP"]),
        env={"SLURM_CONF": settings["SLURM_CONF"]},
    )
    yield cluster
    cluster.cancel_submitted()
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous
    if os.environ.get("BRAINSIM_SLURM_DOWN") == "1":
        subprocess.run([str(LOCAL / "down.sh"), state], capture_output=True, timeout=60)
