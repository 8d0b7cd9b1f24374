"""A whole brain: the regions of a connectome, each populated with cell types.

The config's `brain` section names a connectome, the cell types and how many cells of each type every
region holds (times `scale`). Populations are named `<region label>.<cell type>`, region after region
in the connectome's order. Connections are drawn per target cell by the recipe (`recipe.py`): within a
region by in-degree, and between regions with each target's long-range in-degree split over the
source regions in proportion to `weights[target region, source region]`; the delay of a long-range
connection is tract length / conduction speed + synaptic delay.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ConnectomeError
from . import connectome as cx


@dataclass(frozen=True)
class BrainPopulation:
    region: int  # index into Brain.connectome.labels
    cell_type: str
    count: int

    def name(self, labels):
        return f"{labels[self.region]}.{self.cell_type}"


class Brain:
    def __init__(self, config):
        spec = config["brain"]
        self.spec = spec
        connectome = load_connectome(spec["connectome"], config)
        if spec["regions"] != "all":
            unknown = [r for r in spec["regions"] if r not in connectome.labels]
            if unknown:
                raise ConfigError(
                    "brain.regions", unknown[0], f"labels of {connectome.source}: {list(connectome.labels)}"
                )
            connectome = connectome.subset(spec["regions"])
        self.connectome = connectome
        labels = connectome.labels
        for label in spec["region_overrides"]:
            if label not in labels:
                raise ConfigError(
                    f"brain.region_overrides.{label}", label, f"a simulated region: {list(labels)}"
                )
        self.populations = []
        for k, label in enumerate(labels):
            per_type = {
                **spec["cells_per_region"],
                **spec["region_overrides"].get(label, {}).get("cells_per_region", {}),
            }
            for cell_type in spec["cell_types"]:
                count = int(round(per_type.get(cell_type, 0) * spec["scale"]))
                self.populations.append(BrainPopulation(k, cell_type, count))
        self._by_key = {(p.region, p.cell_type): p for p in self.populations}

    @property
    def labels(self):
        return self.connectome.labels

    def population(self, region, cell_type):
        return self._by_key.get((region, cell_type))

    def factors(self, region, cell_type):
        """{'mechanism.parameter': factor} for a type's cells in a region ('all' first, then the type)."""
        per_type = self.spec["region_overrides"].get(self.labels[region], {}).get("factors", {})
        return {**per_type.get("all", {}), **per_type.get(cell_type, {})}

    def conduction_delay(self, target_region, source_region):
        """Tract length / conduction speed (ms)."""
        return self.connectome.tract_lengths[target_region, source_region] / self.spec["conduction_speed"]

    def min_long_range_delay(self):
        """The shortest delay of any possible long-range connection (ms), or None."""
        long_range = self.spec["long_range"]
        if long_range is None or long_range["indegree"] == 0:
            return None
        has_source = np.array(
            [
                (p := self.population(j, long_range["source"])) is not None and p.count > 0
                for j in range(len(self.labels))
            ]
        )
        linked = (self.connectome.weights > 0) & has_source[None, :]
        if not linked.any():
            return None
        tract = self.connectome.tract_lengths[linked].min()
        return tract / self.spec["conduction_speed"] + long_range["synaptic_delay"]


def load_connectome(spec, config):
    """The connectome a `brain.connectome` section names (files relative to the config's folder)."""
    kind, path = spec["kind"], "brain.connectome"

    def file(key):
        name = spec[key]
        resolved = config.resolve_path(name)
        if not resolved.exists():
            raise ConfigError(f"{path}.{key}", name, "an existing file (relative to the config's folder)")
        return resolved

    try:
        if kind == "tvb_zip":
            return cx.read_tvb_zip(file("file"))
        if kind == "tvb_h5":
            return cx.read_tvb_h5(file("file"))
        if kind == "tvb_data":
            return cx.load_tvb_data(spec["name"])
        return cx.read_plain(
            file("weights"),
            file("tract_lengths"),
            file("labels"),
            file("centres") if spec["centres"] else None,
        )
    except ConnectomeError as e:
        raise ConfigError(path, spec, "a readable, valid connectome", detail=str(e)) from None
