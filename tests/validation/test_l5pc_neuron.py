"""Blue Brain's L5PC (BluePyOpt's examples/l5pc, read from the reference folder) in brainsim against the same
cell in NEURON (benchmarks/l5pc_reference.py builds both), staggered scheme and NEURON's fixed step at
dt = 0.025 ms: a short step protocol (the holding current of Step1, −0.126 nA, from 0 ms and Step3's
0.95 nA step from 100 ms, 250 ms in all) and the bAP protocol cut at 350 ms (1.9 nA for 5 ms at 295 ms;
V at the soma and on the apical list at 660 and 800 µm from it, placed in NEURON by BluePyOpt's
NrnSomaDistanceCompLocation rule and in brainsim as `apical(distance=660)`).

Both follow NEURON's ion rules: eca is the Nernst potential of cai where CaDynamics_E2 writes cai, and cai
starts at NEURON's cai0 (5e-5 mM), every gate as its INITIAL block sets it."""

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from support import L5PC

ROOT = Path(__file__).resolve().parents[2]
STIMULI = [(0.0, 250.0, -0.126), (100.0, 150.0, 0.95)]
TSTOP = 250.0
BAP_TSTOP = 350.0  # ms: the bAP protocol's pulse at 295 ms, its peaks by 305 ms

pytestmark = [
    pytest.mark.skipif(
        not (L5PC / "config" / "parameters.json").is_file(),
        reason=f"the reference L5PC is absent ({L5PC}); set BRAINSIM_L5PC to its folder",
    ),
    pytest.mark.skipif(importlib.util.find_spec("neuron") is None, reason="NEURON is not installed"),
    pytest.mark.skipif(
        shutil.which("nrnivmodl", path=str(Path(sys.executable).parent)) is None
        and shutil.which("nrnivmodl") is None,
        reason="NEURON's nrnivmodl is not found",
    ),
]


def reference_module():
    spec = importlib.util.spec_from_file_location("l5pc_reference", ROOT / "benchmarks" / "l5pc_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    ref = reference_module()
    out = tmp_path_factory.mktemp("l5pc")
    runs, nseg, _ = ref.run_neuron(L5PC, STIMULI, TSTOP, 0.025, build=out / "neuron")
    tn, vn, _ = runs["NEURON fixed step"]
    cfg = ref.brainsim_config(L5PC, STIMULI, TSTOP, 0.025)
    tb, vb, _, ncomp, _ = ref.run_brainsim(cfg, out)
    return ref, (tn, vn["soma"], nseg), (tb, vb["soma"], ncomp)


@pytest.fixture(scope="module")
def bap(tmp_path_factory):
    """(ref, recordings, NEURON (t, {site: V}, {site: where}), brainsim (t, {site: V}, {site: location}))."""
    ref = reference_module()
    out = tmp_path_factory.mktemp("l5pc_bap")
    stimuli, tstop = ref.protocol_stimuli(L5PC, "bAP", BAP_TSTOP)
    recordings = ref.protocol_recordings(L5PC, "bAP")
    runs, _, where = ref.run_neuron(L5PC, stimuli, tstop, 0.025, build=out / "neuron", recordings=recordings)
    tn, vn, _ = runs["NEURON fixed step"]
    cfg = ref.brainsim_config(L5PC, stimuli, tstop, 0.025, recordings=recordings)
    tb, vb, _, _, placed = ref.run_brainsim(cfg, out)
    return ref, recordings, (tn, vn, where), (tb, vb, placed)


def test_l5pc_compartments_are_neurons_segments(traces):
    _, (_, _, nseg), (_, _, ncomp) = traces
    assert ncomp == nseg == 699


def test_l5pc_soma_v_and_spikes_match_neuron(traces):
    ref, (tn, vn, _), (tb, vb, _) = traces
    c = ref.compare((tb, vb), (tn, vn), step_start=100.0)
    brainsim_spikes, neuron_spikes = c["spike_times"]
    assert len(neuron_spikes) >= 3  # the step makes the cell fire
    assert len(brainsim_spikes) == len(neuron_spikes)
    # measured (AMD EPYC): every spike within 1e-6 ms, rest within 1e-5 mV, soma V RMS 6e-6 mV (the
    # traces are stored as float32)
    np.testing.assert_allclose(brainsim_spikes, neuron_spikes, rtol=0, atol=1e-3)  # ms
    assert c["rest"][0] == pytest.approx(c["rest"][1], abs=0.01)  # mV before the step
    assert c["max_dv_before_first_spike"] < 0.01  # mV, soma V from 0 ms to 1 ms before the first spike
    rms = np.sqrt(np.mean((np.interp(tn, tb, vb) - vn) ** 2))
    assert rms < 0.01  # mV over the whole trace, spikes included


def test_l5pc_bap_sites_are_neurons_segments(bap):
    """`apical(distance=660)` and `(distance=800)` pick NEURON's section (BluePyOpt's rule: the last
    apical section whose ends enclose the distance) and the compartment of its segment at x."""
    _, recordings, (_, _, where), (_, _, placed) = bap
    assert [name for name, _, _ in recordings] == ["dend1", "dend2"]
    for name, _, _ in recordings:
        w = where[name]
        k = min(int(w["x"] * w["nseg"]), w["nseg"] - 1)
        assert placed[name] == f"{w['section']}({(k + 0.5) / w['nseg']:.6g})"
    assert [where[name]["section"] for name, _, _ in recordings] == ["apic[46]", "apic[48]"]


def test_l5pc_bap_peaks_match_neuron(bap):
    ref, _, (tn, vn, _), (tb, vb, _) = bap
    neuron, brainsim = ref.peaks(tn, vn), ref.peaks(tb, vb)
    assert set(neuron) == set(brainsim) == {"soma", "dend1", "dend2"}
    # measured (AMD EPYC): every peak within 0.0002 mV and at the same sample, soma V RMS 0.0002 mV
    for site in neuron:
        assert brainsim[site][0] == pytest.approx(neuron[site][0], abs=1.0), site  # mV
        assert brainsim[site][1] == pytest.approx(neuron[site][1], abs=0.1), site  # ms
    assert neuron["soma"][0] > 20.0 > neuron["dend1"][0] > neuron["dend2"][0] > -50.0  # the AP backpropagates
    c = ref.compare((tb, vb["soma"]), (tn, vn["soma"]), step_start=295.0)
    assert c["spikes"] == (1, 1)
    assert c["rms"] < 0.1  # mV, soma V over the whole trace
