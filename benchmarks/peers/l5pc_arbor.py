#!/usr/bin/env python
"""Blue Brain's L5PC (BluePyOpt's examples/l5pc) in Arbor, from the reference folder; prints one JSON line.

    python l5pc_arbor.py cell FOLDER [--tstop 3000] [--protocol Step1]
    python l5pc_arbor.py net FOLDER --table NET.json [--tstop 500]

The cell: the morphology read by Arbor's own ASC loader (its soma contour becomes a cylinder of two
halves, both starting at the soma's centre, where every tree is attached); the reconstructed axon is
replaced as BluePyOpt does (two 30 µm sections, the first on the soma's end nearest to where the axon
began, diameters by BluePyOpt's rule on NEURON's sec.diam); CV boundaries at NEURON's segment ends,
nseg = 1 + 2·int(L / 40 µm) per section (a section: a branch's run of one region), so that forks are
zero-length CVs as NEURON's section ends are. Mechanisms from Arbor's `bbp_catalogue` (the same 12 .mod
files) and `pas`, painted per region with parameters.json and release_params.json; Ih's `exp`
distribution becomes an iexpr of the distance from the soma's centre; eca is the Nernst potential of
cai. The network reads the table m3.py writes: exp2syn synapses at the soma, Poisson events as explicit
schedules, recurrent connections; one cell per cell group.

Timed region: simulation.run() only. Spikes: Arbor's threshold detector at the soma centre (−20 mV).
"""

import argparse
import ast
import functools
import json
import math
import time
from pathlib import Path

SECTION_LISTS = {"somatic": "soma", "axonal": "axon", "basal": "dend", "apical": "apic"}
TAGS = {1: "soma", 2: "axon", 3: "dend", 4: "apic"}
THRESHOLD = -20.0  # mV
STUB_LENGTH, STUB_REACH = 30.0, 60.0  # µm, BluePyOpt's replace_axon


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=["cell", "net"])
    ap.add_argument("folder", type=Path, help="the reference L5PC folder")
    ap.add_argument("--protocol", default="Step1")
    ap.add_argument("--tstop", type=float, default=None, help="ms (cell: cut the protocol here)")
    ap.add_argument("--dt", type=float, default=0.025)
    ap.add_argument("--table", type=Path, help="the network table (net)")
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args()


def _length(seg):
    return math.dist((seg.prox.x, seg.prox.y, seg.prox.z), (seg.dist.x, seg.dist.y, seg.dist.z))


def nrn_diameter(segs):
    """NEURON's sec.diam (µm) of a section made of `segs` under nseg = 1 + 2·int(L / 40): the length-weighted
    mean diameter of its middle segment (diameters linear along each Arbor segment)."""
    s = [0.0]
    for seg in segs:
        s.append(s[-1] + _length(seg))
    n = 1 + 2 * int(s[-1] / 40.0)
    lo, hi = s[-1] * (n // 2) / n, s[-1] * (n // 2 + 1) / n
    total = 0.0
    for seg, a, b in zip(segs, s[:-1], s[1:]):
        x0, x1 = max(a, lo), min(b, hi)
        if x1 > x0 and b > a:
            r0, r1 = (
                seg.prox.radius + (seg.dist.radius - seg.prox.radius) * (x - a) / (b - a) for x in (x0, x1)
            )
            total += (r0 + r1) * (x1 - x0)
    return total / (hi - lo)


def replaced_axon_tree(A, tree):
    """(segment tree without the axon and with BluePyOpt's two stub sections, their two diameters µm)."""
    morph = A.morphology(tree)
    branches = [list(morph.branch_segments(b)) for b in range(morph.num_branches)]
    axon = [b for b, segs in enumerate(branches) if segs[0].tag == 2]
    start = {}
    for b in range(morph.num_branches):  # path distance of each branch's start from the root (soma centre)
        p = morph.branch_parent(b)
        start[b] = 0.0 if p == A.mnpos else start[p] + sum(map(_length, branches[p]))
    diams = [nrn_diameter(branches[axon[0]])] * 2
    for b in axon:
        if start[b] + sum(map(_length, branches[b])) / 2 > STUB_REACH:
            diams[1] = nrn_diameter(branches[b])
            break
    first = branches[axon[0]][0].prox
    out, index = A.segment_tree(), {}
    for i, (seg, parent) in enumerate(zip(tree.segments, tree.parents)):
        if seg.tag != 2:
            index[i] = out.append(index.get(parent, A.mnpos), seg.prox, seg.dist, seg.tag)
    soma_ends = [(i, seg.dist) for i, seg in enumerate(tree.segments) if seg.tag == 1]
    at, end = min(soma_ends, key=lambda e: math.dist((e[1].x, e[1].y, e[1].z), (first.x, first.y, first.z)))
    last = branches[axon[0]][-1].dist
    axis = [last.x - first.x, last.y - first.y, last.z - first.z]
    norm = math.hypot(*axis) or 1.0
    axis = [c / norm for c in axis]
    parent, p = index[at], (end.x, end.y, end.z)
    for d in diams:
        q = tuple(c + STUB_LENGTH * u for c, u in zip(p, axis))
        parent = out.append(parent, A.mpoint(*p, d / 2), A.mpoint(*q, d / 2), 2)
        p = q
    return out, diams


def cv_policy(A, morph):
    """CV boundaries at NEURON's segment ends: nseg = 1 + 2·int(L / 40 µm) per section (a branch's run in
    one region)."""
    locs = []
    for b in range(morph.num_branches):
        segs = list(morph.branch_segments(b))
        total = sum(map(_length, segs))
        runs, s = [], 0.0
        for seg in segs:
            if not runs or runs[-1][0] != seg.tag:
                runs.append([seg.tag, s, s])
            s += _length(seg)
            runs[-1][2] = s
        for _, a, c in runs:
            n = 1 + 2 * int((c - a) / 40.0)
            locs += [f"(location {b} {min(1.0, (a + k * (c - a) / n) / total)!r})" for k in range(n + 1)]
    return A.cv_policy_explicit("(sum " + " ".join(locs) + ")")


def iexpr(text, value):
    """Arbor's iexpr (s-expression) of BluePyOpt's `dist` formula of {distance} (µm from soma) and {value}."""
    source = text.replace("{distance}", "distance").replace("{value}", repr(float(value)))
    ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}

    def walk(node):
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return f"({ops[type(node.op)]} {walk(node.left)} {walk(node.right)})"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return f"(mul (scalar -1.0) {walk(node.operand)})"
        if isinstance(node, ast.Constant):
            return f"(scalar {float(node.value)!r})"
        if isinstance(node, ast.Name) and node.id == "distance":
            return "(distance 1.0 (root))"
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("math.exp", "exp")
            and len(node.args) == 1
        ):
            return f"(exp {walk(node.args[0])})"
        raise ValueError(f"cannot express {ast.unparse(node)!r} of {text!r} as an Arbor iexpr")

    return walk(ast.parse(source, mode="eval").body)


def decor(A, U, folder):
    """The decor of the cell (mechanisms and parameters per region), celsius and v_init."""
    config = folder / "config"
    placed = json.loads((config / "mechanisms.json").read_text())
    params = json.loads((config / "parameters.json").read_text())
    release = json.loads((config / "release_params.json").read_text())
    glob = {p["param_name"]: p["value"] for p in params if p["type"] == "global"}
    mechs = {}  # (section list, mechanism) -> {parameter: value or (value, dist)}
    for key, names in placed.items():
        for name in names:
            mechs[key, name] = {}
    dec = A.decor()
    ions = {"ena": "na", "ek": "k"}
    for p in params:
        if p["type"] == "global":
            continue
        key, name = p["sectionlist"], p["param_name"]
        value = p.get("value", release.get(f"{name}.{key}"))
        region = "(all)" if key == "all" else f'"{SECTION_LISTS[key]}"'
        if p["type"] == "section":  # `all`'s value the cell's default: Arbor forbids painting twice
            paint = dec.set_property if key == "all" else functools.partial(dec.paint, region)
            if name == "cm":
                paint(cm=value * 1e-2 * U.F / U.m2)
            elif name == "Ra":
                paint(rL=value * U.Ohm * U.cm)
            elif name in ions and key == "all":
                dec.set_ion(ions[name], rev_pot=value * U.mV)
            elif name in ions:
                dec.paint(region, ion=ions[name], rev_pot=value * U.mV)
            elif name in ("g_pas", "e_pas"):
                mechs[key, "pas"][name[0]] = value
            else:
                raise ValueError(f"section parameter {name} is not handled")
        else:
            dist = p.get("dist") if p.get("dist_type", "uniform") != "uniform" else None
            mechs[key, p["mech"]][p["mech_param"]] = (value, dist)
    for (key, name), values in mechs.items():
        region = "(all)" if key == "all" else f'"{SECTION_LISTS[key]}"'
        if name == "pas":
            dec.paint(region, A.density(f"pas/e={values.get('e', -70.0)}", g=values.get("g", 0.001)))
            continue
        plain = {k: v[0] for k, v in values.items()}
        mech = A.density(name, **plain)
        scaled = {k: iexpr(v[1], 1.0) for k, v in values.items() if v[1]}
        dec.paint(region, A.scaled_mechanism(mech, scaled) if scaled else mech)
    return dec, glob


def l5pc(A, U, folder):
    """(cable cell with a detector 'det' and synapse 'syn' at the soma centre, celsius, v_init, stub
    diameters, compartments: CVs of non-zero length)."""
    loaded = A.load_asc(str(folder / "morphology" / "C060114A7.asc"))
    tree, diams = replaced_axon_tree(A, loaded.segment_tree)
    morph = A.morphology(tree)
    dec, glob = decor(A, U, folder)
    labels = A.label_dict(loaded.labels)
    labels["soma_centre"] = "(root)"
    dec.place('"soma_centre"', A.threshold_detector(THRESHOLD * U.mV), "det")
    return dec, labels, morph, glob, diams


def protocol(folder, name, tstop):
    proto = json.loads((folder / "config" / "protocols.json").read_text())[name]
    stimuli = [(s["delay"], s["duration"], s["amp"]) for s in proto["stimuli"]]
    total = max(s["totduration"] for s in proto["stimuli"])
    return stimuli, total if tstop is None else min(total, tstop)


def main():
    a = parse()
    t_build0 = time.perf_counter()
    import arbor as A
    from arbor import units as U

    dec, labels, morph, glob, diams = l5pc(A, U, a.folder)
    table = json.loads(a.table.read_text()) if a.model == "net" else None
    if a.model == "cell":
        stimuli, tstop = protocol(a.folder, a.protocol, a.tstop)
        for delay, duration, amp in stimuli:
            dec.place('"soma_centre"', A.i_clamp(delay * U.ms, duration * U.ms, amp * U.nA))
        n = 1
    else:
        tstop, n = a.tstop or table["tstop"], table["cells"]
        syn = table["synapse"]
        dec.place('"soma_centre"', A.synapse("exp2syn", **syn), "syn")
    cell = A.cable_cell(morph, dec, labels, cv_policy(A, morph))
    cv = A.cv_data(cell)
    compartments = sum(any(c.prox != c.dist for c in cv.cables(i)) for i in range(cv.num_cv))

    props = A.neuron_cable_properties()
    props.catalogue.extend(A.bbp_catalogue(), "")
    props.set_property(Vm=glob["v_init"] * U.mV, tempK=(glob["celsius"] + 273.15) * U.Kelvin)
    props.set_ion("ca", int_con=5e-5 * U.mM, ext_con=2.0 * U.mM, method="nernst/x=ca")

    inputs = {}
    conns = {}
    if table:
        for i, times in enumerate(table["poisson"]):
            inputs[i] = times
        for src, tgt in table["connections"]:
            conns.setdefault(tgt, []).append(src)

    class Recipe(A.recipe):
        def num_cells(self):
            return n

        def cell_kind(self, gid):
            return A.cell_kind.cable

        def cell_description(self, gid):
            return cell

        def connections_on(self, gid):
            if not table:
                return []
            w, d = table["weight"], table["delay"]
            return [A.connection((s, "det"), "syn", w, d * U.ms) for s in conns.get(gid, [])]

        def event_generators(self, gid):
            if not table:
                return []
            sched = A.explicit_schedule([t * U.ms for t in inputs[gid]])
            return [A.event_generator("syn", table["input_weight"], sched)]

        def global_properties(self, kind):
            return props

    rec = Recipe()
    ctx = A.context(threads=a.threads)
    sim = A.simulation(rec, ctx, A.partition_load_balance(rec, ctx))
    sim.record(A.spike_recording.local)
    build_s = time.perf_counter() - t_build0
    t0 = time.perf_counter()
    sim.run(tstop * U.ms, a.dt * U.ms)
    wall = time.perf_counter() - t0
    sp = sim.spikes()
    spikes = sorted(zip(sp["source"]["gid"].tolist(), sp["time"].tolist()), key=lambda s: (s[1], s[0]))
    steps = int(round(tstop / a.dt))
    print(json.dumps(dict(
        simulator="arbor", version=A.__version__, model=a.model, cells=n, tstop_ms=tstop, steps=steps,
        compartments=n * compartments, cvs_per_cell=cv.num_cv, axon_stub_diameters=diams, wall_s=wall,
        build_s=build_s, spikes=[[int(g), float(t)] for g, t in spikes],
    )), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
