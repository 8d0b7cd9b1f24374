"""Batch scripts from the templates of slurm/templates, and their submission with sbatch.

A submitted run lives in `jobs/<run-name>/`: job.sbatch (the run), summarize.sbatch (chained after it),
job.json (what was submitted: job ids, paths, command), run.zarr, run.checkpoint/, run.summary.zarr and
the jobs' slurm-<id>.out logs."""

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .. import resources
from ..engine.settings import milliseconds
from ..errors import BrainsimError, ConfigError
from ..files import writing

TIME = re.compile(r"^(?:(\d+)-)?(\d+):(\d\d):(\d\d)$|^(\d+)$")


class SlurmError(BrainsimError):
    """sbatch, squeue or scontrol failed or is missing."""


def render(template, values):
    """The template file's text with every {{name}} replaced; KeyError names a missing value."""
    text = resources.template(template).read_text()
    missing = sorted(set(re.findall(r"\{\{(\w+)\}\}", text)) - set(values))
    if missing:
        raise KeyError(f"template {template} needs {missing}")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(values[m.group(1)]), text)


def seconds(time, key="--time"):
    """SLURM's --time as seconds: 'HH:MM:SS', 'D-HH:MM:SS' or minutes; ConfigError naming key otherwise."""
    m = TIME.match(str(time))
    if not m or int(m.group(3) or 0) > 59 or int(m.group(4) or 0) > 59:
        raise ConfigError(key, time, "HH:MM:SS, D-HH:MM:SS or a number of minutes")
    if m.group(5) is not None:
        return int(m.group(5)) * 60
    days, h, mi, s = (int(x) if x else 0 for x in m.group(1, 2, 3, 4))
    return ((days * 24 + h) * 60 + mi) * 60 + s


@dataclass
class RunJob:
    """Everything a run's batch scripts need."""

    name: str
    run_args: list  # per task, brainsim run arguments: config, --set, --patient, --intervention
    folder: Path
    nodes: int
    ntasks_per_node: int
    time: str
    profile: dict
    partition: str | None = None
    account: str | None = None
    checkpoint_every: str | None = None
    array: bool = False  # a job array, one task per run_args item (a campaign); else run_args has one item

    def __post_init__(self):
        """Refuse what `brainsim run` or SLURM would refuse, before anything is written (errors name the
        submit option)."""
        for option, value in (("--nodes", self.nodes), ("--ntasks-per-node", self.ntasks_per_node)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(option, value, "a whole number >= 1")
        signal = self.profile["signal_seconds"]
        if seconds(self.time) <= signal:
            raise ConfigError(
                "--time", self.time, f"longer than the profile's signal_seconds ({signal} s before the limit)"
            )
        if self.checkpoint_every is not None:
            milliseconds(self.checkpoint_every)

    @property
    def store(self):
        return self.folder / "run.zarr"

    @property
    def summary(self):
        return self.folder / "run.summary.zarr"

    def common(self, job_name):
        return script_values(self.name, job_name, self.folder, self.profile, self.partition, self.account)

    def run_script(self, command="submit"):
        signal = self.profile["signal_seconds"]
        every = (
            ""
            if self.checkpoint_every is None
            else f"--checkpoint-every {shlex.quote(self.checkpoint_every)}"
        )
        values = self.common(f"bs-{self.name}")
        summarize = (  # a campaign's task summarises its own run; a single run chains a summary job
            f'{values["python"]} -m brainsim.cli summarize "$store" -o "$folder/run.summary.zarr" '
            "--overwrite --scheduler threads"
            if self.array
            else ""
        )
        log = "slurm-%A_%a.out" if self.array else "slurm-%j.out"
        return render(
            "run.sbatch",
            {
                **values,
                "command": command,
                "nodes": self.nodes,
                "ntasks_per_node": self.ntasks_per_node,
                "time": self.time,
                "signal_seconds": signal,
                "time_seconds": seconds(self.time),
                "max_restarts": self.profile["max_restarts"],
                "output": shlex.quote(str(self.folder / log)),
                "launcher": self.profile["launcher"],
                "checkpoint_every": every,
                "summarize_lines": summarize,
            },
        )

    def summarize_script(self):
        cpus = min(self.ntasks_per_node, self.profile["cores_per_node"] or self.ntasks_per_node)
        return render(
            "summarize.sbatch",
            {
                **self.common(f"bs-{self.name}-summary"),
                "cpus": max(1, cpus),
                "time": self.time,
                "store": shlex.quote(str(self.store)),
                "summary": shlex.quote(str(self.summary)),
            },
        )


def script_values(name, job_name, folder, profile, partition=None, account=None):
    """What every batch template takes from a site profile and the job: names, folders, the python, the
    #SBATCH lines (partition and account: the given ones, else the profile's) and the setup lines."""
    partition = partition or profile["partition"]
    account = account or profile["account"]
    options = [f"--partition={partition}"] * bool(partition) + [f"--account={account}"] * bool(account)
    options += profile["sbatch"]
    setup = [f"module load {m}" for m in profile["modules"]] + profile["setup"]
    return {
        "run_name": name,
        "job_name": job_name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "job_dir": shlex.quote(str(folder)),
        "workdir": shlex.quote(str(Path.cwd())),
        "python": profile["python"] or shlex.quote(sys.executable),
        "sbatch_lines": "\n".join(f"#SBATCH {o}" for o in options),
        "setup_lines": "\n".join(setup),
    }


def sbatch(script, *options):
    """Submit a batch script; returns its job id."""
    binary = shutil.which("sbatch")
    if binary is None:
        raise SlurmError("sbatch is not on PATH: submit from a SLURM login node (or use --dry-run)")
    done = subprocess.run([binary, "--parsable", *options, str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SlurmError(f"sbatch {script} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().split(";")[0]


def write_scripts(job, summarize=True, command="submit"):
    """Write job.sbatch, the run arguments (run.args, or tasks/<i>.args for an array: one per line) and
    summarize.sbatch (a single run's summary job) into the job's folder; returns the scripts' paths."""
    with writing(job.folder, "the job scripts"):
        return _write_scripts(job, summarize, command)


def _write_scripts(job, summarize, command):
    job.folder.mkdir(parents=True, exist_ok=True)
    if job.array:
        (job.folder / "tasks").mkdir(exist_ok=True)
        for i, args in enumerate(job.run_args):
            (job.folder / "tasks" / f"{i}.args").write_text("".join(f"{a}\n" for a in args))
    else:
        (job.folder / "run.args").write_text("".join(f"{a}\n" for a in job.run_args[0]))
    paths = [job.folder / "job.sbatch"]
    paths[0].write_text(job.run_script(command))
    if summarize and not job.array:
        paths.append(job.folder / "summarize.sbatch")
        paths[1].write_text(job.summarize_script())
    return paths


def submit(job, summarize=True, dry_run=False, log=print):
    """Write the scripts and, unless dry_run, submit the run and its summary (afterok); returns job.json's
    content (also written into the job folder)."""
    scripts = write_scripts(job, summarize)
    record = {
        "name": job.name,
        "submitted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_args": job.run_args[0],
        "store": str(job.store),
        "checkpoint": str(job.folder / "run.checkpoint"),
        "summary": str(job.summary) if summarize else None,
        "scripts": [str(p) for p in scripts],
        "jobs": {},
    }
    if dry_run:
        for path in scripts:
            log(f"# {path}\n{path.read_text()}")
        log(f"dry run: scripts written to {job.folder}, nothing submitted")
    else:
        record["jobs"]["run"] = sbatch(scripts[0])
        log(f"submitted run job {record['jobs']['run']} ({scripts[0]})")
        if summarize:
            record["jobs"]["summarize"] = sbatch(scripts[1], f"--dependency=afterok:{record['jobs']['run']}")
            log(f"submitted summary job {record['jobs']['summarize']} after it ({scripts[1]})")
    with writing(job.folder / "job.json", "the job record"):
        (job.folder / "job.json").write_text(json.dumps(record, indent=2))
    return record
