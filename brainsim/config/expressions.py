"""Location expressions: a mechanism parameter that varies along the cell, e.g. `exp(-distance/50) * 0.01`.

A tokenizer and a recursive-descent parser turn the text into a tree of tuples, which `evaluate` computes
with NumPy for every compartment at once. Grammar, loosest binding first:

    comparison := sum [("<" | "<=" | ">" | ">=") sum]      1 where true, else 0; not chained
    sum        := product {("+" | "-") product}
    product    := unary {("*" | "/") unary}
    unary      := ("-" | "+") unary | power
    power      := atom [("^" | "**") unary]                 right-associative: 2^3^2 = 2^9; -2^2 = -4
    atom       := number | variable | function "(" comparison {"," comparison} ")" | "(" comparison ")"

Numbers are decimal (`3`, `0.5`, `.5`, `1e-5`, `2.5E+3`). Variables and functions are listed in VARIABLES
and FUNCTIONS; names are case-sensitive.
"""

import math
import re
from functools import lru_cache

import numpy as np

VARIABLES = {
    "distance": "path distance along the cell from the middle of the root branch (the soma) to the "
    "compartment's centre, µm",
    "diameter": "the compartment's mean diameter (its lateral area / (π · length)), µm",
    "x": "the compartment centre's position along its branch, 0 (proximal end) to 1 (distal end)",
    "order": "the branch order: 0 on the root branch (the soma), 1 on a branch that leaves it, +1 for "
    "every branch further out",
}
"""The per-compartment variables an expression may use."""

FUNCTIONS = {
    "exp": (1, 1),
    "log": (1, 1),
    "sqrt": (1, 1),
    "abs": (1, 1),
    "min": (2, None),
    "max": (2, None),
    "step": (3, 3),
}
"""Each function's least and most arguments (None: any number). log is the natural logarithm;
step(v, low, high) is 1 where low <= v <= high, else 0."""

MAX_LENGTH = 1000
"""Most characters of one expression."""
MAX_DEPTH = 50
"""Most levels of nesting (parentheses, function calls, unary signs and powers) of one expression."""

ALLOWED = (
    "a number, or an expression of the compartment's location such as 'exp(-distance/50) * 0.01' or "
    "'1e-4 + 9e-4*step(distance, 685, 885)': numbers, + - * / ^ (or **), comparisons < <= > >= (1 or 0), "
    f"parentheses, the variables {sorted(VARIABLES)} and the functions "
    + ", ".join(f"{name}()" for name in FUNCTIONS)
)

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|<=|>=|[-+*/^(),<>]))"
)


class ExpressionError(ValueError):
    """A malformed expression: what is wrong and the character index (0-based) where it was found."""

    def __init__(self, message, text, position):
        self.message, self.text, self.position = message, text, position
        super().__init__(f"at character {position + 1}: {message}\n    {text}\n    {' ' * position}^")


@lru_cache(maxsize=1024)
def parse(text):
    """The expression tree of text: ('num', value), ('var', name), ('neg', tree), ('call', name, args)
    or (operator, left, right) with operator one of + - * / ^ < <= > >=. Raises ExpressionError."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", text[:40] + "...", 40)
    return _Parser(text).expression()


def variables_of(tree):
    """The variable names a tree uses."""
    if tree[0] == "num":
        return set()
    if tree[0] == "var":
        return {tree[1]}
    if tree[0] == "call":
        return set().union(*(variables_of(a) for a in tree[2]))
    return set().union(*(variables_of(t) for t in tree[1:]))


def evaluate(tree, values):
    """The tree's value (float64) for every compartment: values maps each variable to an array, all of one
    shape; a constant is broadcast to it. Arithmetic does not warn: a NaN or infinity is the caller's to
    check."""
    shape = np.shape(next(iter(values.values()))) if values else ()
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(_eval(tree, values), dtype=np.float64), shape).copy()


_BINARY = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "^": np.power,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
_UNARY = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}


def _eval(tree, values):
    kind = tree[0]
    if kind == "num":
        return np.float64(tree[1])
    if kind == "var":
        return values[tree[1]]
    if kind == "neg":
        return -_eval(tree[1], values)
    if kind == "call":
        name, args = tree[1], [_eval(a, values) for a in tree[2]]
        if name in _UNARY:
            return _UNARY[name](args[0])
        if name == "step":
            return ((args[0] >= args[1]) & (args[0] <= args[2])).astype(np.float64)
        combine = np.minimum if name == "min" else np.maximum
        out = args[0]
        for a in args[1:]:
            out = combine(out, a)
        return out
    left, right = (np.asarray(_eval(t, values), dtype=np.float64) for t in tree[1:])
    return _BINARY[kind](left, right).astype(np.float64)


class _Parser:
    """Recursive descent over the tokens of one expression, one method per grammar rule."""

    def __init__(self, text):
        self.text, self.tokens, self.i, self.depth = text, _tokenize(text), 0, 0

    def fail(self, message, token=None):
        raise ExpressionError(message, self.text, (token or self.tokens[self.i])[2])

    def peek(self):
        return self.tokens[self.i]

    def at(self, *operators):
        """Whether the next token is one of these operators."""
        kind, value, _ = self.tokens[self.i]
        return kind == "op" and value in operators

    def take(self):
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expression(self):
        if self.peek()[0] == "end":
            self.fail("an empty expression")
        tree = self.comparison()
        kind, value, _ = self.peek()
        if kind != "end":
            self.fail(f"unexpected {_shown(kind, value)}; expected an operator or the end")
        return tree

    def nested(self, rule, token):
        """rule's tree, one level deeper than token (an opening parenthesis, a sign or an operator)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"nested more than {MAX_DEPTH} levels deep", token)
        tree = rule()
        self.depth -= 1
        return tree

    def comparison(self):
        tree = self.sum()
        if self.at("<", "<=", ">", ">="):
            op = self.take()[1]
            tree = (op, tree, self.sum())
            if self.at("<", "<=", ">", ">="):
                self.fail("a chained comparison; write (a < b) * (b < c)")
        return tree

    def sum(self):
        tree = self.product()
        while self.at("+", "-"):
            op = self.take()[1]
            tree = (op, tree, self.product())
        return tree

    def product(self):
        tree = self.unary()
        while self.at("*", "/"):
            op = self.take()[1]
            tree = (op, tree, self.unary())
        return tree

    def unary(self):
        if self.at("-", "+"):
            sign = self.take()
            operand = self.nested(self.unary, sign)
            return ("neg", operand) if sign[1] == "-" else operand
        return self.power()

    def power(self):
        base = self.atom()
        if self.at("^", "**"):
            return ("^", base, self.nested(self.unary, self.take()))
        return base

    def atom(self):
        token = self.take()
        kind, value, _ = token
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                self.fail(f"the number {value} is beyond the range of a float", token)
            return ("num", number)
        if kind == "name":
            if self.at("("):
                return self.call(token)
            if value in FUNCTIONS:
                self.fail(f"the function {value} needs its arguments in parentheses", token)
            if value not in VARIABLES:
                self.fail(f"unknown variable '{value}'; the variables are {sorted(VARIABLES)}", token)
            return ("var", value)
        if kind == "op" and value == "(":
            tree = self.nested(self.comparison, token)
            self.close(token)
            return tree
        self.fail(
            f"unexpected {_shown(kind, value)}; expected a number, a variable, a function or '('", token
        )

    def call(self, name_token):
        name = name_token[1]
        if name not in FUNCTIONS:
            self.fail(f"unknown function '{name}'; the functions are {sorted(FUNCTIONS)}", name_token)
        opening = self.take()
        args = [self.nested(self.comparison, opening)]
        while self.at(","):
            self.take()
            args.append(self.nested(self.comparison, opening))
        self.close(opening)
        least, most = FUNCTIONS[name]
        if len(args) < least or (most is not None and len(args) > most):
            wanted = f"{least}" if least == most else f"at least {least}"
            self.fail(f"{name}() takes {wanted} argument(s), got {len(args)}", name_token)
        return ("call", name, tuple(args))

    def close(self, opening):
        if not self.at(")"):
            kind, value, _ = self.peek()
            if kind == "end":
                self.fail("'(' is never closed", opening)
            self.fail(f"unexpected {_shown(kind, value)}; expected ')' or an operator")
        self.take()


def _tokenize(text):
    """(kind, text, position) per token, kind one of number, name, op, and a final ('end', '', length)."""
    tokens, position = [], 0
    stripped = text.rstrip()
    while position < len(stripped):
        m = _TOKEN.match(stripped, position)
        if m is None or m.lastgroup is None:
            at = len(stripped) - len(stripped[position:].lstrip())
            raise ExpressionError(f"unexpected character {stripped[at]!r}", text, at)
        kind = m.lastgroup
        start = m.start(kind)
        if kind == "number" and m.end() < len(stripped) and re.match(r"[A-Za-z_.]", stripped[m.end()]):
            raise ExpressionError(f"a malformed number {stripped[start : m.end() + 1]!r}", text, start)
        tokens.append((kind, m.group(kind), start))
        position = m.end()
    tokens.append(("end", "", len(stripped)))
    return tokens


def _shown(kind, value):
    return "end of the expression" if kind == "end" else f"'{value}'"
