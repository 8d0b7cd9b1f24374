"""M1 (one HH cable cell) with the peer-compatible scheme against NEURON 9.0.2 and Arbor 0.12.2."""

import numpy as np
import pytest
from support import REFERENCE, crossings, spikes, trace

M1 = "configs/bench/m1_hh_cable.yaml"


@pytest.fixture(scope="module")
def m1(tmp_path_factory):
    from support import simulate

    return simulate(M1, output=tmp_path_factory.mktemp("m1") / "m1.zarr")


def reference(name):
    ref = np.load(REFERENCE / f"M1_{name}.npz")
    return ref["t"], ref["v"]


def test_eight_spikes_matching_exact_rate_references(m1):
    _, store = m1
    gid, times = spikes(store)
    assert gid.tolist() == [0] * 8
    for name in ("neuron_exact", "arbor"):
        ref = crossings(*reference(name), -20.0)
        assert ref.size == 8
        assert np.max(np.abs(times - ref)) < 0.01, name


def test_spike_times_against_neuron_tables(m1):
    """NEURON's default tabulated hh differs from exact rates by up to 0.07 ms (MODELS.md §3)."""
    _, store = m1
    assert np.max(np.abs(spikes(store)[1] - crossings(*reference("neuron"), -20.0))) < 0.07


def test_soma_voltage_rms(m1):
    _, store = m1
    t, v, ds = trace(store, "soma_v")
    v = v[:, 0]
    assert ds["v"].dims == ("time", "probe") and ds["v"].attrs["units"] == "mV"
    assert t[0] == 0.0 and np.allclose(np.diff(t), 0.025)
    for name in ("neuron_exact", "arbor"):
        tr, vr = reference(name)
        ours = np.interp(tr, t, v)
        assert np.sqrt(np.mean((ours - vr) ** 2)) <= 0.15, name
    tr, vr = reference("neuron_exact")
    early = tr < 6.0  # before the first spike the peers agree to 6e-6 mV
    assert np.max(np.abs(np.interp(tr[early], t, v) - vr[early])) < 1e-3
