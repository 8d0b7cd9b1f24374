"""brainsim: detailed-neuron brain simulation on PETSc time-stepping, with region-level twin summaries.

From Python: `load_config`, `run`, `open_run`, and `Recipe` → `Simulation(recipe, context, settings)`
(see brainsim.api); they are imported on first use, so that `import brainsim` stays light.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# Numba colours its error messages through colorama when that is installed, and colorama then writes a
# terminal reset to stdout when the process exits, which corrupts output that is piped or parsed.
os.environ.setdefault("NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING", "1")

try:
    __version__ = version("brainsim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_API = {
    "load_config": "brainsim.api",
    "run": "brainsim.api",
    "open_run": "brainsim.api",
    "Recipe": "brainsim.model.recipe",
    "Simulation": "brainsim.engine.simulation",
    "SimulationSettings": "brainsim.engine.settings",
    "Context": "brainsim.parallel.context",
}
__all__ = ["__version__", *_API]


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module 'brainsim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_API[name]), name)
