"""A small declarative schema: each option is declared once, with its default, unit, doc and check.

`Section.resolve(raw, path)` validates a raw (YAML-loaded) value and returns it with defaults filled
in; every error is a ConfigError naming the key path, the bad value and what is allowed.
"""

import copy
import math
from dataclasses import dataclass, field

from ..errors import ConfigError

REQUIRED = object()
"""Default of an option that has none: leaving it out is an error."""


def _join(path, key):
    return f"{path}.{key}" if path else str(key)


@dataclass(frozen=True)
class Num:
    """A real number, optionally bounded (gt/ge/lt/le)."""

    default: object = REQUIRED
    unit: str = ""
    doc: str = ""
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def allowed(self):
        bounds = [
            f"> {self.gt}" if self.gt is not None else "",
            f">= {self.ge}" if self.ge is not None else "",
            f"< {self.lt}" if self.lt is not None else "",
            f"<= {self.le}" if self.le is not None else "",
        ]
        bounds = " and ".join(b for b in bounds if b)
        unit = f" {self.unit}" if self.unit else ""
        return f"a finite number{' ' + bounds if bounds else ''}{unit}"

    def resolve(self, value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(path, value, self.allowed())
        if (
            (self.gt is not None and not value > self.gt)
            or (self.ge is not None and not value >= self.ge)
            or (self.lt is not None and not value < self.lt)
            or (self.le is not None and not value <= self.le)
        ):
            raise ConfigError(path, value, self.allowed())
        return float(value)


@dataclass(frozen=True)
class Int:
    """An integer, optionally bounded below."""

    default: object = REQUIRED
    doc: str = ""
    ge: int | None = None

    def allowed(self):
        return "an integer" + (f" >= {self.ge}" if self.ge is not None else "")

    def resolve(self, value, path):
        if isinstance(value, bool) or not isinstance(value, int) or (self.ge is not None and value < self.ge):
            raise ConfigError(path, value, self.allowed())
        return int(value)


@dataclass(frozen=True)
class Str:
    """A string, optionally one of a fixed set of choices."""

    default: object = REQUIRED
    doc: str = ""
    choices: tuple = ()

    def allowed(self):
        return f"one of {list(self.choices)}" if self.choices else "a non-empty string"

    def resolve(self, value, path):
        if not isinstance(value, str) or not value or (self.choices and value not in self.choices):
            raise ConfigError(path, value, self.allowed())
        return value


@dataclass(frozen=True)
class Bool:
    default: object = REQUIRED
    doc: str = ""

    def resolve(self, value, path):
        if not isinstance(value, bool):
            raise ConfigError(path, value, "true or false")
        return value


@dataclass(frozen=True)
class ListOf:
    """A list whose items all follow one schema."""

    item: object
    default: object = REQUIRED
    doc: str = ""
    min_len: int = 0

    def resolve(self, value, path):
        if not isinstance(value, list) or len(value) < self.min_len:
            what = "a list" + (f" of at least {self.min_len} item(s)" if self.min_len else "")
            raise ConfigError(path, value, what)
        return [self.item.resolve(v, f"{path}[{i}]") for i, v in enumerate(value)]


@dataclass(frozen=True)
class MapOf:
    """A mapping with free keys (strings) whose values all follow one schema."""

    value: object
    default: object = REQUIRED
    doc: str = ""
    keys: str = "names"

    def resolve(self, value, path):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(path, value, f"a mapping of {self.keys}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise ConfigError(_join(path, k), k, f"{self.keys} as non-empty strings")
            out[k] = self.value.resolve(v, _join(path, k))
        return out


@dataclass(frozen=True)
class Either:
    """The first of several schemas that accepts the value (e.g. a number or a range)."""

    options: tuple
    default: object = REQUIRED
    doc: str = ""
    allowed_text: str = ""

    def resolve(self, value, path):
        for option in self.options:
            try:
                return option.resolve(value, path)
            except ConfigError:
                continue
        raise ConfigError(path, value, self.allowed_text)


@dataclass(frozen=True)
class Section:
    """A mapping with a fixed set of keys, each with its own schema."""

    fields: dict
    default: object = REQUIRED
    doc: str = ""
    check: object = None
    """Optional cross-field check: check(resolved, path) raises ConfigError."""

    def resolve(self, value, path):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(path or "<top level>", value, f"a mapping with keys {sorted(self.fields)}")
        unknown = sorted(set(value) - set(self.fields), key=str)
        if unknown:
            key = unknown[0]
            raise ConfigError(
                _join(path, key),
                value[key],
                f"keys of '{path or '<top level>'}': {sorted(self.fields)}",
                detail=f"unknown key '{key}'",
            )
        out = {}
        for key, schema in self.fields.items():
            if key in value:
                out[key] = schema.resolve(value[key], _join(path, key))
            elif schema.default is REQUIRED:
                raise ConfigError(_join(path, key), None, _describe(schema), detail="this key is required")
            elif schema.default is None:
                out[key] = None
            else:  # resolving the default fills in the defaults nested inside it
                out[key] = schema.resolve(_copy_default(schema.default), _join(path, key))
        if self.check is not None:
            self.check(out, path)
        return out


@dataclass(frozen=True)
class Tagged:
    """A mapping whose `kind` key selects one of several Sections (e.g. the kinds of stimulus)."""

    variants: dict
    tag: str = "kind"
    default: object = REQUIRED
    doc: str = ""
    variant_docs: dict = field(default_factory=dict)

    def resolve(self, value, path):
        if not isinstance(value, dict):
            raise ConfigError(path, value, f"a mapping with '{self.tag}' one of {sorted(self.variants)}")
        kind = value.get(self.tag)
        if kind not in self.variants:
            raise ConfigError(_join(path, self.tag), kind, f"one of {sorted(self.variants)}")
        body = {k: v for k, v in value.items() if k != self.tag}
        return {self.tag: kind, **self.variants[kind].resolve(body, path)}


def _describe(schema):
    if hasattr(schema, "allowed"):
        return schema.allowed()
    return type(schema).__name__.lower()


def _copy_default(default):
    return copy.deepcopy(default) if isinstance(default, (dict, list)) else default


def describe(schema, path="", out=None):
    """Flat list of (key path, default, unit, doc) for every declared option (for `brainsim config-doc`)."""
    out = [] if out is None else out
    if isinstance(schema, Section):
        for key, sub in schema.fields.items():
            describe(sub, _join(path, key), out)
    elif isinstance(schema, Tagged):
        for kind, sub in schema.variants.items():
            describe(sub, f"{path}(kind={kind})", out)
    elif isinstance(schema, ListOf):
        describe(schema.item, f"{path}[]", out)
    elif isinstance(schema, MapOf):
        describe(schema.value, f"{path}.<{schema.keys}>", out)
    else:
        default = getattr(schema, "default", REQUIRED)
        out.append(
            (
                path,
                "required" if default is REQUIRED else default,
                getattr(schema, "unit", ""),
                getattr(schema, "doc", ""),
            )
        )
    return out
