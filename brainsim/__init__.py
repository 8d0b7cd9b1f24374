"""brainsim: detailed-neuron brain simulation on PETSc time-stepping, with region-level twin summaries."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("brainsim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
