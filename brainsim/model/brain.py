"""A whole brain: the regions of a connectome, each populated with cell types.

The config's `brain` section names a connectome, the cell types and how many cells of each type every
region holds — a number per region, or a density per mm² of the region's area — times `scale`.
Populations are named `<region label>.<cell type>`, region after region in the connectome's order.
Connections are drawn per target cell by the recipe (`recipe.py`): within a region by in-degree, and
between regions with each target's long-range in-degree split over the source regions in proportion to
`weights[target region, source region]`; the delay of a long-range connection is tract length /
conduction speed + synaptic delay.
"""

from dataclasses import dataclass, replace

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
        spec, patient = config["brain"], config["patient"] or {}
        self.spec, self.patient = spec, patient
        self.speed = patient.get("conduction_speed") or spec["conduction_speed"]
        self.long_range_scale = patient.get("long_range_scale", 1.0)  # on every long-range weight
        source = patient.get("connectome") or spec["connectome"]
        connectome = load_connectome(
            source, config, "patient.connectome" if patient.get("connectome") else None
        )
        every_label = list(connectome.labels)
        regions = every_label if spec["regions"] == "all" else spec["regions"]
        self._check_labels(regions, every_label, "brain.regions")
        lesions = patient.get("lesions", {})
        self._check_labels(lesions.get("regions", []), connectome.labels, "patient.lesions.regions")
        regions = [r for r in regions if r not in lesions.get("regions", [])]
        if regions != list(connectome.labels):
            connectome = connectome.subset(regions)
        if lesions.get("tracts"):
            weights = connectome.weights * tract_scales(
                lesions["tracts"], connectome.labels, "patient.lesions.tracts"
            )
            connectome = replace(connectome, weights=weights)
        self.connectome = connectome
        for key in ("factors", "cell_loss", "background"):
            for label in patient.get(key, {}):
                if label != "all":
                    self._check_labels([label], connectome.labels, f"patient.{key}.{label}")
        loss = patient.get("cell_loss", {})
        labels = connectome.labels
        for label in spec["region_overrides"]:  # overrides of regions left out of brain.regions are unused
            if label not in every_label:
                raise ConfigError(
                    f"brain.region_overrides.{label}",
                    label,
                    f"a region label of the connectome: {every_label}",
                )
        if spec["cells_per_mm2"] and connectome.areas is None:
            raise ConfigError(
                "brain.cells_per_mm2",
                spec["cells_per_mm2"],
                "counts per region (brain.cells_per_region): the connectome has no region areas",
                detail=f"connectome {connectome.source}",
            )
        self.populations = []
        for k, label in enumerate(labels):
            per_type = {
                **spec["cells_per_region"],
                **{name: d * connectome.areas[k] for name, d in spec["cells_per_mm2"].items()},
                **spec["region_overrides"].get(label, {}).get("cells_per_region", {}),
            }
            kept = (1.0 - loss.get("all", 0.0)) * (1.0 - loss.get(label, 0.0))
            for cell_type in spec["cell_types"]:
                count = int(round(per_type.get(cell_type, 0) * spec["scale"] * kept))
                self.populations.append(BrainPopulation(k, cell_type, count))
        self._by_key = {(p.region, p.cell_type): p for p in self.populations}

    @property
    def labels(self):
        return self.connectome.labels

    def population(self, region, cell_type):
        return self._by_key.get((region, cell_type))

    def factors(self, region, cell_type):
        """{'mechanism.parameter': factor} for a type's cells in a region: the config's region override
        ('all' types, then the type) times the patient's (all regions, the region; all types, the type)."""
        label = self.labels[region]
        own = self.spec["region_overrides"].get(label, {}).get("factors", {})
        patient = self.patient.get("factors", {})
        layers = [own.get("all", {}), own.get(cell_type, {})] + [
            patient.get(where, {}).get(kind, {}) for where in ("all", label) for kind in ("all", cell_type)
        ]
        combined = {}
        for layer in layers:
            for key, factor in layer.items():
                combined[key] = combined.get(key, 1.0) * factor
        return combined

    def region_indices(self, labels, path):
        """Indices of region labels ('all': every region), checked."""
        if labels == "all":
            return list(range(len(self.labels)))
        self._check_labels(labels, self.labels, path)
        return [self.labels.index(label) for label in labels]

    @staticmethod
    def _check_labels(labels, known, path):
        for label in labels:
            if label not in known:
                raise ConfigError(path, label, f"a region label of the connectome: {list(known)}")

    def conduction_delay(self, target_region, source_region):
        """Tract length / conduction speed (ms)."""
        return self.connectome.tract_lengths[target_region, source_region] / self.speed

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
        return tract / self.speed + long_range["synaptic_delay"]


def tract_scales(tracts, labels, path):
    """(n, n) factors of weights[target, source] for tract lesions [{source, target, scale, both_ways}]."""
    scales = np.ones((len(labels), len(labels)))
    for i, tract in enumerate(tracts):
        for end in ("source", "target"):
            Brain._check_labels([tract[end]], labels, f"{path}[{i}].{end}")
        source, target = labels.index(tract["source"]), labels.index(tract["target"])
        scales[target, source] *= tract["scale"]
        if tract["both_ways"]:
            scales[source, target] *= tract["scale"]
    return scales


def load_connectome(spec, config, path=None):
    """The connectome a `brain.connectome` (or `patient.connectome`) section names (files relative to the
    config's folder)."""
    kind, path = spec["kind"], path or "brain.connectome"

    def file(key):
        name = spec[key]
        resolved = config.resolve_path(name).resolve()
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
