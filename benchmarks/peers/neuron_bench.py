#!/usr/bin/env python
"""M1 or M2 in NEURON, single thread, fixed step; prints one JSON line.

    python neuron_bench.py m1 [--usetable 0]
    python neuron_bench.py m2 --N 64 [--tstop 200] [--usetable 0] [--dt 0.025]
    python neuron_bench.py m2 --N 16 --cvode-atol 1e-4 [--condition-order 2]
    LD_PRELOAD=$VIRTUAL_ENV/lib/libmpi.so.12 mpiexec -n 2 python neuron_bench.py m2 --N 64 --mpi

With --mpi (M2 only; the mpich wheel's mpiexec), cells are dealt round-robin over the ranks through
ParallelContext, wall_s is the maximum over the ranks between barriers, and rank 0 prints the line
with every rank's spikes. LD_PRELOAD makes NEURON use the wheel's libmpi: given only
MPI_LIB_NRN_PATH, NEURON 9.0.2 dlopens the first `libmpi.so` on the library path, here Debian's
Open MPI, and every rank runs alone (numprocs=1).

Timed region: pc.psolve(tstop) only (h.finitialize is in build_s). M1 records the soma voltage every
step; its spike times are the −20 mV crossings of that trace, linearly interpolated (NEURON's own
spike times lie on the dt grid). M2 spike times are NEURON's native ones (end of the crossing step).
With --cvode-atol, NEURON's CVODE (global variable step, that absolute tolerance) instead of the fixed
step; M1 then records the soma voltage at every CVODE step (its native spike times lie at the end of the
crossing step there too, unless --condition-order 2 interpolates them within the step).
"""

import argparse
import json
import time

import params as P


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=["m1", "m2"])
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--tstop", type=float, default=None)
    ap.add_argument("--usetable", type=int, default=1, help="h.usetable_hh (0: exact hh rate functions)")
    ap.add_argument("--mpi", action="store_true", help="M2 over MPI ranks (run under mpiexec)")
    ap.add_argument("--dt", type=float, default=P.DT, help="fixed step, ms")
    ap.add_argument("--cvode-atol", type=float, default=None, help="CVODE at this atol (default: fixed step)")
    ap.add_argument("--condition-order", type=int, default=1, choices=[1, 2], help="CVode.condition_order")
    a = ap.parse_args()
    if a.mpi and a.model == "m1":
        ap.error("--mpi is for m2 (M1 is one cell)")
    return a


def set_hh(sec):
    sec.insert("hh")
    for seg in sec:
        for k, v in P.HH.items():
            setattr(seg.hh, k, v)
    sec.ena, sec.ek = P.ENA, P.EK


def build_m1(h, pc):
    """Soma + HH cable with a current clamp; returns objects to keep alive and a finish(spikes) hook."""
    soma, dend = h.Section(name="soma"), h.Section(name="dend")
    soma.L, soma.diam, soma.nseg = P.M1_SOMA_L, P.M1_SOMA_DIAM, 1
    dend.L, dend.diam, dend.nseg = P.M1_DEND_L, P.M1_DEND_DIAM, P.M1_DEND_NSEG
    dend.connect(soma(1), 0)
    for s in (soma, dend):
        s.Ra, s.cm = P.RA, P.CM
        set_hh(s)
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur, stim.amp = P.M1_STIM_DELAY, P.M1_STIM_DUR, P.M1_STIM_AMP
    tvec, vvec = h.Vector(), h.Vector()
    tvec.record(h._ref_t)
    vvec.record(soma(0.5)._ref_v)
    nc = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
    nc.threshold = P.M1_THRESH
    pc.set_gid2node(0, 0)
    pc.cell(0, nc)

    def trace_crossings(_native):
        t, v, thr = tvec.as_numpy(), vvec.as_numpy(), P.M1_THRESH
        i = ((v[:-1] < thr) & (v[1:] >= thr)).nonzero()[0]
        return [(0, t[k] + (thr - v[k]) * (t[k + 1] - t[k]) / (v[k + 1] - v[k])) for k in i]

    return (soma, dend, stim, nc, tvec, vvec), trace_crossings


def m2_cell(h, pc, gid):
    soma = h.Section(name=f"soma_{gid}")
    soma.L, soma.diam, soma.nseg = P.M2_SOMA_L, P.M2_SOMA_DIAM, 1
    set_hh(soma)
    dends = []
    for b, parent, level in P.m2_branches():
        d = h.Section(name=f"dend_{gid}_{b}")
        d.L, d.diam, d.nseg = P.M2_BRANCH_L, P.M2_LEVEL_DIAM[level], P.M2_BRANCH_NSEG
        d.insert("pas")
        for seg in d:
            seg.pas.g, seg.pas.e = P.M2_PAS_G, P.M2_PAS_E
        d.connect(soma(1) if parent < 0 else dends[parent](1), 0)
        dends.append(d)
    for s in [soma, *dends]:
        s.Ra, s.cm = P.RA, P.CM
    syn = h.ExpSyn(soma(0.5))
    syn.tau, syn.e = P.M2_SYN_TAU, P.M2_SYN_E
    det = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
    det.threshold = P.M2_THRESH
    pc.set_gid2node(gid, int(pc.id()))
    pc.cell(gid, det)
    return soma, dends, syn, det


def build_m2(h, pc, N):
    """Ring of N cells, i -> i+1 (delay 5 ms), one kick onto cell 0 at 1 ms; this rank's cells only."""
    cells = {gid: m2_cell(h, pc, gid) for gid in range(int(pc.id()), N, int(pc.nhost()))}
    conns = []
    for gid, (_, _, syn, _) in cells.items():
        nc = pc.gid_connect((gid - 1) % N, syn)
        nc.weight[0], nc.delay = P.M2_W, P.M2_DELAY
        conns.append(nc)
    kick = fih = None
    if 0 in cells:
        kick = h.NetCon(None, cells[0][2])
        kick.weight[0], kick.delay = P.M2_W, P.M2_DELAY  # NetCon.event(t) ignores the delay
        fih = h.FInitializeHandler(lambda: kick.event(P.M2_KICK_T))
    return (cells, conns, kick, fih), lambda native: native


def main():
    a = parse()
    t_build0 = time.perf_counter()
    import neuron
    from neuron import h

    if a.mpi:
        h.nrnmpi_init()
    pc = h.ParallelContext()
    h.celsius, h.usetable_hh, h.dt = P.CELSIUS, a.usetable, a.dt
    if a.model == "m1":
        tstop, N, ncomp = a.tstop or P.M1_TSTOP, 1, P.M1_COMPARTMENTS
        _keep, finish = build_m1(h, pc)
    else:
        tstop, N, ncomp = a.tstop or P.M2_TSTOP, a.N, a.N * P.M2_COMPARTMENTS_PER_CELL
        _keep, finish = build_m2(h, pc, a.N)
    tvec, idvec = h.Vector(), h.Vector()
    pc.spike_record(-1, tvec, idvec)
    h.CVode().active(0 if a.cvode_atol is None else 1)
    if a.cvode_atol is not None:
        h.CVode().atol(a.cvode_atol)
        h.CVode().condition_order(a.condition_order)
    pc.set_maxstep(10)
    h.finitialize(P.V_INIT)
    pc.barrier()
    build_s = pc.allreduce(time.perf_counter() - t_build0, 2)  # 2: the maximum over the ranks

    pc.barrier()
    t0 = time.perf_counter()
    pc.psolve(tstop)
    pc.barrier()
    wall = pc.allreduce(time.perf_counter() - t0, 2)

    rank, nhost = int(pc.id()), int(pc.nhost())
    parts = pc.py_gather(list(zip(idvec.to_python(), tvec.to_python())), 0)
    if a.mpi:
        pc.done()
    if rank:
        return
    native = sorted((s for part in parts for s in part), key=lambda s: (s[1], s[0]))
    config = "neuron" if a.usetable else "neuron usetable_hh=0"
    out = P.record(
        "neuron",
        config,
        a.model.upper(),
        N,
        tstop,
        ncomp,
        wall,
        build_s,
        finish(native),
        dt=a.dt,
        version=neuron.__version__,
        usetable_hh=a.usetable,
        mpi_ranks=nhost,
        **({} if a.cvode_atol is None else dict(cvode_atol=a.cvode_atol)),
    )
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
