"""The run config, declared once: every key with its default, unit, doc and check.

Top-level sections: mechanisms, simulation, cells, synapses, connections, stimuli, probes, output. Mechanism
names and parameters are checked against the mechanisms of the config being resolved (`using`): the
built-in catalogue and the NMODL modules of its `mechanisms.paths` (config.mechanisms).
Units: ms, mV, µm, nA, µS, Hz, Ω·cm, µF/cm², S/cm², °C.
"""

import math
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from ..errors import ConfigError
from . import expressions
from .mechanisms import BUILT_IN
from .options import (
    REQUIRED,
    Bool,
    Either,
    Int,
    ListOf,
    MapOf,
    Num,
    Section,
    Str,
    Tagged,
)

LOCATION_RE = re.compile(
    r"^(?P<region>[A-Za-z_][A-Za-z0-9_]*)(\[(?P<index>\d+)\])?\((?P<x>\d+(\.\d*)?|\.\d+)\)$"
)
"""A point on a cell: `soma(0.5)`, `dend(1)` (the first dend branch), `dend[3](0.25)` (its 4th branch),
`branch[7](0.5)` (branch 7 of the whole morphology); a section list name stands for its region
(`apical[3](0.5)` is `apic[3](0.5)`)."""

DISTANCE_RE = re.compile(
    r"^(?P<region>[A-Za-z_][A-Za-z0-9_]*)\(\s*distance\s*=\s*(?P<distance>\d+(\.\d*)?|\.\d+)\s*\)$"
)
"""A point of a region (or section list) at a path distance in µm from the soma's middle:
`apical(distance=660)` is BluePyOpt's NrnSomaDistanceCompLocation('apical', 660) (CellType.locate)."""

_IN_USE = ContextVar("mechanisms", default=BUILT_IN)


def mechanisms_in_use():
    """The Mechanisms names are checked against: those of the config being resolved, else the built-ins."""
    return _IN_USE.get()


@contextmanager
def using(mechanisms):
    """Check mechanism names and parameters against `mechanisms` (a config.mechanisms.Mechanisms) while
    the block runs."""
    token = _IN_USE.set(mechanisms)
    try:
        yield mechanisms
    finally:
        _IN_USE.reset(token)


class Location:
    """A location string; probes also accept `all` (every compartment) or a bare region name."""

    default = REQUIRED

    def __init__(self, default=REQUIRED, doc="", sets=False):
        self.default, self.doc, self.sets = default, doc, sets

    def allowed(self):
        extra = ", 'all', or a region name such as 'dend'" if self.sets else ""
        return (
            "a location such as 'soma(0.5)', 'dend[2](0.25)', 'branch[7](1)' or 'apical(distance=660)' "
            f"(µm from the soma's middle){extra}"
        )

    def resolve(self, value, path):
        ok = isinstance(value, str) and (
            LOCATION_RE.match(value) is not None
            or DISTANCE_RE.match(value) is not None
            or (self.sets and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value))
        )
        if ok and LOCATION_RE.match(value):
            ok = 0.0 <= float(LOCATION_RE.match(value).group("x")) <= 1.0
        if not ok:
            raise ConfigError(path, value, self.allowed())
        return value


class LocationValue:
    """A number, or an expression of the compartment's location (config.expressions) evaluated on every
    compartment when the cell is built. An expression without variables resolves to its number; any other
    stays the text given (so the config's hash follows it)."""

    default = REQUIRED
    doc = ""

    def allowed(self):
        return expressions.ALLOWED

    def resolve(self, value, path):
        if not isinstance(value, str):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(path, value, self.allowed())
            return Num().resolve(value, path)
        try:
            tree = expressions.parse(value)
        except expressions.ExpressionError as e:
            raise ConfigError(path, value, self.allowed(), detail=str(e)) from None
        if expressions.variables_of(tree):
            return value
        number = float(expressions.evaluate(tree, {}))
        if not math.isfinite(number):
            raise ConfigError(
                path, value, "an expression whose value is a finite number", detail=f"it is {number}"
            )
        return number


class MechanismParams:
    """`{mechanism name: {parameter: value}}` for mechanisms of one kind from the catalogue, each value a
    number or a location expression (LocationValue)."""

    def __init__(self, kind, default=REQUIRED, doc=""):
        self.kind, self.default, self.doc = kind, default, doc

    def allowed(self):
        names = mechanisms_in_use().of_kind(self.kind)
        return f"a mapping of {self.kind} mechanisms ({names}) to their parameters"

    def resolve(self, value, path):
        mechs = MapOf(MapOf(LocationValue(), keys="parameters"), keys="mechanisms").resolve(value, path)
        for name, params in mechs.items():
            check_mechanism(name, self.kind, f"{path}.{name}")
            check_params(name, params, f"{path}.{name}")
        return mechs


@dataclass(frozen=True)
class MechanismName:
    """The name of a density or point mechanism (built-in or loaded from mechanisms.paths); events: a point
    mechanism that receives events (a synapse's)."""

    kind: str
    default: object = REQUIRED
    doc: str = ""
    events: bool = False

    def allowed(self):
        return f"one of {mechanisms_in_use().of_kind(self.kind, self.events)}"

    def resolve(self, value, path):
        mechanisms = mechanisms_in_use()
        if not isinstance(value, str) or value not in mechanisms.of_kind(self.kind, self.events):
            raise ConfigError(path, value, self.allowed(), detail=_loaded_detail(mechanisms))
        return value


def _loaded_detail(mechanisms):
    """What a config loaded from mechanisms.paths (None when nothing)."""
    if not mechanisms.loaded:
        return None
    return f"loaded from mechanisms.paths: {[name for name, _ in mechanisms.loaded]}"


def check_mechanism(name, kind, path):
    mechanisms = mechanisms_in_use()
    if name not in mechanisms.of_kind(kind):
        raise ConfigError(
            path, name, f"a {kind} mechanism: {mechanisms.of_kind(kind)}", detail=_loaded_detail(mechanisms)
        )


def check_params(name, params, path):
    known = mechanisms_in_use().param_names(name)
    for key in params:
        if key not in known:
            raise ConfigError(f"{path}.{key}", params[key], f"parameters of '{name}': {known}")


NUMBER_OR_RANGE = dict(
    options=(Num(), Section({"uniform": ListOf(Num(), min_len=2)})),
    allowed_text="a number, or {uniform: [low, high]}",
)


def _check_range(value, path):
    if isinstance(value, dict) and not (
        len(value["uniform"]) == 2 and value["uniform"][0] <= value["uniform"][1]
    ):
        raise ConfigError(f"{path}.uniform", value["uniform"], "[low, high] with low <= high")


def _check_simulation(sim, path):
    if sim["tstop"] < sim["dt"]:
        raise ConfigError(f"{path}.tstop", sim["tstop"], f"a stop time >= dt ({sim['dt']} ms)")


SIMULATION = Section(
    {
        "tstop": Num(REQUIRED, "ms", "time to simulate", gt=0),
        "dt": Num(0.025, "ms", "time step (initial step for adaptive PETSc methods)", gt=0, le=10),
        "seed": Int(
            1, "seed of every random stream (each cell draws from its own stream keyed by (seed, gid))", ge=0
        ),
        "celsius": Num(6.3, "°C", "temperature for the mechanisms' q10 factors", ge=-30, le=60),
        "method": Str(
            "petsc",
            "petsc: a PETSc TS method set by `petsc` options (default: the implicit midpoint rule, one "
            "Newton step per time step); staggered: the fixed-step scheme "
            "of NEURON and Arbor (backward Euler for V, exponential Euler for states)",
            choices=("petsc", "staggered"),
        ),
        "petsc": MapOf(
            Either((Str(), Bool(), Int(), Num()), allowed_text="a string, number or boolean"),
            {},
            "PETSc options without the leading '-', e.g. "
            "{ts_type: bdf}; the command line and PETSC_OPTIONS override them",
            keys="PETSc options",
        ),
        "voltage_limit": Num(
            1000.0, "mV", "stop with an error when any |V| exceeds this (or is not finite)", gt=0
        ),
        "progress_interval": Num(2.0, "s", "wall time between progress lines (0: none)", ge=0),
        "warmup": Num(
            0.0,
            "ms",
            "simulated before the recorded window, at rest (no stimuli, interventions or probes): the run "
            "then records from t = 0 on, starting from the settled state (0: start from v_init)",
            ge=0,
        ),
    },
    check=_check_simulation,
)

REPLACE_AXON = Bool(
    False,
    "replace the reconstructed axon by BluePyOpt's axon initial segment: two 30 µm sections on soma(1), "
    "the first with the first axon section's diameter, the second with that of the first axon section "
    "whose midpoint lies beyond 60 µm from the soma",
)

MORPHOLOGY = Tagged(
    {
        "file": Section(
            {
                "file": Str(
                    REQUIRED,
                    "reconstruction, its format from the extension: .swc (SWC), .asc (Neurolucida) or .h5 "
                    "(MorphIO's HDF5); a relative path is taken from the config file's folder",
                ),
                "replace_axon": REPLACE_AXON,
            },
            doc="a reconstruction (.asc and .h5 read through MorphIO; a soma contour becomes one section "
            "by NEURON's import3d rule)",
        ),
        "swc": Section(
            {
                "file": Str(REQUIRED, "SWC file; a relative path is taken from the config file's folder"),
                "replace_axon": REPLACE_AXON,
            },
            doc="an SWC file, whatever its extension",
        ),
        "cylinder": Section(
            {
                "length": Num(REQUIRED, "µm", gt=0),
                "diameter": Num(REQUIRED, "µm", gt=0),
                "region": Str("soma"),
            }
        ),
        "ball_and_stick": Section(
            {
                "soma_length": Num(20.0, "µm", gt=0),
                "soma_diameter": Num(20.0, "µm", gt=0),
                "dend_length": Num(1000.0, "µm", gt=0),
                "dend_diameter": Num(2.0, "µm", gt=0),
            }
        ),
        "binary_tree": Section(
            {
                "depth": Int(4, "levels of the tree: 2**depth - 1 dendrites (at most 16)", ge=1, le=16),
                "branch_length": Num(130.0, "µm", gt=0),
                "diameters": ListOf(
                    Num(gt=0), [2.0, 1.5, 1.0, 0.75], "µm per level; the last repeats", min_len=1
                ),
                "soma_length": Num(20.0, "µm", gt=0),
                "soma_diameter": Num(20.0, "µm", gt=0),
            }
        ),
        "synthetic_pyramidal": Section({"seed": Int(0, ge=0)}),
    }
)

NSEG = Section(
    {
        "per_branch": Int(None, "compartments per branch", ge=1),
        "max_length": Num(None, "µm", "longest compartment: nseg = ceil(L / max_length)", gt=0),
        "odd_per_length": Num(
            None,
            "µm",
            "BluePyOpt's rule, always odd: nseg = 1 + 2·int(L / odd_per_length) (40 in its models)",
            gt=0,
        ),
    },
    check=lambda d, path: _one_nseg_rule(d, path),
)
NSEG_RULES = ("per_branch", "max_length", "odd_per_length")


def _one_nseg_rule(d, path):
    if sum(d[rule] is not None for rule in NSEG_RULES) != 1:
        raise ConfigError(path, d, "exactly one of per_branch, max_length or odd_per_length")


REGION = Section(
    {
        "Ra": Num(None, "Ω·cm", "axial resistivity (default: from 'all', else 100)", gt=0),
        "cm": Num(None, "µF/cm²", "membrane capacitance (default: from 'all', else 1)", gt=0),
        "mechanisms": MechanismParams(
            "density",
            {},
            "density mechanisms and their parameters, each a number or an expression of the compartment's "
            "location, e.g. 'exp(-distance/50) * 0.01' (README: Parameters along the cell)",
        ),
        "discretization": replace(
            NSEG, default=None, doc="overrides the cell's discretization in this region"
        ),
    }
)

BLUEPYOPT = Section(
    {
        "folder": Str(REQUIRED, "the model's folder (relative to the config file's folder)"),
        "morphology": Str(REQUIRED, "its morphology file (ASC, SWC or H5), relative to the folder"),
        "mechanisms": Str("config/mechanisms.json", "which mechanisms sit on which section list"),
        "parameters": Str("config/parameters.json", "every parameter, per section list"),
        "release": Str("config/release_params.json", "the values of the free parameters"),
        "mods": Str("mechanisms", "the folder (or .mod file) of its NMODL mechanisms"),
        "replace_axon": Bool(True, "BluePyOpt's axon initial segment in place of the axon"),
        "nseg_length": Num(40.0, "µm", "nseg = 1 + 2·int(L / nseg_length)", gt=0),
    },
    None,
    "a cell model in BluePyOpt's JSON form, read when the config is loaded (brainsim.config.bluepyopt); "
    "the entry's other keys are laid over it",
)

CELL = Section(
    {
        "name": Str(REQUIRED, "population name"),
        "count": Int(1, "number of cells", ge=1),
        "bluepyopt": BLUEPYOPT,
        "morphology": MORPHOLOGY,
        "discretization": NSEG,
        "v_init": Num(-65.0, "mV", "initial membrane potential (states start at steady state)"),
        "regions": MapOf(
            REGION,
            {},
            "per region of the cell ('all' applies to every region first); NEURON's section lists somatic, "
            "axonal, basal and apical name soma, axon, dend and apic",
            keys="regions",
        ),
        "spike_detector": Section(
            {
                "location": Location(
                    "branch[0](0.5)",
                    "where spikes are detected (default: the middle of the root branch, "
                    "the soma of a cell that has one)",
                ),
                "threshold": Num(-10.0, "mV", "a spike is an upward crossing of this voltage"),
            },
            {},
        ),
    }
)

SYNAPSE_SITE = Section(
    {
        "mechanism": MechanismName("point", REQUIRED, "point mechanism that receives events", events=True),
        "location": Location("soma(0.5)"),
        "params": MapOf(Num(), {}, keys="parameters"),
    },
    check=lambda s, path: check_params(s["mechanism"], s["params"], f"{path}.params"),
)

CELL_TYPE = Section(
    {
        **{k: v for k, v in CELL.fields.items() if k not in ("name", "count")},
        "synapses": MapOf(SYNAPSE_SITE, {}, "synapse sites of this cell type, by name", keys="synapse names"),
    }
)

FACTORS = MapOf(
    MapOf(Num(ge=0), keys="'<mechanism>.<parameter>' (e.g. nata.gbar)"),
    {},
    "multiplicative factors of mechanism parameters, per cell type ('all': every type)",
    keys="cell types",
)

BRAIN = Section(
    {
        "connectome": Tagged(
            {
                "tvb_zip": Section({"file": Str(REQUIRED, "The Virtual Brain connectivity zip (or folder)")}),
                "tvb_h5": Section({"file": Str(REQUIRED, "The Virtual Brain connectivity HDF5 file")}),
                "tvb_data": Section(
                    {"name": Str("connectivity_76", "a connectivity of the tvb-data package")}
                ),
                "plain": Section(
                    {
                        "weights": Str(
                            REQUIRED, "CSV or .npy matrix; weights[k, j] is from region j to region k"
                        ),
                        "tract_lengths": Str(REQUIRED, "CSV or .npy matrix, mm"),
                        "labels": Str(REQUIRED, "text file, one region label per line"),
                        "centres": Str(None, "CSV or .npy (n, 3), mm"),
                    }
                ),
            },
            doc="the region-level connectome (files relative to the config's folder)",
        ),
        "regions": Either(
            (Str(choices=("all",)), ListOf(Str(), min_len=1)),
            "all",
            "regions of the connectome to simulate",
            allowed_text="'all' or a list of region labels",
        ),
        "scale": Num(1.0, "", "multiplies every cell count (rounded to whole cells)", gt=0),
        "conduction_speed": Num(3.0, "mm/ms", "axonal conduction speed: delay = tract length / speed", gt=0),
        "cell_types": MapOf(
            CELL_TYPE, REQUIRED, "cell types, each defined like a population", keys="cell types"
        ),
        "cells_per_region": MapOf(Num(ge=0), {}, "cells of each type in every region", keys="cell types"),
        "cells_per_mm2": MapOf(
            Num(ge=0),
            {},
            "or: cells of each type per mm² of region area (the connectome's areas), rounded per region",
            keys="cell types",
        ),
        "region_overrides": MapOf(
            Section(
                {
                    "cells_per_region": MapOf(Num(ge=0), {}, keys="cell types"),
                    "factors": FACTORS,
                    "background": MapOf(
                        Section(
                            {
                                "rate": Num(None, "Hz", "(default: brain.background's)", ge=0),
                                "weight": Num(None, "µS", "(default: brain.background's)"),
                            }
                        ),
                        {},
                        "this region's background drive per cell type",
                        keys="cell types",
                    ),
                }
            ),
            {},
            "per region label: other cell counts, parameter factors and background drive of its cell types",
            keys="region labels",
        ),
        "local": ListOf(
            Section(
                {
                    "source": Str(REQUIRED, "cell type"),
                    "target": Str(REQUIRED, "cell type"),
                    "synapse": Str(REQUIRED, "synapse of the target type"),
                    "indegree": Int(None, "inputs of each target cell from its own region", ge=1),
                    "probability": Num(
                        None,
                        "",
                        "or: each source cell of the region connects with this probability",
                        ge=0,
                        le=1,
                    ),
                    "weight": Either(**NUMBER_OR_RANGE, default=REQUIRED, doc="µS"),
                    "delay": Either(**NUMBER_OR_RANGE, default=REQUIRED, doc="ms"),
                }
            ),
            [],
            "connections within each region: a fixed in-degree (sources drawn with replacement, so multapses "
            "may occur) or a connection probability; never a cell onto itself",
        ),
        "long_range": Section(
            {
                "source": Str(REQUIRED, "cell type that sends long-range axons"),
                "targets": MapOf(Str(), REQUIRED, "receiving cell type: its synapse", keys="cell types"),
                "indegree": Int(
                    REQUIRED,
                    "long-range inputs of each target cell, split over source regions "
                    "in proportion to the connectome's weights",
                    ge=0,
                ),
                "weight": Either(**NUMBER_OR_RANGE, default=REQUIRED, doc="µS"),
                "weight_factors": MapOf(
                    Num(ge=0),
                    {},
                    "per receiving cell type: a factor on `weight` (default 1), e.g. weaker long-range "
                    "excitation of interneurons than of pyramidal cells",
                    keys="cell types",
                ),
                "synaptic_delay": Num(1.0, "ms", "added to the conduction delay", ge=0),
            },
            None,
            "connections between regions, from the connectome",
        ),
        "background": MapOf(
            Section(
                {
                    "synapse": Str(REQUIRED),
                    "rate": Num(REQUIRED, "Hz", ge=0),
                    "weight": Num(REQUIRED, "µS"),
                }
            ),
            {},
            "independent Poisson input to every cell of a type (the unmodelled rest of the brain)",
            keys="cell types",
        ),
    },
    None,
    "a whole brain: regions of a connectome populated with cell types",
)

REGIONS_OR_ALL = Either(
    (Str(choices=("all",)), ListOf(Str(), min_len=1)),
    "all",
    "brain regions (labels)",
    allowed_text="'all' or a list of region labels",
)
TYPES_OR_ALL = Either(
    (Str(choices=("all",)), ListOf(Str(), min_len=1)),
    "all",
    "cell types of the brain",
    allowed_text="'all' or a list of cell types",
)

PATIENT = Section(
    {
        "id": Str(REQUIRED, "patient identifier (recorded in the outputs' provenance)"),
        "description": Str("-", "free text"),
        "connectome": replace(BRAIN.fields["connectome"], default=None, doc="this patient's connectome"),
        "conduction_speed": Num(None, "mm/ms", "this patient's conduction speed", gt=0),
        "long_range_scale": Num(
            1.0,
            "",
            "factor on the weight of every long-range connection (brain.long_range.weight), e.g. the "
            "patient's white-matter integrity",
            ge=0,
        ),
        "cell_loss": MapOf(
            Num(ge=0, le=1),
            {},
            "per region label ('all': every region): the fraction of its cells lost (e.g. from MRI atrophy)",
            keys="region labels",
        ),
        "factors": MapOf(
            FACTORS,
            {},
            "per region label ('all': every region): parameter factors per cell type",
            keys="region labels",
        ),
        "background": MapOf(
            MapOf(Num(ge=0), keys="cell types"),
            {},
            "per region label ('all': every region): factor on the rate of a cell type's background drive "
            "(brain.background), e.g. the patient's own level of input from the unmodelled brain",
            keys="region labels",
        ),
        "lesions": Section(
            {
                "regions": ListOf(Str(), [], "regions removed from the brain"),
                "tracts": ListOf(
                    Section(
                        {
                            "source": Str(REQUIRED, "region label"),
                            "target": Str(REQUIRED, "region label"),
                            "scale": Num(REQUIRED, "", "multiplies weights[target, source]", ge=0),
                            "both_ways": Bool(True, "scale the reverse direction too"),
                        }
                    ),
                    [],
                    "tracts scaled (0: cut)",
                ),
            },
            {},
        ),
    },
    None,
    "a patient overlay (`--patient FILE`): what makes the twin this person's brain",
)

INTERVENTION = Tagged(
    {
        "drug": Section(
            {
                "mechanism": MechanismName("density", REQUIRED, "density mechanism, e.g. nata"),
                "parameter": Str("gbar", "parameter of the mechanism"),
                "factor": Num(
                    REQUIRED, "", "the parameter is multiplied by this once the drug has acted", ge=0
                ),
                "regions": REGIONS_OR_ALL,
                "cell_types": TYPES_OR_ALL,
                "onset": Num(0.0, "ms", ge=0),
                "ramp": Num(0.0, "ms", "linear ramp from 1 to factor after onset", ge=0),
            }
        ),
        "stimulation": Section(
            {
                "regions": REGIONS_OR_ALL,
                "cell_types": TYPES_OR_ALL,
                "location": Location("branch[0](0.5)"),
                "amplitude": Num(REQUIRED, "nA", "current of each pulse (positive: depolarising)"),
                "frequency": Num(REQUIRED, "Hz", gt=0),
                "pulse_width": Num(1.0, "ms", gt=0),
                "start": Num(0.0, "ms", ge=0),
                "stop": Num(None, "ms", "(default: the end of the run)", ge=0),
            }
        ),
        "lesion": Section(
            {
                "at": Num(REQUIRED, "ms", "when the lesion happens", ge=0),
                "regions": ListOf(
                    Str(), [], "regions cut off: their spikes reach nobody and no input reaches them"
                ),
                "tracts": replace(
                    PATIENT.fields["lesions"].fields["tracts"], doc="tracts scaled from then on"
                ),
            }
        ),
    },
    doc="drug: scale a mechanism's parameter in target regions and cell types; stimulation: pulse trains of "
    "current; lesion: cut regions off or scale tracts from a time on",
)

SYNAPSE = Section(
    {
        "name": Str(REQUIRED, "synapse name, used by connections and stimuli"),
        "cell": Str(REQUIRED, "population whose cells carry it"),
        "mechanism": MechanismName("point", REQUIRED, "point mechanism that receives events", events=True),
        "location": Location("soma(0.5)"),
        "params": MapOf(Num(), {}, keys="parameters"),
    },
    check=lambda s, path: check_params(s["mechanism"], s["params"], f"{path}.params"),
)

CELLS_SELECTION = Either(
    (Str(choices=("all",)), ListOf(Int(ge=0), min_len=1)),
    "all",
    "which cells of the population: 'all' or a list of indices within it",
    allowed_text="'all' or a list of cell indices within the population",
)

CONNECTION = Section(
    {
        "source": Str(REQUIRED, "source population"),
        "target": Str(REQUIRED, "target population"),
        "synapse": Str(REQUIRED, "synapse (on the target cells) that receives the events"),
        "rule": Tagged(
            {
                "ring": Section({}),
                "one_to_one": Section({}),
                "all_to_all": Section({"autapses": Bool(False)}),
                "fixed_indegree": Section({"indegree": Int(REQUIRED, ge=1), "autapses": Bool(False)}),
                "fixed_probability": Section({"p": Num(REQUIRED, ge=0, le=1), "autapses": Bool(False)}),
                "pairs": Section(
                    {
                        "pairs": ListOf(
                            ListOf(Int(ge=0), min_len=2, max_len=2), REQUIRED, "[source index, target index]"
                        )
                    }
                ),
            },
            doc="ring: source i -> target (i+1) mod N; fixed_indegree draws per target from (seed, gid)",
        ),
        "weight": Either(**NUMBER_OR_RANGE, default=REQUIRED, doc="µS"),
        "delay": Either(**NUMBER_OR_RANGE, default=REQUIRED, doc="ms; must be >= dt"),
    },
    check=lambda c, path: (
        _check_range(c["weight"], f"{path}.weight"),
        _check_range(c["delay"], f"{path}.delay"),
    ),
)

STIMULUS_NAME = Str(None, "a name to address it by (`--set stimuli.<name>.amplitude=...`)")
STIMULUS = Tagged(
    {
        "iclamp": Section(
            {
                "name": STIMULUS_NAME,
                "cell": Str(REQUIRED, "population"),
                "cells": CELLS_SELECTION,
                "location": Location("soma(0.5)", "a point, as for probes[].location"),
                "delay": Num(0.0, "ms", ge=0),
                "duration": Num(REQUIRED, "ms", ge=0),
                "amplitude": Num(REQUIRED, "nA"),
            }
        ),
        "spikes": Section(
            {
                "name": STIMULUS_NAME,
                "cell": Str(REQUIRED, "population"),
                "cells": CELLS_SELECTION,
                "synapse": Str(REQUIRED),
                "times": ListOf(Num(ge=0), REQUIRED, "ms"),
                "weight": Num(REQUIRED, "µS"),
            }
        ),
        "poisson": Section(
            {
                "name": STIMULUS_NAME,
                "cell": Str(REQUIRED, "population"),
                "cells": CELLS_SELECTION,
                "synapse": Str(REQUIRED),
                "rate": Num(REQUIRED, "Hz", ge=0),
                "start": Num(0.0, "ms", ge=0),
                "stop": Num(None, "ms", ge=0),
                "weight": Num(REQUIRED, "µS"),
            }
        ),
    },
    doc="iclamp: current clamp; spikes: events at given times; poisson: independent Poisson events per cell",
)

PROBE = Section(
    {
        "name": Str(None, "trace set name in the output (default: the variable)"),
        "variable": Str(REQUIRED, "'v', '<mechanism>.<state>' (e.g. 'hh.m'), 'cai', or '<synapse>.<state>'"),
        "cell": Str(REQUIRED, "population"),
        "cells": Either(
            (Str(choices=("all",)), ListOf(Int(ge=0), min_len=1)),
            [0],
            "cells of the population",
            allowed_text="'all' or a list of cell indices within the population",
        ),
        "location": Location(
            "soma(0.5)",
            "a point: 'soma(0.5)', 'dend[2](0.25)' (the region's 3rd branch), 'branch[7](1)', or "
            "'apical(distance=660)' (on the apical list 660 µm along the tree from the soma's middle, "
            "BluePyOpt's rule: README, Section lists); a region name; or 'all' (every compartment)",
            sets=True,
        ),
        "sampling": Num(None, "ms", "sampling interval (default dt); a multiple of dt", gt=0),
    }
)

OUTPUT = Section(
    {
        "path": Str(None, "Zarr store to write (default out/<name>.zarr)"),
        "overwrite": Bool(False, "replace an existing store at path"),
        "flush_interval": Num(
            10.0, "s", "wall time between writes of the buffered outputs to the store (and at the end)", gt=0
        ),
        "region_bin": Num(
            1.0, "ms", "time bin of the `regions` group (firing rate and mean V per brain region)", gt=0
        ),
        "checkpoint_every": Num(
            None,
            "ms",
            "write a checkpoint every this much simulated time (default: only on SIGTERM/SIGUSR1)",
            gt=0,
        ),
        "checkpoint": Str(None, "checkpoint folder (default: beside the store, <name>.checkpoint)"),
        "sonata": Bool(
            False,
            "also write the spikes as a SONATA spike report beside the store (<name>.spikes.h5: HDF5, one "
            "population per cell population, node ids 0-based within it, sorted by time), when the run "
            "completes",
        ),
        "stop_grace": Num(
            30.0,
            "s",
            "wall time a stop signal (SIGTERM, SIGUSR1, Ctrl-C) waits for the next epoch boundary, where the "
            "run checkpoints; past it the run stops after its current step, without a checkpoint",
            gt=0,
        ),
    },
    {},
    "where and how the run's Zarr store is written",
)

ALERT_VARIABLES = ("rate", "window_rate", "hypersynchrony", "ei_balance", "bold")


def _check_alert(rule, path):
    if (rule["above"] is None) == (rule["below"] is None):
        raise ConfigError(
            f"{path}.above", rule["above"], "exactly one of 'above' and 'below'", detail="give one threshold"
        )


ALERT = Section(
    {
        "name": Str(REQUIRED, "what the alert is called in reports"),
        "variable": Str(REQUIRED, "summary variable watched", choices=ALERT_VARIABLES),
        "above": Num(None, "", "match where the variable exceeds this"),
        "below": Num(None, "", "match where the variable falls below this"),
        "for": Num(0.0, "ms", "shortest duration of a match (0: any single sample)", ge=0),
        "after": Num(0.0, "ms", "watch from this time on (skips the start-up transient)", ge=0),
        "regions": Either(
            (Str(choices=("all",)), ListOf(Str(), min_len=1)),
            "all",
            "regions watched",
            allowed_text="'all' or a list of region labels",
        ),
        "probability": Num(
            0.5,
            "",
            "`brainsim follow`: the fraction of forecast members that must match for a warning (`summarize` "
            "ignores it)",
            gt=0,
            le=1,
        ),
    },
    check=_check_alert,
)

SUMMARY = Section(
    {
        "bin": Num(None, "ms", "time bin of rates and signals (default: output.region_bin, else 1 ms)", gt=0),
        "window": Num(
            50.0, "ms", "window of the indicators (hypersynchrony, E/I balance); a multiple of bin", gt=0
        ),
        "tr": Num(100.0, "ms", "BOLD sampling interval; a multiple of bin", gt=0),
        "alerts": ListOf(
            ALERT, [], "rules evaluated on the summary (`brainsim summarize --alerts FILE` adds more)"
        ),
    },
    {},
    "twin summary (`brainsim summarize`) settings and alert rules",
)

MECHANISMS = Section(
    {
        "paths": ListOf(
            Str(),
            [],
            "folders (every .mod file in them) and .mod files, relative to the config file's folder; each "
            "mechanism is named by its SUFFIX or POINT_PROCESS and takes its PARAMETER names",
        )
    },
    {},
    "NMODL mechanisms used beside the built-in ones (brainsim/mechanisms/*.mod), e.g. {paths: [mods/]}",
)

CONFIG = Section(
    {
        "name": Str("run", "run name"),
        "description": Str("-", "free text"),
        "mechanisms": MECHANISMS,
        "simulation": SIMULATION,
        "cells": ListOf(CELL, [], "populations of cells (besides those a brain generates)"),
        "brain": BRAIN,
        "patient": PATIENT,
        "interventions": ListOf(
            INTERVENTION, [], "treatments applied during the run (`--intervention FILE`)"
        ),
        "synapses": ListOf(SYNAPSE, []),
        "connections": ListOf(CONNECTION, []),
        "stimuli": ListOf(STIMULUS, []),
        "probes": ListOf(PROBE, []),
        "output": OUTPUT,
        "summary": SUMMARY,
    }
)
