"""The run-config reference page, rendered from the schema (the single place options are declared).

Regenerate the committed page with

    python -m brainsim.config.doc > docs/config.md

(tests/unit/test_config_doc.py fails when docs/config.md differs from what this renders).
"""

import json
import sys

from .options import REQUIRED, describe
from .schema import CONFIG

HEADER = """\
# Run config reference

<!-- Generated from brainsim/config/schema.py by `python -m brainsim.config.doc > docs/config.md`.
     Do not edit by hand: tests/unit/test_config_doc.py checks that this file is up to date. -->

Every key of a run config (YAML), with its default, unit and meaning. A config is validated before
anything runs; an invalid value stops the run with an error naming the key path, the bad value and what
is allowed.

Notation of the key paths:

- `a.b`: key `b` of the mapping `a`;
- `a[]`: every item of the list `a`;
- `a.<names>`: every value of the mapping `a`, whose keys are free names (e.g. region names);
- `a(kind=x).b`: key `b` of `a` when `a.kind` is `x`.

Defaults: **required** means the key must be given; *unset* means it may be left out (its meaning is then
given in the description).

| key | default | unit | description |
| --- | --- | --- | --- |
"""


def format_default(value):
    """A default as it would be written in YAML."""
    if value is REQUIRED or value == "required":
        return "**required**"
    if value is None:
        return "*unset*"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value, ensure_ascii=False)}`"
    return f"`{value}`"


def _escape(text):
    """Make free text safe in a markdown table cell ('|' splits cells, '<' starts HTML)."""
    parts = str(text).replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def reference_rows(schema=CONFIG):
    """(key path, default, unit, description) for every option of schema, in declaration order."""
    return describe(schema)


def reference_markdown(schema=CONFIG):
    """The whole config reference as a markdown page (one table row per key)."""
    lines = [
        f"| `{path}` | {format_default(default)} | {_escape(unit)} | {_escape(doc)} |"
        for path, default, unit, doc in reference_rows(schema)
    ]
    return HEADER + "\n".join(lines) + "\n"


def main():
    """Write the page to stdout as UTF-8 (whatever the locale), byte for byte what the test compares."""
    text = reference_markdown()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write(text.encode("utf-8"))
        out.flush()


if __name__ == "__main__":
    main()
