"""The free parameters of a fit: the fit file's families expanded over regions and cell types, their
priors, the unconstrained space the inversion works in, and each member as a patient overlay.

A parameter's value theta is in its own units: a factor on the base config's value (`as: factor`; 1
where the base sets none, the brain's conduction speed for patient.conduction_speed) or the value
itself. The inversion works in u: logit((theta - low) / (high - low)) for a bounded parameter (bounds, or
a uniform prior's range), log(theta) for an unbounded lognormal one, theta for an unbounded normal one.
"""

import copy
from dataclasses import dataclass

import numpy as np

from brainsim.config.fit_schema import resolve_fit
from brainsim.config.load import read_yaml, resolve_config
from brainsim.errors import ConfigError
from brainsim.model.brain import Brain
from brainsim.model.checks import check_model
from brainsim.model.recipe import Recipe

# patient key → segments after `patient.` it takes ("label": a region label or 'all'; "type": a cell type
# or 'all'; "name": one key, the rest of the path, e.g. nata.gbar)
PATIENT_KEYS = {
    "factors": ("label", "type", "name"),
    "background": ("label", "type"),
    "cell_loss": ("label",),
    "conduction_speed": (),
    "long_range_scale": (),
}


@dataclass(frozen=True)
class Parameter:
    name: str  # family[region,type]
    family: int  # index of its family in the fit file
    path: tuple  # segments under `patient`
    prior: dict
    bounds: tuple | None  # (low, high) of theta, or None
    as_factor: bool
    base: float  # the base config's value (what a factor multiplies)
    drift: float = 0.0  # `brainsim follow`: random-walk sd in u after 1 s of brain time
    trend: float = 0.0  # `brainsim follow`: random-walk sd of the rate of u (per s) after 1 s of brain time
    region: str | None = None  # the region label it belongs to (None: the whole brain's)

    def to_u(self, theta):
        theta = np.asarray(theta, dtype=float)
        if self.bounds is not None:
            low, high = self.bounds
            p = np.clip((theta - low) / (high - low), 1e-12, 1 - 1e-12)
            return np.log(p) - np.log1p(-p)
        return np.log(theta) if self.prior["kind"] == "lognormal" else theta

    def to_theta(self, u):
        u = np.asarray(u, dtype=float)
        if self.bounds is not None:
            low, high = self.bounds
            return low + (high - low) / (1.0 + np.exp(-u))
        return np.exp(u) if self.prior["kind"] == "lognormal" else u

    @property
    def median(self):
        """The median of the prior (theta's units: a factor or a value)."""
        prior = self.prior
        if prior["kind"] == "lognormal":
            return prior["median"]
        if prior["kind"] == "normal":
            return prior["mean"]
        return 0.5 * (prior["low"] + prior["high"])

    def sample(self, rng, n):
        """n draws of theta from the prior (inside the bounds: draws outside are drawn again)."""
        prior, out = self.prior, np.empty(0)
        while out.size < n:
            if prior["kind"] == "uniform":
                draw = rng.uniform(prior["low"], prior["high"], n)
            elif prior["kind"] == "lognormal":
                draw = prior["median"] * np.exp(prior["sigma"] * rng.standard_normal(n))
            else:
                draw = prior["mean"] + prior["sd"] * rng.standard_normal(n)
            if self.bounds is not None:
                low, high = self.bounds
                draw = draw[(draw > low) & (draw < high)]
            out = np.concatenate([out, draw])
        return out[:n]

    def value(self, theta):
        """The config value a theta sets."""
        return float(theta) * self.base if self.as_factor else float(theta)


@dataclass(frozen=True)
class FitSpec:
    """A fit file resolved against the base config."""

    parameters: list  # [Parameter]
    features: list  # the fit file's features (dicts)
    method: dict
    file: str
    representation: dict | None = None  # the fit file's representation (None: independent feature errors)

    @property
    def names(self):
        return [p.name for p in self.parameters]

    def overlay(self, base_patient, theta, patient_id):
        """The patient overlay (a `patient` section, as written in YAML) of one member: the base config's
        raw patient section with each parameter's value set."""
        patient = copy.deepcopy(base_patient) if base_patient else {}
        patient["id"] = patient_id
        for p, t in zip(self.parameters, theta):
            node = patient
            for step in p.path[:-1]:
                node = node.setdefault(step, {})
            node[p.path[-1]] = p.value(t)
        return patient


def load_fit(path, config, raw, overrides=()):
    """The fit file at path, validated, its families expanded against the base config (a RunConfig loaded
    from the YAML `raw` with the --set `overrides`): unknown regions, cell types or key paths are errors
    naming the fit file and key."""
    fit = resolve_fit(read_yaml(path), path)
    if config["brain"] is None:
        raise ConfigError("brain", None, "a config with a brain section (a fit personalises a brain)")
    labels = list(Brain(config).labels)
    types = list(config["brain"]["cell_types"])
    parameters = []
    for i, family in enumerate(fit["parameters"]):
        parameters += _expand(family, i, labels, types, config, path)
    spec = FitSpec(parameters, fit["features"], fit["method"], str(path), fit["representation"])
    names = spec.names
    for k, name in enumerate(names):
        if name in names[:k]:
            raise ConfigError(
                f"parameters[{parameters[k].family}].key",
                fit["parameters"][parameters[k].family]["key"],
                "keys that set each value once",
                detail=f"{name} is also set by another family",
                file=str(path),
            )
    _check_overlay(spec, config, raw, overrides, path)
    return spec


def _expand(family, index, labels, types, config, file):
    where = f"parameters[{index}]"
    segments = family["key"].split(".")
    if segments[0] != "patient" or len(segments) < 2 or segments[1] not in PATIENT_KEYS:
        raise ConfigError(
            f"{where}.key",
            family["key"],
            f"a patient key: {', '.join('patient.' + k for k in PATIENT_KEYS)} (each fitted member is a "
            "patient overlay)",
            file=str(file),
        )
    shape = PATIENT_KEYS[segments[1]]
    rest = segments[2:]
    if "name" in shape:  # the last segment takes the rest of the path (nata.gbar)
        rest = (
            rest[: len(shape) - 1] + [".".join(rest[len(shape) - 1 :])] if len(rest) >= len(shape) else rest
        )
    if len(rest) != len(shape) or any(not s for s in rest):
        form = ".".join(
            [
                "patient",
                segments[1],
                *({"label": "{region}", "type": "{type}"}.get(s, "<mechanism>.<parameter>") for s in shape),
            ]
        )
        raise ConfigError(f"{where}.key", family["key"], f"a key of the form {form}", file=str(file))
    regions = _chosen(family["regions"], labels, f"{where}.regions", "region label", file)
    cells = _chosen(family["cell_types"], types, f"{where}.cell_types", "cell type", file)
    out = []
    for region in regions if "{region}" in family["key"] else [None]:
        for cell in cells if "{type}" in family["key"] else [None]:
            path, owner = [segments[1]], None
            for kind, step in zip(shape, rest):
                step = step.replace("{region}", region or "").replace("{type}", cell or "")
                known = labels + ["all"] if kind == "label" else types + ["all"] if kind == "type" else None
                if known is not None and step not in known:
                    raise ConfigError(
                        f"{where}.key", family["key"], f"{kind}s of the config's brain: {known}",
                        detail=f"'{step}' is not one", file=str(file),
                    )  # fmt: skip
                path.append(step)
                if kind == "label" and step != "all":
                    owner = step
            tags = ",".join(t for t in (region, cell) if t is not None)
            name = f"{family['name']}[{tags}]" if tags else family["name"]
            prior = family["prior"]
            bounds = (prior["low"], prior["high"]) if prior["kind"] == "uniform" else family["bounds"]
            base = _base(config, path)
            if family["as"] == "factor" and base == 0:
                raise ConfigError(
                    f"{where}.as", "factor", "value (the base config's value is 0: a factor has no effect)",
                    file=str(file),
                )  # fmt: skip
            out.append(
                Parameter(name, index, tuple(path), prior, None if bounds is None else tuple(bounds),
                          family["as"] == "factor", base, family["drift"], family["trend"], owner)
            )  # fmt: skip
    return out


def _chosen(selection, known, where, what, file):
    if selection == "all":
        return list(known)
    for item in selection:
        if item not in known:
            raise ConfigError(where, item, f"a {what} of the config's brain: {known}", file=str(file))
    return list(selection)


def _base(config, path):
    """The base config's value at patient.<path> (what a factor multiplies)."""
    node = config["patient"] or {}
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    if node is not None:
        return float(node)
    if path[0] == "conduction_speed":
        return float(config["brain"]["conduction_speed"])
    return 0.0 if path[0] == "cell_loss" else 1.0


def _check_overlay(spec, config, raw, overrides, file):
    """A member at a draw from the priors makes a valid config (mechanisms, parameters, drives exist)."""
    draw = [float(p.sample(np.random.default_rng(0), 1)[0]) for p in spec.parameters]
    try:
        check_model(Recipe(member_config(spec, raw, overrides, config.source, draw, "check")))
    except ConfigError as e:
        raise ConfigError(
            "parameters", e.path, "keys the config accepts", detail=str(e), file=str(file)
        ) from None


def member_config(spec, raw, overrides, source, theta, patient_id):
    """The RunConfig of one member: the raw base config (its YAML) with --set overrides and the member's
    patient overlay, as `brainsim run CONFIG --set ... --patient member.yaml` would load it."""
    raw = copy.deepcopy(raw)
    raw["patient"] = spec.overlay(raw.get("patient"), theta, patient_id)
    return resolve_config(raw, overrides, source=source)
