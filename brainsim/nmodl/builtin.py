"""brainsim's built-in mechanisms: the .mod files of brainsim/mechanisms/, translated like any other.

CATALOGUE maps each built-in's name (its SUFFIX or POINT_PROCESS) to its kernel module, in catalogue
order: the order of the blocks of a cell group (brainsim.config.mechanisms), written for it (`cadyn`
after the Ca²⁺ channels whose ica it reads, `sk` reading cai only in `rates`). The modules come from the
translated-module cache (brainsim.nmodl.cache): a process translates only the files whose text it has
not seen before, and writes each result atomically, so MPI ranks and Dask workers may load at once.
"""

from pathlib import Path

from .cache import load

FOLDER = Path(__file__).resolve().parent.parent / "mechanisms"
"""The folder of the built-in .mod files (installed with the package)."""
NAMES = (
    "hh", "pas", "expsyn", "exp2syn", "nata", "nats", "nap", "kv31", "kp", "kt", "im", "ih", "cahva", "calva",
    "sk", "cadyn",
)  # fmt: skip
"""The built-ins in catalogue order."""


def source(name):
    """The .mod file of a built-in mechanism."""
    return FOLDER / f"{name}.mod"


CATALOGUE = {name: load(source(name)) for name in NAMES}
"""name -> kernel module of every built-in mechanism, in catalogue order."""
