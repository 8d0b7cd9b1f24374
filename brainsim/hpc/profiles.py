"""Site profiles (`slurm/profiles/<name>.yaml`): what a SLURM site needs in a batch script."""

from pathlib import Path

from .. import resources
from ..config.load import read_yaml
from ..config.options import REQUIRED, Int, ListOf, Num, Section, Str
from ..errors import ConfigError

PROFILES = resources.profiles()
DEFAULT = "generic"

PROFILE = Section(
    {
        "name": Str(REQUIRED, "profile name"),
        "description": Str("-", "free text"),
        "partition": Str(None, "default partition (--partition overrides it)"),
        "account": Str(None, "default account (--account overrides it)"),
        "cores_per_node": Int(None, "cores of one node (used to size jobs)", ge=1),
        "memory_per_node_gb": Num(None, "GB", "memory of one node", gt=0),
        "modules": ListOf(Str(), [], "modules loaded before the run (`module load ...`)"),
        "setup": ListOf(Str(), [], "shell lines run before the run (e.g. `source /path/venv/bin/activate`)"),
        "launcher": Str("srun", "how the batch script starts the ranks, e.g. `srun --mpi=pmix`"),
        "python": Str(None, "the python with brainsim on the compute nodes (default: the one submitting)"),
        "signal_seconds": Int(
            300, "seconds before the time limit at which the job is told to checkpoint", ge=1
        ),
        "sbatch": ListOf(Str(), [], "extra #SBATCH options, e.g. `--constraint=cpu`"),
        "max_restarts": Int(20, "most times a job requeues itself", ge=0),
    }
)


def available():
    return sorted(p.stem for p in PROFILES.glob("*.yaml"))


def load_profile(name=None):
    """A profile by name (a file of slurm/profiles) or path; ConfigError naming the key on bad content."""
    name = name or DEFAULT
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILES / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError("--profile", name, f"a file or one of the profiles {available()} in {PROFILES}")
    raw = read_yaml(path)
    try:
        return PROFILE.resolve(raw, "")
    except ConfigError as e:
        raise e.in_file(path) from None
