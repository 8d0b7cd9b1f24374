"""The `brainsim` command: run, validate, partition, summarize, report, compare, observe, feed, fork, plan,
calibrate, submit, sweep, collect, status, info, mechanisms, fit, follow."""

import argparse
import json
import logging
import platform
import signal
import sys
import warnings
from pathlib import Path

from . import __version__, resources
from .engine.settings import milliseconds
from .errors import BrainsimError, BrainsimWarning, ConfigError, Interrupted, MorphologyError, NumericalError
from .files import check_writable

EXIT_FAILED, EXIT_CONFIG, EXIT_NUMERICAL = 1, 2, 3
EXIT_CHECKPOINTED = 75
"""Stopped by SIGTERM/SIGUSR1 after writing a checkpoint (EX_TEMPFAIL: run it again with --resume)."""
EXIT_ALERT = 4
"""`summarize --fail-on-alert`: an alert rule matched."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (SIGINT): after a checkpoint, or at once on a second Ctrl-C."""

DEMO = resources.config_file("demo.yaml")
WHOLE_BRAIN = resources.config_file("whole_brain.yaml")


def main(argv=None):
    # After a failed write (a full disk), zarr's other pending writes are abandoned; asyncio would report
    # each of them at exit, after the one `brainsim:` line that says what happened.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    parser = _parser()
    args, petsc_args = parser.parse_known_args(argv)
    if petsc_args and (args.command != "run" or not petsc_args[0].startswith("-")):
        parser.error(f"unrecognised arguments: {' '.join(petsc_args)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", BrainsimWarning)
            warnings.showwarning = _show_warning(warnings.showwarning)
            return args.func(args, petsc_args)
    except ConfigError as e:
        return _report(e.from_overlay(getattr(args, "overlays", {})), EXIT_CONFIG)
    except MorphologyError as e:
        return _report(e, EXIT_CONFIG)
    except NumericalError as e:
        return _report(e, EXIT_NUMERICAL)
    except Interrupted as e:
        code = _stop_code(e.signal_name)
        written = "a checkpoint was written" if e.checkpoint else "no checkpoint was written: run it again"
        return _report(f"{e}; the store is marked interrupted, {written}", code)
    except BrainsimError as e:
        return _report(e, EXIT_FAILED)
    except KeyboardInterrupt as e:
        return _report(f"interrupted at once ({e or 'SIGINT'}); the store is marked failed", EXIT_INTERRUPTED)
    except OSError as e:  # a file operation no command expected to fail: name the file and the reason
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        return _report(f"{where or 'a file'}: {e.strerror or e}", EXIT_FAILED)


def _show_warning(default):
    """warnings.showwarning that prints a BrainsimWarning as a `brainsim: warning:` line (rank 0)."""

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, BrainsimWarning):
            return default(message, category, filename, lineno, file, line)
        if _rank() == 0:
            print(f"brainsim: warning: {message}", file=sys.stderr)

    return show


def _report(message, code):
    """Print an error once (on rank 0 of an MPI run; a failing rank's message reaches rank 0)."""
    if _rank() == 0:
        print(f"brainsim: {message}", file=sys.stderr)
    return code


def _progress(line):
    """Progress lines of long commands go to stderr, results to stdout."""
    print(line, file=sys.stderr)


def _rank():
    if "mpi4py.MPI" not in sys.modules:
        return 0
    return sys.modules["mpi4py.MPI"].COMM_WORLD.Get_rank()


def _parser():
    parser = argparse.ArgumentParser(prog="brainsim", description=__doc__)
    parser.add_argument("--version", action="version", version=f"brainsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run a config (default: the built-in demo)",
        description="Run a config. PETSc options (e.g. -ts_type cn -ts_adapt_type basic) may "
        "follow and override simulation.petsc.",
    )
    run.add_argument("config", nargs="?", default=str(DEMO), help="YAML config (default: configs/demo.yaml)")
    _overlay_arguments(run)
    run.add_argument("-o", "--output", help="Zarr store to write (default: output.path)")
    run.add_argument(
        "--overwrite", action="store_true", default=None, help="replace an existing output store"
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    run.add_argument(
        "--checkpoint-every",
        metavar="TIME",
        help="write a checkpoint every TIME of simulated time, e.g. 50ms",
    )
    run.add_argument("--checkpoint", metavar="FOLDER", help="checkpoint folder (default <output>.checkpoint)")
    run.add_argument("--resume", metavar="CHECKPOINT", help="continue the run from a checkpoint folder")
    run.add_argument(
        "--partition", metavar="FILE", help="use this decomposition (written by `brainsim partition -o`)"
    )
    run.set_defaults(func=_run)

    partition = sub.add_parser(
        "partition",
        help="show (or write) how cells are spread over N ranks",
        description="Show the cells, equations and estimated cost per rank for N ranks, and the imbalance.",
    )
    partition.add_argument("config")
    _overlay_arguments(partition)
    partition.add_argument("--ranks", type=int, required=True)
    partition.add_argument("-o", "--output", help="write the decomposition (JSON) for `run --partition`")
    partition.set_defaults(func=_partition)

    validate = sub.add_parser(
        "validate",
        help="check a config without running it; its size and memory, and whether it fits on N ranks",
    )
    validate.add_argument("config")
    _overlay_arguments(validate)
    validate.add_argument(
        "--ranks", type=int, help="refuse the model unless its cells fit in the memory of this many ranks"
    )
    validate.add_argument(
        "--memory-per-rank",
        type=float,
        metavar="GB",
        help="memory one rank may use (default: the --profile's node memory per core, else this machine's)",
    )
    validate.add_argument("--profile", help="site profile (slurm/profiles) for the memory per rank")
    validate.set_defaults(func=_validate)

    summarize = sub.add_parser(
        "summarize",
        help="turn a run's store into its twin summary (Dask)",
        description="Region rates, irregularity, synchrony, LFP/EEG proxies, band power, BOLD, functional "
        "connectivity and twin indicators of a run, computed with Dask in bounded memory; alert rules "
        "(the run config's summary.alerts and --alerts files) are evaluated on the result.",
    )
    summarize.add_argument("run", help="the run's Zarr store")
    summarize.add_argument("-o", "--output", help="summary store to write (default RUN.summary.zarr)")
    summarize.add_argument(
        "--scheduler",
        default="local",
        help="local (default: worker processes on this machine), tcp://host:port, slurm (dask-jobqueue), "
        "mpi (dask-mpi, under mpiexec/srun), threads or sync",
    )
    summarize.add_argument("--workers", type=int, help="Dask workers (local: default one per core)")
    summarize.add_argument("--bin", type=float, help="time bin, ms (default summary.bin of the run config)")
    summarize.add_argument("--window", type=float, help="indicator window, ms (default summary.window)")
    summarize.add_argument("--tr", type=float, help="BOLD sampling interval, ms (default summary.tr)")
    summarize.add_argument(
        "--alerts", action="append", default=[], metavar="FILE", help="YAML file of alert rules (repeatable)"
    )
    summarize.add_argument(
        "--fail-on-alert", action="store_true", help=f"exit with status {EXIT_ALERT} when any alert matches"
    )
    summarize.add_argument("--overwrite", action="store_true", help="replace an existing summary store")
    summarize.set_defaults(func=_summarize)

    report = sub.add_parser(
        "report", help="write a summary, a fit or a twin store as one self-contained HTML page"
    )
    report.add_argument(
        "summary",
        help="a summary store (from `brainsim summarize`), a fit's folder (`brainsim fit -o`) or a twin "
        "store (`brainsim follow -o TWIN.zarr`)",
    )
    report.add_argument(
        "-o",
        "--output",
        help="HTML file (default SUMMARY.html beside the store, FIT_DIR/report.html, TWIN.html)",
    )
    report.add_argument(
        "--watch",
        nargs="?",
        const=10.0,
        type=float,
        metavar="SECONDS",
        help="with a twin store: rewrite the page as windows arrive (looking every SECONDS, default 10; the "
        "page reloads itself) until the follow is complete",
    )
    report.set_defaults(func=_html_report)

    compare = sub.add_parser(
        "compare",
        help="per-region differences of summaries, and treatments ranked by distance to a target",
        description="Compare each TREATED summary with BASELINE (per-region differences and effect sizes) "
        "and rank all of them by their distance to a target summary (default: the baseline). Given one "
        "folder of forked futures' summaries (`brainsim fork`, then summarize), report each treatment's "
        "effect relative to the untreated future with its 95 % interval over the posterior's members, and "
        "P(A beats B) on --measure.",
    )
    compare.add_argument("baseline", help="baseline summary store, or a fork's folder of summaries")
    compare.add_argument("treated", nargs="*", help="summary stores to compare with it")
    compare.add_argument("--target", help="summary store to rank by distance to (e.g. a healthy twin)")
    compare.add_argument(
        "--measure",
        default="mean_rate",
        help="futures: the feature a treatment's score is the change of (default mean_rate)",
    )
    compare.add_argument(
        "--regions",
        nargs="+",
        metavar="REGION",
        help="futures: the regions the score averages over (default all)",
    )
    compare.add_argument(
        "--goal",
        choices=["higher", "lower"],
        default="higher",
        help="futures: a treatment beats another when its score is higher (default) or lower",
    )
    compare.add_argument(
        "-o", "--output", help="folder for the tables (CSV) and figure (PNG) of the comparison"
    )
    compare.set_defaults(func=_compare)

    fork = sub.add_parser(
        "fork",
        help="treatments forked from the state of a run (or of each member of a fit) at time T",
        description="Continue futures from one state at --at T without simulating [0, T] again: SOURCE is "
        "a run store (its checkpoint at or before T is used), a checkpoint folder, a config file (simulated "
        "once to T in memory) or a fit's folder (every posterior member is run to T once). Writes "
        "OUT/<intervention stem>.zarr and OUT/none.zarr (the untreated continuation), or "
        "OUT/member-NNN/<label>.zarr for a fit; each store records its parent, fork_time and state_hash.",
    )
    fork.add_argument("source", help="run store, checkpoint folder, config file or fit folder")
    fork.add_argument("--at", type=float, required=True, metavar="T", help="the fork time, ms")
    fork.add_argument(
        "--intervention",
        action="append",
        default=[],
        metavar="FILE",
        help="a treatment (YAML) acting from T on: one future each (repeatable)",
    )
    fork.add_argument("-o", "--output", required=True, metavar="DIR", help="folder of the futures' stores")
    fork.add_argument(
        "--tstop", type=float, metavar="MS", help="the futures' stop time (default the source's)"
    )
    fork.add_argument("--config", help="the config of a checkpoint folder (default: its run store's)")
    fork.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a value of the source's config (what the state depends on must stay the same)",
    )
    fork.add_argument(
        "--summarize", action="store_true", help="summarize each future (where it ran, one after another)"
    )
    fork.add_argument(
        "--scheduler",
        default="local",
        help="a fit's folder: where the members' forks run, local, dask, tcp://host:port, slurm, "
        "slurm-array or mpi (default local)",
    )
    fork.add_argument(
        "--workers", type=int, help="a fit's folder: worker processes, SLURM jobs or MPI groups"
    )
    fork.add_argument(
        "--profile", help="a fit's folder: site profile (slurm/profiles) for slurm and slurm-array"
    )
    fork.add_argument(
        "--member-time",
        default="01:00:00",
        metavar="HH:MM:SS",
        help="a fit's folder: each member's time limit as a slurm-array task (default 01:00:00)",
    )
    fork.add_argument("--overwrite", action="store_true", help="replace the futures' existing stores")
    fork.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    fork.set_defaults(func=_fork)

    observe = sub.add_parser(
        "observe",
        help="a patient's recordings (EEG, fMRI, region rates) into an observation store for a fit",
        description="Read EEG (EDF/BDF, BrainVision, FIF, EEGLAB, ... through MNE), BOLD region time series "
        "(TSV/CSV/.npy/.npz, or a 4-D NIfTI with --atlas) and region firing rates (--kind rate) into one "
        "store in the summary's layout and units (brainsim/twin/observe.py).",
    )
    observe.add_argument("files", nargs="+", metavar="FILE", help="recordings: at most one of each kind")
    observe.add_argument(
        "--connectome",
        metavar="SPEC",
        help="whose region labels the region time series carry: a run config (.yaml), a TVB connectivity "
        "(.zip, folder, .h5), tvb-data:NAME or a brain.connectome mapping '{kind: ..., ...}'",
    )
    observe.add_argument("-o", "--output", required=True, help="observation store to write (Zarr)")
    observe.add_argument(
        "--bin", type=float, default=1.0, help="time bin, ms: EEG resampled to it; rates sampled every bin"
    )
    observe.add_argument("--tr", type=float, help="BOLD sampling interval, ms (a NIfTI: default its header)")
    observe.add_argument(
        "--kind", choices=["bold", "rate"], default="bold", help="what a table or NumPy file holds"
    )
    observe.add_argument("--labels", metavar="FILE", help="region labels of a .npy/.npz, one per line")
    observe.add_argument("--atlas", metavar="IMAGE", help="3-D atlas image of integer regions for a NIfTI")
    observe.add_argument("--atlas-labels", metavar="FILE", help="the atlas's 'VALUE LABEL' lines")
    observe.add_argument(
        "--bad", action="append", default=[], metavar="CHANNEL", help="EEG channel taken as bad (repeatable)"
    )
    observe.add_argument("--overwrite", action="store_true", help="replace an existing observation store")
    observe.set_defaults(func=_observe)

    feed = sub.add_parser(
        "feed",
        help="replay a recording (or read an LSL stream) into a live observation store, as a sensor would",
        description="Append RECORDING's time series (eeg, rate) chunk by chunk to the live observation "
        "store LIVE.zarr at --speed x real time, publishing in LIVE.zarr/live.json how far it is final "
        "(brainsim/twin/feed.py, brainsim/twin/live.py). RECORDING: an observation store, an EEG file "
        "(read as `brainsim observe` reads it) or lsl://NAME, a Lab Streaming Layer EEG stream. Ctrl-C "
        "or SIGTERM stops it, leaving what was fed published.",
    )
    feed.add_argument("recording", metavar="RECORDING", help="observation store, EEG file or lsl://NAME")
    feed.add_argument("--to", required=True, metavar="LIVE.zarr", help="the live observation store to write")
    feed.add_argument(
        "--speed", type=float, default=1.0, help="recording seconds per wall second (0: as fast as possible)"
    )
    feed.add_argument("--chunk", type=float, default=250.0, help="ms of recording per append (default 250)")
    feed.add_argument("--start", type=float, metavar="MS", help="feed from this time of the recording, ms")
    feed.add_argument("--stop", type=float, metavar="MS", help="feed up to this time of the recording, ms")
    feed.add_argument("--bin", type=float, help="an EEG file's or stream's time bin, ms (default 1)")
    feed.add_argument(
        "--bad", action="append", default=[], metavar="CHANNEL", help="EEG channel taken as bad (repeatable)"
    )
    feed.add_argument("--duration", type=float, metavar="S", help="how long to read a stream, s")
    feed.add_argument("--overwrite", action="store_true", help="replace an existing observation store")
    feed.set_defaults(func=_feed)

    fit = sub.add_parser(
        "fit",
        help="fit a brain's patient parameters to a patient's observations (ensemble Kalman inversion or "
        "CMA-ES)",
        description="Personalise CONFIG to the observation store (`brainsim observe`): the free parameters, "
        "their priors and the features matched are in the fit file (--parameters, e.g. "
        "configs/twin/fit.yaml); each iteration runs every member as one batch on --scheduler. Writes "
        "FIT_DIR/fit.zarr, fit.json, "
        "patient.yaml (the posterior mean, or CMA-ES's best member), posterior/member-NNN.yaml and "
        "report.html (brainsim/twin/fit.py).",
    )
    fit.add_argument("config")
    fit.add_argument("--observations", required=True, metavar="OBS.zarr", help="the patient's observations")
    fit.add_argument("--parameters", required=True, metavar="FIT.yaml", help="the fit file")
    fit.add_argument("--members", type=int, metavar="J", help="ensemble size (default: the fit file's)")
    fit.add_argument("--iterations", type=int, metavar="K", help="most Kalman updates (default: fit file's)")
    fit.add_argument("--seed", type=int, help="seed of the whole fit (default: the fit file's)")
    fit.add_argument(
        "--scheduler",
        default="local",
        help="where members run: local, dask, tcp://host:port, slurm, slurm-array or mpi (default local)",
    )
    fit.add_argument("--workers", type=int, help="worker processes, SLURM jobs or MPI groups")
    fit.add_argument("--profile", help="site profile (slurm/profiles) for slurm and slurm-array")
    fit.add_argument(
        "--member-time",
        default="01:00:00",
        metavar="HH:MM:SS",
        help="each member's time limit as a slurm-array task (default 01:00:00)",
    )
    fit.add_argument(
        "--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a value of the config"
    )
    fit.add_argument("-o", "--output", required=True, metavar="FIT_DIR", help="the fit's folder")
    fit.add_argument("--resume", action="store_true", help="continue the interrupted fit in FIT_DIR")
    fit.add_argument("--overwrite", action="store_true", help="replace the fit in FIT_DIR")
    fit.set_defaults(func=_fit)

    follow = sub.add_parser(
        "follow",
        help="follow a patient's observations as they arrive: an ensemble of twins corrected window by "
        "window (ensemble Kalman filter), forecasting ahead and warning before an alert rule's event",
        description="Run J twins of CONFIG (drawn from a fit's last ensemble, or from the priors) window by "
        "window in step with the observations (a live store being fed, or a finished one); after each "
        "window update their parameters by an ensemble Kalman filter, forecast --horizon ms ahead and warn "
        "when at least a rule's probability of the members match it. Writes TWIN.zarr, TWIN.members/ and "
        "TWIN.warnings.jsonl; the same command again continues after the last completed window "
        "(brainsim/twin/follow.py).",
    )
    follow.add_argument("config")
    follow.add_argument(
        "--patient", required=True, metavar="PATIENT.yaml",
        help="the patient overlay: FIT_DIR/patient.yaml (members from the fit's last ensemble) or another",
    )  # fmt: skip
    follow.add_argument("--observations", required=True, metavar="LIVE.zarr", help="the observation store")
    follow.add_argument("--window", required=True, type=float, metavar="MS", help="window length (ms)")
    follow.add_argument("--horizon", required=True, type=float, metavar="MS", help="forecast length (ms)")
    follow.add_argument("--members", required=True, type=int, metavar="J", help="ensemble size")
    follow.add_argument("--alerts", required=True, metavar="RULES.yaml", help="YAML file of alert rules")
    follow.add_argument(
        "--parameters", metavar="FOLLOW.yaml", help="a fit file (default: the fit's, with a FIT_DIR patient)"
    )
    follow.add_argument("--seed", type=int, help="seed of the whole follow (default: the fit file's)")
    follow.add_argument(
        "--scheduler", default="local", help="where members run: local, dask, tcp://host:port, slurm, "
        "slurm-array, mpi (as for fit)",
    )  # fmt: skip
    follow.add_argument("--workers", type=int, help="worker processes, SLURM jobs or MPI groups")
    follow.add_argument("--profile", help="site profile (slurm/profiles) for slurm and slurm-array")
    follow.add_argument(
        "--fail-on-warning", action="store_true",
        help=f"exit with status {EXIT_ALERT} after the first window whose forecast warned",
    )  # fmt: skip
    follow.add_argument(
        "--poll", type=float, default=0.25, metavar="S", help="s between looks at a live store (default 0.25)"
    )
    follow.add_argument("-o", "--output", required=True, metavar="TWIN.zarr", help="the twin store")
    follow.add_argument("--overwrite", action="store_true", help="replace TWIN.zarr (and its members)")
    follow.set_defaults(func=_follow)

    plan = sub.add_parser(
        "plan",
        help="what a run needs: cells, equations, memory per rank, wall time; ranks for a target time "
        "(--fit: what a fit needs: member runs, core-hours, wall time; --follow: whether a follower keeps "
        "up with the patient)",
    )
    plan.add_argument("config")
    _overlay_arguments(plan)
    plan.add_argument("--ranks", type=int, required=True)
    plan.add_argument("--profile", help="site profile (slurm/profiles) for cores per node")
    plan.add_argument(
        "--target-time", metavar="HH:MM:SS", help="recommend ranks and nodes for this wall time"
    )
    plan.add_argument(
        "--fit",
        metavar="FIT.yaml",
        help="plan `brainsim fit CONFIG --parameters FIT.yaml` instead: member runs, core-hours, wall time "
        "on --ranks (brainsim/twin/plan_fit.py)",
    )
    plan.add_argument(
        "--follow",
        action="store_true",
        help="plan `brainsim follow CONFIG --patient PATIENT.yaml` instead: the real-time factor (wall s per "
        "patient s) on --ranks and the allocation that keeps up (brainsim/twin/plan_follow.py)",
    )
    plan.add_argument(
        "--members", type=int, metavar="J",
        help="with --fit: ensemble size (default: fit file's); with --follow: the follower's (required)",
    )  # fmt: skip
    plan.add_argument(
        "--iterations", type=int, metavar="K", help="with --fit: most iterations (default: the fit file's)"
    )
    plan.add_argument(
        "--ranks-per-member", type=int, metavar="R",
        help="with --fit or --follow: ranks of one member run (default 1)",
    )  # fmt: skip
    plan.add_argument("--window", type=float, metavar="MS", help="with --follow: window length (ms)")
    plan.add_argument("--horizon", type=float, metavar="MS", help="with --follow: forecast length (ms)")
    plan.add_argument(
        "--target-factor", type=float, metavar="X",
        help="with --follow: the real-time factor to meet (default 1: keep up with the patient)",
    )  # fmt: skip
    plan.set_defaults(func=_plan)

    calibrate = sub.add_parser(
        "calibrate", help="measure this machine's cost per compartment-step for `plan`"
    )
    calibrate.add_argument(
        "config", nargs="?", default=str(WHOLE_BRAIN), help="default: configs/whole_brain.yaml"
    )
    calibrate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    calibrate.add_argument("--tstop", type=float, default=5.0, help="simulated ms per method (default 5)")
    calibrate.add_argument(
        "-o", "--output", help="calibration file (default $BRAINSIM_CALIBRATION or ~/.config)"
    )
    calibrate.set_defaults(func=_calibrate)

    submit = sub.add_parser(
        "submit",
        help="write jobs/<run>/job.sbatch, submit it with sbatch, chain its summary (afterok)",
        description="Render slurm/templates for a run (srun, the site profile's launcher and modules, "
        "--signal=B:USR1 and --requeue: the run checkpoints before the time limit and resumes), submit "
        "it and a `brainsim summarize` job that runs after it.",
    )
    submit.add_argument("config")
    _overlay_arguments(submit)
    submit.add_argument("--nodes", type=int, default=1)
    submit.add_argument("--ntasks-per-node", type=int, default=1)
    submit.add_argument("--time", default="01:00:00", help="time limit per job start (HH:MM:SS)")
    submit.add_argument("--partition")
    submit.add_argument("--account")
    submit.add_argument(
        "--profile", help="site profile: a name in slurm/profiles or a file (default generic)"
    )
    submit.add_argument("--name", help="run name (default: the config's name)")
    submit.add_argument("--jobs-dir", default="jobs", help="where the job folder goes (default ./jobs)")
    submit.add_argument("--checkpoint-every", metavar="TIME", help="periodic checkpoints, e.g. 50ms")
    submit.add_argument("--no-summary", action="store_true", help="do not chain a summarize job")
    submit.add_argument("--dry-run", action="store_true", help="write and show the scripts, submit nothing")
    submit.set_defaults(func=_submit)

    sweep = sub.add_parser("sweep", help="a campaign file's grid of runs as one SLURM job array")
    sweep.add_argument("campaign", help="campaign YAML (e.g. jobs/dose_sweep.yaml)")
    sweep.add_argument("--jobs-dir", default="jobs")
    sweep.add_argument("--dry-run", action="store_true")
    sweep.set_defaults(func=_sweep)

    collect = sub.add_parser("collect", help="gather a campaign's task summaries into one table")
    collect.add_argument("folder", help="the campaign's folder (jobs/<campaign>)")
    collect.add_argument("-o", "--output", help="CSV file (default <folder>/collect.csv)")
    collect.set_defaults(func=_collect)

    status = sub.add_parser(
        "status", help="state and progress of a run store, job folder, campaign or job id"
    )
    status.add_argument("target")
    status.add_argument("--field", choices=["status"], help="print only this (for scripts)")
    status.add_argument("--jobs-dir", default="jobs", help="where job folders are looked up (default ./jobs)")
    status.set_defaults(func=_status)

    info = sub.add_parser("info", help="versions of brainsim and its dependencies")
    info.set_defaults(func=_info)

    mechanisms = sub.add_parser(
        "mechanisms",
        help="list the NMODL (.mod) mechanisms of a folder: kind, states, parameters, ions, or why one "
        "cannot be translated (exit status 1 when one cannot)",
    )
    mechanisms.add_argument("folder", help="a folder of .mod files")
    mechanisms.set_defaults(func=_mechanisms)
    return parser


def _overlay_arguments(parser):
    """--set, --patient and --intervention: what is laid over a config."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value, e.g. --set simulation.tstop=50 (repeatable)",
    )
    parser.add_argument("--patient", metavar="FILE", help="patient overlay (YAML), e.g. configs/patients/...")
    parser.add_argument(
        "--intervention",
        action="append",
        default=[],
        metavar="FILE",
        help="intervention (YAML), e.g. configs/interventions/sodium_block.yaml (repeatable)",
    )


def _load(args):
    """The config of a command, with its --set, --patient and --intervention, after every check."""
    from .api import load_config

    config = load_config(args.config, args.set, patient=args.patient, interventions=args.intervention)
    args.overlays = config.overlays  # to name the file of a later error in an overlay
    return config


def _run(args, petsc_args):
    early = []  # stop signals that arrive while the run is being set up: it stops at its first epoch
    for number in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(number, lambda signum, frame: early.append(signal.Signals(signum).name))
    from .api import run
    from .io.sonata import report_path
    from .parallel.context import Context

    context = Context.world()
    store = run(
        _load(args),
        args.output,
        overwrite=args.overwrite,
        context=context,
        progress=not args.quiet,
        decomposition=args.partition,
        resume=args.resume,
        checkpoint=args.checkpoint,
        checkpoint_every=None if args.checkpoint_every is None else milliseconds(args.checkpoint_every),
        petsc_args=petsc_args,
        early_signals=early,
    )
    if context.is_root:
        counts, timing = store.counts, store.timing
        ranks = f" on {context.size} ranks" if context.size > 1 else ""
        print(f"output: {store.path}")
        if store.config["output"].get("sonata"):
            print(f"spike report: {report_path(store.path)}")
        print(
            f"cells {counts['cells']}  compartments {counts['compartments']}  "
            f"equations {counts['equations']}  spikes {store.n_spikes}"
        )
        print(
            f"simulated {store.t_reached:g} ms in {timing['steps']:.0f} steps{ranks}: build "
            f"{timing['build_s']:.2f} s, run {timing['run_s']:.2f} s, "
            f"{timing['ns_per_compartment_step']:.1f} ns per compartment-step"
        )
    return 0


def _partition(args, petsc_args):
    from .model.recipe import Recipe
    from .parallel.partition import Decomposition, cost_runs, summary

    if args.ranks < 1:
        raise ConfigError("--ranks", args.ranks, "a whole number of ranks >= 1")
    if args.output:
        check_writable(args.output, "the decomposition")
    recipe = Recipe(_load(args))
    decomposition = Decomposition.balanced(cost_runs(recipe), args.ranks)
    rows, imbalance = summary(decomposition, recipe)
    print(f"{'rank':>6} {'gids':>17} {'cells':>8} {'equations':>12} {'est. cost':>12}")
    for r, (cells, equations, cost) in enumerate(rows):
        lo, hi = decomposition.bounds[r], decomposition.bounds[r + 1] - 1
        gids = f"{lo}-{hi}" if cells else "-"
        print(f"{r:>6} {gids:>17} {cells:>8} {equations:>12} {cost:>12.0f}")
    print(f"imbalance (largest / mean estimated cost): {imbalance:.3f}")
    if args.output:
        decomposition.save(args.output)
        print(f"written: {args.output} (use with `brainsim run --partition {args.output}`)")
    return 0


def _validate(args, petsc_args):
    from .engine.integrators import check_petsc_options
    from .engine.interventions import describe
    from .hpc.plan import check_memory, gb, memory_bound, plan, ranks_needed
    from .hpc.profiles import load_profile
    from .model.recipe import Recipe

    if args.ranks is not None and args.ranks < 1:
        raise ConfigError("--ranks", args.ranks, "a whole number of ranks >= 1")
    if args.memory_per_rank is not None and not args.memory_per_rank > 0:
        raise ConfigError("--memory-per-rank", args.memory_per_rank, "a memory per rank > 0 GB")
    bound = memory_bound(args.memory_per_rank, load_profile(args.profile) if args.profile else None)
    recipe = Recipe(_load(args))
    check_petsc_options(recipe)
    config = recipe.config
    p = plan(config, args.ranks or 1, recipe=recipe)
    check_memory(p, recipe, bound, ranks_given=args.ranks is not None)
    print(f"{args.config}: valid ({p['cells']} cells, {p['equations']} equations)")
    low, high = p["memory_per_rank_gb"]
    memory = (
        f"{gb(high)} GB" if p["ranks"] == 1 else f"{gb(low)}-{gb(high)} GB per rank on {p['ranks']} ranks"
    )
    print(
        f"  size: {p['compartments']:,} compartments, {p['synapses']:,} synapses; memory {memory} "
        f"(at most {gb(bound[0])} GB per rank: {bound[1]})"
    )
    need = ranks_needed(p, bound[0]) if high > bound[0] else None
    if need:
        print(f"  it needs about {need:,} ranks of {gb(bound[0])} GB (check with --ranks)")
    if recipe.brain is not None:
        print(f"  brain: {len(recipe.brain.labels)} regions of {recipe.brain.connectome.source}")
    if config["patient"] is not None:
        print(f"  patient: {config['patient']['id']}")
    for item in config["interventions"]:
        print(f"  {describe(item, config['simulation']['tstop'])}")
    return 0


def _summarize(args, petsc_args):
    from .postprocess.summarize import summarize

    result = summarize(
        args.run,
        args.output,
        scheduler=args.scheduler,
        workers=args.workers,
        bin_ms=args.bin,
        window_ms=args.window,
        tr=args.tr,
        alerts=_alert_rules(args.alerts),
        overwrite=args.overwrite,
        log=_progress,
    )
    print(f"summary: {result.path}")
    for match in result.alerts:
        print(
            f"ALERT {match['rule']}: {match['region']} {match['variable']} from {match['start']:g} to "
            f"{match['end']:g} ms (peak {match['peak']:.3g})"
        )
    if not result.alerts:
        print("no alerts")
    return EXIT_ALERT if result.alerts and args.fail_on_alert else 0


def _alert_rules(files):
    """The alert rules of `--alerts` files (YAML: a mapping with one key, `alerts`, holding a list of
    rules), checked; errors name the file and the key."""
    from .config.load import parse_yaml
    from .config.schema import ALERT

    rules = []
    for file in files:
        try:
            text = Path(file).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(
                "--alerts", file, "a readable YAML file of alert rules", detail=str(e)
            ) from None
        raw = parse_yaml(text, file)
        if not isinstance(raw, dict) or set(raw) != {"alerts"} or not isinstance(raw["alerts"], list):
            allowed = "a mapping with one key, 'alerts', holding a list of rules"
            raise ConfigError("alerts", raw, allowed, file=file)
        try:
            rules += [ALERT.resolve(rule, f"alerts[{i}]") for i, rule in enumerate(raw["alerts"])]
        except ConfigError as e:
            raise e.in_file(file) from None
    return rules


def _html_report(args, petsc_args):
    from .postprocess.report import write_report

    summary = Path(args.summary)
    twin = _store_format(summary) == "brainsim-twin"
    if args.watch is not None and not twin:
        raise ConfigError(
            "--watch", args.watch, f"only with a twin store (`brainsim follow -o`); {summary} is not one"
        )
    if args.watch is not None and not (0 < args.watch < float("inf")):
        raise ConfigError("--watch", args.watch, "a time > 0 (s)")
    if (summary / "fit.zarr").is_dir():
        from .twin.fit_report import write_fit_report

        path = write_fit_report(summary, args.output, log=_progress)
    elif twin:
        from .twin.twin_report import watch, write_twin_report

        if args.watch is None:
            path = write_twin_report(summary, args.output, log=_progress)
        else:
            try:
                path = watch(summary, args.output, every=args.watch, log=_progress)
            except KeyboardInterrupt:
                return _report(f"stopped watching {summary} (Ctrl-C)", EXIT_INTERRUPTED)
    else:
        out = args.output or summary.with_name(summary.name.removesuffix(".zarr") + ".html")
        path = write_report(summary, out, log=_progress)
    print(f"report: {path}")
    return 0


def _store_format(path):
    """The format attribute of the Zarr store at `path`; None when it has none or is unreadable."""
    try:
        attrs = json.loads((Path(path) / "zarr.json").read_text()).get("attributes")
    except (OSError, ValueError, AttributeError):
        return None
    return attrs.get("format") if isinstance(attrs, dict) else None


def _compare(args, petsc_args):
    from .postprocess.compare import (
        compare,
        compare_futures,
        format_comparison,
        format_futures,
        is_fork_folder,
    )

    if not args.treated and is_fork_folder(args.baseline):
        result = compare_futures(
            args.baseline,
            measure=args.measure,
            regions=args.regions,
            goal=args.goal,
            out=args.output,
            log=_progress,
        )
        print(format_futures(result))
        return 0
    result = compare([args.baseline, *args.treated], target=args.target, out=args.output, log=_progress)
    print(format_comparison(result))
    return 0


def _fork(args, petsc_args):
    from .parallel.context import Context
    from .twin.fork import fork, fork_posterior, is_fit_dir

    context = Context.world()
    options = dict(
        tstop=args.tstop,
        overrides=args.set,
        overwrite=args.overwrite,
        context=context,
        progress=not args.quiet,
        log=_progress,
    )
    if is_fit_dir(args.source):
        if args.config:
            raise ConfigError("--config", args.config, "no --config with a fit's folder (fit.json names it)")
        done = fork_posterior(
            args.source,
            args.at,
            args.intervention,
            args.output,
            summarize=args.summarize,
            scheduler=args.scheduler,
            workers=args.workers,
            profile=args.profile,
            member_time=args.member_time,
            **options,
        )
        stores = [] if done is None else [store for member in done.values() for store in member]
    else:
        spread = {
            "--scheduler": args.scheduler != "local",
            "--workers": args.workers is not None,
            "--profile": args.profile,
        }
        for option, given in spread.items():
            if given:
                value = getattr(args, option.removeprefix("--"))
                raise ConfigError(
                    option, value, "only with a fit's folder, whose members' forks it spreads (the futures "
                    "of one state run in this process, on its ranks)",
                )  # fmt: skip
        futures = fork(args.source, args.at, args.intervention, args.output, config=args.config, **options)
        stores = [(future.label, future.path) for future in futures]
        if args.summarize and context.is_root:
            from .postprocess.summarize import summarize

            for future in futures:
                summarize(future.path, scheduler="sync", overwrite=args.overwrite, log=_progress)
    if context.is_root:
        for label, path in stores:
            print(f"{label}: {path}")
    return 0


def _fit(args, petsc_args):
    from .twin.fit import FitStopped, fit

    try:
        record = fit(
            args.config,
            args.observations,
            args.parameters,
            args.output,
            members=args.members,
            iterations=args.iterations,
            scheduler=args.scheduler,
            workers=args.workers,
            profile=args.profile,
            member_time=args.member_time,
            seed=args.seed,
            overrides=args.set,
            overwrite=args.overwrite,
            resume=args.resume,
            log=_progress,
        )
    except FitStopped as e:
        return _report(e, _stop_code(e.signal_name))
    if record is not None:
        for name, p in record["posterior"].items():
            print(f"{name}: {p['mean']:.4g} ± {p['sd']:.2g} (95%: {p['q2.5']:.4g} to {p['q97.5']:.4g})")
        print(f"fit: {args.output}")
    return 0


def _stop_code(signal_name):
    """The exit status of work stopped by a signal: interrupted by Ctrl-C, else stopped for a requeue."""
    return EXIT_INTERRUPTED if signal_name == "SIGINT" else EXIT_CHECKPOINTED


def _follow(args, petsc_args):
    from .twin.follow import FollowStopped, follow

    if not (args.poll > 0):
        raise ConfigError("--poll", args.poll, "a time > 0 (s)")
    try:
        record = follow(
            args.config,
            args.patient,
            args.observations,
            args.output,
            window=args.window,
            horizon=args.horizon,
            members=args.members,
            rules=_alert_rules([args.alerts]),
            parameters=args.parameters,
            seed=args.seed,
            scheduler=args.scheduler,
            workers=args.workers,
            profile=args.profile,
            fail_on_warning=args.fail_on_warning,
            poll_s=args.poll,
            overwrite=args.overwrite,
            log=_progress,
            say=lambda line: print(line, flush=True),
        )
    except FollowStopped as e:
        return _report(e, _stop_code(e.signal_name))
    if record is None:
        return 0
    print(f"follow: {args.output}: {record['windows_done']} window(s), {len(record['warnings'])} warning(s)")
    return EXIT_ALERT if record["stopped_on_warning"] else 0


def _observe(args, petsc_args):
    from .twin.observe import observe

    path = observe(
        args.files,
        args.output,
        connectome=args.connectome,
        kind=args.kind,
        bin_ms=args.bin,
        tr=args.tr,
        labels=args.labels,
        atlas=args.atlas,
        atlas_labels=args.atlas_labels,
        bads=args.bad,
        overwrite=args.overwrite,
        log=_progress,
    )
    print(f"observations: {path}")
    return 0


def _feed(args, petsc_args):
    from .twin.feed import FeedStopped, feed

    try:
        result = feed(
            args.recording,
            args.to,
            speed=args.speed,
            chunk=args.chunk,
            start=args.start,
            stop=args.stop,
            bin_ms=args.bin,
            bads=args.bad,
            duration=args.duration,
            overwrite=args.overwrite,
            log=_progress,
        )
    except FeedStopped as e:
        return _report(e, _stop_code(e.signal_name))
    print(f"live: {result['path']} ({result['t_start']:g} to {result['t_available']:g} ms, complete)")
    return 0


def _plan(args, petsc_args):
    from .hpc.jobs import seconds
    from .hpc.plan import plan
    from .hpc.profiles import load_profile

    if args.ranks < 1:
        raise ConfigError("--ranks", args.ranks, "a whole number of ranks >= 1")
    cores = load_profile(args.profile)["cores_per_node"] if args.profile else None
    target = seconds(args.target_time, "--target-time") if args.target_time else None
    if args.fit is not None and args.follow:
        raise ConfigError("--follow", True, "not with --fit FIT.yaml: the plan of a fit or of a follower")
    for option in ("window", "horizon", "target_factor"):
        if getattr(args, option) is not None and not args.follow:
            flag = "--" + option.replace("_", "-")
            raise ConfigError(flag, getattr(args, option), "only with --follow (the plan of a follower)")
    if args.follow:
        return _plan_follow(args, cores)
    if args.fit is not None:
        return _plan_fit(args, cores, target)
    for option in ("members", "iterations", "ranks_per_member"):
        if getattr(args, option) is not None:
            flag = "--" + option.replace("_", "-")
            raise ConfigError(flag, getattr(args, option), "only with --fit FIT.yaml (the plan of a fit)")
    p = plan(_load(args), args.ranks, cores, target)
    low, high = p["memory_per_rank_gb"]
    print(
        f"{args.config}: {p['cells']:,} cells, {p['compartments']:,} compartments, "
        f"{p['equations']:,} equations, {p['synapses']:,} synapses"
    )
    print(f"on {p['ranks']} ranks: memory per rank {low:.2f}-{high:.2f} GB")
    print(
        f"cost: {p['ns_per_compartment_step']:g} ns per compartment-step ({p['method']}; {p['cost_source']})"
    )
    per_s, total = p["wall_s_per_simulated_s"], p["wall_s"]
    print(f"wall time: {per_s:.3g} s per simulated second, {total:.3g} s for the run (with its warm-up)")
    if target is not None:
        where = ""
        if "recommended_nodes" in p:
            where = f" = {p['recommended_nodes']} node(s) x {p['recommended_ntasks_per_node']} tasks"
        print(f"for {args.target_time}: {p['recommended_ranks']} ranks{where}")
    return 0


def _plan_fit(args, cores, target):
    from .twin.plan_fit import describe, plan_fit

    for option, value in (("--patient", args.patient), ("--intervention", args.intervention or None)):
        if value is not None:
            raise ConfigError(
                option, value, "none with --fit: each member of a fit is CONFIG's patient with the fitted "
                "parameters set (brainsim fit takes --set alone)",
            )  # fmt: skip
    p = plan_fit(
        args.config,
        args.fit,
        args.ranks,
        members=args.members,
        iterations=args.iterations,
        ranks_per_member=1 if args.ranks_per_member is None else args.ranks_per_member,
        cores_per_node=cores,
        target_s=target,
        overrides=args.set,
    )
    print("\n".join(describe(p, args.target_time)))
    return 0


def _plan_follow(args, cores):
    from .twin.plan_follow import describe, plan_follow

    refused = [("--set", args.set or None), ("--intervention", args.intervention or None),
               ("--iterations", args.iterations), ("--target-time", args.target_time)]  # fmt: skip
    for option, value in refused:
        if value is not None:
            why = "--target-factor sets what the follower must meet" if option == "--target-time" else (
                "brainsim follow takes CONFIG and --patient alone"
            )  # fmt: skip
            raise ConfigError(option, value, f"none with --follow: {why}")
    for option in ("members", "window", "horizon"):
        if getattr(args, option) is None:
            raise ConfigError("--" + option, None, "a value with --follow (as brainsim follow requires it)")
    p = plan_follow(
        args.config,
        args.ranks,
        window=args.window,
        horizon=args.horizon,
        members=args.members,
        patient=args.patient,
        ranks_per_member=1 if args.ranks_per_member is None else args.ranks_per_member,
        cores_per_node=cores,
        target_factor=1.0 if args.target_factor is None else args.target_factor,
    )
    print("\n".join(describe(p)))
    return 0


def _calibrate(args, petsc_args):
    from .hpc.plan import calibrate

    record = calibrate(args.config, args.set, args.tstop, args.output, log=_progress)
    for method, ns in record["ns_per_compartment_step"].items():
        print(f"{method}: {ns:.1f} ns per compartment-step")
    return 0


def _submit(args, petsc_args):
    from .engine.integrators import check_petsc_options
    from .hpc.jobs import RunJob, submit
    from .hpc.profiles import load_profile
    from .model.recipe import Recipe

    config = _load(args)  # checked before anything is written
    check_petsc_options(Recipe(config))
    name = args.name or config["name"]
    run_args = [str(Path(args.config).resolve())]
    for item in args.set:
        run_args += ["--set", item]
    if args.patient:
        run_args += ["--patient", str(Path(args.patient).resolve())]
    for file in args.intervention:
        run_args += ["--intervention", str(Path(file).resolve())]
    job = RunJob(
        name,
        [run_args],
        Path(args.jobs_dir).resolve() / name,
        args.nodes,
        args.ntasks_per_node,
        args.time,
        load_profile(args.profile),
        args.partition,
        args.account,
        args.checkpoint_every,
    )
    submit(job, summarize=not args.no_summary, dry_run=args.dry_run)
    return 0


def _sweep(args, petsc_args):
    from .hpc.sweep import sweep

    sweep(args.campaign, args.jobs_dir, args.dry_run)
    return 0


def _collect(args, petsc_args):
    from .hpc.sweep import collect

    result = collect(args.folder, args.output)
    print("\n".join(result.lines()))
    return 0 if all(row["status"] == "complete" for row in result.rows) else EXIT_FAILED


def _status(args, petsc_args):
    from .hpc.status import describe, store_status

    if args.field:
        print(store_status(args.target)[args.field])
    else:
        print("\n".join(describe(args.target, args.jobs_dir)))
    return 0


def _mechanisms(args, petsc_args):
    from .nmodl.listing import listing

    text, failed = listing(args.folder)
    print(text, end="")
    return EXIT_FAILED if failed else 0


def _info(args, petsc_args):
    rows = [("brainsim", __version__), ("python", platform.python_version())]
    for name in ("numpy", "numba", "zarr", "h5py", "dask", "distributed", "xarray", "scipy", "mpi4py"):
        rows.append((name, _version_of(name)))
    try:
        from .parallel.context import init_petsc

        PETSc = init_petsc()
        import petsc4py

        rows.append(("PETSc", ".".join(map(str, PETSc.Sys.getVersion()))))
        rows.append(("petsc4py", petsc4py.__version__))
    except ImportError as e:
        rows.append(("PETSc", f"unavailable ({e})"))
    try:
        from mpi4py import MPI

        rows.append(("MPI", MPI.Get_library_version().splitlines()[0].strip()))
        rows.append(("MPI standard", ".".join(map(str, MPI.Get_version()))))
    except ImportError as e:
        rows.append(("MPI", f"unavailable ({e})"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


def _version_of(module):
    try:
        return __import__(module).__version__
    except ImportError as e:
        return f"unavailable ({e})"


if __name__ == "__main__":
    sys.exit(main())
