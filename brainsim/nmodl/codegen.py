"""Python source of a kernel module (the interface of kernels/MECHANISMS.md) from a symbolic Mechanism.

The numba kernels loop over instances with one scalar expression per output, common subexpressions
shared (sympy.cse); exp and log use kernels.mathfn's vectorisable vexp and vlog, and x/(exp(x) − 1)
forms kernels.mathfn.exprelr (its derivative dexprelr). The NumPy twins evaluate the same expressions on
whole arrays (np.exp, np.log, exprelr_np, IF as np.where). The Jacobian kernels (rate_jacobian,
current_jacobian) are the symbolic derivatives of the same expressions.
"""

import keyword
import re
from dataclasses import dataclass

import sympy as sp

from ..errors import MechanismError
from ..kernels.ions import ION_FIELDS
from .symbolic import Exprelr, ExprelrPrime, derivative

RESERVED = {
    "vi", "node", "p", "s", "ion", "celsius", "xinf", "tau", "i_acc", "g_acc", "dids", "j", "k", "n", "vm",
    "np", "njit", "JIT", "ICA", "CAI", "vexp", "vlog", "exprelr", "exprelr_np", "abs", "min", "max",
    "rates", "current", "rates_np", "current_np", "_rows", "dexprelr", "dexprelr_np", "jsv", "jsi", "ECA",
    "scale", "di_dion", "dica_dion", "dica_dv", "dica_ds", "rates_jacobian", "rate_jacobian_np",
    "current_jacobian", "current_jacobian_np", "advance", "dt", "x",
}  # fmt: skip
"""Names the generated functions use; a .mod name among them gets a trailing underscore."""

ATOM, POW, UNARY, MUL, ADD, REL, NOT, AND, OR, COND = 100, 60, 50, 40, 30, 20, 15, 10, 5, 1
FUNCS = {
    sp.sin: "sin", sp.cos: "cos", sp.tan: "tan", sp.tanh: "tanh", sp.sinh: "sinh", sp.cosh: "cosh",
    sp.atan: "arctan", sp.asin: "arcsin", sp.acos: "arccos", sp.floor: "floor", sp.ceiling: "ceil",
}  # fmt: skip
RELATIONS = {sp.Eq: "==", sp.Ne: "!=", sp.Lt: "<", sp.Le: "<=", sp.Gt: ">", sp.Ge: ">="}


def ident(name):
    """A Python identifier for a .mod name that clashes with none of the generated ones."""
    clash = name in RESERVED or keyword.iskeyword(name) or re.fullmatch(r"w\d+", name)
    return name + "_" if clash else name


class Printer:
    """sympy expression -> Python text, for a numba loop body ('jit') or whole arrays ('np')."""

    def __init__(self, names, mode):
        self.names, self.mode = names, mode

    def __call__(self, e):
        return self.p(e)[0]

    def wrap(self, e, above):
        text, prec = self.p(e)
        return text if prec > above else f"({text})"

    def fn(self, jit, np_name, *args):
        inner = ", ".join(self(a) for a in args)
        return f"{jit if self.mode == 'jit' else np_name}({inner})", ATOM

    def p(self, e):
        if e in self.names:
            return self.names[e], ATOM
        if e is sp.true or e is sp.false:
            return str(bool(e)), ATOM
        if e.is_number and not isinstance(e, sp.logic.boolalg.Boolean):
            z = complex(sp.N(e, 30))
            if z.imag != 0:
                raise MechanismError(f"the expression {e} is not real")
            return (repr(z.real), ATOM) if z.real >= 0 else (repr(z.real), UNARY)
        if e.is_Add:
            terms = e.as_ordered_terms()
            out = self.wrap(terms[0], ADD - 1)
            for t in terms[1:]:
                if t.could_extract_minus_sign():
                    out += " - " + self.wrap(-t, ADD)
                else:
                    out += " + " + self.wrap(t, ADD)
            return out, ADD
        if e.is_Mul:
            c, _ = e.as_coeff_Mul()
            if c.is_number and c < 0:
                return "-" + self.wrap(-e, UNARY), UNARY
            num, den, coeff = [], [], sp.Integer(1)
            for f in sp.Mul.make_args(e):
                if f.is_number:
                    coeff *= f
                elif f.is_Pow and f.exp.is_number and f.exp < 0:
                    den.append(sp.Pow(f.base, -f.exp))
                else:
                    num.append(f)
            num = ([coeff] if coeff != 1 or not num else []) + num
            text = "*".join(self.wrap(f, MUL - 1) for f in num) if num else "1.0"
            if den:
                text += " / " + (self.wrap(den[0], MUL) if len(den) == 1 else "(" + "*".join(
                    self.wrap(f, MUL - 1) for f in den) + ")")  # fmt: skip
            return text, MUL
        if e.is_Pow:
            return self.power(e.base, e.exp)
        if isinstance(e, sp.exp):
            return self.fn("vexp", "np.exp", e.args[0])
        if isinstance(e, sp.log):
            return self.fn("vlog", "np.log", e.args[0])
        if isinstance(e, Exprelr):
            return self.fn("exprelr", "exprelr_np", e.args[0])
        if isinstance(e, ExprelrPrime):
            return self.fn("dexprelr", "dexprelr_np", e.args[0])
        if isinstance(e, Reciprocal):
            return "1.0 / " + self.wrap(e.args[0], MUL), MUL
        if isinstance(e, sp.Abs):
            return self.fn("abs", "np.abs", e.args[0])
        if isinstance(e, (sp.Min, sp.Max)):
            first, *rest = e.args
            out = first if not rest else type(e)(*rest)
            jit, np_name = ("min", "np.minimum") if isinstance(e, sp.Min) else ("max", "np.maximum")
            return self.fn(jit, np_name, first, out) if rest else self.p(first)
        if type(e) in FUNCS:
            return self.fn(f"np.{FUNCS[type(e)]}", f"np.{FUNCS[type(e)]}", *e.args)
        if isinstance(e, sp.Piecewise):
            return self.piecewise(e.args)
        if isinstance(e, (Select, sp.ITE)):  # a value an IF chose (ITE: in a condition)
            return self.piecewise([(e.args[1], e.args[0]), (e.args[2], sp.true)])
        if type(e) in RELATIONS:
            sym = RELATIONS[type(e)]
            return f"{self.wrap(e.lhs, REL)} {sym} {self.wrap(e.rhs, REL)}", REL
        if isinstance(e, (sp.And, sp.Or)):
            if self.mode == "jit":
                word, prec = ("and", AND) if isinstance(e, sp.And) else ("or", OR)
                return f" {word} ".join(self.wrap(a, prec) for a in e.args), prec
            sym = " & " if isinstance(e, sp.And) else " | "
            return sym.join(self.wrap(a, ATOM - 1) for a in e.args), REL - 1
        if isinstance(e, sp.Not):
            if self.mode == "jit":
                return "not " + self.wrap(e.args[0], NOT), NOT
            return "~" + self.wrap(e.args[0], ATOM - 1), UNARY
        raise MechanismError(f"no code for the expression {e} ({type(e).__name__})")

    def power(self, base, exp):
        if exp.is_Integer:
            n = int(exp)
            if n == -1:
                return "1.0 / " + self.wrap(base, MUL), MUL
            if n < 0:
                return "1.0 / " + self.wrap(sp.Pow(base, -n, evaluate=False), MUL), MUL
            if n <= 4:
                return "*".join([self.wrap(base, MUL)] * n), MUL
            return f"{self.wrap(base, POW)}**{n}", POW
        if exp == sp.Rational(1, 2):
            return self.fn("np.sqrt", "np.sqrt", base)
        if self.mode == "np":
            return f"{self.wrap(base, POW)}**{self.wrap(exp, POW)}", POW
        if base.is_number:  # c^x = exp(x·ln c)
            return self.fn("vexp", "np.exp", sp.log(base) * exp)
        if base.is_Pow and base.exp == -1:  # (1/b)^x = exp(−x·ln b)
            exp, base = -exp, base.base
        return f"vexp({self.wrap(exp, MUL - 1)}*vlog({self(base)}))", ATOM

    def piecewise(self, pieces):
        (value, cond), rest = pieces[0], pieces[1:]
        if cond is sp.true:
            return self.p(value)
        other = self.piecewise(rest)[0] if rest else "np.nan"
        if self.mode == "jit":
            return f"{self.wrap(value, COND)} if {self.wrap(cond, COND)} else {other}", COND
        return f"np.where({self(cond)}, {self(value)}, {other})", ATOM


class Select(sp.Function):
    """Select(c, a, b): a where c holds, else b — an IF's choice between two values kept where it was made
    (sympy distributes a Piecewise over the expression around it)."""


def _select_inward(expr):
    """expr with every two-way Piecewise whose branches are one expression of two different values, f(a) and
    f(b), written f(Select(c, a, b)): the choice of a value, not of two expressions to evaluate (an IF that
    adjusts an argument, `if (ca < 1e-7) { ca = ca + 1e-7 }`, leaves one power of ca to compute, and a
    loop LLVM can vectorise)."""

    def parts(e, other=sp.S.Zero):
        """e's subexpressions that are values (not numbers, not conditions) and do not occur in other,
        smallest first."""
        found = {x for x in sp.preorder_traversal(e) if isinstance(x, sp.Expr) and not x.is_number}
        found = {x for x in found if not other.has(x)}
        return sorted(found, key=lambda x: (sp.count_ops(x), sp.default_sort_key(x)))[:SELECT_TRIES]

    def inward(e):
        if len(e.args) == 2 and e.args[1].cond is sp.true:
            (a, cond), (b, _) = e.args
            for x in (x for x in parts(a, b) if x != a):  # a itself: the Piecewise as written
                for y in parts(b):
                    if a.xreplace({x: y}) == b:
                        return a.xreplace({x: Select(cond, x, y)})
        return e

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), inward)


SELECT_TRIES = 12
"""Subexpressions of each branch tried as the two values of a Select (the smallest first: an IF's adjusted
value)."""


def _body(outputs, names, mode, indent):
    """Lines computing the common subexpressions, and the printed outputs."""
    outputs = [_select_inward(sp.sympify(o)) for o in outputs]
    taken = set(names.values())
    cse_names = (sp.Symbol(f"w{i}") for i in range(10**6) if f"w{i}" not in taken)
    pairs, reduced = sp.cse(outputs, symbols=cse_names, optimizations=None)
    printer = Printer({**names, **{s: str(s) for s, _ in pairs}}, mode)
    lines = [f"{indent}{s} = {printer(value)}" for s, value in pairs]
    return lines, [printer(r) for r in reduced]


def _paired_exprelr(exprs):
    """exprs with every Exprelr(a) written through E = exp(b), b = a or −a (the one without a leading minus):
    exprelr(b) = b/(E − 1) and exprelr(−b) = b·E/(E − 1), continued by 1 ∓ b/2 where |b| < 1e-6 as
    kernels.mathfn.exprelr is, so that the common subexpressions hold one exp and one division for a
    rate pair α(u) = exprelr(u), β(u) = exprelr(−u) where exprelr would take two of each."""

    def expand(a):
        minus = a.could_extract_minus_sign()
        b = -a if minus else a
        e = sp.exp(b)
        r = b / (e - 1)
        near, far = (1 + b / 2, r * e) if minus else (1 - b / 2, r)
        return sp.Piecewise((near, sp.Abs(b) < sp.Float(1e-6)), (far, True))

    return [x.replace(Exprelr, expand) for x in exprs]


SHARED_EXP_SHIFT = 50
"""The largest |constant| by which the arguments of two exps written through one another may differ."""


class Reciprocal(sp.Function):
    """1/x kept as written (sympy would turn 1/exp(a) back into exp(−a))."""


def _shared_exps(exprs):
    """exprs with the exponentials whose arguments differ only by a constant or by sign written through one
    of them, B = exp(a + c0): exp(a + c) = B·e^(c − c0) and exp(−a + c) = e^(c + c0)/B, so that the common
    subexpressions hold one exp for rates such as α = k·e^(v/s), β = k·e^(−v/s) (a division or a product
    where an exp would be evaluated)."""
    groups = {}  # the non-constant part a (without a leading minus) -> [(exp, sign, constant)]
    for e in sorted(set().union(*(x.atoms(sp.exp) for x in exprs)), key=sp.default_sort_key):
        c, rest = sp.expand(e.args[0]).as_coeff_Add()
        if rest == 0:
            continue
        sign = -1 if rest.could_extract_minus_sign() else 1
        groups.setdefault(sign * rest, []).append((e, sign, c))
    swap = {}
    for (base, s0, c0), *others in (g for g in groups.values() if len(g) > 1):
        for e, sign, c in others:
            shift = c - c0 if sign == s0 else c + c0
            if abs(shift) <= SHARED_EXP_SHIFT:  # e^shift far from 0 and inf: nothing over- or underflows
                swap[e] = base * sp.exp(shift) if sign == s0 else sp.exp(shift) * Reciprocal(base)
    return [x.xreplace(swap) for x in exprs]


def _loads(symbols, used, loads, indent):
    return [f"{indent}{ident(name)} = {loads(name)}" for name, sym in symbols if sym in used]


@dataclass(frozen=True)
class _Inputs:
    """What a generated function may read: V, the parameters (`loaded`: not the ion rows' names), the
    ion rows and the states, with their indices in p, s and the ion array."""

    v: object
    loaded: list
    ions: list
    states: list
    pindex: dict
    sindex: dict
    row: dict

    def gathered(self, used, indent):
        """Lines of a loop over instances that comes before the one whose loads `lines(..., gathered=True)`
        writes: the ion rows it reads gathered into contiguous arrays _<name>, so that the instance loop reads
        no indirect index and LLVM vectorises it (a loop with a gather stays scalar here)."""
        names = [(name, self.row[name]) for name, x in self.ions if x in used]
        if not names:
            return []
        out = [f"{indent}_{name} = np.empty(node.size)" for name, _ in names]
        out.append(f"{indent}for j in range(node.size):")
        out += [f"{indent}    _{name}[j] = ion[{row}, node[j]]" for name, row in names]
        return out

    def row_views(self, used, indent, states=()):
        """Lines binding the rows of p and s that the expressions need (`used`; and the state rows
        `states`) over instances lo .. hi - 1, as _p<k> and _s<k>: one-dimensional views, which keep a
        loop over them vectorised (a loop from lo, or over a two-dimensional slice, does not)."""
        rows = [self.pindex[n] for n, x in self.loaded if x in used]
        out = [f"{indent}_p{k} = p[{k}, lo:hi]" for k in rows]
        keep = sorted({self.sindex[n] for n, x in self.states if x in used} | set(states))
        return out + [f"{indent}_s{k} = s[{k}, lo:hi]" for k in keep]

    def lines(self, used, indent, vm, j, node, gathered=False, rows=False):
        """Lines loading what the expressions need (`used`): vm = <vm>, a parameter as p[k<j>], an ion row
        as ion[ROW, <node>] (gathered: as _<name>[j], see `gathered`), a state as s[k<j>] (j: ", j" in a
        loop over instances, "" on whole arrays; rows: a parameter as _p<k>[j] and a state as _s<k>[j], see
        `row_views`)."""
        out = [f"{indent}vm = {vm}"] if self.v in used else []
        param = (lambda n: f"_p{self.pindex[n]}[j]") if rows else (lambda n: f"p[{self.pindex[n]}{j}]")
        out += _loads(self.loaded, used, param, indent)
        ion = (lambda n: f"_{n}[j]") if gathered else (lambda n: f"ion[{self.row[n]}, {node}]")
        out += _loads(self.ions, used, ion, indent)
        state = (lambda n: f"_s{self.sindex[n]}[j]") if rows else (lambda n: f"s[{self.sindex[n]}{j}]")
        out += _loads(self.states, used, state, indent)
        return out


def generate(mech, digest, version):
    """The module text of mech (see the module docstring)."""
    sym = mech.symbols
    params = [(p, sym[p]) for p, _, _ in mech.params]
    ions = [(r, sym[r]) for r in sorted(mech.ion_reads, key=ION_FIELDS.index)]  # in the ion array's order
    loaded = [(p, x) for p, x in params if p not in mech.ion_reads]  # eca: the row, not its parameter
    states = [(s, sym[s]) for s, _ in mech.states]
    names = {sym[n]: ident(n) for n, _ in params + ions + states}
    names[sym["v"]], names[sym["celsius"]] = "vm", "celsius"
    row = {"ica": "ICA", "cai": "CAI", "eca": "ECA"}
    pindex = {p: k for k, (p, _) in enumerate(params)}
    sindex = {s: k for k, (s, _) in enumerate(states)}

    rate_out = list(mech.xinf) + list(mech.tau)
    rate_used = set().union(*(e.free_symbols for e in rate_out)) if rate_out else set()
    v = sym["v"]
    inputs = _Inputs(v, loaded, ions, states, pindex, sindex, row)
    cur = [mech.current, sp.diff(mech.current, v)] + [sp.diff(mech.current, x) for _, x in states]
    cur += [mech.ica] if mech.ica is not None else []
    cur_used = set().union(*(e.free_symbols for e in cur))
    ns = len(states)

    lines = [
        f'"""{mech.name}: translated from NMODL by brainsim.nmodl {version} (source sha256 {digest}).',
        "",
        "Generated code: edit the .mod file, not this module. "
        + f"{mech.exprelr_rewrites} x/(exp(x) - 1) form(s) evaluated by exprelr"
        + (
            f"; singularity guards at V = {', '.join(str(float(g)) for g in mech.guards_dropped)} mV "
            "replaced by the continuous extension"
            if mech.guards_dropped
            else ""
        )  # fmt: skip
        + ".",
        '"""',
        "",
        "import numpy as np",
        "from numba import njit",
        "",
        "from brainsim.kernels import JIT",
        "from brainsim.kernels.ions import CAI, ECA, ICA",
        "from brainsim.kernels.mathfn import dexprelr, dexprelr_np, exprelr, exprelr_np, vexp, vlog",
        "",
        f"NAME = {mech.name!r}",
        f"KIND = {mech.kind!r}",
        f"STATES = {tuple(s for s, _ in states)!r}",
        f"STATE_UNITS = {tuple(u for _, u in mech.states)!r}",
        f"PARAMS = {tuple((p, float(d), u) for p, d, u in mech.params)!r}",
        f"ION_WRITES = {tuple(mech.ion_writes)!r}",
        f"ION_READS = {tuple(mech.ion_reads)!r}",
        f"RATE_ION_READS = {tuple(r for r, x in ions if x in rate_used)!r}",
        f"CURRENT_ION_READS = {tuple(r for r, x in ions if x in mech.current.free_symbols)!r}",
        "",
        "",
        "def _rows(values, n):",
        '    """(len(values), n) float64 array of values broadcast to n instances."""',
        "    rows = [np.broadcast_to(np.asarray(x, dtype=float), (n,)) for x in values]",
        "    return np.array(rows).reshape(-1, n)",
        "",
        "",
        "@njit(**JIT)",
        "def rates(vi, node, p, ion, celsius, xinf, tau):",
    ]
    i4, i8 = " " * 4, " " * 8
    lines += inputs.gathered(rate_used, i4) + [f"{i4}for j in range(node.size):"]
    lines += inputs.lines(rate_used, i8, "vi[j]", ", j", "node[j]", gathered=True)
    body, out = _body(rate_out, names, "jit", i8)
    lines += body
    lines += [f"{i8}xinf[{k}, j] = {out[k]}" for k in range(ns)]
    lines += [f"{i8}tau[{k}, j] = {out[ns + k]}" for k in range(ns)]
    if not ns:
        lines.append(f"{i8}pass")
    doc = (
        '    """Every state of instances lo .. hi - 1 over dt at fixed x∞, τ: s ← x∞ + (s − x∞)·exp(−dt/τ) '
        '(NEURON\'s cnexp)."""'
    )
    lines += ["", "", "@njit(**JIT)", "def advance(vi, node, p, ion, celsius, s, dt, lo, hi):", doc]
    lines += [f"{i4}vi, node = vi[lo:hi], node[lo:hi]", *inputs.row_views(rate_used, i4, range(ns))]
    lines += inputs.gathered(rate_used, i4) + [f"{i4}for j in range(node.size):"]
    lines += inputs.lines(rate_used, i8, "vi[j]", ", j", "node[j]", gathered=True, rows=True)
    step_out = _shared_exps(_paired_exprelr(list(mech.xinf) + [1 / t for t in mech.tau]))
    step_body, step = _body(step_out, names, "jit", i8)
    lines += step_body
    for k in range(ns):
        lines += [f"{i8}x = {step[k]}", f"{i8}_s{k}[j] = x + (_s{k}[j] - x) * vexp(-dt * ({step[ns + k]}))"]
    if not ns:
        lines.append(f"{i8}pass")
    lines += ["", "", "def rates_np(vi, node, p, ion, celsius):"]
    lines += inputs.lines(rate_used, i4, "vi", "", "node")
    body, out = _body(rate_out, names, "np", i4)
    body, at = _quiet(body, out, i4)
    lines += body
    lines.append(
        f"{at}return _rows([{', '.join(out[:ns])}], node.size), _rows([{', '.join(out[ns:])}], node.size)"
    )

    lines += _current(mech, inputs, names, cur, "def current(v, node, p, s, ion, i_acc, g_acc, dids):")
    doc = '    """current without ∂i/∂state, of instances lo .. hi - 1: what the staggered step needs."""'
    ig = cur[:2] + ([mech.ica] if mech.ica is not None else [])
    signature = "def current_ig(v, node, p, s, ion, i_acc, g_acc, lo, hi):"
    lines += _current(mech, inputs, names, ig, signature, doc, ranged=True)
    lines += _current_run(mech, inputs, names, ig)
    lines += ["", "", "def current_np(v, node, p, s, ion):"]
    also = "; i is also ica" if mech.ica is not None else ""
    lines.append(f'{i4}"""(i, g = ∂i/∂V, ∂i/∂state); the ion array is not written{also}."""')
    lines += inputs.lines(cur_used, i4, "v[node]", "", "node")
    body, out = _body(cur[: 2 + ns], names, "np", i4)
    lines += body
    lines.append(
        f"{i4}return _rows([{out[0]}], node.size)[0], _rows([{out[1]}], node.size)[0], "
        f"_rows([{', '.join(out[2:])}], node.size)"
    )
    lines += _rate_jacobian(mech, names, inputs)
    lines += _current_jacobian(mech, names, inputs)
    lines += _initial(mech, names, inputs)
    if mech.event_scale is not None:
        lines += _event_scale(mech, names, inputs)
    return "\n".join(lines) + "\n"


def _current(mech, inputs, names, cur, signature, doc=None, ranged=False):
    """A current kernel's lines: the outputs cur = [i, ∂i/∂V, ∂i/∂state ..., ica if written] summed into
    i_acc, g_acc and the ica row, cai copied into its row, and ∂i/∂state into dids where cur holds it
    (ranged: over the instances lo .. hi - 1, through row views)."""
    i8 = " " * 8
    used = set().union(*(e.free_symbols for e in cur))
    lines = ["", "", "@njit(**JIT)", signature] + ([doc] if doc else [])
    if ranged:
        cai = () if mech.cai_state is None else (mech.cai_state,)
        lines += ["    node = node[lo:hi]", *inputs.row_views(used, "    ", cai)]
    lines += ["    for j in range(node.size):", f"{i8}k = node[j]"]
    lines += inputs.lines(used, i8, "v[k]", ", j", "k", rows=ranged)
    body, out = _body(cur, names, "jit", i8)
    lines += body
    if cur[0] != 0:
        lines.append(f"{i8}i_acc[k] += {out[0]}")
    if cur[1] != 0:
        lines.append(f"{i8}g_acc[k] += {out[1]}")
    if mech.ica is not None:
        lines.append(f"{i8}ion[ICA, k] += {out[-1]}")
    if mech.cai_state is not None:
        state = f"_s{mech.cai_state}[j]" if ranged else f"s[{mech.cai_state}, j]"
        lines.append(f"{i8}ion[CAI, k] = {state}")
    ns = len(mech.states)
    if len(cur) > 2 + (mech.ica is not None):
        lines += [f"{i8}dids[{k}, j] = {out[2 + k]}" for k in range(ns)]
    return lines


def _current_run(mech, inputs, names, cur):
    """Lines of current_run: current_ig over the instances _j0 .. _j0 + _m − 1 sitting at the consecutive
    nodes _k0 .. _k0 + _m − 1, on one-dimensional views of the rows it reads and writes, so that LLVM
    vectorises the loop (node-indexed accumulation cannot be: two instances might share a node)."""
    i4, i8 = " " * 4, " " * 8
    used = set().union(*(e.free_symbols for e in cur))
    nodes, insts = "_k0:_k0 + _m", "_j0:_j0 + _m"
    views, loads = [], []
    if inputs.v in used:
        views.append(f"{i4}_v = v[{nodes}]")
        loads.append(f"{i8}vm = _v[_q]")
    for name, x in inputs.loaded:
        if x in used:
            views.append(f"{i4}_p{inputs.pindex[name]} = p[{inputs.pindex[name]}, {insts}]")
            loads.append(f"{i8}{ident(name)} = _p{inputs.pindex[name]}[_q]")
    for name, x in inputs.ions:
        if x in used:
            views.append(f"{i4}_{name} = ion[{inputs.row[name]}, {nodes}]")
            loads.append(f"{i8}{ident(name)} = _{name}[_q]")
    for name, x in inputs.states:
        if x in used or inputs.sindex[name] == mech.cai_state:
            views.append(f"{i4}_s{inputs.sindex[name]} = s[{inputs.sindex[name]}, {insts}]")
        if x in used:
            loads.append(f"{i8}{ident(name)} = _s{inputs.sindex[name]}[_q]")
    body, out = _body(cur, names, "jit", i8)
    stores = []
    if cur[0] != 0:
        views.append(f"{i4}_i = i_acc[{nodes}]")
        stores.append(f"{i8}_i[_q] += {out[0]}")
    if cur[1] != 0:
        views.append(f"{i4}_g = g_acc[{nodes}]")
        stores.append(f"{i8}_g[_q] += {out[1]}")
    if mech.ica is not None:
        views.append(f"{i4}_ica = ion[ICA, {nodes}]")
        stores.append(f"{i8}_ica[_q] += {out[-1]}")
    if mech.cai_state is not None:
        views.append(f"{i4}_cai = ion[CAI, {nodes}]")
        stores.append(f"{i8}_cai[_q] = _s{mech.cai_state}[_q]")
    doc = '    """current_ig over instances _j0 .. _j0 + _m − 1 at nodes _k0 .. _k0 + _m − 1 (a run)."""'
    lines = ["", "", "@njit(**JIT)", "def current_run(v, p, s, ion, i_acc, g_acc, _j0, _k0, _m):", doc]
    lines += views + ["    for _q in range(_m):"] + loads + body + (stores or [f"{i8}pass"])
    return lines


def _d(mech, expr, x):
    """∂expr/∂x (symbolic.derivative), a MechanismError naming the file where it has no closed form."""
    try:
        return derivative(expr, x)
    except ValueError as e:
        raise MechanismError(str(e), mech.path) from None


def _rate_jacobian(mech, names, inputs):
    """Lines of rates_jacobian and its NumPy twin (rate_jacobian_np; rates_np is the twin of its x∞ and τ):
    for each state row F = x' − (x∞ − x)/τ of the implicit form, x∞, τ and jsv = ∂F/∂V, jsi[r] = ∂F/∂(ion
    row r) for the rows in RATE_ION_READS, exactly, in one loop whose common subexpressions hold each exp
    once for the rates and their derivatives."""
    v, states = inputs.v, inputs.states
    reads = [(r, x) for r, x in inputs.ions if any(e.has(x) for e in (*mech.xinf, *mech.tau))]
    out = []
    for wrt in [v] + [x for _, x in reads]:
        for (_, s), xinf, tau in zip(states, mech.xinf, mech.tau):
            dtau = _d(mech, tau, wrt)
            jac = -_d(mech, xinf, wrt) / tau
            out.append(jac + (xinf - s) * dtau / tau**2 if dtau != 0 else jac)
    used = set().union(*(e.free_symbols for e in out)) if out else set()
    ns, i4, i8 = len(states), " " * 4, " " * 8
    doc = (
        '"""rates, and jsv[k, j] = ∂F_k/∂V (1/ms/mV), jsi[r, k, j] = ∂F_k/∂(RATE_ION_READS[r]) of the '
        f'state rows\n{i4}F = x\' − (x∞ − x)/τ, their exps shared."""'
    )
    both = [*mech.xinf, *mech.tau, *out]
    every = set().union(*(e.free_symbols for e in both)) if both else set()
    lines = ["", "", "@njit(**JIT)", "def rates_jacobian(vi, node, p, ion, celsius, s, xinf, tau, jsv, jsi):",
             i4 + doc]  # fmt: skip
    lines += inputs.gathered(every, i4) + [f"{i4}for j in range(node.size):"]
    lines += inputs.lines(every, i8, "vi[j]", ", j", "node[j]", gathered=True)
    body, text = _body(both, names, "jit", i8)
    lines += body
    lines += [f"{i8}xinf[{k}, j] = {text[k]}" for k in range(ns)]
    lines += [f"{i8}tau[{k}, j] = {text[ns + k]}" for k in range(ns)]
    lines += [f"{i8}jsv[{k}, j] = {text[2 * ns + k]}" for k in range(ns)]
    lines += [
        f"{i8}jsi[{r}, {k}, j] = {text[ns * (3 + r) + k]}" for r in range(len(reads)) for k in range(ns)
    ]
    if not ns:
        lines.append(f"{i8}pass")
    doc = '"""(jsv (n_states, n), jsi (len(RATE_ION_READS), n_states, n)), as rates_jacobian."""'
    lines += ["", "", "def rate_jacobian_np(vi, node, p, ion, celsius, s):", i4 + doc]
    lines += inputs.lines(used, i4, "vi", "", "node")
    body, text = _body(out, names, "np", i4)
    body, at = _quiet(body, text, i4)
    lines += body
    rows = [f"_rows([{', '.join(text[ns * b : ns * (b + 1)])}], node.size)" for b in range(1 + len(reads))]
    lines.append(
        f"{at}return {rows[0]}, np.array([{', '.join(rows[1:])}]).reshape({len(reads)}, {ns}, node.size)"
    )
    return lines


def _current_jacobian(mech, names, inputs):
    """Lines of current_jacobian and its NumPy twin: ∂i/∂(ion row) for the rows in CURRENT_ION_READS and,
    for a writer of ica, ∂ica/∂V, ∂ica/∂state and ∂ica/∂(those rows). The kernel adds them into per-node
    rows (i's scaled per instance, to nA) and writes ∂ica/∂state per instance."""
    v, states, row = inputs.v, inputs.states, inputs.row
    reads = [(r, x) for r, x in inputs.ions if mech.current.has(x)]
    out = [_d(mech, mech.current, x) for _, x in reads]
    if mech.ica is not None:
        out += [_d(mech, mech.ica, x) for x in [v] + [x for _, x in states] + [x for _, x in reads]]
    used = set().union(*(e.free_symbols for e in out)) if out else set()
    nr, ns, i4, i8 = len(reads), len(states), " " * 4, " " * 8
    doc = ('"""di_dion[row, node] += scale·∂i/∂(row); for an ica writer dica_dv[node] += ∂ica/∂V, '
           'dica_ds[k, j] = ∂ica/∂(state k), dica_dion[row, node] += ∂ica/∂(row)."""')  # fmt: skip
    signature = "def current_jacobian(v, node, p, s, ion, scale, di_dion, dica_dion, dica_dv, dica_ds):"
    lines = [
        "",
        "",
        "@njit(**JIT)",
        signature,
        i4 + doc,
        f"{i4}for j in range(node.size):",
        f"{i8}k = node[j]",
    ]
    lines += inputs.lines(used, i8, "v[k]", ", j", "k")
    body, text = _body(out, names, "jit", i8)
    lines += body
    lines += [f"{i8}di_dion[{row[r]}, k] += scale[j] * ({text[q]})" for q, (r, _) in enumerate(reads)]
    if mech.ica is not None:
        lines.append(f"{i8}dica_dv[k] += {text[nr]}")
        lines += [f"{i8}dica_ds[{q}, j] = {text[nr + 1 + q]}" for q in range(ns)]
        lines += [f"{i8}dica_dion[{row[r]}, k] += {text[nr + 1 + ns + q]}" for q, (r, _) in enumerate(reads)]
    lines += ["", "", "def current_jacobian_np(v, node, p, s, ion):",
              f'{i4}"""Per instance: (∂i/∂(CURRENT_ION_READS) (nr, n), for an ica writer ∂ica/∂(V, states, '
              'those rows) (1 + n_states + nr, n), else (0, n))."""']  # fmt: skip
    lines += inputs.lines(used, i4, "v[node]", "", "node")
    body, text = _body(out, names, "np", i4)
    body, at = _quiet(body, text, i4)
    lines += body
    dion, dica = ", ".join(text[:nr]), ", ".join(text[nr:])
    lines.append(f"{at}return _rows([{dion}], node.size), _rows([{dica}], node.size)")
    return lines


def _event_scale(mech, names, inputs):
    """Lines of event_scale(p): per state and instance, the multiple of an event's weight NET_RECEIVE adds."""
    i4 = " " * 4
    used = set().union(*(e.free_symbols for e in mech.event_scale))
    lines = ["", "", "def event_scale(p):",
             f'{i4}"""Per state and instance, the multiple of an event\'s weight added (NET_RECEIVE)."""',
             f"{i4}n = p.shape[1]"]  # fmt: skip
    lines += inputs.lines(used, i4, None, "", None)
    body, out = _body(list(mech.event_scale), names, "np", i4)
    lines += body
    lines.append(f"{i4}return _rows([{', '.join(out)}], n)")
    return lines


def _initial(mech, names, inputs):
    """Lines of initial_np(v, node, p, ion, celsius): every state's value at t = 0, (n_states, n)."""
    i4 = " " * 4
    used = set().union(*(e.free_symbols for e in mech.initial)) if mech.initial else set()
    lines = ["", "", "def initial_np(v, node, p, ion, celsius):",
             f'{i4}"""Every state at t = 0 (the INITIAL block), (n_states, n)."""']  # fmt: skip
    lines += inputs.lines(used, i4, "v[node]", "", "node")
    body, out = _body(list(mech.initial), names, "np", i4)
    body, at = _quiet(body, out, i4)
    lines += body
    lines.append(f"{at}return _rows([{', '.join(out)}], node.size)")
    return lines


def _quiet(body, out, indent):
    """(body lines, indent of the return) of a NumPy function: inside np.errstate where it uses np.where,
    whose branches are both evaluated (the loop kernel evaluates only the one taken)."""
    if not any("np.where" in t for t in body + out):
        return body, indent
    opened = f"{indent}with np.errstate(divide='ignore', invalid='ignore', over='ignore'):"
    return [opened] + [indent + t for t in body], indent * 2
