"""A small declarative schema: each option is declared once, with its default, unit, doc and check.

`Section.resolve(raw, path)` validates a raw (YAML-loaded) value and returns it with defaults filled
in; every error is a ConfigError naming the key path, the bad value and what is allowed.
"""

import copy
import sys
from dataclasses import dataclass, replace

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
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not abs(value) <= sys.float_info.max
        ):
            raise ConfigError(path, value, self.allowed())  # NaN, inf and integers beyond a float too
        if (
            (self.gt is not None and not value > self.gt)
            or (self.ge is not None and not value >= self.ge)
            or (self.lt is not None and not value < self.lt)
            or (self.le is not None and not value <= self.le)
        ):
            raise ConfigError(path, value, self.allowed())
        return float(value)


INT64 = (-(2**63), 2**63 - 1)
"""The range of every integer option (a declared range is narrower)."""


@dataclass(frozen=True)
class Int:
    """An integer, optionally bounded (ge/le), always within 64 bits; a float that is a whole number (1e3)
    is that integer."""

    default: object = REQUIRED
    doc: str = ""
    ge: int | None = None
    le: int | None = None

    def allowed(self):
        bounds = [
            f">= {self.ge}" if self.ge is not None else "",
            f"<= {self.le}" if self.le is not None else "",
        ]
        bounds = " and ".join(b for b in bounds if b)
        return f"an integer{' ' + bounds if bounds else ''}"

    def resolve(self, value, path):
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            raise ConfigError(path, value, self.allowed())
        low = INT64[0] if self.ge is None else self.ge
        high = INT64[1] if self.le is None else self.le
        if not low <= value <= high:
            wide = not INT64[0] <= value <= INT64[1]
            raise ConfigError(
                path, value, self.allowed() + (", within 64 bits (below 2**63)" if wide else "")
            )
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

    def allowed(self):
        return "true or false"

    def resolve(self, value, path):
        if not isinstance(value, bool):
            raise ConfigError(path, value, self.allowed())
        return value


@dataclass(frozen=True)
class ListOf:
    """A list whose items all follow one schema."""

    item: object
    default: object = REQUIRED
    doc: str = ""
    min_len: int = 0
    max_len: int | None = None

    def allowed(self):
        if self.max_len is not None and self.max_len == self.min_len:
            size = f" of exactly {self.min_len} item(s)"
        else:
            size = (f" of at least {self.min_len} item(s)" if self.min_len else "") + (
                f" of at most {self.max_len} item(s)" if self.max_len is not None else ""
            )
        return f"a list{size}, each {_describe(self.item)}"

    def resolve(self, value, path):
        if (
            not isinstance(value, list)
            or len(value) < self.min_len
            or (self.max_len is not None and len(value) > self.max_len)
        ):
            raise ConfigError(path, value, self.allowed())
        return [self.item.resolve(v, f"{path}[{i}]") for i, v in enumerate(value)]


@dataclass(frozen=True)
class MapOf:
    """A mapping with free keys (strings) whose values all follow one schema."""

    value: object
    default: object = REQUIRED
    doc: str = ""
    keys: str = "names"

    def allowed(self):
        return f"a mapping of {self.keys}"

    def resolve(self, value, path):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(path, value, self.allowed())
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

    def allowed(self):
        return self.allowed_text or " or ".join(_describe(o) for o in self.options)

    def resolve(self, value, path):
        for option in self.options:
            try:
                return option.resolve(value, path)
            except ConfigError:
                continue
        raise ConfigError(path, value, self.allowed())


@dataclass(frozen=True)
class Section:
    """A mapping with a fixed set of keys, each with its own schema."""

    fields: dict
    default: object = REQUIRED
    doc: str = ""
    check: object = None
    """Optional cross-field check: check(resolved, path) raises ConfigError."""

    def allowed(self):
        return f"a mapping with keys {sorted(self.fields)}"

    def resolve(self, value, path):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(path or "<top level>", value, self.allowed())
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

    def allowed(self):
        return f"a mapping with '{self.tag}' one of {sorted(self.variants)}"

    def resolve(self, value, path):
        if not isinstance(value, dict):
            raise ConfigError(path, value, self.allowed())
        kind = value.get(self.tag)
        if kind not in self.variants:
            raise ConfigError(_join(path, self.tag), kind, f"one of {sorted(self.variants)}")
        body = {k: v for k, v in value.items() if k != self.tag}
        return {self.tag: kind, **self.variants[kind].resolve(body, path)}


def _describe(schema):
    return schema.allowed()


def _copy_default(default):
    return copy.deepcopy(default) if isinstance(default, (dict, list)) else default


def describe(schema, path="", out=None):
    """Flat list of (key path, default, unit, doc) for every declared option, containers included, and
    one row per kind of a Tagged option (for the generated config reference)."""
    out = [] if out is None else out
    default = getattr(schema, "default", REQUIRED)
    row = (path, "required" if default is REQUIRED else default, getattr(schema, "unit", ""), schema.doc)
    if isinstance(schema, Section):
        if path:
            out.append(row)
        for key, sub in schema.fields.items():
            describe(sub, _join(path, key), out)
    elif isinstance(schema, Tagged):
        out.append(row)
        for kind, sub in schema.variants.items():
            variant = replace(sub, default=None, doc=sub.doc or f"one of the kinds of this option: {kind}")
            describe(variant, f"{path}(kind={kind})", out)
    elif isinstance(schema, (ListOf, MapOf)):
        out.append(row)
        first = len(out)
        item = schema.item if isinstance(schema, ListOf) else schema.value
        describe(item, f"{path}[]" if isinstance(schema, ListOf) else f"{path}.<{schema.keys}>", out)
        if out[first][1] == "required":  # an item has no default of its own: the container has one
            out[first] = (out[first][0], None, *out[first][2:])
    else:
        out.append(row)
    return out
