"""The default brain at rest (configs/whole_brain.yaml, every region, its weights unchanged, a quarter of its
cells: 40 pyramidal cells and 10 interneurons per region): physiological rates per cell type, irregular
firing, an emergent gamma rhythm, and a treatment of two regions that changes others through the
connectome. The full-size brain is measured by benchmarks/resting_brain.py."""

import numpy as np
import pytest
from scipy.signal import welch
from support import ROOT

from brainsim import Recipe, Simulation, load_config

WARM, WINDOW = 200.0, 500.0  # ms settled, then ms measured
SETTINGS = {
    "brain.scale": 0.25,
    "brain.region_overrides": {"rV1": {"cells_per_region": {"l5pc": 4}}},  # one detailed cell
    "simulation.warmup": 0.0,  # settled here by running WARM ms before recording
    "simulation.tstop": WARM + WINDOW,
    "probes": [],
}


def build(interventions=(), **more):
    pytest.importorskip("tvb_data")
    config = load_config(
        ROOT / "configs/whole_brain.yaml", set={**SETTINGS, **more}, interventions=list(interventions)
    )
    return Simulation(Recipe(config))


@pytest.fixture(scope="module")
def rest():
    """(simulation, its state at WARM, spike gids, spike times) of the untreated brain over the window."""
    sim = build()
    sim.run(until=WARM)
    state = sim.state()
    sim.record()
    sim.run()
    spikes = sim.spikes()
    return sim, state, spikes.gid.values, spikes.time.values


def gids_of(recipe, cell_type, region=None):
    pops = [p for p in recipe.populations if p.cell_type == cell_type and p.count]
    pops = [p for p in pops if region is None or recipe.brain.labels[p.region] == region]
    return np.concatenate([np.arange(p.first_gid, p.first_gid + p.count) for p in pops])


def test_rates_per_cell_type_are_physiological(rest):
    sim, _, gid, _ = rest
    counts = np.bincount(gid, minlength=sim.recipe.num_cells)
    rate = {name: counts[gids_of(sim.recipe, name)].mean() / (WINDOW / 1000) for name in ("pyr", "fs")}
    assert 1.0 <= rate["pyr"] <= 10.0, rate  # excitatory cells: a few Hz at rest
    assert 5.0 <= rate["fs"] <= 30.0, rate  # fast-spiking interneurons
    assert counts[gids_of(sim.recipe, "l5pc")].sum() > 0  # the detailed cell fires under the network's input


def test_firing_is_irregular_and_weakly_synchronous(rest):
    sim, _, gid, t = rest
    cvs = []
    for g in gids_of(sim.recipe, "pyr"):
        times = np.sort(t[gid == g])
        if times.size >= 5:
            isi = np.diff(times)
            cvs.append(isi.std() / isi.mean())
    assert len(cvs) >= 50 and 0.4 <= np.mean(cvs) <= 1.5, (len(cvs), np.mean(cvs))
    # synchrony: variance of a region's 1 ms spike count over its mean (1 for independent Poisson cells)
    regions = sim.recipe.regions_of(gid)
    bins = np.arange(WARM, WARM + WINDOW + 0.5, 1.0)
    counts = [np.histogram(t[regions == k], bins)[0] for k in range(len(sim.recipe.brain.labels))]
    fano = [np.var(c) / np.mean(c) for c in counts]
    assert np.mean(fano) < 10.0, fano


def test_an_emergent_gamma_rhythm(rest):
    sim, _, gid, t = rest
    regions = sim.recipe.regions_of(gid)
    bins = np.arange(WARM, WARM + WINDOW + 0.5, 1.0)
    labels = sim.recipe.brain.labels
    counts = np.array([np.histogram(t[regions == k], bins)[0] for k in range(len(labels))], float)
    f, power = welch(counts - counts.mean(1, keepdims=True), fs=1000.0, nperseg=256, axis=1)
    band = (f >= 4.0) & (f <= 100.0)
    mean = power.mean(0)[band]
    peak = f[band][np.argmax(mean)]
    assert 25.0 <= peak <= 80.0 and mean.max() >= 3.0 * np.median(mean), (peak, mean.max() / np.median(mean))


def test_stimulating_the_visual_cortices_changes_the_regions_they_project_to(rest):
    sim, state, gid, t = rest
    stimulation = ROOT / "configs/interventions/stimulation.yaml"  # 40 Hz pulses into rV1 and lV1
    treated = build([stimulation], **{"interventions[0].start": WARM, "interventions[0].stop": WARM + WINDOW})
    treated.set_state(state)
    treated.record()
    treated.run()
    spikes = treated.spikes()
    n, labels = sim.recipe.num_cells, sim.recipe.brain.labels
    before, after = np.bincount(gid, minlength=n), np.bincount(spikes.gid.values, minlength=n)
    z = {}
    for region in labels:
        d = (after - before)[gids_of(sim.recipe, "pyr", region)]
        z[region] = d.mean() / (d.std(ddof=1) / np.sqrt(d.size)) if d.std() > 0 else 0.0
    assert min(z["rV1"], z["lV1"]) > 10.0, z  # the targeted regions follow the pulses
    weights = sim.recipe.brain.connectome.weights
    v1 = [labels.index("rV1"), labels.index("lV1")]
    reached = [labels[k] for k in np.nonzero(weights[:, v1].sum(axis=1) > 0)[0] if k not in v1]
    # paired per-cell tests, combined over the regions V1 projects to (Stouffer): more excitation there,
    # p < 0.001 one-sided
    combined = sum(z[r] for r in reached) / np.sqrt(len(reached))
    assert combined > 3.1, (combined, {r: round(z[r], 1) for r in reached})
