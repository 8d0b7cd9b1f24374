"""The default brain at rest (configs/whole_brain.yaml, every region, its weights unchanged, a quarter of its
cells: 40 pyramidal cells and 10 interneurons per region): physiological rates per cell type, irregular
firing, an emergent beta rhythm, functional connectivity that follows the structural weights, and a
treatment of two regions that changes others through the connectome. The full-size brain is measured by
benchmarks/resting_brain.py."""

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
    # fast-spiking interneurons, ~5-30 Hz: 28 Hz on the full brain, a little more with a quarter of its cells
    assert 5.0 <= rate["fs"] <= 35.0, rate
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


def test_an_emergent_rhythm_in_the_whole_brain_signal(rest):
    """The brain's summed spike count (what a scalp EEG sums, region signals weighted by their distance)
    has a spectral peak in the beta or gamma band, well above the median power over 4-100 Hz."""
    sim, _, gid, t = rest
    bins = np.arange(WARM, WARM + WINDOW + 0.5, 1.0)
    counts = np.histogram(t, bins)[0].astype(float)
    f, power = welch(counts - counts.mean(), fs=1000.0, nperseg=256)
    band = (f >= 4.0) & (f <= 100.0)
    peak = f[band][np.argmax(power[band])]
    ratio = power[band].max() / np.median(power[band])
    assert 12.0 <= peak <= 80.0 and ratio >= 3.0, (peak, ratio)


def test_functional_connectivity_follows_the_structural_weights(rest):
    """Pearson FC of the regions' 10 ms pyramidal spike counts over the window against the symmetrised
    weights (the summary's fc_sc_rate): resting-state whole-brain models report about 0.2-0.5 (Honey et al.
    2009, PNAS 106:2035; Deco et al. 2013, J Neurosci 33:11239); 0.47 measured here."""
    sim, _, gid, t = rest
    pyr = np.isin(gid, gids_of(sim.recipe, "pyr"))
    regions, times = sim.recipe.regions_of(gid[pyr]), t[pyr]
    bins = np.arange(WARM, WARM + WINDOW + 0.5, 10.0)
    n = len(sim.recipe.brain.labels)
    counts = np.array([np.histogram(times[regions == k], bins)[0] for k in range(n)], float)
    weights = sim.recipe.brain.connectome.weights
    upper = np.triu_indices(n, 1)
    fc, sc = np.corrcoef(counts)[upper], 0.5 * (weights + weights.T)[upper]
    r = np.corrcoef(fc, sc)[0, 1]
    assert 0.2 <= r <= 0.7, r


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
