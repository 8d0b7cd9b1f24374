"""Campaigns: a grid of runs (e.g. drug dose x target regions x patient) as one SLURM job array, and the
collection of its tasks' summaries into one table.

A campaign file (`jobs/<campaign>.yaml`)::

    name: dose_sweep
    config: ../configs/whole_brain.yaml        # paths relative to this file
    patient: ../configs/patients/example.yaml  # optional; also a grid axis
    interventions: [../configs/interventions/sodium_block.yaml]
    set: [simulation.tstop=100]                # overrides of every task
    grid:                                      # every combination is one array task
      interventions[0].factor: [0.2, 0.5]      # a config key path: its values (as --set)
      patient: [../configs/patients/example.yaml, null]
    nodes: 1
    ntasks_per_node: 2
    time: "01:00:00"
    profile: generic                           # and optional partition, account, checkpoint_every

It is rendered into `jobs/<campaign>/`: job.sbatch (the array), tasks/<i>.args, campaign.json (the
tasks and their parameters) and, as tasks run, task-<i>/run.zarr and task-<i>/run.summary.zarr.
"""

import csv
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config.load import parse_yaml
from ..config.options import REQUIRED, Int, ListOf, MapOf, Section, Str
from ..engine.settings import milliseconds
from ..errors import ConfigError, StoreError
from ..files import writing
from ..io.run_store import STORE_FAULTS, RunStore
from .jobs import RunJob, sbatch, seconds, write_scripts
from .profiles import load_profile


class _Values:
    """A non-empty list of any YAML values (a grid axis)."""

    default = REQUIRED
    doc = "values of the axis"

    def allowed(self):
        return "a non-empty list of values"

    def resolve(self, value, path):
        if not isinstance(value, list) or not value:
            raise ConfigError(path, value, self.allowed())
        return value


CAMPAIGN = Section(
    {
        "name": Str(REQUIRED, "campaign name (its folder under jobs/)"),
        "config": Str(REQUIRED, "the run config, relative to this file"),
        "patient": Str(None, "patient overlay of every task (a grid axis 'patient' overrides it)"),
        "interventions": ListOf(Str(), [], "intervention overlays of every task"),
        "set": ListOf(Str(), [], "config overrides of every task (key.path=value)"),
        "grid": MapOf(_Values(), REQUIRED, "axes: a config key path, or 'patient', and its values"),
        "nodes": Int(1, "nodes per task", ge=1),
        "ntasks_per_node": Int(1, "ranks per node", ge=1),
        "time": Str("01:00:00", "time limit per task"),
        "profile": Str(None, "site profile (slurm/profiles)"),
        "partition": Str(None, "partition"),
        "account": Str(None, "account"),
        "checkpoint_every": Str(None, "simulated time between checkpoints, e.g. 50ms"),
    }
)


def load_campaign(path):
    """The campaign file at path, validated (errors name the file and key), paths made absolute."""
    path = Path(path).resolve()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("<campaign>", str(path), "a readable YAML campaign file", detail=str(e)) from None
    raw = parse_yaml(text, path)
    try:
        spec = CAMPAIGN.resolve(raw, "")
    except ConfigError as e:
        raise e.in_file(path) from None
    if not spec["grid"]:
        raise ConfigError("grid", {}, "at least one axis", file=str(path))
    try:  # what the job scripts will pass to sbatch and `brainsim run`
        seconds(spec["time"], "time")
        if spec["checkpoint_every"] is not None:
            milliseconds(spec["checkpoint_every"], "checkpoint_every")
    except ConfigError as e:
        raise e.in_file(path) from None

    def absolute(name):
        return None if name is None else str((path.parent / name).resolve())

    spec["config"] = absolute(spec["config"])
    spec["patient"] = absolute(spec["patient"])
    spec["interventions"] = [absolute(p) for p in spec["interventions"]]
    if "patient" in spec["grid"]:
        spec["grid"]["patient"] = [absolute(p) for p in spec["grid"]["patient"]]
    spec["file"] = str(path)
    return spec


def expand(spec):
    """The tasks of a campaign: [{'params': {axis: value}, 'args': brainsim run arguments}]."""
    axes = list(spec["grid"])
    tasks = []
    for values in itertools.product(*(spec["grid"][a] for a in axes)):
        params = dict(zip(axes, values))
        patient = params.get("patient", spec["patient"])
        args = [spec["config"]]
        for item in spec["set"]:
            args += ["--set", item]
        for key, value in params.items():
            if key != "patient":
                args += ["--set", f"{key}={json.dumps(value)}"]  # JSON: a YAML flow value
        if patient is not None:
            args += ["--patient", patient]
        for file in spec["interventions"]:
            args += ["--intervention", file]
        tasks.append({"params": params, "args": args})
    return tasks


def sweep(path, jobs_dir="jobs", dry_run=False, log=print):
    """Render the campaign at path into jobs_dir/<name>/ as one job array and submit it (unless dry_run);
    returns the campaign record (also written as campaign.json)."""
    from ..api import load_config
    from ..engine.integrators import check_petsc_options
    from ..model.recipe import Recipe

    spec = load_campaign(path)
    tasks = expand(spec)
    for i, task in enumerate(tasks):  # every task's config must be valid before anything is submitted
        args = task["args"]
        sets = [args[k + 1] for k in range(len(args)) if args[k] == "--set"]
        try:
            config = load_config(
                args[0], sets, patient=_after(args, "--patient"), interventions=spec["interventions"]
            )
            check_petsc_options(Recipe(config))
        except ConfigError as e:
            raise ConfigError(
                e.path, e.value, e.allowed, f"task {i} {task['params']}: {e.detail or ''}".strip(), e.file
            ) from None
    folder = Path(jobs_dir).resolve() / spec["name"]
    job = RunJob(
        spec["name"],
        [t["args"] for t in tasks],
        folder,
        spec["nodes"],
        spec["ntasks_per_node"],
        spec["time"],
        load_profile(spec["profile"]),
        spec["partition"],
        spec["account"],
        spec["checkpoint_every"],
        array=True,
    )
    [script] = write_scripts(job, command="sweep")
    record = {"name": spec["name"], "file": spec["file"], "tasks": tasks, "script": str(script), "job": None}
    if dry_run:
        log(script.read_text())
        log(f"dry run: {len(tasks)} tasks written to {folder}, nothing submitted")
    else:
        record["job"] = sbatch(script, f"--array=0-{len(tasks) - 1}")
        log(f"submitted job array {record['job']} of {len(tasks)} tasks ({script})")
    with writing(folder / "campaign.json", "the campaign record"):
        (folder / "campaign.json").write_text(json.dumps(record, indent=2))
    return record


def _after(args, flag):
    return args[args.index(flag) + 1] if flag in args else None


@dataclass
class Collected:
    folder: Path
    rows: list  # per task: params, status, error, summary figures

    def lines(self):
        counts = {}
        for row in self.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        out = [
            f"campaign {self.folder.name}: {len(self.rows)} tasks, "
            + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        ]
        for row in self.rows:
            params = " ".join(f"{k}={v}" for k, v in row["params"].items())
            figures = (
                f"rate {row['mean_rate']:.3g} Hz, hypersynchrony {row['hypersynchrony']:.3g}, "
                f"alerts {row['alerts']}"
                if row["summary"]
                else ""
            )
            problem = f" -- {row['error']}" if row["error"] else ""
            out.append(f"  task {row['task']:>3} [{row['status']}] {params}  {figures}{problem}")
        return out


def collect(folder, out=None, write=True):
    """Gather a campaign's tasks: status, error and summary figures (mean over regions of the mean rate,
    hypersynchrony and E/I balance, alerts) per task; written (if `write`) as collect.csv into the folder
    (or to `out`)."""
    import xarray as xr

    folder = Path(folder)
    record_file = folder / "campaign.json"
    if not record_file.is_file():
        raise StoreError(folder, "not a campaign folder (no campaign.json; `brainsim sweep` writes it)")
    try:
        record = json.loads(record_file.read_text())
        tasks, job = record["tasks"], record["job"]
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise StoreError(
            record_file, f"not a campaign record ({type(e).__name__}: {e}; `brainsim sweep` writes it)"
        ) from None
    rows = []
    for i, task in enumerate(tasks):
        task_folder = folder / f"task-{i}"
        status, error = _task_status(task_folder / "run.zarr")
        error = error or (_log_tail(folder, job, i) if status in ("missing", "failed") else None)
        row = {"task": i, "params": task["params"], "status": status, "error": error, "summary": None}
        row.update(mean_rate=np.nan, hypersynchrony=np.nan, ei_balance=np.nan, alerts="")
        summary = task_folder / "run.summary.zarr"
        if (summary / "zarr.json").is_file():
            try:
                ds = xr.open_zarr(summary)
                row.update(
                    summary=str(summary),
                    mean_rate=float(ds.mean_rate.mean()),
                    hypersynchrony=float(ds.hypersynchrony.mean()),
                    ei_balance=float(ds.ei_balance.mean()),
                    alerts=len(json.loads(ds.attrs.get("alerts", "[]"))),
                )
            except STORE_FAULTS as e:
                row["error"] = f"{summary}: unreadable summary ({type(e).__name__}: {e})"
        elif status == "complete":
            row["status"] = "complete, not summarised"
        rows.append(row)
    if write:
        out = Path(out) if out else folder / "collect.csv"
        try:
            _write_table(record, rows, out)
        except OSError as e:
            raise StoreError(out, f"cannot write the table there ({e.strerror or e})") from None
    return Collected(folder, rows)


def _task_status(path):
    """(status, error) of a task's run store: 'missing' where there is none, 'unreadable' where it is
    damaged (the error says how)."""
    if not (path / "zarr.json").is_file():
        return "missing", None
    try:
        store = RunStore.open(path)
    except StoreError as e:
        return "unreadable", str(e)
    return store.status, store.error


def _write_table(record, rows, out):
    with out.open("w", newline="") as f:
        axes = list(record["tasks"][0]["params"]) if record["tasks"] else []
        writer = csv.writer(f)
        writer.writerow(
            ["task", *axes, "status", "mean_rate_hz", "hypersynchrony", "ei_balance", "alerts", "error"]
        )
        for row in rows:
            writer.writerow(
                [row["task"], *(row["params"][a] for a in axes), row["status"], row["mean_rate"],
                 row["hypersynchrony"], row["ei_balance"], row["alerts"], row["error"] or ""]
            )  # fmt: skip


def _log_tail(folder, job, index):
    """The last lines of a task's SLURM log, where the run left no store to say what went wrong."""
    logs = sorted(folder.glob(f"slurm-{job}_{index}.out")) if job else []
    if not logs:
        return "no output store and no log: the task has not run (yet)"
    lines = [line for line in logs[-1].read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-3:])
