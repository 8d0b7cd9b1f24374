"""Each mechanism of Blue Brain's L5PC (the reference folder's 12 .mod files) alone, in NEURON and as
brainsim.nmodl translates it, under the same voltage-clamp steps: every state and the current within 1e-6
relative (floor: 1e-6 of the trace's largest magnitude) over the whole protocol.

NEURON: one section per mechanism (one segment, celsius 34, dt 0.025 ms) with cm = 1e30 µF/cm², and seg.v
set to the command before every h.fadvance(): a step then moves V by less than 1e-29 mV, below a double's
resolution, so V is the command bit for bit (checked). A clamp point process (SEClamp) would leave V off
the command by its series resistance times the current. The calcium: CaDynamics_E2 is driven by the ica
of a Ca_HVA in its section (gCa_HVAbar raised to 1e-3 S/cm²; its eca then follows the Nernst potential of
cai, and that Ca_HVA is checked too); SK_E2's cai is set before every step, a staircase from 5e-8 mM
(below the .mod file's 1e-7 mM floor) to 1e-2 mM.

brainsim: the translated module stepped as NEURON's fixed step (and brainsim's staggered scheme) does:
step k evaluates the currents at V(t_k) with the states as they are, then the rates at V(t_k + dt), the
V after the step's solve, and moves every state by x ← x∞ + (x − x∞)·exp(−dt/τ) (each module's `advance`,
NEURON's cnexp). The states start from initial_np at the holding V. The ion rows of step k are NEURON's
values recorded after it: eca (recomputed from cai at the start of the step), ica (summed in the step's
current phase; CaDynamics_E2's state update reads it) and cai (SK_E2's state update reads the imposed one).
Under the clamp V does not change within a step, so a second run ('moving', cm = 0.1 µF/cm²) lets each
mechanism's own current move V within every step: there the rates must take the V after the solve.

The levels avoid the V where a .mod file moves V by 1e-4 mV off a 0/0 (`if (v == -60) {v = v + 0.0001}`):
brainsim evaluates the continuous extension there; test_guard_points bounds the difference.
"""

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from support import L5PC

ROOT = Path(__file__).resolve().parents[2]
MODS = L5PC / "mechanisms"
DT = 0.025  # ms
CELSIUS = 34.0
HOLD = -80.0  # mV
LEVELS = (-90.0, -70.0, -50.0, -30.0, -10.0, 10.0, 30.0)  # mV
STEP, BACK, LEAD = 20.0, 10.0, 10.0  # ms at a level, back at HOLD after it, at HOLD first
CAI_LEVELS = (5e-8, 1e-4, 2e-4, 4.3e-4, 1e-3, 3e-3, 1e-2)  # mM, SK_E2's cai from the start of each level
CM = {"clamped": 1e30, "moving": 0.1, "guards": 1e30}  # µF/cm² of each run's sections
CA_HVA_BAR = 1e-3  # S/cm², Ca_HVA's conductance in CaDynamics_E2's section
RTOL = 1e-6
GUARD_RTOL = 1e-4

pytestmark = [
    pytest.mark.skipif(
        not MODS.is_dir(), reason=f"the reference L5PC is absent ({L5PC}); set BRAINSIM_L5PC to its folder"
    ),
    pytest.mark.skipif(importlib.util.find_spec("neuron") is None, reason="NEURON is not installed"),
    pytest.mark.skipif(
        shutil.which("nrnivmodl", path=str(Path(sys.executable).parent)) is None
        and shutil.which("nrnivmodl") is None,
        reason="NEURON's nrnivmodl is not found",
    ),
]

SECTIONS = {"CaDynamics_E2": ("Ca_HVA", "CaDynamics_E2")}
"""The mechanisms (file stems) of a section where its mechanism is not alone."""
CHECKS = [(p.stem, p.stem) for p in sorted(MODS.glob("*.mod"))] + [("CaDynamics_E2", "Ca_HVA")]
"""(section, mechanism checked in it): every mechanism in its own section, Ca_HVA also under CaDynamics_E2."""


def reference_module():
    spec = importlib.util.spec_from_file_location("l5pc_reference", ROOT / "benchmarks" / "l5pc_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def steps_of(ms):
    return round(ms / DT)


def protocol(levels):
    """The command V (mV) of each step: LEAD at HOLD, then each level for STEP and HOLD for BACK."""
    parts = [np.full(steps_of(LEAD), HOLD)]
    for level in levels:
        parts += [np.full(steps_of(STEP), level), np.full(steps_of(BACK), HOLD)]
    return np.concatenate(parts)


def cai_staircase(steps):
    """SK_E2's cai (mM) of each step: CAI_LEVELS[i] from the start of level i, 5e-5 mM before."""
    cai = np.full(steps, 5e-5)
    for i, c in enumerate(CAI_LEVELS):
        cai[steps_of(LEAD) + i * steps_of(STEP + BACK) :] = c
    return cai


def run_neuron(h, sections, commands, cai_imposed):
    """Traces of NEURON's fixed step, seg.v of each sections[key] set to commands[key] (mV per step) and
    seg.cai to cai_imposed[key] (mM) where given, before each step: {key: {'v', 'cai', 'eca', 'ica' where
    the section has them, '<mech>.<state>', '<mech>.current' where it has one: (steps + 1,)}}, index k + 1
    recorded after step k."""
    vectors = {}
    for key, (sec, mechanisms) in sections.items():
        seg = sec(0.5)
        refs = {"v": seg._ref_v}
        refs.update({ion: getattr(seg, f"_ref_{ion}") for ion in ("cai", "eca", "ica") if hasattr(seg, ion)})
        for name, mech in mechanisms.items():
            for state, _ in mech.states:
                on = seg if state == "cai" else getattr(seg, name)  # a concentration is the ion's variable
                refs[f"{name}.{state}"] = getattr(on, f"_ref_{state}")
            for current in mech.currents:  # one each, none for CaDynamics_E2
                refs[f"{name}.current"] = getattr(seg, f"_ref_{current}_{name}")
        vectors[key] = {}
        for label, ref in refs.items():
            vec = h.Vector()
            vec.record(ref)
            vectors[key][label] = vec
    h.CVode().active(0)  # the fixed step
    h.celsius, h.dt = CELSIUS, DT
    h.finitialize(HOLD)
    steps = len(next(iter(commands.values())))
    for k in range(steps):
        for key, (sec, _) in sections.items():
            sec(0.5).v = commands[key][k]
            if key in cai_imposed:
                sec(0.5).cai = cai_imposed[key][k]
        h.fadvance()
    return {key: {label: np.array(vec) for label, vec in vecs.items()} for key, vecs in vectors.items()}


def parameter(h, seg, name, param):
    """NEURON's value of a mechanism's PARAMETER: a RANGE variable, a GLOBAL, or an ion's reversal."""
    for owner, attr in ((seg, f"{param}_{name}"), (h, f"{param}_{name}"), (seg, param)):
        if hasattr(owner, attr):
            return float(getattr(owner, attr))
    raise AttributeError(f"NEURON has no {param} for {name}")


@pytest.fixture(scope="module")
def neuron(tmp_path_factory):
    """(translated Mechanisms by file stem, {run: (traces, {section: {mechanism: parameter column}})})
    of the runs 'clamped' and 'moving' (LEVELS) and 'guards' (each guarded mechanism at its guard V);
    the NEURON sections are gone once each run is recorded."""
    from neuron import h

    from brainsim import nmodl

    reference_module().load_mechanisms(h, MODS, tmp_path_factory.mktemp("l5pc_mechanisms") / "nrnmech")
    described = {path.stem: m for path, m in nmodl.describe(MODS)}
    guarded = {key: [float(g) for g in m.guards_dropped] for key, m in described.items() if m.guards_dropped}

    def record(run, levels):
        sections = {}
        for key in levels:
            sec = h.Section(name=f"{run}_{key}")
            sec.nseg, sec.L, sec.diam, sec.cm = 1, 10.0, 10.0, CM[run]
            names = SECTIONS.get(key, (key,))
            for name in names:
                sec.insert(described[name].name)
            if "Ca_HVA" in names and key != "Ca_HVA":
                sec(0.5).Ca_HVA.gCa_HVAbar = CA_HVA_BAR
            sections[key] = (sec, {described[n].name: described[n] for n in names})
        commands = {key: protocol(lv) for key, lv in levels.items()}
        steps = max(c.size for c in commands.values())
        commands = {key: np.concatenate([c, np.full(steps - c.size, HOLD)]) for key, c in commands.items()}
        traces = run_neuron(h, sections, commands, {k: cai_staircase(steps) for k in levels if k == "SK_E2"})
        params = {}
        for key, (sec, mechanisms) in sections.items():
            traces[key]["command"] = commands[key]
            params[key] = {
                name: np.array([[parameter(h, sec(0.5), name, p)] for p, _, _ in mech.params])
                for name, mech in mechanisms.items()
            }
        return traces, params

    every = {section: LEVELS for section, _ in CHECKS}
    runs = {"clamped": record("clamped", every), "moving": record("moving", every)}
    runs["guards"] = record("guards", guarded)
    return described, runs


def drive(module, trace, p):
    """brainsim's states (steps + 1, n_states) and current (steps + 1,) of a translated module on NEURON's
    V and ion rows, stepped as NEURON's fixed step (see the module docstring)."""
    from brainsim.kernels.ions import CAI, ECA, ICA, ION_FIELDS

    v, command = trace["v"], trace["command"]
    steps, ns = command.size, len(module.STATES)
    node = np.zeros(1, dtype=np.int32)
    ion = np.zeros((len(ION_FIELDS), 1))
    rows = [
        (row, trace[field]) for row, field in ((CAI, "cai"), (ECA, "eca"), (ICA, "ica")) if field in trace
    ]
    for row, values in rows:
        ion[row] = values[0]
    s = np.ascontiguousarray(module.initial_np(v[:1], node, p, ion, CELSIUS))
    states, current = np.empty((steps + 1, ns)), np.empty(steps + 1)
    i_acc, g_acc = np.zeros(1), np.zeros(1)
    dids = np.zeros((ns, 1))

    def currents(vk):
        i_acc[0] = ion[ICA, 0] = 0.0
        module.current(vk, node, p, s, ion, i_acc, g_acc, dids)
        return i_acc[0]

    states[0] = s[:, 0]
    current[0] = currents(v[:1])  # NEURON's finitialize evaluates the currents once
    for k in range(steps):
        for row, values in rows:
            ion[row] = values[k + 1]
        current[k + 1] = currents(command[k : k + 1])
        ion[ICA] = trace["ica"][k + 1] if "ica" in trace else 0.0  # the step's summed ica, which states read
        module.advance(v[k + 1 : k + 2], node, p, ion, CELSIUS, s, DT, 0, 1)
        states[k + 1] = s[:, 0]
    return states, current


def relative_error(a, b):
    """max |a − b| / max(|b|, 1e-6·max|b|) over a trace, and the step where it is."""
    err = np.abs(a - b) / np.maximum(np.abs(b), 1e-6 * np.max(np.abs(b)))
    return float(np.max(err)), int(np.argmax(err))


def errors(described, run, section, key):
    """{'<state>' or 'current': (worst relative error, step)} of mechanism key in a section of a run."""
    from brainsim import nmodl

    traces, params = run
    mech = described[key]
    trace = traces[section]
    module = nmodl.load(MODS / f"{key}.mod")
    states, current = drive(module, trace, params[section][mech.name])
    out = {s: relative_error(states[:, j], trace[f"{mech.name}.{s}"]) for j, s in enumerate(module.STATES)}
    if mech.currents:
        out["current"] = relative_error(current, trace[f"{mech.name}.current"])
    return out


def summary(worst):
    return ", ".join(f"{name} {e:.1e} (step {k})" for name, (e, k) in worst.items())


def test_clamped_v_is_the_command_and_moving_v_moves(neuron):
    _, runs = neuron
    for run in ("clamped", "guards"):
        for key, trace in runs[run][0].items():
            assert trace["v"][0] == HOLD
            assert np.array_equal(trace["v"][1:], trace["command"]), (run, key)
    moved = [np.max(np.abs(t["v"][1:] - t["command"])) for t in runs["moving"][0].values()]
    assert np.median(moved) > 0.01  # mV within one step: rates at V(t) instead of V(t + dt) would show


def test_translated_parameters_are_neurons(neuron):
    """The defaults the translator read from each .mod file are NEURON's (the reversal potentials ek, ena
    included; eca is an ion row, not a parameter, where the mechanism reads it)."""
    described, runs = neuron
    _, params = runs["clamped"]
    for key, mech in described.items():
        used = [k for k, (p, _, _) in enumerate(mech.params) if p not in mech.ion_reads]
        got = params[key][mech.name][used, 0]
        np.testing.assert_allclose(got, [mech.params[k][1] for k in used], rtol=1e-15, err_msg=key)


@pytest.mark.parametrize("run", ["clamped", "moving"])
@pytest.mark.parametrize(
    ("section", "key"), CHECKS, ids=[k if s == k else f"{k}-with-{s}" for s, k in CHECKS]
)
def test_mechanism_matches_neuron(neuron, run, section, key):
    described, runs = neuron
    worst = errors(described, runs[run], section, key)
    print(f"{run}: {key} in {section}: {summary(worst)}")
    assert all(e < RTOL for e, _ in worst.values()), worst


def test_cadynamics_section_moves_calcium(neuron):
    """CaDynamics_E2's cai and eca do move (the Ca_HVA current is large enough to matter)."""
    _, runs = neuron
    trace = runs["clamped"][0]["CaDynamics_E2"]
    assert trace["cai"].max() > 100 * trace["cai"].min()
    assert np.ptp(trace["eca"]) > 50.0  # mV


def test_eca_is_neurons_nernst(neuron):
    """kernels.ions' Nernst potential (GAS, FARADAY, CAO) of NEURON's cai is NEURON's eca: the eca of step
    k is computed from cai after step k − 1."""
    from brainsim.kernels.ions import nernst_eca_np

    _, runs = neuron
    trace = runs["clamped"][0]["CaDynamics_E2"]
    eca = nernst_eca_np(trace["cai"][:-1], np.arange(trace["cai"].size - 1), CELSIUS)
    assert relative_error(eca, trace["eca"][1:])[0] < RTOL


def test_guard_points(neuron):
    """At a V where a .mod file's guard moves V by 1e-4 mV off a 0/0, NEURON evaluates the rates there and
    brainsim the continuous extension at V: they differ by about 1e-4 mV times the relative slope of the
    rate (measured up to 2.6e-5: Ca_HVA's current at −27 mV), within GUARD_RTOL; a NaN or a wrong limit
    would not be."""
    described, runs = neuron
    traces, _ = runs["guards"]
    assert traces, "no mechanism of the folder has a singularity guard"
    for key in traces:
        worst = errors(described, runs["guards"], key, key)
        print(f"{key} at {described[key].guards_dropped} mV: {summary(worst)}")
        assert all(e < GUARD_RTOL for e, _ in worst.values()), (key, worst)
