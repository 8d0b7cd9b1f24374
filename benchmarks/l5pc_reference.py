"""Blue Brain's L5PC (BluePyOpt's examples/l5pc) in brainsim and in NEURON, side by side.

Both cells are built from the reference folder (default ../shared/reference/l5pc, or $BRAINSIM_L5PC):
brainsim's through brainsim.config.bluepyopt (the folder's JSON files, its morphology read by MorphIO,
its 12 .mod files translated), NEURON's as BluePyOpt's ephys module builds it (Import3d_Neurolucida3,
nseg = 1 + 2·int(L / 40 µm), the axon replaced, the parameters per section list, Ih's exp rule). Both
run a protocol of protocols.json (or a shortened one) at a fixed dt and record V at the soma and at the
protocol's extra recordings (bAP: `dend1`, `dend2` on the apical list at 660 and 800 µm from the soma,
placed by BluePyOpt's NrnSomaDistanceCompLocation rule in NEURON, as `apical(distance=660)` in brainsim).
The soma V traces are compared: spike count and times (upward crossings of −20 mV, linearly
interpolated), the resting V before the step, max |ΔV| before the first spike, the RMS difference; at
every site the peak V. Prints the tables and writes a PNG of all traces.

    .venv/bin/python -m benchmarks.l5pc_reference --protocol bAP --out out/l5pc_reference
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = -20.0  # mV, spike detection on the soma


def reference_folder():
    """The reference L5PC folder: $BRAINSIM_L5PC, else ../shared/reference/l5pc beside the repository."""
    return Path(os.environ.get("BRAINSIM_L5PC") or ROOT.parent / "shared" / "reference" / "l5pc")


def protocol_stimuli(folder, name, tstop=None):
    """[(delay ms, duration ms, amplitude nA)] and the total duration (ms) of a protocol of protocols.json,
    cut at tstop when given."""
    proto = json.loads((folder / "config" / "protocols.json").read_text())[name]
    stimuli = [(s["delay"], s["duration"], s["amp"]) for s in proto["stimuli"]]
    total = max(s["totduration"] for s in proto["stimuli"])
    return stimuli, total if tstop is None else min(total, tstop)


def protocol_recordings(folder, name):
    """[(name, section list, distance µm)] of a protocol's extra recordings (all of type somadistance)."""
    proto = json.loads((folder / "config" / "protocols.json").read_text())[name]
    out = []
    for r in proto.get("extra_recordings", []):
        if r["type"] != "somadistance" or r["var"] != "v":
            raise ValueError(f"protocol {name}: recording {r['name']} of type {r['type']} ({r['var']})")
        out.append((r["name"], r["seclist_name"], float(r["somadistance"])))
    return out


# ---------------------------------------------------------------------------------------------- brainsim


def brainsim_config(folder, stimuli, tstop, dt=0.025, method="staggered", sampling=None, recordings=()):
    """The brainsim config (dict) of the cell under `stimuli` at the soma, probing V at the soma (probe
    `soma`) and at each of recordings [(name, section list, distance µm)] (`<list>(distance=<µm>)`)."""
    from brainsim.config.bluepyopt import cell_config

    cfg = cell_config(
        folder / "config" / "mechanisms.json",
        folder / "config" / "parameters.json",
        folder / "config" / "release_params.json",
        morphology=folder / "morphology" / "C060114A7.asc",
        mod_paths=[folder / "mechanisms"],
        name="l5pc",
    )
    cfg["cells"][0]["spike_detector"] = {"location": "somatic(0.5)", "threshold": THRESHOLD}
    cfg["name"] = "l5pc_reference"
    cfg["simulation"].update({"tstop": tstop, "dt": dt, "method": method})
    cfg["stimuli"] = [
        {"kind": "iclamp", "cell": "l5pc", "location": "somatic(0.5)", "delay": float(d),
         "duration": float(dur), "amplitude": float(a)}
        for d, dur, a in stimuli
    ]  # fmt: skip
    sites = [("soma", "somatic(0.5)")] + [(n, f"{seclist}(distance={d:g})") for n, seclist, d in recordings]
    cfg["probes"] = [
        {"name": name, "variable": "v", "cell": "l5pc", "location": location, "sampling": sampling or dt}
        for name, location in sites
    ]
    return cfg


def run_brainsim(cfg, out):
    """(t ms, {probe: V mV}, wall s, compartments, {probe: its compartment's location}) of the config run
    into out/."""
    import yaml

    import brainsim

    out.mkdir(parents=True, exist_ok=True)
    path = out / "l5pc_brainsim.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    config = brainsim.load_config(path)
    start = time.perf_counter()
    store = brainsim.run(config, out / "l5pc_brainsim.zarr", overwrite=True, progress=False)
    wall = time.perf_counter() - start
    t = np.asarray(store.traces["soma"]["time"].values)
    names = [p["name"] for p in cfg["probes"]]
    v = {name: np.asarray(store.traces[name]["v"].values)[:, 0] for name in names}
    where = {name: str(store.traces[name]["location"].values[0]) for name in names}
    return t, v, wall, store.counts["compartments"], where


# ------------------------------------------------------------------------------------------------ NEURON


def compile_mechanisms(mod_folder, build):
    """nrnivmodl of mod_folder's .mod files in build/ (the .mod files stay where they are); the library."""
    nrnivmodl = shutil.which("nrnivmodl", path=str(Path(sys.executable).parent)) or shutil.which("nrnivmodl")
    if nrnivmodl is None:
        raise RuntimeError("nrnivmodl not found beside the Python interpreter nor on PATH")
    build.mkdir(parents=True, exist_ok=True)
    subprocess.run([nrnivmodl, str(mod_folder)], cwd=build, check=True, capture_output=True)
    found = sorted(build.glob("*/libnrnmech.so")) + sorted(build.glob("*/.libs/libnrnmech.so"))
    if not found:
        raise RuntimeError(f"nrnivmodl left no libnrnmech.so in {build}")
    return found[0]


def load_mechanisms(h, mod_folder, build):
    """mod_folder's mechanisms in this NEURON process: compiled in build/ (compile_mechanisms) and loaded,
    unless every one of them is loaded already (NEURON refuses to load a mechanism twice). Their names."""
    names = [
        m.group(1)
        for path in sorted(Path(mod_folder).glob("*.mod"))
        if (m := re.search(r"\b(?:SUFFIX|POINT_PROCESS)\s+(\w+)", path.read_text()))
    ]
    loaded, name = set(), h.ref("")
    for known in (h.MechanismType(0), h.MechanismType(1)):  # density mechanisms, point processes
        for i in range(int(known.count())):
            known.select(i)
            known.selected(name)
            loaded.add(name[0])
    if not set(names) <= loaded:
        h.nrn_load_dll(str(compile_mechanisms(mod_folder, build)))
    return names


def neuron_cell(folder, h, owner=None):
    """BluePyOpt's L5PC in NEURON: {section list: [sections]}. owner: a hoc template instance with section
    arrays soma, dend, apic and axon that receives the sections (None: sections at top level, those of an
    earlier cell deleted)."""
    if owner is None:
        for sec in list(h.allsec()):
            h.delete_section(sec=sec)
    h.load_file("stdrun.hoc")
    h.load_file("import3d.hoc")
    reader = h.Import3d_Neurolucida3()
    reader.quiet = 1
    reader.input(str(folder / "morphology" / "C060114A7.asc"))
    h.Import3d_GUI(reader, 0).instantiate(owner)
    where = h if owner is None else owner
    soma = where.soma[0]

    def lists():
        named = {"somatic": "soma", "axonal": "axon", "basal": "dend", "apical": "apic"}
        out = {key: list(getattr(where, name)) for key, name in named.items()}
        out["all"] = [sec for key in named for sec in out[key]]
        return out

    for sec in lists()["all"]:  # NrnFileMorphology.set_nseg, before the axon is replaced
        sec.nseg = 1 + 2 * int(sec.L / 40.0)
    axon = lists()["axonal"]  # NrnFileMorphology.replace_axon
    diams = [axon[0].diam, axon[0].diam]
    h.distance(0, 0.5, sec=soma)
    for sec in axon:
        if h.distance(1, 0.5, sec=sec) > 60:
            diams[1] = sec.diam
            break
    for sec in axon:
        h.delete_section(sec=sec)
    h("create axon[2]") if owner is None else h.execute("create axon[2]", owner)
    for i, sec in enumerate(where.axon):
        sec.nseg, sec.L, sec.diam = 1, 30, diams[i]
    where.axon[0].connect(soma(1.0), 0.0)
    where.axon[1].connect(where.axon[0](1.0), 0.0)

    sections = lists()
    placed = json.loads((folder / "config" / "mechanisms.json").read_text())
    for key, names in placed.items():
        for sec in sections[key]:
            for name in names:
                sec.insert(name)
    release = json.loads((folder / "config" / "release_params.json").read_text())
    h.distance(0, 0.5, sec=soma)
    for p in json.loads((folder / "config" / "parameters.json").read_text()):
        value = p.get("value", release.get(f"{p['param_name']}.{p.get('sectionlist')}"))
        if p["type"] == "global":
            setattr(h, p["param_name"], value)
        elif p["type"] == "section":
            for sec in sections[p["sectionlist"]]:
                setattr(sec, p["param_name"], value)
        else:
            for sec in sections[p["sectionlist"]]:
                for seg in sec:
                    scaled = value
                    if p.get("dist_type") == "exp":  # NrnSegmentSomaDistanceScaler
                        distance = h.distance(1, seg.x, sec=sec)
                        scaled = eval(  # BluePyOpt's own formula, from the reference folder
                            p["dist"].format(distance=distance, value=value), {"math": __import__("math")}
                        )
                    setattr(seg, f"{p['mech_param']}_{p['mech']}", scaled)
    return sections


def soma_distance_segment(h, sections, seclist, distance):
    """BluePyOpt's NrnSomaDistanceCompLocation: (section, x) of the last section of the list whose ends'
    h.distance from soma(0.5) enclose distance (µm), x interpolated linearly between them."""
    h.distance(0, 0.5, sec=sections["somatic"][0])
    found = None
    for sec in sections[seclist]:
        ends = h.distance(1, 0.0, sec=sec), h.distance(1, 1.0, sec=sec)
        lo, hi = min(ends), max(ends)
        if lo <= distance <= hi and sec((distance - lo) / (hi - lo)).diam > 0:
            found = sec, (distance - lo) / (hi - lo)
    if found is None:
        raise ValueError(f"no section of {seclist} at {distance} µm from the soma")
    return found


def run_neuron(folder, stimuli, tstop, dt=0.025, build=None, cvode=False, fixed_eca=None, recordings=()):
    """({run: (t ms, {site: V mV}, wall s)}, segments, {site: where}) of NEURON's cell at a fixed step dt
    and, with cvode, under CVODE (atol 1e-6, t its own steps); the sites are `soma` (soma(0.5)) and the
    recordings [(name, section list, distance µm)], placed by soma_distance_segment (where: section, x,
    nseg, h.distance of x's segment centre µm, diameter µm). fixed_eca (mV): eca a constant parameter
    instead of NEURON's Nernst potential of cai (as brainsim's NMODL mechanisms have it)."""
    from neuron import h

    with tempfile.TemporaryDirectory() as tmp:
        load_mechanisms(h, folder / "mechanisms", Path(build or tmp) / "nrnmech")
    sections = neuron_cell(folder, h)
    if fixed_eca is not None:
        for sec in sections["all"]:
            if h.ismembrane("ca_ion", sec=sec):
                h.ion_style("ca_ion", 3, 1, 0, 0, 1, sec=sec)  # cai a state, eca a parameter never recomputed
                sec.eca = fixed_eca
    soma = sections["somatic"][0]
    segments, where = {"soma": soma(0.5)}, {}
    for name, seclist, distance in recordings:
        sec, x = soma_distance_segment(h, sections, seclist, distance)
        segments[name] = sec(x)
        where[name] = {"section": sec.name(), "x": x, "nseg": sec.nseg, "distance": h.distance(1, x, sec=sec),
                       "diam": sec(x).diam}  # fmt: skip
    clamps = []
    for delay, duration, amplitude in stimuli:
        clamp = h.IClamp(soma(0.5))
        clamp.delay, clamp.dur, clamp.amp = delay, duration, amplitude
        clamps.append(clamp)
    runs = {}
    for label, variable in (("NEURON fixed step", False), *((("NEURON CVODE", True),) if cvode else ())):
        t, v = h.Vector(), {name: h.Vector() for name in segments}
        h.cvode.active(1 if variable else 0)
        if variable:
            h.cvode.atol(1e-6)
            t.record(h._ref_t)
            for name, seg in segments.items():
                v[name].record(seg._ref_v)
        else:
            h.dt, h.steps_per_ms = dt, 1.0 / dt
            t.record(h._ref_t, dt)
            for name, seg in segments.items():
                v[name].record(seg._ref_v, dt)
        h.tstop = tstop
        start = time.perf_counter()
        h.finitialize(h.v_init)
        h.continuerun(tstop)
        wall = time.perf_counter() - start
        runs[label] = (np.array(t), {name: np.array(vec) for name, vec in v.items()}, wall)
    h.cvode.active(0)
    return runs, sum(sec.nseg for sec in sections["all"]), where


# --------------------------------------------------------------------------------------------- comparing


def spike_times(t, v, threshold=THRESHOLD):
    """Upward crossings of threshold, linearly interpolated (ms)."""
    i = np.nonzero((v[:-1] < threshold) & (v[1:] >= threshold))[0]
    return t[i] + (threshold - v[i]) * (t[i + 1] - t[i]) / (v[i + 1] - v[i])


def compare(a, b, step_start):
    """Figures of two (t, v) traces: spikes, resting V just before step_start, max |ΔV| before the first
    spike of either (on a's times)."""
    (ta, va), (tb, vb) = a, b
    sa, sb = spike_times(ta, va), spike_times(tb, vb)
    first = min([*sa[:1], *sb[:1], ta[-1]])
    before = ta <= first - 1.0
    vb_on_a = np.interp(ta, tb, vb)
    rest = lambda t, v: float(np.interp(step_start - 0.5, t, v))  # noqa: E731
    n = min(len(sa), len(sb))
    return {
        "rms": float(np.sqrt(np.mean((va - vb_on_a) ** 2))),
        "spikes": (len(sa), len(sb)),
        "rest": (rest(ta, va), rest(tb, vb)),
        "max_dv_before_first_spike": float(np.max(np.abs(va[before] - vb_on_a[before])))
        if before.any()
        else 0.0,
        "first_spike": (float(sa[0]) if len(sa) else None, float(sb[0]) if len(sb) else None),
        "max_dt_common_spikes": float(np.max(np.abs(sa[:n] - sb[:n]))) if n else None,
        "spike_times": (sa.tolist(), sb.tolist()),
    }


def peaks(t, v):
    """{site: (peak V mV, its time ms)} of {site: V} traces on times t."""
    return {name: (float(np.max(x)), float(t[np.argmax(x)])) for name, x in v.items()}


def plot(traces, path, title):
    """One panel per site of {run: (t, {site: V})}, every run's trace on each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = list(next(iter(traces.values()))[1])
    fig, axes = plt.subplots(len(sites), 1, figsize=(12, 3.2 * len(sites)), sharex=True, squeeze=False)
    for ax, site in zip(axes[:, 0], sites):
        for label, (t, v) in traces.items():
            ax.plot(t, v[site], lw=0.7, label=label)
        ax.set_ylabel(f"{site} V (mV)")
        ax.legend()
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("t (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="Step1", help="a protocol of protocols.json: Step1/2/3, bAP")
    parser.add_argument("--tstop", type=float, default=None, help="cut the protocol at this time (ms)")
    parser.add_argument("--dt", type=float, default=0.025)
    parser.add_argument("--cvode", action="store_true", help="also run NEURON with CVODE")
    parser.add_argument(
        "--fixed-eca",
        type=float,
        default=None,
        help="NEURON with this constant eca (mV) instead of its Nernst eca (brainsim: 132.4579)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "l5pc_reference")
    args = parser.parse_args(argv)
    folder = reference_folder()
    stimuli, tstop = protocol_stimuli(folder, args.protocol, args.tstop)
    recordings = protocol_recordings(folder, args.protocol)
    step_start = max(d for d, _, _ in stimuli)
    args.out.mkdir(parents=True, exist_ok=True)

    runs, nseg, where = run_neuron(folder, stimuli, tstop, args.dt, build=args.out / "neuron",
                                   cvode=args.cvode, fixed_eca=args.fixed_eca,
                                   recordings=recordings)  # fmt: skip
    tn, vn, _ = runs["NEURON fixed step"]
    cfg = brainsim_config(folder, stimuli, tstop, args.dt, recordings=recordings)
    tb, vb, wall_b, ncomp, placed = run_brainsim(cfg, args.out)
    runs["brainsim staggered"] = (tb, vb, wall_b)

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    print(f"L5PC {args.protocol}, {tstop:g} ms, dt {args.dt} ms; stimuli {stimuli}; CPU {cpu}")
    print(f"NEURON segments {nseg}, brainsim compartments {ncomp}")
    for probe in cfg["probes"][1:]:
        name = probe["name"]
        w = where[name]
        print(f"  {name}: NEURON {w['section']}({w['x']:.6g}) of {w['nseg']} segments, its segment's centre "
              f"at {w['distance']:.6g} µm, diam {w['diam']:.6g} µm; "
              f"brainsim {probe['location']} is compartment {placed[name]}")  # fmt: skip
    reference = (tn, vn["soma"])
    print(f"{'run':22} {'wall s':>8} {'spikes':>6} {'rest mV':>9} {'first spike':>11} {'max|dt| ms':>10} "
          f"{'max|dV| pre':>11} {'soma RMS mV':>11}")  # fmt: skip
    results = {}
    for label, (t, v, wall) in runs.items():
        c = compare((t, v["soma"]), reference, step_start)
        results[label] = {"wall_s": wall, **c, "peaks": peaks(t, v)}
        first = c["first_spike"][0]
        print(
            f"{label:22} {wall:8.2f} {c['spikes'][0]:6d} {c['rest'][0]:9.4f} "
            f"{first if first is None else round(first, 4)!s:>11} {c['max_dt_common_spikes'] or 0:10.4f} "
            f"{c['max_dv_before_first_spike']:11.5f} {c['rms']:11.5f}"
        )
    print("peak V (mV) at each site, at (ms); difference from NEURON fixed step:")
    base = results["NEURON fixed step"]["peaks"]
    for label, r in results.items():
        cells = [f"{site} {peak:9.4f} at {when:8.3f} ({peak - base[site][0]:+.4f})"
                 for site, (peak, when) in r["peaks"].items()]  # fmt: skip
        print(f"  {label:22} " + "; ".join(cells))
    print("spike times (ms):")
    for label, r in results.items():
        print(f"  {label}: {np.round(r['spike_times'][0], 3).tolist()}")
    (args.out / "l5pc_reference.json").write_text(json.dumps(results, indent=1))
    plot({label: (t, v) for label, (t, v, _) in runs.items()}, args.out / "l5pc_reference.png",
         f"L5PC {args.protocol} ({tstop:g} ms)")  # fmt: skip
    print(f"wrote {args.out / 'l5pc_reference.png'} and {args.out / 'l5pc_reference.json'}")
    return results


if __name__ == "__main__":
    main()
