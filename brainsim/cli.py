"""The `brainsim` command: run, validate, info."""

import argparse
import platform
import sys
from pathlib import Path

from . import __version__
from .errors import BrainsimError, ConfigError, Interrupted, MorphologyError, NumericalError

EXIT_CONFIG, EXIT_NUMERICAL, EXIT_FAILED, EXIT_INTERRUPTED = 2, 3, 1, 130

DEMO = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


def main(argv=None):
    parser = _parser()
    args, petsc_args = parser.parse_known_args(argv)
    if petsc_args and (args.command != "run" or not petsc_args[0].startswith("-")):
        parser.error(f"unrecognised arguments: {' '.join(petsc_args)}")
    try:
        return args.func(args, petsc_args)
    except (ConfigError, MorphologyError) as e:
        print(f"brainsim: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except NumericalError as e:
        print(f"brainsim: {e}", file=sys.stderr)
        return EXIT_NUMERICAL
    except Interrupted as e:
        print(f"brainsim: {e}; the store is marked failed and holds everything up to then", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (BrainsimError, FileExistsError) as e:
        print(f"brainsim: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as e:
        print(f"brainsim: interrupted at once ({e or 'SIGINT'}); the store is marked failed", file=sys.stderr)
        return EXIT_INTERRUPTED


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
    run.add_argument("-o", "--output", help="Zarr store to write (default: output.path)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value, e.g. --set simulation.tstop=50 (repeatable)",
    )
    run.add_argument(
        "--overwrite", action="store_true", default=None, help="replace an existing output store"
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    run.set_defaults(func=_run)

    validate = sub.add_parser("validate", help="check a config without running it")
    validate.add_argument("config")
    validate.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE")
    validate.set_defaults(func=_validate)

    info = sub.add_parser("info", help="versions of brainsim and its dependencies")
    info.set_defaults(func=_info)
    return parser


def _run(args, petsc_args):
    from .config import load_config
    from .engine.run import run_config
    from .parallel.context import Context

    config = load_config(args.config, args.set)
    context = Context.world()
    summary, path = run_config(
        config,
        context,
        output=args.output,
        overwrite=args.overwrite,
        petsc_args=petsc_args,
        progress=not args.quiet,
    )
    if context.is_root:
        print(f"output: {path}")
        print(
            f"cells {summary.cells}  compartments {summary.compartments}  equations {summary.equations}  "
            f"spikes {summary.spikes}"
        )
        print(
            f"simulated {summary.t_end:g} ms in {summary.steps} steps: build {summary.build_s:.2f} s, "
            f"run {summary.run_s:.2f} s, {summary.ns_per_compartment_step:.1f} ns per compartment-step"
        )
    return 0


def _validate(args, petsc_args):
    from .config import load_config
    from .model.recipe import Recipe

    config = load_config(args.config, args.set)
    recipe = Recipe(config)
    recipe.check()
    eq = sum(recipe.cell_type(p.name).n_equations * p.count for p in recipe.populations)
    print(f"{args.config}: valid ({recipe.num_cells} cells, {eq} equations)")
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
