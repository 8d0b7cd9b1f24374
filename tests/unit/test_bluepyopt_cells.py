"""Cell entries that name a BluePyOpt model (`bluepyopt:`): configs/l5pc_bbp.yaml, the entry's own keys laid
over the model, a brain cell type, and the errors (brainsim.config.bluepyopt.expand_models)."""

import copy

import pytest
from support import L5PC, ROOT

from brainsim.config.load import load_config, read_yaml, resolve_config, without_nulls  # noqa: E402
from brainsim.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (L5PC / "config" / "parameters.json").is_file(),
    reason=f"the reference L5PC is absent ({L5PC}); set BRAINSIM_L5PC to its folder",
)
CONFIG = ROOT / "configs" / "l5pc_bbp.yaml"
FOLDER = f"cells.l5pc.bluepyopt.folder={L5PC}"


def test_the_bbp_config_is_step1_and_set_makes_step2():
    config = load_config(CONFIG, [FOLDER])
    cell = config["cells"][0]
    assert config["simulation"]["celsius"] == 34.0 and cell["v_init"] == -65.0  # the model's globals
    assert config["mechanisms"]["paths"] == [str((L5PC / "mechanisms").resolve())]
    assert set(cell["regions"]) == {"all", "somatic", "axonal", "basal", "apical"}
    assert "(-0.8696 + 2.087*exp(" in cell["regions"]["apical"]["mechanisms"]["Ih"]["gIhbar"]
    assert cell["morphology"]["replace_axon"] and cell["discretization"]["odd_per_length"] == 40.0
    steps = {s["name"]: (s["delay"], s["duration"], s["amplitude"]) for s in config["stimuli"]}
    assert steps == {"hold": (0.0, 3000.0, -0.126), "step": (700.0, 2000.0, 0.458)}
    step2 = load_config(CONFIG, [FOLDER, "stimuli.step.amplitude=0.562"])
    assert step2["stimuli"][1]["amplitude"] == 0.562


def test_the_entrys_keys_are_laid_over_the_model_and_expand_again_the_same():
    config = load_config(CONFIG, [FOLDER, "cells.l5pc.regions.somatic.mechanisms.NaTs2_t.gNaTs2_tbar=1.5",
                                  "simulation.celsius=30"])  # fmt: skip
    somatic = config["cells"][0]["regions"]["somatic"]["mechanisms"]
    assert somatic["NaTs2_t"]["gNaTs2_tbar"] == 1.5
    assert somatic["SK_E2"]["gSK_E2bar"] == load_config(CONFIG, [FOLDER])["cells"][0]["regions"]["somatic"][
        "mechanisms"]["SK_E2"]["gSK_E2bar"]  # fmt: skip
    assert config["simulation"]["celsius"] == 30.0  # the config's own value wins
    again = resolve_config(without_nulls(config.data), source=CONFIG)
    assert again.hash() == config.hash()


def test_a_brain_cell_type_can_be_the_model():
    raw = read_yaml(ROOT / "tests" / "data" / "small_brain.yaml")
    pyr = raw["brain"]["cell_types"]["pyr"]
    synapses = pyr["synapses"]
    raw["brain"]["cell_types"]["pyr"] = {
        "bluepyopt": {"folder": str(L5PC), "morphology": "morphology/C060114A7.asc"},
        "spike_detector": {"location": "somatic(0.5)", "threshold": -20.0},
        "synapses": {name: {**s, "location": "somatic(0.5)"} for name, s in synapses.items()},
    }
    config = resolve_config(raw, source=ROOT / "tests" / "data" / "small_brain.yaml")
    pyr = config["brain"]["cell_types"]["pyr"]
    assert set(pyr["regions"]) >= {"somatic", "apical"} and set(pyr["synapses"]) == set(synapses)
    assert config["simulation"]["celsius"] == 34.0


@pytest.mark.parametrize(
    "edit, path",
    [
        ({"folder": "no/such/folder"}, "cells[0].bluepyopt.folder"),
        ({"morphology": "morphology/absent.asc"}, "cells[0].bluepyopt.morphology"),
        ({"mods": "nothing_here"}, "cells[0].bluepyopt.mods"),
        ({"nseg_length": -1.0}, "cells[0].bluepyopt.nseg_length"),
        ({"colour": "red"}, "cells[0].bluepyopt.colour"),
    ],
)
def test_errors_name_the_key_path(edit, path):
    raw = read_yaml(CONFIG)
    raw["cells"][0]["bluepyopt"] = {**raw["cells"][0]["bluepyopt"], "folder": str(L5PC), **edit}
    with pytest.raises(ConfigError) as e:
        resolve_config(copy.deepcopy(raw), source=CONFIG)
    assert e.value.path == path, str(e.value)


def test_the_bap_config_records_the_apical_trunk():
    import brainsim

    config = brainsim.load_config(ROOT / "configs" / "l5pc_bbp_bap.yaml", [FOLDER])  # builds the cell type
    probes = {p["name"]: p["location"] for p in config["probes"]}
    apical = {"dend1": "apical(distance=660)", "dend2": "apical(distance=800)"}
    assert probes == {"soma": "somatic(0.5)", **apical}
    assert [(s["delay"], s["duration"], s["amplitude"]) for s in config["stimuli"]] == [(295.0, 5.0, 1.9)]
