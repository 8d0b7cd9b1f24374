"""What a run's store must hold, known before the run starts: the simulation describes it once
(`Simulation.store_spec`) and the output creates the store from it, without reading the config again."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TraceSetSpec:
    """One probe entry of the config, over every rank: the probes in gid order, rank blocks contiguous."""

    name: str
    variable: str
    units: str
    sampling: float  # ms between samples
    n_rows: int  # samples the store holds (the sampling grid from first_row · sampling to tstop)
    gid: np.ndarray  # (probe,) int64
    compartment: np.ndarray  # (probe,) int64
    location: tuple  # (probe,) text such as 'soma(0.5)'
    offsets: np.ndarray  # (ranks + 1,) first probe of each rank's block, then the total
    first_row: int = 0  # the row of the run's sampling grid (from t = 0) the store starts at (a fork's)

    @property
    def times(self):
        """The store's sampling grid (ms)."""
        return (self.first_row + np.arange(self.n_rows)) * self.sampling


@dataclass(frozen=True)
class RegionSpec:
    """The region summaries' rows: n_bins bins of `bin` ms for the brain's regions, from bin first_bin."""

    bin: float  # ms
    n_bins: int  # bins the store holds
    labels: tuple
    hemisphere: tuple  # "left" or "right" per region
    centres: np.ndarray | None  # (region, 3) mm
    n_cells: np.ndarray  # (region,) int64
    sc_weights: np.ndarray | None = None  # (region, region) weights[target, source] as the model uses them
    sc_tract_lengths: np.ndarray | None = None  # (region, region) mm
    first_bin: int = 0  # the bin of the run (from t = 0) the store starts at (a fork's)


@dataclass(frozen=True)
class StoreSpec:
    """Everything the run store records about the model: config, counts, layout and provenance."""

    config: dict  # the resolved config (JSON-able)
    config_hash: str  # of what determines the dynamics
    counts: dict  # cells, compartments, equations
    tstop: float  # ms
    trace_sets: tuple  # of TraceSetSpec, in the config's probe order (entries without probes left out)
    regions: RegionSpec | None  # runs with a brain
    provenance: dict
    populations: list  # dicts: name, region, cell_type, first_gid, count, kind
    fork: dict | None = None  # a fork's future: parent (path), fork_time (ms, where the store starts),
    #                           state_hash (RunConfig.state_hash(fork_time)); None for a run from t = 0
