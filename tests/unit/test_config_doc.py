"""docs/config.md is rendered from the schema (brainsim.config.doc) and must not go stale."""

import subprocess
import sys
from pathlib import Path

import pytest

from brainsim.config.doc import _escape, format_default, reference_markdown
from brainsim.config.options import REQUIRED, ListOf, MapOf, Section, Tagged, describe
from brainsim.config.schema import CONFIG

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "config.md"
REGENERATE = "python -m brainsim.config.doc > docs/config.md"


def table_rows(text):
    """The data rows of the page's table, split into cells (the header and rule rows left out)."""
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def walk(schema, path=""):
    """Every (path, schema) of the tree, containers included, with describe's path notation."""
    yield path, schema
    if isinstance(schema, Section):
        for key, sub in schema.fields.items():
            yield from walk(sub, f"{path}.{key}" if path else key)
    elif isinstance(schema, Tagged):
        for kind, sub in schema.variants.items():
            yield from walk(sub, f"{path}(kind={kind})")
    elif isinstance(schema, ListOf):
        yield from walk(schema.item, f"{path}[]")
    elif isinstance(schema, MapOf):
        yield from walk(schema.value, f"{path}.<{schema.keys}>")


def test_committed_page_is_up_to_date():
    assert DOC.exists(), f"docs/config.md is missing: run `{REGENERATE}`"
    assert DOC.read_text(encoding="utf-8") == reference_markdown(), (
        f"docs/config.md is stale: run `{REGENERATE}` and commit it"
    )


def test_module_main_prints_the_page():
    out = subprocess.run(
        [sys.executable, "-m", "brainsim.config.doc"], capture_output=True, cwd=ROOT, timeout=600, check=True
    )
    assert out.stdout.decode("utf-8") == reference_markdown()
    assert out.stderr == b""


def test_every_schema_key_has_one_row_in_order():
    rows = table_rows(reference_markdown())
    assert [r[0] for r in rows] == [f"`{path}`" for path, *_ in describe(CONFIG)]
    assert all(len(r) == 4 for r in rows), "every row has key, default, unit, description"


@pytest.mark.parametrize(
    "key",
    [
        "name",
        "simulation.tstop",
        "simulation.dt",
        "simulation.method",
        "cells[].count",
        "cells[].morphology(kind=swc).file",
        "cells[].regions.<regions>.Ra",
        "cells[].spike_detector.threshold",
        "synapses[].mechanism",
        "connections[].rule(kind=fixed_indegree).indegree",
        "stimuli[](kind=poisson).rate",
        "probes[].sampling",
        "output.path",
    ],
)
def test_known_keys_appear(key):
    assert f"| `{key}` |" in reference_markdown()


def test_row_contents():
    rows = {r[0].strip("`"): r[1:] for r in table_rows(reference_markdown())}
    assert rows["simulation.tstop"] == ["**required**", "ms", "time to simulate"]
    assert rows["simulation.dt"][:2] == ["`0.025`", "ms"]
    assert rows["simulation.method"][0] == "`petsc`"
    assert rows["output.overwrite"][0] == "`false`"
    assert rows["output.path"][0] == "*unset*"
    assert rows["probes[].cells"][0] == "`[0]`"
    assert rows["simulation.celsius"][1] == "°C"
    # table syntax survives the text of the docs: '|' is escaped, '<' is not taken for HTML
    assert "any \\|V\\| exceeds" in rows["simulation.voltage_limit"][2]
    assert "out/&lt;name&gt;.zarr" in rows["output.path"][2]


@pytest.mark.parametrize(
    "value, text",
    [
        (REQUIRED, "**required**"),
        (None, "*unset*"),
        (True, "`true`"),
        (False, "`false`"),
        (0.025, "`0.025`"),
        ("soma(0.5)", "`soma(0.5)`"),
        ([2.0, 1.5], "`[2.0, 1.5]`"),
        ({}, "`{}`"),
    ],
)
def test_format_default(value, text):
    assert format_default(value) == text


def test_every_leaf_default_is_rendered():
    rows = {r[0].strip("`"): r[1] for r in table_rows(reference_markdown())}
    for path, default, _unit, _doc in describe(CONFIG):
        assert rows[path] == format_default(default), path


def test_list_and_map_defaults_are_the_containers():
    rows = {path: (default, doc) for path, default, _unit, doc in describe(CONFIG)}
    petsc = [d for p, (d, _) in rows.items() if p.startswith("simulation.petsc")]
    params = [d for p, (d, _) in rows.items() if p.startswith("synapses[].params")]
    diameters = [v for p, v in rows.items() if p.startswith("cells[].morphology(kind=binary_tree).diameters")]
    assert petsc and all(d != "required" for d in petsc)
    assert params and all(d != "required" for d in params)
    assert diameters and any(
        d == [2.0, 1.5, 1.0, 0.75] and doc == "µm per level; the last repeats" for d, doc in diameters
    )


def test_every_declared_doc_reaches_the_page():
    page = reference_markdown()
    missing = [
        (path, schema.doc)
        for path, schema in walk(CONFIG)
        if getattr(schema, "doc", "") and _escape(schema.doc) not in page
    ]
    assert missing == []


def test_every_kind_is_documented():
    page = reference_markdown()
    kinds = [
        (path, kind)
        for path, schema in walk(CONFIG)
        if isinstance(schema, Tagged)
        for kind in schema.variants
    ]
    assert [(p, k) for p, k in kinds if f"{p}(kind={k})" not in page] == []


def test_walk_matches_describe_paths():
    """The helper above uses describe's notation: describe has one row for every option walk() reaches."""
    assert [p for p, *_ in describe(CONFIG)] == [p for p, _ in walk(CONFIG) if p]
