#!/usr/bin/env python
"""M1 or M2 in Arbor (units API, Arbor >= 0.10), one thread by default; prints one JSON line.

    python arbor_bench.py m1
    python arbor_bench.py m2 --N 64 [--tstop 200] [--threads 1] [--dt 0.025]

Timed region: simulation.run() only; recipe, partition and simulation construction are build_s.
M1 samples the soma voltage every dt. Spike times are Arbor's (interpolated inside the step); ring
events are applied at the start of the step that contains them.
"""

import argparse
import json
import math
import time

import params as P


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=["m1", "m2"])
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--tstop", type=float, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dt", type=float, default=P.DT, help="time step, ms")
    return ap.parse_args()


def make_recipe(A, U, model, N):
    """The Arbor recipe of M1 (N = 1) or the M2 ring of N identical cells."""
    props = A.neuron_cable_properties()
    props.set_property(
        Vm=P.V_INIT * U.mV,
        cm=P.CM * 1e-2 * U.F / U.m2,
        rL=P.RA * U.Ohm * U.cm,
        tempK=(P.CELSIUS + 273.15) * U.Kelvin,
    )
    props.set_ion("na", int_con=10 * U.mM, ext_con=140 * U.mM, rev_pot=P.ENA * U.mV)
    props.set_ion("k", int_con=54.4 * U.mM, ext_con=2.5 * U.mM, rev_pot=P.EK * U.mV)
    labels = A.label_dict(
        {"soma": "(tag 1)", "dend": "(tag 3)", "soma_centre": '(on-components 0.5 (region "soma"))'}
    )
    hh = A.density("hh", **P.HH)
    cell = (m1_cell if model == "m1" else m2_cell)(A, U, labels, hh)

    class Recipe(A.recipe):
        def num_cells(self):
            return N

        def cell_kind(self, gid):
            return A.cell_kind.cable

        def cell_description(self, gid):
            return cell

        def connections_on(self, gid):
            if model == "m1":
                return []
            return [A.connection(((gid - 1) % N, "det"), "syn", P.M2_W, P.M2_DELAY * U.ms)]

        def event_generators(self, gid):
            if model == "m1" or gid:
                return []
            return [A.event_generator("syn", P.M2_W, A.explicit_schedule([P.M2_KICK_T * U.ms]))]

        def probes(self, gid):
            return [A.cable_probe_membrane_voltage('"soma_centre"', "Vs")] if model == "m1" else []

        def global_properties(self, kind):
            return props

    return Recipe()


def m1_cell(A, U, labels, hh):
    t = A.segment_tree()
    rs, rd = P.M1_SOMA_DIAM / 2, P.M1_DEND_DIAM / 2
    s = t.append(A.mnpos, A.mpoint(0, 0, 0, rs), A.mpoint(P.M1_SOMA_L, 0, 0, rs), tag=1)
    t.append(s, A.mpoint(P.M1_SOMA_L, 0, 0, rd), A.mpoint(P.M1_SOMA_L + P.M1_DEND_L, 0, 0, rd), tag=3)
    dec = A.decor().paint('"soma"', hh).paint('"dend"', hh)
    dec.place('"soma_centre"', A.i_clamp(P.M1_STIM_DELAY * U.ms, P.M1_STIM_DUR * U.ms, P.M1_STIM_AMP * U.nA))
    dec.place('"soma_centre"', A.threshold_detector(P.M1_THRESH * U.mV), "det")
    policy = A.cv_policy_single('"soma"') + A.cv_policy_fixed_per_branch(P.M1_DEND_NSEG, '"dend"')
    return A.cable_cell(A.morphology(t), dec, labels, policy)


def m2_cell(A, U, labels, hh):
    """HH soma + passive binary tree, drawn in the xy-plane (the layout is electrically irrelevant)."""
    t = A.segment_tree()
    rs = P.M2_SOMA_DIAM / 2
    soma = t.append(A.mnpos, A.mpoint(0, 0, 0, rs), A.mpoint(P.M2_SOMA_L, 0, 0, rs), tag=1)
    seg, end, angle = {}, {}, {}
    for b, parent, level in P.m2_branches():
        if parent < 0:
            start, ang, pseg = (P.M2_SOMA_L, 0.0), 0.0, soma
        else:
            spread = math.pi / 3 / 2 ** (level - 1)
            start, pseg, ang = end[parent], seg[parent], angle[parent] + (spread if b % 2 else -spread)
        end[b] = (start[0] + P.M2_BRANCH_L * math.cos(ang), start[1] + P.M2_BRANCH_L * math.sin(ang))
        r = P.M2_LEVEL_DIAM[level] / 2
        seg[b] = t.append(pseg, A.mpoint(*start, 0, r), A.mpoint(*end[b], 0, r), tag=3)
        angle[b] = ang
    dec = A.decor().paint('"soma"', hh).paint('"dend"', A.density(f"pas/e={P.M2_PAS_E}", g=P.M2_PAS_G))
    dec.place('"soma_centre"', A.synapse("expsyn", tau=P.M2_SYN_TAU, e=P.M2_SYN_E), "syn")
    dec.place('"soma_centre"', A.threshold_detector(P.M2_THRESH * U.mV), "det")
    policy = A.cv_policy_single('"soma"') + A.cv_policy_fixed_per_branch(P.M2_BRANCH_NSEG, '"dend"')
    return A.cable_cell(A.morphology(t), dec, labels, policy)


def main():
    a = parse()
    t_build0 = time.perf_counter()
    import arbor as A
    from arbor import units as U

    if a.model == "m1":
        tstop, N, ncomp = a.tstop or P.M1_TSTOP, 1, P.M1_COMPARTMENTS
    else:
        tstop, N, ncomp = a.tstop or P.M2_TSTOP, a.N, a.N * P.M2_COMPARTMENTS_PER_CELL
    rec = make_recipe(A, U, a.model, N)
    ctx = A.context(threads=a.threads)
    sim = A.simulation(rec, ctx, A.partition_load_balance(rec, ctx))
    sim.record(A.spike_recording.local)  # .all drops spikes of unconnected detectors (Arbor 0.12.2)
    if a.model == "m1":
        sim.sample((0, "Vs"), A.regular_schedule(a.dt * U.ms))
    build_s = time.perf_counter() - t_build0

    t0 = time.perf_counter()
    sim.run(tstop * U.ms, a.dt * U.ms)
    wall = time.perf_counter() - t0

    sp = sim.spikes()
    spikes = sorted(zip(sp["source"]["gid"].tolist(), sp["time"].tolist()), key=lambda s: (s[1], s[0]))
    out = P.record(
        "arbor",
        f"arbor threads={a.threads}",
        a.model.upper(),
        N,
        tstop,
        ncomp,
        wall,
        build_s,
        spikes,
        dt=a.dt,
        version=A.__version__,
        threads=a.threads,
    )
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
