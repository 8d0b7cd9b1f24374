"""Bounded work and memory for any YAML input: the one loader every YAML file and `--set` value goes
through refuses alias bombs, deep nesting, recursive documents and huge integers at file:line:column;
error messages show a bounded value; integer options stay within 64 bits and accept whole floats."""

from pathlib import Path

import pytest
import yaml

import brainsim
from brainsim.cli import _alert_rules
from brainsim.config import load_config, resolve_config
from brainsim.config.load import MAX_YAML_DEPTH, MAX_YAML_NODES, parse_yaml
from brainsim.errors import TEXT_LIMIT, VALUE_LIMIT, ConfigError, short_repr
from brainsim.hpc.profiles import load_profile
from brainsim.hpc.sweep import load_campaign

ROOT = Path(__file__).resolve().parents[2]
M2_YAML = ROOT / "configs" / "bench" / "m2_ring.yaml"
SMALL_BRAIN = ROOT / "tests" / "data" / "small_brain.yaml"
MESSAGE_LIMIT = 2 * VALUE_LIMIT + 2 * TEXT_LIMIT + 300
"""The most a message can take: key path and value (VALUE_LIMIT each), what is allowed and the detail
(TEXT_LIMIT each), the file and the words around them."""


def bomb(levels, key="name"):
    """A "billion laughs" mapping {key: ...} of 9**levels strings in a few hundred bytes of YAML."""
    parts = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    parts += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"{key}: [{', '.join(parts)}]\n"


def refused(text, source="doc.yaml"):
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, source)
    return info.value


# --- the loader --------------------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_at_the_alias_that_passes_the_bound():
    text = bomb(9)  # 9**9 = 387,420,489 strings
    assert len(text) < 600
    err = refused(text)
    assert err.path == f"doc.yaml:1:{text.index('&a6') + 1}"  # &ai holds about 10 * 9**i nodes
    assert f"its aliases expanded: more than {MAX_YAML_NODES:,}" in err.detail
    assert len(str(err)) < MESSAGE_LIMIT


def test_a_bad_value_below_the_bound_prints_shortened():
    """An expanded alias value the loader allows (about 600,000 nodes) is shown in a few hundred
    characters: the message no longer grows with the value."""
    err = pytest.raises(ConfigError, load_config, _write_config(bomb(6))).value
    assert err.path == "name" and isinstance(err.value, list)
    text = str(err)
    assert "(shortened)" in text and len(text) < MESSAGE_LIMIT


@pytest.mark.parametrize(
    "text, at, reported",
    [
        pytest.param("name: " + "[" * 20_000 + "]" * 20_000 + "\n", "1:106", "nesting deeper", id="literal"),
        pytest.param(
            "chain: [&c0 [x]" + "".join(f", &c{i} [*c{i - 1}]" for i in range(1, 2 * MAX_YAML_DEPTH)) + "]\n",
            None,
            "deeper than 100 levels (through aliases)",
            id="through-aliases",
        ),
        pytest.param("name: &a [1, *a]\n", "1:7", "recursive document", id="recursive"),
        pytest.param("simulation: {seed: " + "9" * 5000 + "}\n", "1:20", "5000 digits", id="huge-int"),
        pytest.param("simulation: {tstop: 2020-13-45}\n", "1:21", "month must be in 1..12", id="bad-date"),
    ],
)
def test_oversized_or_unrepresentable_yaml_is_refused_where_it_is(text, at, reported):
    err = refused(text)
    assert err.path.startswith("doc.yaml:1:") and (at is None or err.path == f"doc.yaml:{at}")
    assert reported in err.detail and err.allowed == "valid YAML"
    assert len(str(err)) < MESSAGE_LIMIT


def test_malformed_yaml_says_what_yaml_reported_with_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsimulation: {tstop: 5\ncells: []\n")
    err = pytest.raises(ConfigError, load_config, path).value
    assert err.path == f"{path}:3:6" and err.value == "cells: []"
    assert "got None" not in str(err)
    assert "expected ',' or '}', but got ':'" in err.detail
    assert "flow mapping started at line 2, column 13" in err.detail


def test_set_values_go_through_the_same_loader():
    err = pytest.raises(ConfigError, load_config, M2_YAML, ["simulation.seed=" + "9" * 5000]).value
    assert err.path == "simulation.seed" and "5000 digits" in err.detail
    assert len(str(err)) < MESSAGE_LIMIT
    err = pytest.raises(ConfigError, load_config, M2_YAML, ["simulation.seed=" + "[" * 500 + "]" * 500]).value
    assert err.path == "simulation.seed" and "nesting deeper" in err.detail


@pytest.mark.parametrize("what", ["patient", "intervention", "campaign", "profile", "alerts"])
def test_every_yaml_file_goes_through_the_bounded_loader(tmp_path, what):
    path = tmp_path / f"{what}.yaml"
    path.write_text(bomb(9, key="id"))
    read = {
        "patient": lambda: load_config(SMALL_BRAIN, patient=path),
        "intervention": lambda: load_config(SMALL_BRAIN, interventions=[path]),
        "campaign": lambda: load_campaign(path),
        "profile": lambda: load_profile(str(path)),
        "alerts": lambda: _alert_rules([str(path)]),
    }[what]
    err = pytest.raises(ConfigError, read).value
    assert err.path.startswith(f"{path.resolve() if what == 'campaign' else path}:1:")
    assert "aliases expanded" in err.detail and len(str(err)) < MESSAGE_LIMIT


def test_yaml_that_is_merely_large_is_read():
    items = ", ".join(str(i) for i in range(50_000))
    assert len(parse_yaml(f"times: [{items}]\n", "doc.yaml")["times"]) == 50_000
    shared = "a: &x [1, 2, 3]\nb: [*x, *x, *x]\n"
    assert parse_yaml(shared, "doc.yaml")["b"] == [[1, 2, 3]] * 3


# --- bounded messages --------------------------------------------------------------------------------


def test_short_repr_is_the_repr_of_small_values_and_bounded_otherwise():
    assert short_repr([1, "a", {"b": 2.5}]) == repr([1, "a", {"b": 2.5}])
    big = 10**6000  # past Python's int-to-str limit: repr() itself would raise
    assert "6001 digits" in short_repr(big) and "(shortened)" in short_repr(big)
    loop = []
    loop.append(loop)
    for value in (loop, "x" * 10**6, list(range(10**6)), {i: [i] * 100 for i in range(1000)}):
        text = short_repr(value)
        assert text.endswith("(shortened)") and len(text) <= VALUE_LIMIT + len(" (shortened)")


def test_a_long_unknown_key_is_cut_in_the_message():
    err = pytest.raises(ConfigError, load_config, _write_config("? " + "k" * 100_000 + "\n: 1\n")).value
    assert len(str(err)) < MESSAGE_LIMIT and "more characters" in str(err)


# --- integer options ---------------------------------------------------------------------------------


@pytest.mark.parametrize("given, count", [("1e3", 1000), ("1000.0", 1000), ("2e0", 2), ("7", 7)])
def test_a_whole_float_is_an_integer(given, count):
    config = load_config(M2_YAML, [f"cells.ring.count={given}"])
    assert config["cells"][0]["count"] == count and isinstance(config["cells"][0]["count"], int)


@pytest.mark.parametrize(
    "item, path, allowed",
    [
        ("cells.ring.count=2.5", "cells[0].count", "an integer >= 1"),
        ("cells.ring.count=1e300", "cells[0].count", "within 64 bits"),
        ("simulation.seed=" + "9" * 30, "simulation.seed", "within 64 bits"),
        ("simulation.seed=9223372036854775808", "simulation.seed", "within 64 bits"),
        ("cells.ring.morphology.depth=17", "cells[0].morphology.depth", "an integer >= 1 and <= 16"),
    ],
)
def test_integers_outside_their_range_are_refused_naming_the_key(item, path, allowed):
    err = pytest.raises(ConfigError, load_config, M2_YAML, [item]).value
    assert err.path == path and allowed in err.allowed


def test_a_number_option_refuses_an_integer_beyond_a_float():
    """From Python (no YAML digit bound): 10**400 is refused as not finite, not an OverflowError."""
    raw = parse_yaml(M2_YAML.read_text(), M2_YAML)
    raw["simulation"]["tstop"] = 10**400
    err = pytest.raises(ConfigError, resolve_config, raw).value
    assert err.path == "simulation.tstop" and "a finite number" in err.allowed and "(shortened)" in str(err)


def test_the_largest_64_bit_seed_is_accepted():
    assert load_config(M2_YAML, [f"simulation.seed={2**63 - 1}"])["simulation"]["seed"] == 2**63 - 1


# --- a key path of item 13 ---------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["source", "target"])
def test_an_unknown_tract_end_names_its_key(tmp_path, end):
    ends = {"source": "lh-precentral", "target": "lh-precentral", end: "lh-nowhere"}
    lesion = tmp_path / "lesion.yaml"
    lesion.write_text(yaml.safe_dump({"kind": "lesion", "at": 5, "tracts": [{**ends, "scale": 0}]}))
    err = pytest.raises(ConfigError, brainsim.load_config, SMALL_BRAIN, interventions=[lesion]).value
    assert err.path == f"interventions[0].tracts[0].{end}" and err.value == "lh-nowhere"
    assert err.file == str(lesion.resolve()) and "lh-precentral" in err.allowed


def _write_config(text):
    """A config file of text in a fresh temporary folder."""
    import tempfile

    path = Path(tempfile.mkdtemp()) / "config.yaml"
    path.write_text(text)
    return path
