"""Cell types: a discretised morphology with its mechanisms, synapse sites and spike detector."""

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ..config import expressions
from ..config.options import Num
from ..config.schema import DISTANCE_RE, LOCATION_RE, NSEG_RULES
from ..errors import ConfigError
from . import morphology as morph
from .discretize import compartment_count, discretize
from .morphio_reader import FORMATS, read_morphology
from .morphology import SECTION_LISTS
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
    catalogue: object  # config.mechanisms.Mechanisms: name -> kernel module
    spans: np.ndarray  # (n_branches, 2) µm: path distance of each branch's ends (branch_spans)

    @cached_property
    def n_states(self):
        cat = self.catalogue
        per_mech = sum(len(cat[p.mechanism].STATES) * p.node.size for p in self.mechanisms)
        return per_mech + sum(len(cat[s.mechanism].STATES) for s in self.synapses.values())

    @property
    def cai_mechanism(self):
        """The placed mechanism whose state a probe of `cai` records (see Mechanisms.cai_writer)."""
        return self.catalogue.cai_writer({p.mechanism for p in self.mechanisms})

    @property
    def n_equations(self):
        """Unknowns of one cell: a voltage per node plus every mechanism state."""
        return self.geometry.n_nodes + self.n_states

    def locate(self, location, path):
        """The node at a location string such as 'soma(0.5)', 'dend[2](0.25)' or 'apical(distance=660)'."""
        m = DISTANCE_RE.match(location)
        if m:
            return self.at_distance(m.group("region"), float(m.group("distance")), path, location)
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

    def at_distance(self, region, distance, path, value):
        """The node at `distance` µm along the tree from the soma's middle on region (or section list)
        `region`, by BluePyOpt's NrnSomaDistanceCompLocation: of the region's branches in order, the last
        whose ends' path distances enclose it, at x interpolated linearly between them (branch 0, the
        root, runs from 0 µm at its middle to half its length at x = 1)."""
        found, reach = None, []
        for b in self.region_branches(region, path, value):
            lo, hi = (0.0, self.spans[0, 1]) if b == 0 else self.spans[b]
            reach.append((lo, hi))
            if lo <= distance <= hi:
                x = (distance - lo) / (hi - lo)
                found = (int(b), 0.5 + x / 2 if b == 0 else x)
        if found is None:
            near, far = min(lo for lo, _ in reach), max(hi for _, hi in reach)
            raise ConfigError(
                path,
                value,
                f"a distance from the soma's middle that a branch of '{region}' reaches ({near:.6g} to "
                f"{far:.6g} µm along the tree)",
            )
        return self.geometry.node_at(*found)

    def locate_set(self, location, path):
        """Nodes (compartments, not junctions) of 'all', a region name, or one location."""
        geo = self.geometry
        if location == "all":
            return np.nonzero(~geo.is_junction)[0]
        if LOCATION_RE.match(location) or DISTANCE_RE.match(location):
            return np.array([self.locate(location, path)])
        self.region_branches(location, path, location)
        nodes = geo.nodes_in_region(SECTION_LISTS.get(location, location))
        return nodes[~geo.is_junction[nodes]]

    def region_branches(self, region, path, value):
        geo = self.geometry
        region = SECTION_LISTS.get(region, region)
        if region not in geo.region_names:
            raise ConfigError(path, value, f"a region of the morphology: {list(geo.region_names)}{_LISTS}")
        rid = geo.region_names.index(region)
        nodes = np.nonzero((geo.region == rid) & ~geo.is_junction)[0]
        return np.unique(geo.branch[nodes])

    def label(self, node):
        """A location string for a node, e.g. 'dend[3](0.5)'."""
        return node_label(self.geometry, node)


def node_label(geometry, node):
    """A location string for a node of geometry, e.g. 'dend[3](0.5)': its region's k-th branch."""
    rid = geometry.region[node]
    branches = list(np.unique(geometry.branch[(geometry.region == rid) & ~geometry.is_junction]))
    k = branches.index(geometry.branch[node]) if geometry.branch[node] in branches else 0
    return f"{geometry.region_names[rid]}[{k}]({geometry.x[node]:.6g})"


_LISTS = f" (or a section list: {', '.join(SECTION_LISTS)})"


def build_morphology(spec, config, path):
    """A Morphology from a cell's `morphology` config section."""
    kind = spec["kind"]
    if kind in ("swc", "file"):
        file = config.resolve_path(spec["file"])
        noun = "SWC file" if kind == "swc" else f"morphology file ({', '.join(FORMATS)})"
        if kind == "file" and file.suffix.lower() not in FORMATS:
            raise ConfigError(
                f"{path}.file",
                spec["file"],
                f"a {noun}: the extension gives the format",
                detail=f"unknown extension {file.suffix or '(none)'!r}",
            )
        if not file.is_file():
            raise ConfigError(
                f"{path}.file",
                spec["file"],
                f"an existing {noun} (relative to the config's folder)",
                detail=f"{file} is a folder" if file.is_dir() else None,
            )
        reconstruction = from_swc(file) if kind == "swc" else read_morphology(file)
        return morph.replace_axon(reconstruction) if spec["replace_axon"] else reconstruction
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
    spec, given = {}, {}
    for name, values in cell["regions"].items():
        region = SECTION_LISTS.get(name, name)
        if region != "all" and region not in regions:
            raise ConfigError(
                f"{path}.regions.{name}",
                name,
                f"'all' or a region of the morphology: {list(regions)}{_LISTS}",
            )
        if region in spec:
            raise ConfigError(
                f"{path}.regions.{name}",
                name,
                f"one entry per region: '{given[region]}' already names region '{region}'",
            )
        spec[region], given[region] = values, name
    every = spec.get("all", {})

    def region_value(region, key, default):
        own = spec.get(region, {}).get(key)
        return own if own is not None else every.get(key) if every.get(key) is not None else default

    nseg = {}
    for region in regions:
        rule = spec.get(region, {}).get("discretization") or cell["discretization"]
        nseg[region] = next((k, rule[k]) for k in NSEG_RULES if rule[k] is not None)
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
    catalogue = config.mechanisms
    placements = _place_mechanisms(geometry, location_variables(morphology, geometry), spec, path, catalogue)
    cell_type = CellType(
        cell["name"], geometry, placements, {}, 0, cell["spike_detector"]["threshold"], cell["v_init"],
        catalogue, branch_spans(morphology),
    )  # fmt: skip
    detector = cell_type.locate(cell["spike_detector"]["location"], f"{path}.spike_detector.location")
    sites = {}
    for name, s, site_path in synapses:
        node = cell_type.locate(s["location"], f"{site_path}.location")
        params = _params(catalogue[s["mechanism"]], s["params"])
        sites[name] = SynapseSite(name, s["mechanism"], node, params)
    return replace(cell_type, synapses=sites, detector_node=detector)


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
        for i, (param, _default, _unit) in enumerate(cell_type.catalogue[p.mechanism].PARAMS):
            params[i] *= factors.get(f"{p.mechanism}.{param}", 1.0)
        scaled.append(Placement(p.mechanism, p.node, params))
    return replace(cell_type, name=name, mechanisms=tuple(scaled))


def _params(module, given):
    """A point mechanism's parameter values in its column order: those given, else its defaults."""
    return np.array([given.get(name, default) for name, default, _unit in module.PARAMS], dtype=float)


def branch_spans(morphology):
    """Per branch, the path distances (µm along the tree from the middle of branch 0, NEURON's h.distance
    from soma(0.5)) of its proximal (x = 0) and distal (x = 1) ends: an (n_branches, 2) array; both ends
    of branch 0 are half its length away."""
    n = len(morphology.branches)
    length = np.array([morphology.branch_length(b) for b in range(n)])
    start = np.zeros(n)
    for b, branch in enumerate(morphology.branches[1:], start=1):
        p, at = branch.parent, branch.parent_x
        start[b] = abs(at - 0.5) * length[0] if p == 0 else start[p] + at * length[p]
    start[0] = length[0] / 2
    spans = np.column_stack((start, start + length))
    spans[0, 1] = start[0]
    spans.flags.writeable = False
    return spans


def location_variables(morphology, geometry):
    """Per node of geometry, the variables of location expressions (config.expressions.VARIABLES):
    distance (µm along the tree from the middle of branch 0 to the node, NEURON's h.distance from
    soma(0.5)), diameter (µm), x (0-1 along its branch) and order (branches out from branch 0)."""
    spans = branch_spans(morphology)
    order = np.zeros(len(morphology.branches))
    for b, branch in enumerate(morphology.branches[1:], start=1):
        order[b] = order[branch.parent] + 1
    b, x = geometry.branch, geometry.x
    root = 2 * spans[0, 0]  # branch 0's length
    distance = np.where(b == 0, np.abs(x - 0.5) * root, spans[b, 0] + x * (spans[b, 1] - spans[b, 0]))
    return {"distance": distance, "diameter": geometry.diameter, "x": x, "order": order[b]}


def _place_mechanisms(geometry, variables, spec, path, catalogue):
    """Per density mechanism, its nodes and their parameters: per parameter the region's own value, else
    'all''s, else the mechanism's default; an expression is evaluated on each of the region's nodes."""
    every = spec.get("all", {}).get("mechanisms", {})
    per_mech = {}
    for rid, region in enumerate(geometry.region_names):
        nodes = np.nonzero((geometry.region == rid) & ~geometry.is_junction)[0]
        if nodes.size == 0:
            continue
        own = spec.get(region, {}).get("mechanisms", {})
        at = {key: values[nodes] for key, values in variables.items()}
        for name in sorted(set(every) | set(own)):
            given, rows = {**every.get(name, {}), **own.get(name, {})}, []
            for param, default, _unit in catalogue[name].PARAMS:
                source = region if param in own.get(name, {}) else "all"
                where = f"{path}.regions.{source}.mechanisms.{name}.{param}"
                rows.append(_values(given.get(param, default), at, geometry, nodes, where))
            per_mech.setdefault(name, []).append((nodes, np.array(rows, dtype=float)))
    placements = []
    for name, parts in per_mech.items():
        node = np.concatenate([n for n, _ in parts]).astype(np.int32)
        params = np.concatenate([p for _, p in parts], axis=1)
        order = np.argsort(node, kind="stable")
        placements.append(Placement(name, node[order], params[:, order]))
    return tuple(placements)


def _values(value, at, geometry, nodes, path):
    """A parameter's value on each node: a number repeated, or an expression evaluated on every one."""
    if not isinstance(value, str):
        return np.full(nodes.size, float(value))
    values = expressions.evaluate(expressions.parse(value), at)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        k = int(bad[0])
        region = geometry.region_names[geometry.region[nodes[k]]]
        raise ConfigError(
            path,
            value,
            f"an expression whose value is {Num().allowed()} on every compartment",
            detail=f"it is {values[k]} on {node_label(geometry, int(nodes[k]))} (distance "
            f"{at['distance'][k]:.6g} µm, diameter {at['diameter'][k]:.6g} µm), and on {bad.size} of the "
            f"{nodes.size} compartments of region '{region}' it is not finite",
        )
    return values
