"""The `brainsim` command: run, validate, partition, info."""

import argparse
import platform
import sys
from pathlib import Path

from . import __version__
from .errors import BrainsimError, ConfigError, Interrupted, MorphologyError, NumericalError

EXIT_FAILED, EXIT_CONFIG, EXIT_NUMERICAL = 1, 2, 3
EXIT_CHECKPOINTED = 75
"""Stopped by SIGTERM/SIGUSR1 after writing a checkpoint (EX_TEMPFAIL: run it again with --resume)."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (SIGINT): after a checkpoint, or at once on a second Ctrl-C."""

DEMO = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


def main(argv=None):
    parser = _parser()
    args, petsc_args = parser.parse_known_args(argv)
    if petsc_args and (args.command != "run" or not petsc_args[0].startswith("-")):
        parser.error(f"unrecognised arguments: {' '.join(petsc_args)}")
    try:
        return args.func(args, petsc_args)
    except ConfigError as e:
        return _report(e.from_overlay(getattr(args, "overlays", {})), EXIT_CONFIG)
    except MorphologyError as e:
        return _report(e, EXIT_CONFIG)
    except NumericalError as e:
        return _report(e, EXIT_NUMERICAL)
    except Interrupted as e:
        code = EXIT_INTERRUPTED if e.signal_name == "SIGINT" else EXIT_CHECKPOINTED
        return _report(f"{e}; the store is marked interrupted, a checkpoint was written", code)
    except (BrainsimError, FileExistsError) as e:
        return _report(e, EXIT_FAILED)
    except KeyboardInterrupt as e:
        return _report(f"interrupted at once ({e or 'SIGINT'}); the store is marked failed", EXIT_INTERRUPTED)


def _report(message, code):
    """Print an error once (on rank 0 of an MPI run; a failing rank's message reaches rank 0)."""
    if _rank() == 0:
        print(f"brainsim: {message}", file=sys.stderr)
    return code


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

    validate = sub.add_parser("validate", help="check a config without running it")
    validate.add_argument("config")
    _overlay_arguments(validate)
    validate.set_defaults(func=_validate)

    info = sub.add_parser("info", help="versions of brainsim and its dependencies")
    info.set_defaults(func=_info)
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


def _load(args, overrides=None):
    from .config import load_config

    config = load_config(
        args.config,
        args.set if overrides is None else overrides,
        patient=args.patient,
        interventions=args.intervention,
    )
    args.overlays = config.overlays  # to name the file of a later error in an overlay
    return config


def _run(args, petsc_args):
    from .engine.run import run_config
    from .parallel.context import Context

    overrides = list(args.set)
    if args.checkpoint_every is not None:
        overrides.append(f"output.checkpoint_every={_milliseconds(args.checkpoint_every)}")
    if args.checkpoint is not None:
        overrides.append(f"output.checkpoint={args.checkpoint}")
    config = _load(args, overrides)
    context = Context.world()
    summary, path = run_config(
        config,
        context,
        output=args.output,
        overwrite=args.overwrite,
        petsc_args=petsc_args,
        progress=not args.quiet,
        decomposition=args.partition,
        resume=args.resume,
    )
    if context.is_root:
        ranks = f" on {context.size} ranks" if context.size > 1 else ""
        print(f"output: {path}")
        print(
            f"cells {summary.cells}  compartments {summary.compartments}  equations {summary.equations}  "
            f"spikes {summary.spikes}"
        )
        print(
            f"simulated {summary.t_end:g} ms in {summary.steps} steps{ranks}: build {summary.build_s:.2f} s, "
            f"run {summary.run_s:.2f} s, {summary.ns_per_compartment_step:.1f} ns per compartment-step"
        )
    return 0


def _milliseconds(text):
    """'50ms', '0.5s' or '50' (ms) as a number of milliseconds."""
    text = text.strip()
    scale = 1000.0 if text.endswith("s") and not text.endswith("ms") else 1.0
    number = text.removesuffix("ms").removesuffix("s")
    try:
        return float(number) * scale
    except ValueError:
        raise ConfigError("--checkpoint-every", text, "a time such as 50ms, 0.5s or 50 (ms)") from None


def _partition(args, petsc_args):
    from .model.recipe import Recipe
    from .parallel.partition import Decomposition, cell_costs, summary

    if args.ranks < 1:
        raise ConfigError("--ranks", args.ranks, "a whole number of ranks >= 1")
    recipe = Recipe(_load(args))
    decomposition = Decomposition.balanced(cell_costs(recipe), args.ranks)
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
    from .engine.interventions import describe
    from .model.recipe import Recipe

    recipe = Recipe(_load(args))
    recipe.check()
    eq = sum(recipe.cell_type(p.name).n_equations * p.count for p in recipe.populations)
    print(f"{args.config}: valid ({recipe.num_cells} cells, {eq} equations)")
    config = recipe.config
    if recipe.brain is not None:
        print(f"  brain: {len(recipe.brain.labels)} regions of {recipe.brain.connectome.source}")
    if config["patient"] is not None:
        print(f"  patient: {config['patient']['id']}")
    for item in config["interventions"]:
        print(f"  {describe(item, config['simulation']['tstop'])}")
    return 0


def _info(args, petsc_args):
    rows = [("brainsim", __version__), ("python", platform.python_version())]
    for name in ("numpy", "numba", "zarr", "h5py", "dask", "xarray", "mpi4py"):
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
