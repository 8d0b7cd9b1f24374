"""The fit file (`brainsim fit --parameters fit.yaml`), declared once: the free parameters, the features
matched to the observations, and the method.

    parameters:                      # families; {region} and {type} in a key expand over regions, cell types
      - name: drive
        key: patient.background.{region}.pyr
        regions: all                 # or a list of region labels
        prior: {kind: lognormal, median: 1.0, sigma: 0.2}
        bounds: [0.5, 2.0]
        as: factor                   # the value multiplies the base config's (1 where it sets none)
        drift: 0.05                  # brainsim follow only: random-walk sd per sqrt(s) of brain time, in u
        trend: 0.0                   # brainsim follow only: random-walk sd of the rate of change of u
    features:
      - {variable: mean_rate, transform: log, window: [0, 300], noise: 0.05}
      - {variable: band_power_eeg, transform: log, window: [0, 300], noise: 0.4, select: {band: [gamma]}}
    method: {kind: eki, members: 16, iterations: 3}    # or kind: cmaes (brainsim/twin/cma.py)
    representation: {replicates: 24, shrinkage: auto}  # optional: the model's own variability, below

Without `representation` the features' errors are independent, each with its `noise` sd (a diagonal Γ).
With it, the fit first runs `replicates` members at the priors' medians (distinct seeds) and takes the
features' covariance over them (the spread between network realisations of one parameter set), shrunk
towards its diagonal, plus diag(noise²) as Γ: `noise` is then the recording's own measurement error.

Parameters are patient keys (`patient.factors.{region}.{type}.<mechanism>.<parameter>`,
`patient.background.{region}.{type}`, `patient.conduction_speed`, `patient.cell_loss.{region}`), so each
fitted member is a patient overlay usable with `--patient`.
"""

from ..errors import ConfigError
from .options import REQUIRED, Bool, Either, Int, ListOf, MapOf, Num, Section, Str, Tagged

TRANSFORMS = ("log", "none")
METHODS = ("eki", "cmaes")


def _check_bounds(family, path):
    bounds = family["bounds"]
    if bounds is not None and not (len(bounds) == 2 and bounds[0] < bounds[1]):
        raise ConfigError(f"{path}.bounds", bounds, "[low, high] with low < high")
    prior = family["prior"]
    if prior["kind"] == "lognormal" and bounds is not None and bounds[0] < 0:
        raise ConfigError(f"{path}.bounds", bounds, "bounds >= 0 for a lognormal prior (a positive value)")
    if prior["kind"] == "uniform":
        if not prior["low"] < prior["high"]:
            raise ConfigError(f"{path}.prior.high", prior["high"], f"a value > prior.low ({prior['low']})")
        if bounds is not None:
            raise ConfigError(
                f"{path}.bounds", bounds, "no bounds with a uniform prior (its low and high are the bounds)"
            )
    centre = {"lognormal": "median", "normal": "mean"}.get(prior["kind"])
    if centre and bounds is not None and not bounds[0] < prior[centre] < bounds[1]:
        raise ConfigError(f"{path}.prior.{centre}", prior[centre], f"a value inside the bounds {bounds}")


def _check_window(feature, path):
    window = feature["window"]
    if window is not None and not (len(window) == 2 and 0 <= window[0] < window[1]):
        raise ConfigError(f"{path}.window", window, "[t0, t1] ms with 0 <= t0 < t1")


PRIOR = Tagged(
    {
        "lognormal": Section(
            {
                "median": Num(REQUIRED, "", "median (the parameter's units: a factor, or a value)", gt=0),
                "sigma": Num(REQUIRED, "", "standard deviation of the log of the parameter", gt=0),
            }
        ),
        "normal": Section(
            {
                "mean": Num(REQUIRED, "", "mean (the parameter's units)"),
                "sd": Num(REQUIRED, "", "standard deviation", gt=0),
            }
        ),
        "uniform": Section(
            {"low": Num(REQUIRED, "", "lowest value"), "high": Num(REQUIRED, "", "highest value")}
        ),
    },
    doc="prior distribution of each parameter of the family",
)

PARAMETER = Section(
    {
        "name": Str(
            REQUIRED, "family name; its parameters are name[region], name[type] or name[region,type]"
        ),
        "key": Str(
            REQUIRED,
            "patient key path with {region} and {type} patterns, e.g. patient.factors.{region}.pyr.nata.gbar",
        ),
        "regions": Either(
            (Str(choices=("all",)), ListOf(Str(), min_len=1)),
            "all",
            "the regions {region} expands over",
            allowed_text="'all' or a list of region labels",
        ),
        "cell_types": Either(
            (Str(choices=("all",)), ListOf(Str(), min_len=1)),
            "all",
            "the cell types {type} expands over",
            allowed_text="'all' or a list of cell types",
        ),
        "prior": PRIOR,
        "bounds": ListOf(Num(), None, "[low, high]: the parameter stays inside (fitted through a logit)"),
        "as": Str(
            "factor",
            "factor: the value multiplies the base config's (1 where it sets none); value: replaces it",
            choices=("factor", "value"),
        ),
        "drift": Num(
            0.0,
            "1/sqrt(s)",
            "`brainsim follow`: standard deviation of the parameters' random walk after one second of brain "
            "time, in the inversion's unconstrained space (its variance grows by drift^2 per second; 0: "
            "constant parameters). `brainsim fit` ignores it",
            ge=0,
        ),
        "trend": Num(
            0.0,
            "1/s^1.5",
            "`brainsim follow`: standard deviation of the random walk of the parameters' rate of change (in "
            "the unconstrained space, per second) after one second of brain time; > 0 makes the filter "
            "estimate the rate and the forecasts extrapolate it (0: no rate). `brainsim fit` ignores it",
            ge=0,
        ),
    },
    check=_check_bounds,
)

FEATURE = Section(
    {
        "variable": Str(
            REQUIRED,
            "a summary / observation variable: mean_rate, mean_rate_excitatory, mean_rate_inhibitory, "
            "band_power, band_power_eeg, spectrum_eeg, eeg_peak_frequency, fc_bold, fc_rate, ...",
        ),
        "transform": Str("none", "applied before matching (log: of the values)", choices=TRANSFORMS),
        "window": ListOf(
            Num(ge=0),
            None,
            "[t0, t1] ms: computed from the time series in this window (default: the stored value)",
        ),
        "select": MapOf(
            ListOf(Str(), min_len=1),
            {},
            "labels kept along a dimension, e.g. {band: [beta, gamma]} or {electrode: [Cz, Pz]}",
            keys="dimensions",
        ),
        "normalise": Str(
            None, "divide each value by the sum over this dimension (band: relative band power)"
        ),
        "noise": Num(REQUIRED, "", "standard deviation of each value's error, in transformed units", gt=0),
        "relative": Bool(False, "noise is relative: times |observed value| (untransformed features)"),
    },
    check=_check_window,
)

METHOD = Section(
    {
        "kind": Str(
            "eki",
            "eki: ensemble Kalman inversion (Iglesias, Law & Stuart 2013), adaptive steps, a posterior "
            "ensemble; cmaes: CMA-ES minimising the misfit, a point estimate (the best member)",
            choices=METHODS,
        ),
        "members": Int(16, "ensemble size, or CMA-ES population (member runs per iteration)", ge=2),
        "iterations": Int(
            4,
            "eki: most Kalman updates; steps are chosen from the data misfit (Iglesias & Yang 2021) and "
            "the last one completes the data assimilation. cmaes: generations after the first",
            ge=1,
        ),
        "seed": Int(
            1,
            "seed of the prior ensemble (or search), the perturbed observations and the members' runs",
            ge=0,
        ),
        "localise": Str(
            "regions",
            "eki and brainsim follow: regions: a region's parameters are updated from the features of that "
            "region and of none (EEG electrodes), not from chance correlations with other regions' "
            "(domain localisation); none: every parameter from every feature",
            choices=("regions", "none"),
        ),
    },
    {},
    "the inversion method",
)

REPRESENTATION = Section(
    {
        "replicates": Int(
            REQUIRED,
            "member runs at the priors' medians, each with its own seed, before the first ensemble: the "
            "features' covariance over them is the model's own variability (one runner batch)",
            ge=3,
        ),
        "shrinkage": Either(
            (Str(choices=("auto",)), Num(ge=0, le=1)),
            "auto",
            "intensity with which the replicates' covariance is shrunk towards its diagonal (0: the sample "
            "covariance, 1: its diagonal; auto: Ledoit-Wolf's estimate of the best)",
            allowed_text="'auto' or a number in [0, 1]",
        ),
    },
    None,
    "correlated feature errors estimated from replicate runs (default: none, independent errors)",
)

FIT = Section(
    {
        "parameters": ListOf(PARAMETER, REQUIRED, "families of free parameters"),
        "features": ListOf(FEATURE, REQUIRED, "what is matched to the observations"),
        "method": METHOD,
        "representation": REPRESENTATION,
    }
)


def resolve_fit(raw, source):
    """The fit file's content (raw YAML) validated, with defaults filled in; errors name the key path (and
    the file)."""
    try:
        fit = FIT.resolve(raw, "")
    except ConfigError as e:
        raise ConfigError(e.path, e.value, e.allowed, detail=e.detail, file=str(source)) from None
    if not fit["parameters"]:
        raise ConfigError("parameters", [], "at least one parameter family", file=str(source))
    if not fit["features"]:
        raise ConfigError("features", [], "at least one feature", file=str(source))
    names = [p["name"] for p in fit["parameters"]]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"parameters[{i}].name", name, "a name no other family has", file=str(source))
    return fit
