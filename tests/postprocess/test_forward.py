"""The summary's EEG forward model (MNE's sphere model, one radial dipole per region) with known answers:
the analytic potential of a radial dipole in a homogeneous sphere, the maximum above each dipole,
superposition and scaling, the average reference, the frame rule on TVB's and the synthetic connectome,
and the summary's EEG computed through it."""

import json

import numpy as np
import pytest
import xarray as xr
from scipy.special import eval_legendre
from test_summarize import CENTRES, LABELS, write_run

from brainsim.model.connectome import read_tvb_zip
from brainsim.postprocess import forward
from brainsim.postprocess.signals import ELECTRODES_1020
from brainsim.postprocess.summarize import summarize
from brainsim.resources import synthetic_connectome

HOMOGENEOUS = ((0.9, 0.33), (1.0, 0.33))  # two shells of one conductivity: a homogeneous sphere
SIGMA = 0.33  # S/m


def _synthetic():
    connectome = read_tvb_zip(synthetic_connectome())
    return connectome, ["right" if h else "left" for h in connectome.hemispheres]


def _electrodes(shells=forward.SHELLS):
    info, sphere = forward.head_model(shells)
    return np.array([ch["loc"][:3] for ch in info["chs"]]), sphere


def _radial_dipole_in_sphere(depth, cos_angle, radius):
    """V (V per A m) on the surface of a homogeneous sphere (radius m, SIGMA) at the given cosines of the
    angle from a radial unit dipole at depth = its distance from the centre / radius:
    sum over n >= 1 of (2n + 1) depth^(n-1) P_n(cos) / (4 pi sigma R^2) (Legendre expansion of the
    infinite-medium potential plus the harmonic field that makes the normal current vanish at R)."""
    n = np.arange(1, 2000)[:, None]
    terms = (2 * n + 1) * depth ** (n - 1) * eval_legendre(n, cos_angle[None, :])
    return terms.sum(axis=0) / (4 * np.pi * SIGMA * radius**2)


@pytest.mark.parametrize("depth", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("above", ["Cz", "O1", "T8"])
def test_homogeneous_sphere_matches_the_analytic_radial_dipole(depth, above):
    electrodes, sphere = _electrodes(HOMOGENEOUS)
    origin, radius = sphere["r0"], sphere["layers"][-1]["rad"]
    rays = (electrodes - origin) / radius
    assert np.allclose(np.linalg.norm(rays, axis=1), 1.0)  # electrodes on the scalp sphere
    ray = rays[ELECTRODES_1020.index(above)]
    gain = forward.gain((origin + depth * radius * ray)[None], ray[None], HOMOGENEOUS)[:, 0]
    expected = _radial_dipole_in_sphere(depth, rays @ ray, radius)
    np.testing.assert_allclose(gain, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_skull_spreads_and_attenuates_the_potential():
    """The four-shell head (a skull 80 times less conductive than the scalp) against a homogeneous sphere:
    a weaker peak above the dipole and a broader map."""
    electrodes, sphere = _electrodes()
    origin, radius = sphere["r0"], sphere["layers"][-1]["rad"]
    ray = (electrodes[ELECTRODES_1020.index("Cz")] - origin) / radius
    position = (origin + 0.6 * radius * ray)[None]
    maps = {name: forward.gain(position, ray[None], shells)[:, 0] for name, shells in
            (("head", forward.SHELLS), ("homogeneous", HOMOGENEOUS))}  # fmt: skip
    assert maps["head"].max() < 0.5 * maps["homogeneous"].max()
    around = [ELECTRODES_1020.index(name) for name in ("Fz", "C3", "C4", "Pz")]  # about 45 degrees away
    spread = {name: m[around] / m.max() for name, m in maps.items()}
    assert (spread["head"] > spread["homogeneous"]).all()


def test_each_region_is_strongest_at_the_electrode_above_it():
    """A radial dipole's potential falls with the angle from it: every region's largest (positive) value is
    at the electrode nearest to its ray from the sphere's origin."""
    connectome, hemisphere = _synthetic()
    field = forward.lead_field(connectome.centres, hemisphere)
    positions, _ = forward.place(connectome.centres, hemisphere)
    electrodes, sphere = _electrodes()
    rays = forward.orientations(positions)
    cosines = (
        (electrodes - sphere["r0"]) @ rays.T / np.linalg.norm(electrodes - sphere["r0"], axis=1)[:, None]
    )
    np.testing.assert_array_equal(field.argmax(axis=0), cosines.argmax(axis=0))
    assert (field.max(axis=0) > 0).all()
    strongest = {label: ELECTRODES_1020[k] for label, k in zip(connectome.labels, field.argmax(axis=0))}
    assert strongest["lh-lateraloccipital"] == "O1" and strongest["rh-lateraloccipital"] == "O2"
    assert strongest["lh-precentral"] == "C3" and strongest["rh-precentral"] == "C4"
    assert strongest["lh-superiortemporal"] == "T7" and strongest["rh-superiortemporal"] == "T8"
    assert strongest["lh-frontalpole"] == "Fp1" and strongest["rh-frontalpole"] == "Fp2"


def test_superposition_scaling_and_average_reference():
    connectome, hemisphere = _synthetic()
    positions, _ = forward.place(connectome.centres, hemisphere)
    normals = forward.orientations(positions)
    both = forward.gain(positions[:2], normals[:2])
    each = [forward.gain(positions[[k]], normals[[k]])[:, 0] for k in range(2)]
    np.testing.assert_allclose(both, np.stack(each, axis=1), rtol=1e-12)  # sources do not interact
    field = forward.lead_field(connectome.centres, hemisphere)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 500))
    two = np.zeros((500, len(connectome.labels)))
    two[:, 10], two[:, 40] = 2.0 * a, -0.5 * b
    np.testing.assert_allclose(
        two @ field.T, np.outer(2.0 * a, field[:, 10]) - np.outer(0.5 * b, field[:, 40])
    )
    np.testing.assert_allclose(field.sum(axis=0), 0.0, atol=1e-12 * np.abs(field).max())
    # µV per mV: DIPOLE_PER_MV nAm through the gain (V / (A m)), average referenced
    raw = forward.gain(positions, normals) * forward.DIPOLE_PER_MV * 1e-3
    np.testing.assert_allclose(field, raw - raw.mean(axis=0), rtol=1e-12)


def test_the_gain_is_cached_per_geometry():
    connectome, hemisphere = _synthetic()
    first = forward.lead_field(connectome.centres, hemisphere)
    hits = forward._gain.cache_info().hits
    np.testing.assert_array_equal(forward.lead_field(connectome.centres.copy(), list(hemisphere)), first)
    assert forward._gain.cache_info().hits == hits + 1


def test_frame_rule_turns_tvb_axes_and_keeps_mni_ones():
    connectome, hemisphere = _synthetic()
    np.testing.assert_array_equal(forward.frame_turn(connectome.centres, hemisphere), np.eye(3))
    # the same brain in TVB's connectivity_76 axes (x anterior, y left) gives the same field
    tvb = connectome.centres[:, [1, 0, 2]] * [1.0, -1.0, 1.0]
    turn = forward.frame_turn(tvb, hemisphere)
    np.testing.assert_allclose(tvb @ turn.T, connectome.centres, atol=1e-12)
    np.testing.assert_allclose(
        forward.lead_field(tvb, hemisphere), forward.lead_field(connectome.centres, hemisphere), atol=1e-9
    )
    np.testing.assert_allclose(
        forward.electrodes_in_frame(tvb, hemisphere),
        forward.electrodes_in_frame(connectome.centres, hemisphere) @ turn,
        atol=1e-9,
    )


def test_tvb_connectivity_76():
    pytest.importorskip("tvb_data")
    from brainsim.model.connectome import load_tvb_data

    connectome = load_tvb_data("connectivity_76")
    hemisphere = ["right" if h else "left" for h in connectome.hemispheres]
    field = forward.lead_field(connectome.centres, hemisphere)
    strongest = {label: ELECTRODES_1020[k] for label, k in zip(connectome.labels, field.argmax(axis=0))}
    assert strongest["lV1"] == "O1" and strongest["rV1"] == "O2"
    assert strongest["lPFCPOL"] == "Fp1" and strongest["rPFCPOL"] == "Fp2"
    side = {"left": "13579z", "right": "02468z"}  # 10-20: odd digits left, even right, z midline
    assert all(strongest[label][-1] in side[h] for label, h in zip(connectome.labels, hemisphere))


def test_far_centres_are_pulled_inside_the_brain_shell():
    _, sphere = _electrodes()
    centres = np.array([[0.0, -200.0, 0.0], [0.0, 0.0, 20.0]])  # mm: behind the head; near the middle
    positions, moved = forward.place(centres, ["", ""])
    distance = np.linalg.norm(positions - sphere["r0"], axis=1)
    assert moved.tolist() == [True, False]
    assert distance[0] == pytest.approx(sphere["layers"][0]["rad"] - forward.SKULL_MARGIN * 1e-3)
    assert np.isfinite(forward.lead_field(centres, ["", ""])).all()


def test_summary_eeg_is_the_forward_model_of_the_region_signals(tmp_path):
    run, _, _ = write_run(tmp_path / "run.zarr")
    ds = xr.open_zarr(summarize(run, tmp_path / "s.zarr", scheduler="sync", log=lambda line: None).path)
    hemisphere = ["left", "left", "right", "right", "right"]
    field = forward.lead_field(CENTRES, hemisphere)
    expected = ds.signal.values.astype(np.float64) @ field.T
    np.testing.assert_allclose(ds.eeg.values, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert list(ds.electrode.values) == list(ELECTRODES_1020) and list(ds.region.values) == LABELS
    assert ds.eeg.attrs["units"] == "uV" and ds.band_power_eeg.attrs["units"] == "uV^2"
    assert ds.eeg.attrs["dipole_per_mv"] == forward.DIPOLE_PER_MV
    assert (
        "sphere model" in ds.eeg.attrs["forward_model"]
        and json.loads(ds.eeg.attrs["regions_pulled_in"]) == []
    )
    np.testing.assert_allclose(ds.eeg.values.sum(axis=1), 0.0, atol=1e-5 * np.abs(expected).max())
    positions = np.stack([ds[f"electrode_{a}"].values for a in "xyz"], axis=1)
    np.testing.assert_allclose(positions, forward.electrodes_in_frame(CENTRES, hemisphere))
