"""Constants of the benchmark models M1 "hh-cable" and M2 "ring" (the shared reference MODELS.md).

Units: µm, ms, mV, nA, µS, S/cm², µF/cm², Ω·cm. Both peer scripts take every number from here.
"""

DT = 0.025
V_INIT = -65.0
RA = 100.0
CM = 1.0
CELSIUS = 6.3

# Hodgkin-Huxley 1952, NEURON's built-in `hh` (= Arbor's default-catalogue `hh`)
HH = dict(gnabar=0.12, gkbar=0.036, gl=0.0003, el=-54.3)
ENA, EK = 50.0, -77.0

# M1: soma (1 compartment) + 1000-compartment HH dendrite, 0.5 nA step at the soma
M1_SOMA_L, M1_SOMA_DIAM = 20.0, 20.0
M1_DEND_L, M1_DEND_DIAM, M1_DEND_NSEG = 1000.0, 2.0, 1000
M1_STIM_DELAY, M1_STIM_DUR, M1_STIM_AMP = 5.0, 100.0, 0.5
M1_TSTOP = 100.0
M1_THRESH = -20.0
M1_COMPARTMENTS = 1 + M1_DEND_NSEG

# M2: ring of N cells, HH soma + passive depth-4 binary tree (heap order), 13 compartments per branch
M2_SOMA_L, M2_SOMA_DIAM = 20.0, 20.0
M2_BRANCHES = 15
M2_BRANCH_L, M2_BRANCH_NSEG = 130.0, 13
M2_LEVEL_DIAM = (2.0, 1.5, 1.0, 0.75)
M2_PAS_G, M2_PAS_E = 0.001, -65.0
M2_SYN_TAU, M2_SYN_E, M2_W = 2.0, 0.0, 0.05
M2_DELAY = 5.0
M2_THRESH = -10.0
M2_KICK_T = 1.0
M2_TSTOP = 200.0
M2_COMPARTMENTS_PER_CELL = 1 + M2_BRANCHES * M2_BRANCH_NSEG


def m2_branches():
    """(branch, parent branch or -1 for the soma, level) in heap order: b's children are 2b+1, 2b+2."""
    return [(b, (b - 1) // 2 if b else -1, (b + 1).bit_length() - 1) for b in range(M2_BRANCHES)]


def record(simulator, config, model, N, tstop, compartments, wall_s, build_s, spikes, dt=DT, **extra):
    """The one JSON-able result line every peer script prints; spikes is a list of (gid, t) in time order."""
    steps = int(round(tstop / dt))
    return dict(
        simulator=simulator,
        config=config,
        model=model,
        N=N,
        tstop_ms=tstop,
        compartments=compartments,
        steps=steps,
        wall_s=wall_s,
        build_s=build_s,
        ns_per_compartment_step=wall_s * 1e9 / (compartments * steps),
        n_spikes=len(spikes),
        spikes=[[int(g), float(t)] for g, t in spikes],
        **extra,
    )
