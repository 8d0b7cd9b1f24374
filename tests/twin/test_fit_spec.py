"""The fit file (brainsim/config/fit_schema.py, brainsim/twin/parameters.py) and the features
(brainsim/twin/features.py): patterns expanded against the config, errors naming the file, key and value,
and one code path for summaries and observations."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

import brainsim
from brainsim.config.load import read_yaml
from brainsim.errors import ConfigError
from brainsim.postprocess.layout import BANDS
from brainsim.postprocess.signals import band_power
from brainsim.twin.features import feature_vector, pin, value_regions, variables_of
from brainsim.twin.parameters import load_fit, member_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "twin" / "patient_brain.yaml"
FEATURE = {"variable": "mean_rate", "transform": "log", "noise": 0.05}


def _fit_file(tmp_path, parameters, features=(FEATURE,)):
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump({"parameters": parameters, "features": [dict(f) for f in features]}))
    return path


def _load(path):
    return load_fit(path, brainsim.load_config(CONFIG), read_yaml(CONFIG))


def _family(**changes):
    family = {
        "name": "drive",
        "key": "patient.background.{region}.pyr",
        "regions": ["lh-precentral", "rh-precentral"],
        "prior": {"kind": "lognormal", "median": 1.0, "sigma": 0.2},
        "bounds": [0.5, 2.0],
    }
    return {k: v for k, v in {**family, **changes}.items() if v is not None}


def test_families_expand_over_regions_and_types(tmp_path):
    nata = _family(name="nata", key="patient.factors.{region}.{type}.nata.gbar", cell_types=["pyr", "fs"])
    spec = _load(_fit_file(tmp_path, [_family(), nata]))
    assert spec.names == [
        "drive[lh-precentral]", "drive[rh-precentral]", "nata[lh-precentral,pyr]", "nata[lh-precentral,fs]",
        "nata[rh-precentral,pyr]", "nata[rh-precentral,fs]",
    ]  # fmt: skip
    overlay = spec.overlay(None, [1.2, 0.8, 1.1, 1.0, 0.9, 1.0], "p")
    assert overlay["background"] == {"lh-precentral": {"pyr": 1.2}, "rh-precentral": {"pyr": 0.8}}
    assert overlay["factors"]["lh-precentral"]["pyr"] == {"nata.gbar": 1.1}
    # the overlay is what --patient loads: the member's config has it
    member = member_config(spec, read_yaml(CONFIG), [], CONFIG, [1.2, 0.8, 1.1, 1.0, 0.9, 1.0], "p")
    assert member["patient"]["background"]["rh-precentral"] == {"pyr": 0.8}
    assert member["patient"]["id"] == "p"
    # the region each belongs to, what a localised update reads; a key naming a region has it too
    lh, rh = "lh-precentral", "rh-precentral"
    assert [p.region for p in spec.parameters] == [lh, rh, lh, lh, rh, rh]
    named = _family(key="patient.background.lh-precentral.pyr", regions=None)
    everywhere = _family(name="all", key="patient.background.all.pyr", regions=None)
    spec = _load(_fit_file(tmp_path, [named, everywhere]))
    assert [p.region for p in spec.parameters] == ["lh-precentral", None]


def test_unbounded_transforms_round_trip(tmp_path):
    free = _family(bounds=None, regions=["lh-precentral"])
    speed = _family(name="speed", key="patient.conduction_speed", bounds=None,
                    prior={"kind": "normal", "mean": 1.0, "sd": 0.1})  # fmt: skip
    spec = _load(_fit_file(tmp_path, [free, speed]))
    drive, conduction = spec.parameters
    assert drive.to_theta(drive.to_u(1.7)) == pytest.approx(1.7)
    assert drive.to_u(np.e) == pytest.approx(1.0)  # log for a lognormal prior
    assert conduction.base == 5.0 and conduction.value(1.2) == pytest.approx(6.0)  # factor of brain's 5 mm/ms
    coupling = _load(_fit_file(tmp_path, [_family(name="coupling", key="patient.long_range_scale")]))
    (scale,) = coupling.parameters
    assert scale.base == 1.0 and coupling.overlay(None, [0.7], "p")["long_range_scale"] == pytest.approx(0.7)
    draws = _load(_fit_file(tmp_path, [_family()])).parameters[0].sample(np.random.default_rng(0), 500)
    assert draws.min() > 0.5 and draws.max() < 2.0


@pytest.mark.parametrize(
    "family, where, shown",
    [
        (_family(regions=["lh-nowhere"]), "parameters[0].regions", "lh-nowhere"),
        (_family(key="brain.long_range.weight"), "parameters[0].key", "brain.long_range.weight"),
        (_family(key="patient.factors.{region}.pyr"), "parameters[0].key", "<mechanism>.<parameter>"),
        (_family(key="patient.background.{region}.basket"), "parameters[0].key", "basket"),
        (_family(bounds=[2.0, 1.0]), "parameters[0].bounds", "low < high"),
        (
            _family(prior={"kind": "lognormal", "median": 3.0, "sigma": 0.2}),
            "parameters[0].prior.median",
            "in",
        ),
        (_family(prior={"kind": "gamma"}), "parameters[0].prior.kind", "lognormal"),
        (_family(key="patient.factors.{region}.pyr.nata.nothing"), "parameters", "nata.nothing"),
    ],
)
def test_bad_parameters_name_file_key_and_value(tmp_path, family, where, shown):
    path = _fit_file(tmp_path, [family])
    with pytest.raises(ConfigError) as e:
        _load(path)
    assert e.value.path == where
    assert str(path) in str(e.value) and shown in str(e.value)


def test_bad_features_name_the_key(tmp_path):
    path = _fit_file(tmp_path, [_family()], [{**FEATURE, "window": [300, 100]}])
    with pytest.raises(ConfigError, match=r"features\[0\]\.window"):
        _load(path)
    path = _fit_file(tmp_path, [_family()], [{**FEATURE, "transform": "sqrt"}])
    with pytest.raises(ConfigError, match=r"features\[0\]\.transform"):
        _load(path)


def test_representation_is_optional_and_checked(tmp_path):
    assert _load(_fit_file(tmp_path, [_family()])).representation is None
    path = _fit_file(tmp_path, [_family()])
    raw = yaml.safe_load(path.read_text())
    for representation, expected in (({"replicates": 8}, "auto"), ({"replicates": 8, "shrinkage": 0.3}, 0.3)):
        path.write_text(yaml.safe_dump({**raw, "representation": representation}))
        assert _load(path).representation == {"replicates": 8, "shrinkage": expected}
    for representation, where in (
        ({"replicates": 2}, r"representation\.replicates"),
        ({"replicates": 8, "shrinkage": 1.5}, r"representation\.shrinkage"),
        ({"replicates": 8, "shrinkage": "ledoit"}, r"representation\.shrinkage"),
        ({}, r"representation\.replicates"),
    ):
        path.write_text(yaml.safe_dump({**raw, "representation": representation}))
        with pytest.raises(ConfigError, match=where) as e:
            _load(path)
        assert str(path) in str(e.value)


def _feature(**changes):
    return {**FEATURE, "window": None, "select": {}, "normalise": None, "relative": False, **changes}


def _dataset(rate, eeg, bin_ms=1.0):
    n, r = rate.shape
    return xr.Dataset(
        {
            "rate": (("time", "region"), rate),
            "eeg": (("time", "electrode"), eeg),
            "mean_rate": (("region",), rate.mean(axis=0)),
        },
        coords={
            "time": np.arange(n) * bin_ms,
            "region": [f"r{k}" for k in range(r)],
            "electrode": ["Cz", "Pz"],
        },
        attrs={"bin": bin_ms},
    )


def test_features_of_a_window_use_the_summary_functions():
    rng = np.random.default_rng(0)
    rate = rng.gamma(2.0, 5.0, (1000, 3))
    eeg = rng.standard_normal((1000, 2))
    ds = _dataset(rate, eeg)
    values, labels = feature_vector(ds, [_feature()])
    np.testing.assert_allclose(values, np.log(rate.mean(axis=0)))
    assert labels == ["mean_rate[r0]", "mean_rate[r1]", "mean_rate[r2]"]
    values, labels = feature_vector(ds, [_feature(window=[200, 700])])
    np.testing.assert_allclose(values, np.log(rate[200:700].mean(axis=0)))
    assert labels[0] == "mean_rate[r0]@200-700"
    gamma = {"band": ["gamma"]}
    power = _feature(variable="band_power_eeg", window=[0, 1000], normalise="band", select=gamma)
    values, labels = feature_vector(ds, [power])
    expected = band_power(eeg, 1.0)
    np.testing.assert_allclose(values, np.log(expected[-1] / expected.sum(axis=0)))
    assert labels == ["band_power_eeg[Cz,gamma]@0-1000", "band_power_eeg[Pz,gamma]@0-1000"]
    assert list(BANDS)[-1] == "gamma"
    # what a member's summary must hold for them: the time series of windowed features, else the variable
    peak = _feature(variable="eeg_peak_frequency", transform="none")
    features = [_feature(window=[200, 700]), power, _feature(), peak, _feature(window=[0, 100])]
    assert variables_of(features) == ["rate", "eeg", "mean_rate", "eeg_peak_frequency"]


def test_value_regions_name_each_feature_values_regions():
    rng = np.random.default_rng(2)
    ds = _dataset(rng.gamma(2.0, 5.0, (500, 3)), rng.standard_normal((500, 2)))
    power = _feature(variable="band_power_eeg", window=[0, 500], normalise="band", select={"band": ["gamma"]})
    regions = value_regions(ds, [_feature(window=[0, 500]), power])
    assert regions == [frozenset({"r0"}), frozenset({"r1"}), frozenset({"r2"}), None, None]


def test_pinned_labels_align_a_summary_with_fewer_observed_labels():
    rng = np.random.default_rng(1)
    summary = _dataset(rng.gamma(2.0, 5.0, (500, 3)), rng.standard_normal((500, 2)))
    observed = summary.isel(region=[2, 0])
    features = pin(observed, [_feature(window=[0, 500])])
    assert features[0]["select"] == {"region": ["r2", "r0"]}
    values, labels = feature_vector(summary, features)
    assert labels == ["mean_rate[r2]@0-500", "mean_rate[r0]@0-500"]
    np.testing.assert_allclose(values, feature_vector(observed, features)[0])
    with pytest.raises(ConfigError, match="outside|inside the record"):
        feature_vector(summary, [_feature(window=[0, 600])])
    with pytest.raises(ConfigError, match=r"select\.region"):
        feature_vector(summary.isel(region=[0]), features)


def test_patient_background_scales_the_drive():
    """patient.background (what the drive family fits) multiplies a type's background rate per region."""
    overlay = {"id": "p", "background": {"all": {"pyr": 2.0}, "lh-postcentral": {"pyr": 0.5}}}
    cfg = brainsim.load_config(CONFIG, {"patient": overlay})
    recipe = brainsim.Recipe(cfg)
    rates = {p.name: recipe.poisson_on(p.first_gid)[0].rate for p in recipe.populations}
    assert rates["lh-precentral.pyr"] == pytest.approx(2000.0)
    assert rates["lh-postcentral.pyr"] == pytest.approx(1000.0)
    assert rates["lh-postcentral.fs"] == pytest.approx(1000.0)
    with pytest.raises(ConfigError, match=r"patient\.background\.all\.basket"):
        brainsim.load_config(CONFIG, {"patient": {"id": "p", "background": {"all": {"basket": 2.0}}}})
    with pytest.raises(ConfigError, match=r"patient\.background\.lh-nowhere"):
        brainsim.load_config(CONFIG, {"patient": {"id": "p", "background": {"lh-nowhere": {"pyr": 2.0}}}})
