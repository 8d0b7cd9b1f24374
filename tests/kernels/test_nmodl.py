"""NMODL translation (brainsim.nmodl): the L5PC reference files vs the built-ins written from the same
equations, errors, the cache."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import HH_MOD, L5PC, L5PC_BUILT_IN  # noqa: E402

from brainsim.config.mechanisms import CATALOGUE  # noqa: E402
from brainsim.errors import MechanismError  # noqa: E402
from brainsim.kernels.ions import ECA, ION_FIELDS  # noqa: E402
from brainsim.nmodl import cache, describe, load, translate  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODS = L5PC / "mechanisms"
need_l5pc = pytest.mark.skipif(not MODS.is_dir(), reason=f"the L5PC reference model is absent ({L5PC})")
COUNTERPART = L5PC_BUILT_IN
RTOL = 1e-12
SINGULAR = [-38.0, -66.0, -32.0, -60.0, -27.0, -154.9, -17.0, -64.4, -50.0]
"""V (mV) where a rate of the L5PC mechanisms is 0/0 or piecewise."""

HH = HH_MOD


@pytest.fixture(autouse=True)
def _cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINSIM_CACHE", str(tmp_path / "cache"))


def voltages():
    return np.concatenate([np.linspace(-100.0, 60.0, 321), SINGULAR])


def case(mod, rng, n):
    """V per node, node index, states and ion rows for n instances (cai also below sk's 1e-7 mM floor)."""
    v = voltages()[rng.permutation(n) % voltages().size]
    node = np.arange(n, dtype=np.int32)
    s = rng.uniform(0.0, 1.0, (len(mod.STATES), n))
    if "cai" in mod.STATES:
        s[:] = 10.0 ** rng.uniform(-5.0, -2.0, (1, n))
    ion = np.array([rng.uniform(-1e-2, 0.0, n), 10.0 ** rng.uniform(-8.5, -2.0, n), np.zeros(n)])
    return v, node, s, ion


def mapped(hand, gen, rng, n):
    """Parameter columns for the hand-written module (defaults scaled at random) and the same values in
    the generated module's order (gbar is the .mod file's g<name>bar, other names match ignoring case)."""
    p_hand = np.array([d * rng.uniform(0.5, 2.0, n) for _, d, _ in hand.PARAMS])
    p_gen = np.array([d for _, d, _ in gen.PARAMS], dtype=float)[:, None].repeat(n, axis=1)
    gen_names = [name for name, _, _ in gen.PARAMS]
    for k, (name, _, _) in enumerate(hand.PARAMS):
        if name == "gbar":
            (target,) = [g for g in gen_names if g.startswith("g") and g.endswith("bar")]
        else:
            (target,) = [g for g in gen_names if g.lower() == name.lower()]
        p_gen[gen_names.index(target)] = p_hand[k]
    return p_hand, p_gen


def run(mod, v, node, p, s, ion, celsius=34.0):
    xinf, tau = np.full((2, len(mod.STATES), node.size), np.nan)
    mod.rates(v[node], node, p, ion, celsius, xinf, tau)
    i_acc, g_acc, dids, ion = np.zeros(v.size), np.zeros(v.size), np.full_like(s, np.nan), ion.copy()
    mod.current(v, node, p, s, ion, i_acc, g_acc, dids)
    return {"xinf": xinf, "tau": tau, "i": i_acc, "g": g_acc, "dids": dids, "ion": ion}


def run_np(mod, v, node, p, s, ion, celsius=34.0):
    xinf, tau = mod.rates_np(v[node], node, p, ion, celsius)
    i, g, dids = mod.current_np(v, node, p, s, ion)
    return {"xinf": xinf, "tau": tau, "i": i, "g": g, "dids": dids}


def assert_same(got, want, what):
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=RTOL, atol=0, err_msg=f"{what}: {key}")


@need_l5pc
def test_all_l5pc_mechanisms_translate():
    listed = describe(MODS)
    assert len(listed) == 12
    bad = {p.name: m for p, m in listed if isinstance(m, Exception)}
    assert not bad
    assert {m.name for _, m in listed} == set(COUNTERPART)


@need_l5pc
@pytest.mark.parametrize("name", sorted(COUNTERPART))
def test_reference_files_equal_the_built_ins(name):
    gen, hand = load(MODS / f"{name}.mod"), CATALOGUE[COUNTERPART[name]]
    assert (gen.KIND, gen.STATES, gen.ION_READS, gen.ION_WRITES) == (
        hand.KIND, hand.STATES, hand.ION_READS, hand.ION_WRITES)  # fmt: skip
    rng = np.random.default_rng(3)
    n = 2 * voltages().size
    v, node, s, ion = case(hand, rng, n)
    p_hand, p_gen = mapped(hand, gen, rng, n)
    if "eca" in gen.ION_READS:
        ion[ECA, node] = p_hand[[name for name, _, _ in hand.PARAMS].index("eca")]
    want = run(hand, v, node, p_hand, s, ion)
    got = run(gen, v, node, p_gen, s, ion)
    assert_same(got, want, f"{name} numba")
    assert np.isfinite(got["xinf"]).all() and np.isfinite(got["tau"]).all()
    want_np = run_np(hand, v, node, p_hand, s, ion)
    assert_same(run_np(gen, v, node, p_gen, s, ion), want_np, f"{name} NumPy")
    got.pop("ion")
    assert_same(got, run_np(gen, v, node, p_gen, s, ion), f"{name} numba vs NumPy")


@need_l5pc
def test_singularity_guards_become_exprelr():
    text = translate(MODS / "NaTa_t.mod")
    assert "exprelr(" in text and "-38.0, -66.0" in text
    assert "if" not in text.split("def rates(")[1].split("def advance")[0].replace("range", "")
    # advance writes exprelr out (one exp per ±u pair); its only conditions are exprelr's own, |u| < 1e-6
    advance = text.split("def advance(")[1].split("def rates_np")[0]
    near = {
        line.split("=")[0].strip() for line in advance.splitlines() if "abs(" in line and "< 1e-06" in line
    }
    conditions = [line.split(" if ")[1].split(" else")[0] for line in advance.splitlines() if " if " in line]
    assert near and conditions and set(conditions) <= near, advance


def test_an_if_that_adjusts_an_argument_stays_a_choice_of_value():
    """SK's `if (ca < 1e-7) { ca = ca + 1e-7 }`: one power of the chosen ca (a loop LLVM vectorises), not a
    choice between two powers; both sides of the IF agree with the NumPy twin."""
    import sympy as sp

    from brainsim.nmodl.codegen import Select, _select_inward

    x = sp.Symbol("x", positive=True)
    power = sp.Rational(24, 5)
    chosen = _select_inward(sp.Piecewise(((x + 1) ** power, x < 1), (x**power, True)))
    assert not chosen.has(sp.Piecewise) and chosen == Select(x < 1, x + 1, x) ** power
    two = sp.Piecewise((sp.exp(x), x < 1), (sp.log(x), True))  # two expressions: left as written
    assert _select_inward(two) == two
    sk = CATALOGUE["sk"]
    source = Path(sk.__file__).read_text()
    rates = source.split("def rates(")[1].split("def advance(")[0]
    assert rates.count("vlog(") == 1 and rates.count(" if ") == 1, rates
    node = np.arange(4, dtype=np.int32)
    ion = np.zeros((len(ION_FIELDS), 4))
    ion[ION_FIELDS.index("cai")] = [1e-9, 5e-8, 2e-7, 1e-4]  # both sides of 1e-7
    p = np.array([[d] * 4 for _, d, _ in sk.PARAMS])
    xinf, tau = np.zeros((1, 4)), np.zeros((1, 4))
    sk.rates(np.zeros(4), node, p, ion, 34.0, xinf, tau)
    np.testing.assert_allclose(xinf, sk.rates_np(np.zeros(4), node, p, ion, 34.0)[0], rtol=1e-13)


def hh_rates(v, celsius):
    """The Hodgkin-Huxley rates, written out (V away from the 0/0 points −40 and −55 mV)."""
    q10 = 3.0 ** ((celsius - 6.3) / 10.0)
    am, bm = 0.1 * (v + 40) / (1 - np.exp(-(v + 40) / 10)), 4 * np.exp(-(v + 65) / 18)
    ah, bh = 0.07 * np.exp(-(v + 65) / 20), 1 / (np.exp(-(v + 35) / 10) + 1)
    an, bn = 0.01 * (v + 55) / (1 - np.exp(-(v + 55) / 10)), 0.125 * np.exp(-(v + 65) / 80)
    a, b = np.array([am, ah, an]), np.array([bm, bh, bn])
    return a / (a + b), 1 / (q10 * (a + b))


def test_hh_like_mod_against_the_formula_and_hh(tmp_path):
    path = tmp_path / "hhx.mod"
    path.write_text(HH)
    gen = load(path)
    assert gen.KIND == "density" and gen.STATES == ("m", "h", "n")
    assert [p for p, _, _ in gen.PARAMS] == ["gnabar", "gkbar", "gl", "el", "ena", "ek"]
    assert dict((p, d) for p, d, _ in gen.PARAMS)["ek"] == -77.0  # NEURON's default
    rng = np.random.default_rng(5)
    v = np.concatenate([np.linspace(-99.75, 59.75, 320), [-40.0, -55.0]])
    n = v.size
    node = np.arange(n, dtype=np.int32)
    p = np.array([d for _, d, _ in gen.PARAMS])[:, None] * rng.uniform(0.5, 2.0, (6, n))
    s = rng.uniform(0.0, 1.0, (3, n))
    ion = np.zeros((len(ION_FIELDS), n))
    got = run(gen, v, node, p, s, ion, celsius=6.3 + 10.0)
    xinf, tau = hh_rates(v[:-2], 16.3)
    np.testing.assert_allclose(got["xinf"][:, :-2], xinf, rtol=1e-12)
    np.testing.assert_allclose(got["tau"][:, :-2], tau, rtol=1e-12)
    assert np.isfinite(got["xinf"]).all()
    gnabar, gkbar, gl, el, ena, ek = p
    m, h, nn = s
    i = gnabar * m**3 * h * (v - ena) + gkbar * nn**4 * (v - ek) + gl * (v - el)
    np.testing.assert_allclose(got["i"], i, rtol=1e-12)
    np.testing.assert_allclose(got["g"], gnabar * m**3 * h + gkbar * nn**4 + gl, rtol=1e-12)
    dids = [3 * gnabar * m**2 * h * (v - ena), gnabar * m**3 * (v - ena), 4 * gkbar * nn**3 * (v - ek)]
    np.testing.assert_allclose(got["dids"], dids, rtol=1e-12)
    assert_same(run(CATALOGUE["hh"], v, node, p, s, ion, celsius=16.3), got, "hhx vs hh")
    got.pop("ion")
    assert_same(run_np(gen, v, node, p, s, ion, celsius=16.3), got, "hhx numba vs NumPy")


def bad_mod(tmp_path, body, name="bad"):
    path = tmp_path / f"{name}.mod"
    path.write_text(
        "NEURON {\n    SUFFIX bad\n    RANGE g\n}\nPARAMETER { g = 1 (S/cm2) }\nSTATE { x }\n"
        "ASSIGNED { v (mV) }\n" + body
    )
    return path


@pytest.mark.parametrize(
    "body,line,construct",
    [
        ("BREAKPOINT { SOLVE s METHOD cnexp }\nDERIVATIVE s { x' = -x }\nVERBATIM\n return 0;\nENDVERBATIM\n",
         10, "VERBATIM"),
        ("NEURON { POINTER q }\nBREAKPOINT { SOLVE s METHOD cnexp }\nDERIVATIVE s { x' = -x }\n",
         8, "POINTER"),
        ("BREAKPOINT { SOLVE s METHOD cnexp }\nDERIVATIVE s {\n    x' = -x*x/g\n}\n", 10, "nonlinear in x"),
        ("BREAKPOINT { SOLVE s METHOD runge }\nDERIVATIVE s { x' = -x }\n", 8, "METHOD runge"),
        ("BREAKPOINT { SOLVE s METHOD sparse }\nKINETIC s { ~ x <-> y (1, 1) }\n", 9, "KINETIC"),
        ("BREAKPOINT { SOLVE s METHOD cnexp }\nDERIVATIVE s { x' = -x }\n"
         "NET_RECEIVE(w) {\n    x = x + w\n}\n", 10, "only a POINT_PROCESS"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_construct(tmp_path, body, line, construct):
    path = bad_mod(tmp_path, body)
    with pytest.raises(MechanismError) as e:
        translate(path)
    assert str(e.value).startswith(f"{path}:{line}: ") and construct in str(e.value)
    assert not (tmp_path / "cache").exists()
    (listed,) = describe(tmp_path)
    assert isinstance(listed[1], MechanismError)


def test_cache_writes_once_and_imports_from_disk(tmp_path):
    path = tmp_path / "hhx.mod"
    path.write_text(HH)
    target, key = cache.cached_path(path)
    assert target.parent == tmp_path / "cache" / "nmodl" and target.name == f"{key}.py"
    assert target.read_text() == translate(path)
    target.write_text(target.read_text() + "\nFROM_CACHE = True\n")
    assert load(path).FROM_CACHE  # imported from the file, not translated again
    code = (
        "import sys; from brainsim.nmodl import load; "
        f"m = load({str(path)!r}); print(getattr(m, 'FROM_CACHE', False))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    path.write_text(HH.replace("el = -54.3", "el = -60"))
    other, other_key = cache.cached_path(path)
    assert other_key != key and "-60.0" in other.read_text()


def test_mechanisms_command_lists_a_folder(tmp_path, capsys):
    from brainsim.cli import main

    (tmp_path / "hhx.mod").write_text(HH)
    bad_mod(tmp_path, "BREAKPOINT { SOLVE s METHOD cnexp }\nDERIVATIVE s { x' = -x^2 }\n")
    assert main(["mechanisms", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "hhx.mod: hhx (density)" in out and "gnabar = 0.12 S/cm2" in out and "ek = -77 mV" in out
    assert "na: READ ena WRITE ina" in out and "currents: ina, ik, il" in out
    assert f"bad.mod: error: {tmp_path / 'bad.mod'}:9: x' is nonlinear" in out


@pytest.mark.parametrize(
    "initial, expected",
    [
        ("INITIAL {\n    rates(v)\n    m = minf\n    h = hinf\n    n = ninf\n}\n", "steady"),
        ("", "zero"),  # NEURON: a state that INITIAL leaves alone starts at 0
        ("INITIAL {\n    m = 0.25\n    h = 1 - m\n}\n", "set"),
    ],
)
def test_states_start_where_initial_puts_them(tmp_path, initial, expected):
    text = HH.replace(HH[HH.index("INITIAL {") : HH.index("DERIVATIVE states")], initial)
    path = tmp_path / "hhx.mod"
    path.write_text(text)
    gen = load(path)
    v = np.linspace(-90.0, 30.0, 7)
    node = np.arange(v.size, dtype=np.int32)
    p = np.array([d for _, d, _ in gen.PARAMS])[:, None].repeat(v.size, axis=1)
    ion = np.zeros((len(ION_FIELDS), v.size))
    start = gen.initial_np(v, node, p, ion, 6.3)
    xinf, _ = gen.rates_np(v, node, p, ion, 6.3)
    set_ = np.array([np.full(v.size, 0.25), np.full(v.size, 0.75), np.zeros(v.size)])
    want = {"steady": xinf, "zero": np.zeros_like(xinf), "set": set_}[expected]
    np.testing.assert_allclose(start, want, rtol=1e-14, atol=0)


@need_l5pc
def test_a_written_cai_starts_at_neurons_cai0():
    gen = load(MODS / "CaDynamics_E2.mod")
    n = 3
    start = gen.initial_np(np.full(n, -65.0), np.arange(n, dtype=np.int32),
                           np.array([d for _, d, _ in gen.PARAMS])[:, None].repeat(n, axis=1),
                           np.zeros((len(ION_FIELDS), n)), 34.0)  # fmt: skip
    np.testing.assert_array_equal(start, 5e-5)


@pytest.mark.parametrize(
    "receive, line, message",
    [
        ("NET_RECEIVE(w) {\n    x = x*(1 + w)\n}\n", 11, "x must change by weight times"),
        ("NET_RECEIVE(w) {\n    x = x + w*v\n}\n", 11, "x must change by weight times"),
        ("NET_RECEIVE(w, k) {\n    x = x + w\n}\n", 10, "one argument, the weight"),
    ],
)
def test_net_receive_outside_the_subset_is_an_error(tmp_path, receive, line, message):
    path = tmp_path / "syn.mod"
    path.write_text("NEURON {\n    POINT_PROCESS syn\n    NONSPECIFIC_CURRENT i\n}\nSTATE { x }\n"
                    "ASSIGNED { v (mV) i (nA) }\nBREAKPOINT { SOLVE s METHOD cnexp\n i = x*v }\n"
                    "DERIVATIVE s { x' = -x }\n" + receive)  # fmt: skip
    with pytest.raises(MechanismError) as e:
        translate(path)
    assert str(e.value).startswith(f"{path}:{line}: ") and message in str(e.value), str(e.value)
