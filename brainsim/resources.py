"""The files shipped with brainsim: the configs (the data package brainsim.configs, the configs/ folder of the
source tree) and the SLURM templates and site profiles (brainsim.slurm, the slurm/ folder).

They are found with importlib.resources, so an installed wheel and an editable install read them alike, from
any working directory. The paths are real files: a config's relative file names (morphologies, connectomes)
resolve against its folder as for any other config."""

from importlib.resources import files
from pathlib import Path

from .errors import BrainsimError


def _folder(package) -> Path:
    folder = files(package)
    if not isinstance(folder, Path):
        raise BrainsimError(
            f"the package data {package} is not a folder on disk ({folder}); allowed: brainsim installed "
            "unpacked (pip install)"
        )
    return folder


def config_file(name) -> Path:
    """A shipped config or data file by its path inside configs/: 'demo.yaml', 'patients/example.yaml'."""
    return _folder("brainsim.configs") / name


def template(name) -> Path:
    """A batch-script template of slurm/templates, e.g. 'run.sbatch'."""
    return _folder("brainsim.slurm") / "templates" / name


def profiles() -> Path:
    """The folder of the shipped site profiles (slurm/profiles/<name>.yaml)."""
    return _folder("brainsim.slurm") / "profiles"


def synthetic_connectome() -> Path:
    """The shipped synthetic 68-region TVB connectivity zip (configs/connectomes/synthetic_68.zip)."""
    return config_file("connectomes/synthetic_68.zip")
