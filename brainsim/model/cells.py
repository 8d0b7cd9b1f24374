"""Cell types: a discretised morphology with its mechanisms, synapse sites and spike detector."""

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ..config.schema import LOCATION_RE
from ..errors import ConfigError
from ..kernels.mechanisms import CATALOGUE
from . import morphology as morph
from .discretize import compartment_count, discretize
from .swc import from_swc

DEFAULT_RA = 100.0  # Ω·cm
DEFAULT_CM = 1.0  # µF/cm²
MAX_COMPARTMENTS = 1_000_000
"""Most compartments of one cell (a detailed cortical cell has a few thousand): a discretisation that
would make more is refused before anything is allocated."""


@dataclass(frozen=True)
class Placement:
    """One mechanism on a set of nodes of a cell: node indices and parameters (n_params, n_nodes)."""

    mechanism: str
    node: np.ndarray
    params: np.ndarray


@dataclass(frozen=True)
class SynapseSite:
    name: str
    mechanism: str
    node: int
    params: np.ndarray  # (n_params,)


@dataclass(frozen=True)
class CellType:
    """Everything that is the same for every cell of one population."""

    name: str
    geometry: object  # CellGeometry
    mechanisms: tuple  # Placement, one per density mechanism
    synapses: dict  # name -> SynapseSite
    detector_node: int
    threshold: float
    v_init: float

    @cached_property
    def n_states(self):
        per_mech = sum(len(CATALOGUE[p.mechanism].STATES) * p.node.size for p in self.mechanisms)
        return per_mech + sum(len(CATALOGUE[s.mechanism].STATES) for s in self.synapses.values())

    @property
    def n_equations(self):
        """Unknowns of one cell: a voltage per node plus every mechanism state."""
        return self.geometry.n_nodes + self.n_states

    def locate(self, location, path):
        """The node at a location string such as 'soma(0.5)' or 'dend[2](0.25)'."""
        m = LOCATION_RE.match(location)
        region, index, x = m.group("region"), m.group("index"), float(m.group("x"))
        geo = self.geometry
        if region == "branch":
            b = int(index or 0)
            if b >= int(geo.branch.max()) + 1:
                raise ConfigError(path, location, f"a branch index below {int(geo.branch.max()) + 1}")
            return geo.node_at(b, x)
        branches = self.region_branches(region, path, location)
        k = int(index or 0)
        if k >= len(branches):
            raise ConfigError(
                path,
                location,
                f"a branch index below {len(branches)} ('{region}' has {len(branches)} branches)",
            )
        return geo.node_at(int(branches[k]), x)

    def locate_set(self, location, path):
        """Nodes (compartments, not junctions) of 'all', a region name, or one location."""
        geo = self.geometry
        if location == "all":
            return np.nonzero(~geo.is_junction)[0]
        if LOCATION_RE.match(location):
            return np.array([self.locate(location, path)])
        self.region_branches(location, path, location)
        nodes = geo.nodes_in_region(location)
        return nodes[~geo.is_junction[nodes]]

    def region_branches(self, region, path, value):
        geo = self.geometry
        if region not in geo.region_names:
            raise ConfigError(path, value, f"a region of the morphology: {list(geo.region_names)}")
        rid = geo.region_names.index(region)
        nodes = np.nonzero((geo.region == rid) & ~geo.is_junction)[0]
        return np.unique(geo.branch[nodes])

    def label(self, node):
        """A location string for a node, e.g. 'dend[3](0.5)'."""
        geo = self.geometry
        region = geo.region_names[geo.region[node]]
        branches = list(self.region_branches(region, "", region))
        k = branches.index(geo.branch[node]) if geo.branch[node] in branches else 0
        return f"{region}[{k}]({geo.x[node]:.6g})"


def build_morphology(spec, config, path):
    """A Morphology from a cell's `morphology` config section."""
    kind = spec["kind"]
    if kind == "swc":
        file = config.resolve_path(spec["file"])
        if not file.is_file():
            raise ConfigError(
                f"{path}.file",
                spec["file"],
                "an existing SWC file (relative to the config's folder)",
                detail=f"{file} is a folder" if file.is_dir() else None,
            )
        return from_swc(file)
    args = {k: v for k, v in spec.items() if k != "kind"}
    if kind == "binary_tree":
        args["diameters"] = tuple(args["diameters"])
    return getattr(morph, kind)(**args)


def build_cell_type(cell, config, path, synapses=None):
    """Discretise a population's morphology and place its mechanisms, synapses and detector.

    synapses: [(name, site spec, key path)]; by default the config's `synapses` entries on this cell."""
    if synapses is None:
        synapses = [
            (s["name"], s, f"synapses[{i}]")
            for i, s in enumerate(config["synapses"])
            if s["cell"] == cell["name"]
        ]
    morphology = build_morphology(cell["morphology"], config, f"{path}.morphology")
    regions = morphology.regions()
    spec = cell["regions"]
    for name in spec:
        if name != "all" and name not in regions:
            raise ConfigError(
                f"{path}.regions.{name}", name, f"'all' or a region of the morphology: {list(regions)}"
            )
    every = spec.get("all", {})

    def region_value(region, key, default):
        own = spec.get(region, {}).get(key)
        return own if own is not None else every.get(key) if every.get(key) is not None else default

    nseg = {}
    for region in regions:
        rule = spec.get(region, {}).get("discretization") or cell["discretization"]
        nseg[region] = (
            ("per_branch", rule["per_branch"]) if rule["per_branch"] else ("max_length", rule["max_length"])
        )
    count = compartment_count(morphology, nseg)
    if count > MAX_COMPARTMENTS:
        many = f"{count:,.0f}" if count < 1e15 else "over 1e15"
        raise ConfigError(
            f"{path}.discretization",
            cell["discretization"],
            f"a discretization (with the regions' own) that cuts the cell into at most {MAX_COMPARTMENTS:,} "
            "compartments",
            detail=f"{morphology.source} would have {many} compartments",
        )
    geometry = discretize(
        morphology,
        ra={r: region_value(r, "Ra", DEFAULT_RA) for r in regions},
        cm={r: region_value(r, "cm", DEFAULT_CM) for r in regions},
        nseg=nseg,
    )
    placements = _place_mechanisms(geometry, every, spec)
    cell_type = CellType(
        cell["name"], geometry, placements, {}, 0, cell["spike_detector"]["threshold"], cell["v_init"]
    )
    detector = cell_type.locate(cell["spike_detector"]["location"], f"{path}.spike_detector.location")
    sites = {}
    for name, s, site_path in synapses:
        node = cell_type.locate(s["location"], f"{site_path}.location")
        sites[name] = SynapseSite(name, s["mechanism"], node, _params(s["mechanism"], s["params"]))
    return CellType(cell["name"], geometry, placements, sites, detector, cell_type.threshold, cell["v_init"])


def scale_parameters(cell_type, factors, name, path):
    """A copy of cell_type with mechanism parameters multiplied: factors {'mechanism.parameter': factor}."""
    placements = {p.mechanism: p for p in cell_type.mechanisms}
    for key in factors:
        mechanism = key.partition(".")[0]
        if mechanism not in placements:
            raise ConfigError(
                f"{path}.{key}", key, f"a parameter of a mechanism of this cell type: {sorted(placements)}"
            )
    scaled = []
    for p in cell_type.mechanisms:
        params = p.params.copy()
        for i, (param, _default, _unit) in enumerate(CATALOGUE[p.mechanism].PARAMS):
            params[i] *= factors.get(f"{p.mechanism}.{param}", 1.0)
        scaled.append(Placement(p.mechanism, p.node, params))
    return replace(cell_type, name=name, mechanisms=tuple(scaled))


def _params(mechanism, given):
    return np.array(
        [given.get(name, default) for name, default, _unit in CATALOGUE[mechanism].PARAMS], dtype=float
    )


def _place_mechanisms(geometry, every, spec):
    """Per density mechanism, its nodes and their parameters ('all' first, then the region)."""
    per_mech = {}
    for rid, region in enumerate(geometry.region_names):
        nodes = np.nonzero((geometry.region == rid) & ~geometry.is_junction)[0]
        if nodes.size == 0:
            continue
        own = spec.get(region, {}).get("mechanisms", {})
        for name in sorted(set(every.get("mechanisms", {})) | set(own)):
            given = {**every.get("mechanisms", {}).get(name, {}), **own.get(name, {})}
            per_mech.setdefault(name, []).append((nodes, _params(name, given)))
    placements = []
    for name, parts in per_mech.items():
        node = np.concatenate([n for n, _ in parts]).astype(np.int32)
        params = np.concatenate([np.repeat(p[:, None], n.size, axis=1) for n, p in parts], axis=1)
        order = np.argsort(node, kind="stable")
        placements.append(Placement(name, node[order], params[:, order]))
    return tuple(placements)
