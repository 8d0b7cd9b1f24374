"""Every built-in mechanism (brainsim/mechanisms/*.mod, translated by brainsim.nmodl): numba kernels vs
NumPy twins, declarations, derivatives, published rates, the files themselves."""

from pathlib import Path

import numpy as np
import pytest

from brainsim.config.mechanisms import CATALOGUE
from brainsim.kernels.ions import CAI, CAI_REST, FARADAY, ICA, ION_FIELDS
from brainsim.kernels.states import exp_euler_np

CELSIUS = 34.0
N_NODES, N_INST = 40, 100  # more instances than nodes: nodes repeat
RTOL = 1e-10


def gating(mod):
    """Whether the mechanism's states are gates in [0, 1] (not concentrations or synaptic conductances)."""
    return mod.KIND == "density" and "cai" not in mod.ION_WRITES


def defaults(mod, n):
    return np.array([d for _, d, _ in mod.PARAMS], dtype=float)[:, None].repeat(n, axis=1)


def random_case(mod, rng, node):
    v = rng.uniform(-100.0, 60.0, N_NODES)
    s = rng.uniform(0.0, 1.0, (len(mod.STATES), node.size))
    ion = np.array([rng.uniform(-1e-2, 1e-2, N_NODES), 10.0 ** rng.uniform(-8.0, -2.0, N_NODES),
                    rng.uniform(100.0, 160.0, N_NODES)])  # fmt: skip
    return v, defaults(mod, node.size), s, ion


def run_rates(mod, v, node, p, ion, celsius=CELSIUS):
    """The numba rate kernel on V gathered per instance, as the engine calls it."""
    xinf = np.full((len(mod.STATES), node.size), np.nan)
    tau = np.full_like(xinf, np.nan)
    mod.rates(v[node], node, p, ion, celsius, xinf, tau)
    return xinf, tau


def run_current(mod, v, node, p, s, ion):
    """The numba kernel on fresh accumulators; returns (i_acc, g_acc, dids, ion after)."""
    i_acc, g_acc, ion = np.zeros(v.size), np.zeros(v.size), ion.copy()
    dids = np.full_like(s, np.nan)
    mod.current(v, node, p, s, ion, i_acc, g_acc, dids)
    return i_acc, g_acc, dids, ion


def close(actual, expected, rtol=RTOL):
    """Relative agreement, with an absolute floor at rtol × the largest magnitude (sums may cancel)."""
    atol = rtol * max(np.abs(expected).max(initial=0.0), 1e-300)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture(params=sorted(CATALOGUE))
def mod(request):
    return CATALOGUE[request.param]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def node(rng):
    node = rng.integers(0, N_NODES, N_INST)
    assert np.unique(node).size < node.size
    return node


def test_declarations(mod, rng, node):
    assert mod.KIND in ("density", "point")
    names = [name for name, _, _ in mod.PARAMS] + list(mod.STATES)
    assert len(set(names)) == len(names)
    assert all(isinstance(d, float) and isinstance(unit, str) for _, d, unit in mod.PARAMS)
    assert set(mod.ION_WRITES) <= set(ION_FIELDS) and set(mod.ION_READS) <= set(ION_FIELDS)
    for row in ("ICA", "CAI"):  # modules that cannot import the package's row constants copy them
        if hasattr(mod, row):
            assert getattr(mod, row) == ION_FIELDS.index(row.lower())
    v, p, s, ion = random_case(mod, rng, node)
    n_states = len(mod.STATES)
    xinf, tau = mod.rates_np(v[node], node, p, ion, CELSIUS)
    assert xinf.shape == tau.shape == (n_states, node.size)
    i, g, dids = mod.current_np(v, node, p, s, ion)
    assert i.shape == g.shape == (node.size,) and dids.shape == (n_states, node.size)
    if mod.KIND == "point":
        assert mod.event_scale(p).shape == (n_states, node.size)


def test_rates_match_twin(mod, rng, node):
    v, p, _, ion = random_case(mod, rng, node)
    xinf, tau = run_rates(mod, v, node, p, ion)
    xinf_np, tau_np = mod.rates_np(v[node], node, p, ion, CELSIUS)
    close(xinf, xinf_np)
    close(tau, tau_np)


def test_advance_matches_rates_and_exp_euler(mod, rng, node):
    """advance (the staggered step's state update) = rates then x∞ + (s − x∞)·exp(−dt/τ)."""
    v, p, s, ion = random_case(mod, rng, node)
    xinf, tau = mod.rates_np(v[node], node, p, ion, CELSIUS)
    out = s.copy()
    mod.advance(v[node], node, p, ion, CELSIUS, out, 0.025, 0, node.size)
    close(out, exp_euler_np(s, xinf, tau, 0.025))
    # instance range by instance range (as the staggered step takes blocks of cells): the same bits
    ranged, m = s.copy(), node.size // 3
    mod.advance(v[node], node, p, ion, CELSIUS, ranged, 0.025, m, node.size)
    assert np.array_equal(ranged[:, :m], s[:, :m])
    mod.advance(v[node], node, p, ion, CELSIUS, ranged, 0.025, 0, m)
    assert np.array_equal(ranged, out)


def test_current_ig_is_current_without_the_state_derivatives(mod, rng, node):
    """current_ig (the staggered step's) sums the same i, g and ica (to the last bits: its common
    subexpressions differ) and writes the same cai row."""
    v, p, s, ion = random_case(mod, rng, node)
    i_acc, g_acc, _, ion_after = run_current(mod, v, node, p, s, ion)
    i_ig, g_ig, ion_ig = np.zeros(v.size), np.zeros(v.size), ion.copy()
    mod.current_ig(v, node, p, s, ion_ig, i_ig, g_ig, 0, node.size)
    close(i_ig, i_acc)
    close(g_ig, g_acc)
    close(ion_ig, ion_after)
    # in two instance ranges: the same sums
    i_two, g_two, ion_two, m = np.zeros(v.size), np.zeros(v.size), ion.copy(), node.size // 2
    mod.current_ig(v, node, p, s, ion_two, i_two, g_two, 0, m)
    mod.current_ig(v, node, p, s, ion_two, i_two, g_two, m, node.size)
    close(i_two, i_ig)
    close(g_two, g_ig)
    close(ion_two, ion_ig)


def test_current_run_is_current_ig_on_consecutive_nodes(mod, rng):
    """current_run over runs of consecutive nodes (one instance per node, as a density mechanism has) adds
    what current_ig adds, to the last bit, and writes the same ion rows."""
    node = np.concatenate([np.arange(2, 9), np.arange(12, 40)])  # two runs, 7 and 28 instances
    v, p, s, ion = random_case(mod, rng, node)
    i_ig, g_ig, ion_ig = np.zeros(v.size), np.zeros(v.size), ion.copy()
    mod.current_ig(v, node, p, s, ion_ig, i_ig, g_ig, 0, node.size)
    i_run, g_run, ion_run = np.zeros(v.size), np.zeros(v.size), ion.copy()
    for j0, k0, m in ((0, 2, 7), (7, 12, 28)):
        mod.current_run(v, p, s, ion_run, i_run, g_run, j0, k0, m)
    assert np.array_equal(i_run, i_ig) and np.array_equal(g_run, g_ig) and np.array_equal(ion_run, ion_ig)
    assert np.count_nonzero(g_run) > 0 or mod.NAME == "cadyn"


def test_current_matches_twin(mod, rng, node):
    v, p, s, ion = random_case(mod, rng, node)
    i_acc, g_acc, dids, _ = run_current(mod, v, node, p, s, ion)
    i, g, dids_np = mod.current_np(v, node, p, s, ion)
    i_sum, g_sum = np.zeros(N_NODES), np.zeros(N_NODES)
    np.add.at(i_sum, node, i)
    np.add.at(g_sum, node, g)
    close(i_acc, i_sum)
    close(g_acc, g_sum)
    close(dids, dids_np)


def test_ion_writes(mod, rng, node):
    """ica writers add their current (all of it Ca) into ion[ICA]; cai writers put their state in ion[CAI]."""
    v, p, s, ion = random_case(mod, rng, node)
    _, _, _, ion_after = run_current(mod, v, node, p, s, ion)
    expected = ion.copy()
    if "ica" in mod.ION_WRITES:
        np.add.at(expected[ICA], node, mod.current_np(v, node, p, s, ion)[0])
        assert not np.allclose(ion_after[ICA], ion[ICA])
    if "cai" in mod.ION_WRITES:
        for j, i in enumerate(node):  # in instance order: the last instance on a node wins
            expected[CAI, i] = s[mod.STATES.index("cai"), j]
    close(ion_after, expected)


def test_ion_reads(mod, rng, node):
    """Changing an ion row that a mechanism does not read changes nothing; one that it reads, its rates or
    its current (eca: the Ca²⁺ channels' current)."""
    v, p, s, ion = random_case(mod, rng, node)
    for field in ION_FIELDS:
        other = ion.copy()
        other[ION_FIELDS.index(field)] *= 2.0
        same = np.array_equal(run_rates(mod, v, node, p, ion), run_rates(mod, v, node, p, other))
        i, i_other = run_current(mod, v, node, p, s, ion)[0], run_current(mod, v, node, p, s, other)[0]
        same = same and np.array_equal(i, i_other)
        assert same != (field in mod.ION_READS)


def test_gates_and_time_constants(mod, rng):
    v = np.linspace(-120.0, 80.0, 2001)
    node = np.arange(v.size)
    ion = np.array([rng.uniform(-1e-2, 1e-2, v.size), 10.0 ** rng.uniform(-8.0, -1.0, v.size),
                    np.full(v.size, 132.4579)])  # fmt: skip
    xinf, tau = run_rates(mod, v, node, defaults(mod, v.size), ion)
    assert np.all(np.isfinite(xinf)) and np.all(np.isfinite(tau)) and np.all(tau > 0)
    if gating(mod):
        assert np.all((xinf >= 0) & (xinf <= 1))


def test_dids_is_derivative_in_states(mod, rng):
    node = np.arange(N_NODES)
    v, p, s, ion = random_case(mod, rng, node)
    _, _, dids, _ = run_current(mod, v, node, p, s, ion)
    h = 1e-6
    for k in range(len(mod.STATES)):
        up, down = s.copy(), s.copy()
        up[k] += h
        down[k] -= h
        fd = (run_current(mod, v, node, p, up, ion)[0] - run_current(mod, v, node, p, down, ion)[0]) / (2 * h)
        close(dids[k], fd, rtol=1e-6)


def test_g_is_derivative_in_voltage(mod, rng):
    node = np.arange(N_NODES)
    v, p, s, ion = random_case(mod, rng, node)
    _, g, _, _ = run_current(mod, v, node, p, s, ion)
    h = 1e-4
    fd = (run_current(mod, v + h, node, p, s, ion)[0] - run_current(mod, v - h, node, p, s, ion)[0]) / (2 * h)
    close(g, fd, rtol=1e-7)


def run_rate_jacobian(mod, v, node, p, s, ion):
    """The numba rates_jacobian: (jsv, jsi) of the state rows F = x' − (x∞ − x)/τ; its x∞ and τ are those
    of the rates kernel."""
    xinf, tau, jsv = (np.full_like(s, np.nan) for _ in range(3))
    jsi = np.full((len(mod.RATE_ION_READS), *s.shape), np.nan)
    mod.rates_jacobian(v[node], node, p, ion, CELSIUS, s, xinf, tau, jsv, jsi)
    rates = run_rates(mod, v, node, p, ion)
    close(xinf, rates[0], rtol=1e-14)
    close(tau, rates[1], rtol=1e-14)
    return jsv, jsi


def state_rhs(mod, v, node, p, s, ion):
    """(x∞ − x)/τ: the states' derivatives, from the rate kernel."""
    xinf, tau = run_rates(mod, v, node, p, ion)
    return (xinf - s) / tau


def test_rate_jacobian_matches_twin_and_differences(mod, rng):
    """rates_jacobian's ∂F/∂V and ∂F/∂(ion rows it reads) against its NumPy twin and central differences."""
    node = np.arange(N_NODES)
    v, p, s, ion = random_case(mod, rng, node)
    jsv, jsi = run_rate_jacobian(mod, v, node, p, s, ion)
    jsv_np, jsi_np = mod.rate_jacobian_np(v[node], node, p, ion, CELSIUS, s)
    close(jsv, jsv_np)
    close(jsi, jsi_np)
    h = 1e-4
    fd = -(state_rhs(mod, v + h, node, p, s, ion) - state_rhs(mod, v - h, node, p, s, ion)) / (2 * h)
    close(jsv, fd, rtol=1e-6)
    assert set(mod.RATE_ION_READS) <= set(mod.ION_READS)
    for r, field in enumerate(mod.RATE_ION_READS):
        row = ION_FIELDS.index(field)
        step = 1e-6 * np.abs(ion[row]) + 1e-12
        up, down = ion.copy(), ion.copy()
        up[row] += step
        down[row] -= step
        fd = -(state_rhs(mod, v, node, p, s, up) - state_rhs(mod, v, node, p, s, down)) / (2 * step)
        close(jsi[r], fd, rtol=1e-6)


def test_current_jacobian_matches_twin_and_differences(mod, rng, node):
    """current_jacobian's ∂i/∂(ion rows the current reads) and, for ica writers, ∂ica/∂(V, states, rows):
    the kernel's per-node sums against its NumPy twin's per-instance values, and those against central
    differences of the current."""
    v, p, s, ion = random_case(mod, rng, node)
    reads = mod.CURRENT_ION_READS
    assert set(reads) <= set(mod.ION_READS)
    rows = [ION_FIELDS.index(r) for r in reads]
    writes = "ica" in mod.ION_WRITES
    scale = rng.uniform(0.5, 2.0, node.size)
    di_dion, dica_dion, dica_dv = np.zeros((3, N_NODES)), np.zeros((3, N_NODES)), np.zeros(N_NODES)
    dica_ds = np.full_like(s, np.nan)
    mod.current_jacobian(v, node, p, s, ion, scale, di_dion, dica_dion, dica_dv, dica_ds)
    dion, dica = mod.current_jacobian_np(v, node, p, s, ion)
    assert dion.shape == (len(reads), node.size)
    assert dica.shape == ((1 + len(mod.STATES) + len(reads)) if writes else 0, node.size)

    def summed(values):
        out = np.zeros(N_NODES)
        np.add.at(out, node, values)
        return out

    expect = np.zeros((3, N_NODES))
    for row, d in zip(rows, dion):
        expect[row] = summed(scale * d)
    close(di_dion, expect)
    if writes:
        close(dica_dv, summed(dica[0]))
        close(dica_ds, dica[1 : 1 + len(mod.STATES)])
        expect = np.zeros((3, N_NODES))
        for row, d in zip(rows, dica[1 + len(mod.STATES) :]):
            expect[row] = summed(d)
        close(dica_dion, expect)
    else:
        assert not dica_dv.any() and not dica_dion.any()

    def i(v=v, s=s, ion=ion):
        return mod.current_np(v, node, p, s, ion)[0]

    def bumped(a, index, h):
        up, down = a.copy(), a.copy()
        up[index] += h
        down[index] -= h
        return up, down

    for r, row in enumerate(rows):
        h = 1e-6 * np.abs(ion[row]) + 1e-12
        up, down = bumped(ion, row, h)
        close(dion[r], (i(ion=up) - i(ion=down)) / (2 * h[node]), rtol=1e-6)
    if writes:  # the whole current is Ca²⁺ current
        close(dica[0], (i(v=v + 1e-4) - i(v=v - 1e-4)) / 2e-4, rtol=1e-6)
        for k in range(len(mod.STATES)):
            up, down = bumped(s, k, 1e-6)
            close(dica[1 + k], (i(s=up) - i(s=down)) / 2e-6, rtol=1e-6)
        close(dica[1 + len(mod.STATES) :], dion)


def test_hh_by_hand():
    """hh.mod at V = −65 mV and 6.3 °C (q10 = 1):
    m: α = 0.1·25/(e^2.5 − 1) = 0.223564, β = 4;             m∞ = 0.0529325, τ = 0.236767 ms
    h: α = 0.07,                β = 1/(e^3 + 1) = 0.0474259; h∞ = 0.596121,  τ = 8.51601 ms
    n: α = 0.01·10/(e − 1) = 0.0581977, β = 0.125;           n∞ = 0.317677,  τ = 5.45858 ms
    """
    mod = CATALOGUE["hh"]
    xinf, tau = run_rates(mod, np.array([-65.0]), np.array([0]), defaults(mod, 1), np.zeros((3, 1)), 6.3)
    np.testing.assert_allclose(xinf[:, 0], [0.0529325, 0.596121, 0.317677], rtol=1e-5)
    np.testing.assert_allclose(tau[:, 0], [0.236767, 8.51601, 5.45858], rtol=1e-5)


def _ab(a, b, qt=1.0):
    return a / (a + b), 1.0 / ((a + b) * qt)


def _sig(x):
    return 1.0 / (1.0 + np.exp(x))


def published(name, v, cai, celsius):
    """(x∞, τ) per state, transcribed literally from the Hay et al. 2011 / BluePyOpt .mod files."""
    exp, qt = np.exp, 2.3 ** ((celsius - 21) / 10)
    if name in ("nata", "nats"):
        vm, vh = (-38, -66) if name == "nata" else (-32, -60)
        am = (0.182 * (v - vm)) / (1 - exp(-(v - vm) / 6))
        bm = (0.124 * (-v + vm)) / (1 - exp(-(-v + vm) / 6))
        ah = (-0.015 * (v - vh)) / (1 - exp((v - vh) / 6))
        bh = (-0.015 * (-v + vh)) / (1 - exp((-v + vh) / 6))
        return [_ab(am, bm, qt), _ab(ah, bh, qt)]
    if name == "nap":
        am = (0.182 * (v - -38)) / (1 - exp(-(v - -38) / 6))
        bm = (0.124 * (-v - 38)) / (1 - exp(-(-v - 38) / 6))
        ah = -2.88e-6 * (v + 17) / (1 - exp((v + 17) / 4.63))
        bh = 6.94e-6 * (v + 64.4) / (1 - exp(-(v + 64.4) / 2.63))
        m = (_sig((v - -52.6) / -4.6), 6 * (1 / (am + bm)) / qt)
        return [m, (_sig((v - -48.8) / 10), (1 / (ah + bh)) / qt)]
    if name == "kv31":
        return [(_sig((v - 18.7) / -9.7), 0.2 * 20 / (1 + exp((v + 46.56) / -44.14)))]
    if name == "kp":
        u = v + 10
        mtau = np.where(u < -50, 1.25 + 175.03 * exp(-u * -0.026), 1.25 + 13 * exp(-u * 0.026)) / qt
        htau = (360 + (1010 + 24 * (u + 55)) * exp(-(((u + 75) / 48) ** 2))) / qt
        return [(_sig(-(u + 1) / 12), mtau), (_sig(-(u + 54) / -11), htau)]
    if name == "kt":
        u = v + 10
        mtau = (0.34 + 0.92 * exp(-(((u + 71) / 59) ** 2))) / qt
        htau = (8 + 49 * exp(-(((u + 73) / 23) ** 2))) / qt
        return [(_sig(-(u + 0) / 19), mtau), (_sig(-(u + 66) / -10), htau)]
    if name == "im":
        return [_ab(3.3e-3 * exp(2.5 * 0.04 * (v - -35)), 3.3e-3 * exp(-2.5 * 0.04 * (v - -35)), qt)]
    if name == "ih":
        return [_ab(0.001 * 6.43 * (v + 154.9) / (exp((v + 154.9) / 11.9) - 1), 0.001 * 193 * exp(v / 33.1))]
    if name == "cahva":
        m = _ab((0.055 * (-27 - v)) / (exp((-27 - v) / 3.8) - 1), 0.94 * exp((-75 - v) / 17))
        return [m, _ab(0.000457 * exp((-13 - v) / 50), 0.0065 / (exp((-v - 15) / 28) + 1))]
    if name == "calva":
        u = v + 10
        mtau, htau = (5 + 20 / (1 + exp((u - -25) / 5))) / qt, (20 + 50 / (1 + exp((u - -40) / 7))) / qt
        return [(_sig((u - -30) / -6), mtau), (_sig((u - -80) / 6.4), htau)]
    if name == "sk":
        ca = np.where(cai < 1e-7, cai + 1e-7, cai)
        return [(1 / (1 + (0.00043 / ca) ** 4.8), np.ones_like(v))]
    raise KeyError(name)


PUBLISHED = ("nata", "nats", "nap", "kv31", "kp", "kt", "im", "ih", "cahva", "calva", "sk")


@pytest.mark.parametrize("name", PUBLISHED)
@pytest.mark.parametrize("celsius", [21.0, 34.0])
def test_published_rates(name, celsius):
    """Away from the removable singularities, the kernels reproduce the published formulas."""
    mod = CATALOGUE[name]
    v = np.linspace(-119.95, 79.95, 2000)  # steps of 0.1 mV, never on a singular point
    node = np.arange(v.size)
    cai = np.logspace(-8, -1, v.size)
    ion = np.array([np.zeros(v.size), cai, np.zeros(v.size)])
    xinf, tau = run_rates(mod, v, node, defaults(mod, v.size), ion, celsius)
    for k, (xinf_pub, tau_pub) in enumerate(published(name, v, cai, celsius)):
        np.testing.assert_allclose(xinf[k], xinf_pub, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(tau[k], tau_pub, rtol=1e-9)


def test_cadyn_steady_state():
    """cai∞ balances the published dcai/dt = −1e4·ica·gamma/(2·F·depth) − (cai − minCai)/decay."""
    mod = CATALOGUE["cadyn"]
    ica = np.linspace(-1e-2, 1e-2, 11)
    node = np.arange(ica.size)
    p = defaults(mod, ica.size)
    gamma, decay, depth, min_cai = p
    ion = np.array([ica, np.zeros(ica.size), np.zeros(ica.size)])
    xinf, tau = run_rates(mod, np.zeros(ica.size), node, p, ion)
    dcai = -10000 * (ica * gamma / (2 * FARADAY * depth)) - (xinf[0] - min_cai) / decay
    np.testing.assert_allclose(dcai, 0.0, atol=1e-15)
    np.testing.assert_array_equal(tau[0], decay)


def test_documented():
    """kernels/MECHANISMS.md has one table row per catalogue entry, naming its states and parameters."""
    text = (Path(__file__).parents[2] / "kernels" / "MECHANISMS.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `")}
    assert rows.keys() == CATALOGUE.keys()
    for name, mod in CATALOGUE.items():
        kind, states, params = (cell.strip() for cell in rows[name].split("|")[2:5])
        assert kind == mod.KIND
        assert all(state in states for state in mod.STATES)
        assert [p.split(" = ")[0] for p in params.split(", ")] == [p for p, _, _ in mod.PARAMS]


def test_initial_states(mod, rng, node):
    """INITIAL: the gates start at their steady state, the synapses at 0, cadyn's cai at NEURON's cai0."""
    v, p, _, ion = random_case(mod, rng, node)
    start = mod.initial_np(v, node, p, ion, CELSIUS)
    if mod.KIND == "point":
        np.testing.assert_array_equal(start, 0.0)
    elif "cai" in mod.STATES:
        np.testing.assert_array_equal(start, CAI_REST)
    else:
        close(start, mod.rates_np(v[node], node, p, ion, CELSIUS)[0], rtol=1e-14)
