"""NMODL mechanisms in configs (`mechanisms.paths`): loaded by SUFFIX / POINT_PROCESS name with their own
parameter names, checked like the built-ins, run by both integrators as the built-ins they restate, in
drugs and patient factors, and named in errors by file and key path."""

import copy
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import yaml
from support import EXP2SYN_MOD, HH_MOD, L5PC, L5PC_BUILT_IN, ROOT

import brainsim  # noqa: E402
from brainsim.config import resolve_config  # noqa: E402
from brainsim.config.load import read_yaml  # noqa: E402
from brainsim.config.mechanisms import (  # noqa: E402
    BUILT_IN,
    CATALOGUE,  # noqa: E402
    from_section,
)
from brainsim.errors import ConfigError  # noqa: E402
from brainsim.kernels.ions import CAI_REST, CAO, ECA, FARADAY, GAS, nernst_eca_np  # noqa: E402

MODS = L5PC / "mechanisms"
need_l5pc = pytest.mark.skipif(not MODS.is_dir(), reason=f"the L5PC reference model is absent ({L5PC})")
COUNTERPART = {built_in: mod for mod, built_in in L5PC_BUILT_IN.items()}
"""Built-in L5PC mechanism -> the .mod file's mechanism it was written from."""
HH = {"gnabar": 0.1, "gkbar": 0.03, "gl": 0.0003, "el": -60.0, "ena": 52.0, "ek": -75.0}
SMALL_BRAIN = ROOT / "tests/data/small_brain.yaml"
LEAK_POINT = """
NEURON { POINT_PROCESS leak  RANGE g, e  NONSPECIFIC_CURRENT i }
PARAMETER { g = 0.001 (uS)  e = -70 (mV) }
ASSIGNED { v (mV) i (nA) }
BREAKPOINT { i = g*(v - e) }
"""


@pytest.fixture(autouse=True)
def _cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINSIM_CACHE", str(tmp_path / "cache"))


def hh_folder(folder, suffix="hhmod", name=None):
    """A folder holding the HH .mod file under SUFFIX suffix."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name or suffix}.mod").write_text(HH_MOD.replace("SUFFIX hhx", f"SUFFIX {suffix}"))
    return folder


def one_cell(mechanism, method, paths=("mods",)):
    """A one-compartment cell under a current step (20 ms), its membrane `mechanism` at HH's values."""
    return {
        "name": "one",
        "mechanisms": {"paths": list(paths)},
        "simulation": {"tstop": 20.0, "dt": 0.025, "celsius": 16.3, "method": method},
        "cells": [
            {
                "name": "c",
                "morphology": {"kind": "cylinder", "length": 20.0, "diameter": 20.0},
                "discretization": {"per_branch": 1},
                "regions": {"all": {"mechanisms": {mechanism: dict(HH)}}},
            }
        ],
        "stimuli": [{"kind": "iclamp", "cell": "c", "delay": 2.0, "duration": 15.0, "amplitude": 0.15}],
        "probes": [{"name": "v", "variable": "v", "cell": "c", "location": "soma(0.5)"}],
    }


def write(folder, raw):
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def traces(config, names=("v",)):
    """{probe name: samples (time, probe)} of a run of config."""
    sim = brainsim.Simulation(brainsim.Recipe(config))
    sim.record()
    sim.run()
    return {name: sim.traces(name).values for name in names}


@pytest.mark.parametrize("method", ["staggered", "petsc"])
def test_hh_mod_runs_as_the_built_in_hh(tmp_path, method):
    hh_folder(tmp_path / "mods")
    loaded = brainsim.load_config(write(tmp_path, one_cell("hhmod", method)))
    assert [name for name, _ in loaded.mechanisms.loaded] == ["hhmod"]
    assert loaded.mechanisms.origin["hhmod"] == str(tmp_path / "mods" / "hhmod.mod")
    built_in = brainsim.load_config(write(tmp_path, one_cell("hh", method, paths=())))
    got, want = traces(loaded)["v"], traces(built_in)["v"]
    assert got.shape == want.shape == (801, 1)
    assert want.max() > 20.0  # it fires
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_paths_name_folders_and_files_relative_to_the_config(tmp_path):
    hh_folder(tmp_path / "a", "hhmod")
    hh_folder(tmp_path / "b", "hhtwo")
    raw = one_cell("hhtwo", "staggered", paths=["a", str(tmp_path / "b" / "hhtwo.mod")])
    config = brainsim.load_config(write(tmp_path, raw))
    assert [name for name, _ in config.mechanisms.loaded] == ["hhmod", "hhtwo"]
    assert list(config.mechanisms)[: len(CATALOGUE)] == list(CATALOGUE)  # built-ins keep their order
    assert pickle.loads(pickle.dumps(config.mechanisms)).loaded == config.mechanisms.loaded
    code = (  # a worker process: the config's data and file, as a member task carries them
        "import json, sys; from brainsim.config.load import RunConfig; "
        "c = RunConfig(json.loads(sys.argv[1]), sys.argv[2]); print(c.hash(), list(c.mechanisms)[-2:])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", code, json.dumps(config.data), str(config.source)]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=tmp_path.parent)
    assert out.stdout.split(maxsplit=1) == [config.hash(), "['hhmod', 'hhtwo']\n"]
    assert resolve_config(raw, source=tmp_path / "config.yaml").mechanisms.loaded == config.mechanisms.loaded
    assert brainsim.load_config(write(tmp_path, one_cell("hh", "staggered", paths=()))).mechanisms is BUILT_IN


def test_hash_follows_the_mod_text_not_its_folder(tmp_path):
    hh_folder(tmp_path / "one" / "mods")
    hh_folder(tmp_path / "two" / "mods")
    first = brainsim.load_config(write(tmp_path / "one", one_cell("hhmod", "staggered")))
    moved = brainsim.load_config(write(tmp_path / "two", one_cell("hhmod", "staggered")))
    assert first.hash() == moved.hash()
    mod = tmp_path / "two" / "mods" / "hhmod.mod"
    mod.write_text(mod.read_text().replace("el = -54.3", "el = -54.4"))  # a default no cell uses
    changed = brainsim.load_config(write(tmp_path / "two", one_cell("hhmod", "staggered")))
    assert changed.hash() != first.hash() and changed.state_hash(5.0) != first.state_hash(5.0)
    plain = one_cell("hh", "staggered", paths=())
    assert resolve_config(plain).hash() == resolve_config({**plain, "mechanisms": {}}).hash()


def test_block_order_puts_ion_writers_before_readers(tmp_path):
    if not MODS.is_dir():
        pytest.skip(f"the L5PC reference model is absent ({L5PC})")
    order = list(from_section({"paths": [str(MODS)]}, ROOT))
    loaded = [name for name in order if name not in CATALOGUE]
    assert [name for name in order if name in CATALOGUE] == list(CATALOGUE)
    assert order.index("Ca_HVA") < order.index("cadyn") < order.index("SK_E2")  # cadyn writes cai too
    assert sorted(loaded) == sorted(COUNTERPART.values())
    assert loaded.index("Ca_HVA") < loaded.index("CaDynamics_E2") < loaded.index("SK_E2")
    assert loaded.index("Ca_LVAst") < loaded.index("CaDynamics_E2")


def config_error(tmp_path, raw):
    with pytest.raises(ConfigError) as e:
        brainsim.load_config(write(tmp_path, raw))
    return e.value


def test_unknown_names_list_the_loaded_mechanisms(tmp_path):
    hh_folder(tmp_path / "mods")
    err = config_error(tmp_path, one_cell("hhmodx", "staggered"))
    assert err.path == "cells[0].regions.all.mechanisms.hhmodx" and err.value == "hhmodx"
    assert "'hhmod'" in err.allowed and "'hh'" in err.allowed
    assert "loaded from mechanisms.paths: ['hhmod']" in str(err)
    raw = one_cell("hhmod", "staggered")
    raw["cells"][0]["regions"]["all"]["mechanisms"]["hhmod"]["gbar"] = 0.1
    err = config_error(tmp_path, raw)
    assert err.path == "cells[0].regions.all.mechanisms.hhmod.gbar"
    assert "parameters of 'hhmod': ['gnabar', 'gkbar', 'gl', 'el', 'ena', 'ek']" in str(err)
    (tmp_path / "mods" / "leak.mod").write_text(LEAK_POINT)
    raw = one_cell("hhmod", "staggered")
    raw["synapses"] = [{"name": "s", "cell": "c", "mechanism": "leak"}]
    err = config_error(tmp_path, raw)  # a synapse receives events: a POINT_PROCESS without NET_RECEIVE not
    assert err.path == "synapses[0].mechanism" and err.allowed == "one of ['exp2syn', 'expsyn']"
    assert "loaded from mechanisms.paths: ['hhmod', 'leak']" in str(err)


def test_a_name_given_twice_names_both_files(tmp_path):
    hh_folder(tmp_path / "mods", "hh")
    err = config_error(tmp_path, one_cell("hh", "staggered"))
    assert err.path == "mechanisms.paths[0]"
    assert f"{tmp_path / 'mods' / 'hh.mod'} names its mechanism 'hh'" in str(err)
    assert "as does the built-in mechanism brainsim/mechanisms/hh.mod" in str(err)
    hh_folder(tmp_path / "a", "hhmod")
    hh_folder(tmp_path / "b", "hhmod", name="other")
    err = config_error(tmp_path, one_cell("hhmod", "staggered", paths=["a", "b"]))
    assert err.path == "mechanisms.paths[1]"
    assert str(tmp_path / "b" / "other.mod") in str(err) and str(tmp_path / "a" / "hhmod.mod") in str(err)
    err = config_error(tmp_path, one_cell("hhmod", "staggered", paths=["a", "a/hhmod.mod"]))
    assert err.path == "mechanisms.paths[1]" and "mechanisms.paths[0]" in str(err)


def test_a_broken_or_missing_mod_is_named_by_file_and_line(tmp_path):
    mods = hh_folder(tmp_path / "mods")
    broken = mods / "broken.mod"
    broken.write_text("NEURON {\n    SUFFIX broken\n}\nSTATE { x }\nVERBATIM\nreturn 0;\nENDVERBATIM\n")
    err = config_error(tmp_path, one_cell("hhmod", "staggered"))
    assert err.path == "mechanisms.paths[0]" and err.value == str(broken)
    assert f"{broken}:5: VERBATIM is not supported" in str(err)
    broken.unlink()
    for paths, detail in (
        (["nowhere"], "does not exist"),
        (["mods/hhmod.txt"], "does not exist"),
        ([str(tmp_path / "cache")], "holds no .mod file"),
    ):
        (tmp_path / "cache").mkdir(exist_ok=True)
        err = config_error(tmp_path, one_cell("hhmod", "staggered", paths=paths))
        assert err.path == "mechanisms.paths[0]" and detail in str(err), str(err)
    err = config_error(tmp_path, {**one_cell("hhmod", "staggered"), "mechanisms": {"paths": "mods"}})
    assert err.path == "mechanisms.paths"


def with_hh(raw, mechanism):
    """The small brain with each cell type's soma channels replaced by `mechanism` at HH's values (the
    pyramidal cell's weaker, so that the brain is not all firing)."""
    raw = copy.deepcopy(raw)
    types = raw["brain"]["cell_types"]
    types["pyr"]["regions"]["soma"]["mechanisms"] = {mechanism: {**HH, "gkbar": 0.05}}
    types["fs"]["regions"]["all"]["mechanisms"] = {"pas": {"g": 1.0e-4, "e": -70.0}, mechanism: dict(HH)}
    return raw


def test_drugs_and_patient_factors_take_loaded_mechanisms(tmp_path):
    hh_folder(tmp_path / "mods")
    base = read_yaml(SMALL_BRAIN)
    base["brain"]["connectome"]["file"] = str(ROOT / "configs/connectomes/synthetic_68.zip")
    base["simulation"].update(tstop=40.0, celsius=6.3)  # HH's own temperature
    runs = {}
    for mechanism in ("hh", "hhmod"):
        raw = with_hh(base, mechanism)
        raw["mechanisms"] = {"paths": ["mods"]}
        raw["patient"] = {"id": "p", "factors": {"lh-precentral": {"pyr": {f"{mechanism}.gnabar": 1.3}}}}
        raw["interventions"] = [
            {"kind": "drug", "mechanism": mechanism, "parameter": "gkbar", "factor": 0.5, "onset": 10.0,
             "ramp": 5.0, "cell_types": ["fs"]},
        ]  # fmt: skip
        sim = brainsim.Simulation(brainsim.Recipe(brainsim.load_config(write(tmp_path, raw))))
        sim.record()
        sim.run()
        runs[mechanism] = sim.spikes()
    assert runs["hh"].gid.size > 20
    np.testing.assert_array_equal(runs["hhmod"].gid.values, runs["hh"].gid.values)
    np.testing.assert_allclose(runs["hhmod"].time.values, runs["hh"].time.values, rtol=0, atol=1e-8)
    raw = with_hh(base, "hhmod")
    raw["mechanisms"] = {"paths": ["mods"]}
    raw["patient"] = {"id": "p", "factors": {"all": {"all": {"hhmod.gbar": 1.3}}}}
    err = config_error(tmp_path, raw)
    assert err.path == "patient.factors.all.all.hhmod.gbar" and "'hhmod.gnabar'" in err.allowed
    del raw["patient"]
    raw["interventions"] = [{"kind": "drug", "mechanism": "hhmod", "parameter": "gbar", "factor": 0.5}]
    err = config_error(tmp_path, raw)
    assert err.path == "interventions[0].parameter" and "'gkbar'" in err.allowed
    raw["interventions"] = [{"kind": "drug", "mechanism": "hhmodx", "factor": 0.5}]
    err = config_error(tmp_path, raw)
    assert err.path == "interventions[0].mechanism" and "'hhmod'" in err.allowed


def l5pc_with_mods(raw):
    """The shipped L5PC cell with the L5PC .mod files' mechanisms in place of the built-ins, every
    parameter (given, else the built-in's default) under the .mod file's name for it."""
    raw = copy.deepcopy(raw)
    raw["mechanisms"] = {"paths": [str(MODS)]}
    raw["cells"][0]["morphology"]["file"] = str(ROOT / "configs" / raw["cells"][0]["morphology"]["file"])
    mods = from_section(raw["mechanisms"], ROOT)
    for region in raw["cells"][0]["regions"].values():
        placed = region.get("mechanisms", {})
        for name in [n for n in placed if n in COUNTERPART]:
            target = COUNTERPART[name]
            values = {p: d for p, d, _ in CATALOGUE[name].PARAMS} | placed.pop(name)
            names = mods.param_names(target)
            placed[target] = {
                next(n for n in names if n.startswith("g") and n.endswith("bar"))
                if p == "gbar" else next(n for n in names if n.lower() == p.lower()): v
                for p, v in values.items()
            }  # fmt: skip
    for probe in raw["probes"]:
        probe["variable"] = probe["variable"].replace("cadyn.", "CaDynamics_E2.")
    return raw


def l5pc_short(calcium=True):
    """configs/l5pc.yaml for 50 ms, firing within them; without its calcium shell (cadyn) on request."""
    raw = read_yaml(ROOT / "configs/l5pc.yaml")
    raw["simulation"].update(tstop=50.0)
    raw["stimuli"][0]["delay"] = 10.0
    if not calcium:
        for region in raw["cells"][0]["regions"].values():
            region.get("mechanisms", {}).pop("cadyn", None)
        raw["probes"] = [p for p in raw["probes"] if "cai" not in p["variable"]]
    return raw


@need_l5pc
def test_l5pc_mods_in_place_of_the_built_ins_give_the_same_cell():
    """Without the calcium shell, where the .mod files' eca is their parameter and the built-ins' too."""
    raw = l5pc_short(calcium=False)
    mods = l5pc_with_mods(raw)
    assert "gNaTa_tbar" in mods["cells"][0]["regions"]["soma"]["mechanisms"]["NaTa_t"]
    names = ("soma_v", "apical_v")
    want = traces(resolve_config(raw, source=ROOT / "configs/l5pc.yaml"), names)
    got = traces(resolve_config(mods, source=ROOT / "configs/l5pc.yaml"), names)
    for name in names:
        assert got[name].shape == want[name].shape == (501, 1)
        scale = np.abs(want[name]).max()
        assert np.abs(got[name] - want[name]).max() <= 1e-9 * scale, name
    assert np.count_nonzero(np.diff(np.sign(want["soma_v"][:, 0])) > 0) >= 3  # it fires


@need_l5pc
def test_eca_follows_cai_where_the_mods_write_it_and_cai_starts_at_neurons_cai0():
    """NEURON's rules with CaDynamics_E2: eca is the Nernst potential of the node's cai at every
    evaluation (cao 2 mM, the config's celsius), the Ca channels' own eca elsewhere, and cai starts at
    cai0 = 5e-5 mM (CaDynamics_E2 has no INITIAL block)."""
    config = resolve_config(l5pc_with_mods(l5pc_short()), source=ROOT / "configs/l5pc.yaml")
    sim = brainsim.Simulation(brainsim.Recipe(config))
    group = sim.group
    u = group.initial_state()
    shell = group.block("CaDynamics_E2")
    cai = u[shell.offset : shell.offset + shell.size]
    np.testing.assert_array_equal(cai, CAI_REST)
    u[shell.offset : shell.offset + shell.size] = np.geomspace(1e-5, 1e-2, shell.n)
    group.currents(u, 0.0)
    celsius = config["simulation"]["celsius"]
    nernst = 1e3 * GAS * (celsius + 273.15) / (2 * FARADAY) * np.log(CAO / u[group.nernst_index])
    np.testing.assert_allclose(group.ion[ECA, shell.node], nernst, rtol=1e-13)
    np.testing.assert_allclose(nernst_eca_np(u, group.nernst_index, celsius), nernst, rtol=1e-13)
    hva = group.block("Ca_HVA")
    elsewhere = np.setdiff1d(hva.node, shell.node)
    eca = hva.params[[n for n, _, _ in hva.module.PARAMS].index("eca")]
    np.testing.assert_array_equal(group.ion[ECA, elsewhere], eca[np.isin(hva.node, elsewhere)])
    v, (m, h) = u[: group.n_nodes], u[hva.offset : hva.offset + hva.size].reshape(2, -1)
    i_hva = hva.module.current_np(v, hva.node, hva.params, np.array([m, h]), group.ion)[0]
    gbar = hva.params[0]
    np.testing.assert_allclose(i_hva, gbar * m * m * h * (v[hva.node] - group.ion[ECA, hva.node]), rtol=1e-12)


def synapse_cell(mechanism, method):
    """An HH compartment with a synapse `mechanism` (at exp2syn's values) receiving four events."""
    raw = one_cell("hh", method, paths=("mods",))
    raw["stimuli"] = [{"kind": "spikes", "cell": "c", "synapse": "s", "times": [2.0, 3.0, 9.5, 14.0],
                       "weight": 0.004}]  # fmt: skip
    raw["synapses"] = [{"name": "s", "cell": "c", "mechanism": mechanism,
                        "params": {"tau1": 0.4, "tau2": 3.0, "e": 0.0}}]  # fmt: skip
    raw["probes"].append({"name": "g", "variable": "s.B", "cell": "c", "location": "soma(0.5)"})
    return raw


@pytest.mark.parametrize("method", ["staggered", "petsc"])
def test_a_net_receive_synapse_runs_as_the_built_in_exp2syn(tmp_path, method):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "e2mod.mod").write_text(EXP2SYN_MOD)
    loaded = brainsim.load_config(write(tmp_path, synapse_cell("e2mod", method)))
    got = traces(loaded, ("v", "g"))
    want = traces(brainsim.load_config(write(tmp_path, synapse_cell("exp2syn", method))), ("v", "g"))
    assert want["v"].max() > 20.0  # the events make it fire
    for name in ("v", "g"):
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-10 * np.abs(want[name]).max())
