"""An NMODL mechanism as sympy expressions: every state's x∞ and τ, the membrane current and its ions.

The blocks are executed symbolically: PROCEDURE and FUNCTION bodies are inlined with their arguments and
LOCALs, assignments rebind names (`v` included: an assignment to v holds for the rest of that block, as
in NEURON, where a mechanism works on its own copy of the node's V), and IF/ELSE merges what the branches
assigned into Piecewise expressions. Numbers are kept exact (Rationals from their decimal text) until
they are printed. Each state's derivative must be linear in that state, x' = a + b·x, which gives
x∞ = −a/b and τ = −1/b (METHOD cnexp, and derivimplicit, which for a linear equation is the same).

Ions follow NEURON's rules: `eca` is read from the ion array's eca row, which follows the Nernst
potential of cai where a mechanism at the node writes cai (brainsim.engine.group) and holds the `eca`
parameter elsewhere; other reversal potentials (ena, ek, ...) are parameters. A state starts at the value
INITIAL gives it; one INITIAL leaves alone starts at 0, as NEURON's, except cai, which starts at the ion's
initial concentration (CAI_REST, NEURON's cai0_ca_ion).
"""

import re
from dataclasses import dataclass, field

import nmodl.dsl
import sympy as sp

from ..kernels.ions import CAI_REST, ECA_DEFAULT, ION_FIELDS
from .source import Source

REVERSAL_DEFAULTS = {"ena": 50.0, "ek": -77.0, "eca": ECA_DEFAULT}
"""NEURON's default reversal potentials (mV), used when the .mod file gives none; other ions' default to 0."""
METHODS = ("cnexp", "derivimplicit")
CONSTANTS = {
    ("faraday", "coulombs"): sp.Rational("96485.33212331001"),
    ("faraday", "kilocoulombs"): sp.Rational("96.48533212331001"),
    ("k-mole", "joule/degC"): sp.Rational("8.31446261815324"),
    ("k-mole", "joule/degK"): sp.Rational("8.31446261815324"),
}
"""UNITS factors: CODATA 2018 (Faraday e·N_A, the gas constant k·N_A, as NEURON 9 computes them)."""
FUNCTIONS = {
    "exp": sp.exp, "log": sp.log, "log10": lambda x: sp.log(x, 10), "sqrt": sp.sqrt, "fabs": sp.Abs,
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
    "atan": sp.atan, "asin": sp.asin, "acos": sp.acos, "floor": sp.floor, "ceil": sp.ceiling,
    "pow": sp.Pow, "fmin": sp.Min, "fmax": sp.Max,
}  # fmt: skip
"""NMODL's mathematical functions."""
GUARD_SHIFT = sp.Rational(1, 100)
"""The largest shift δ of a singularity guard `IF (x == c) { x = x + δ }`."""


class Exprelr(sp.Function):
    """x / (exp(x) − 1), continued by its limit 1 at x = 0 (kernels.mathfn.exprelr)."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Integer(1)

    def _eval_evalf(self, prec):
        x = self.args[0].evalf(prec)
        return sp.Float(1, prec) if x.is_zero else (x / (sp.exp(x) - 1)).evalf(prec)

    def fdiff(self, argindex=1):
        return ExprelrPrime(self.args[0])


class ExprelrPrime(sp.Function):
    """The derivative of Exprelr, continued by its limit −1/2 at x = 0 (kernels.mathfn.dexprelr)."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Rational(-1, 2)

    def _eval_evalf(self, prec):
        x = self.args[0].evalf(prec)
        if x.is_zero:
            return sp.Float(-0.5, prec)
        r = x / (sp.exp(x) - 1)
        return (r / x * (1 - r) - r).evalf(prec)

    def fdiff(self, argindex=1):
        x = self.args[0]
        r = Exprelr(x)
        return (ExprelrPrime(x) * (1 - 2 * r) - r * (1 - r) / x) / x - ExprelrPrime(x)


def derivative(expr, x):
    """∂expr/∂x for the Jacobian kernels: Heaviside and sign (from fmin, fmax, fabs) as Piecewise, and
    floor and ceiling, constant between their jumps, with derivative 0."""
    d = sp.diff(expr, x)
    d = d.replace(
        lambda e: isinstance(e, sp.Derivative) and isinstance(e.expr, (sp.floor, sp.ceiling)),
        lambda e: sp.Integer(0),
    )
    d = d.replace(
        lambda e: isinstance(e, sp.Heaviside),
        lambda e: sp.Piecewise((1, e.args[0] > 0), (sp.Rational(1, 2), sp.Eq(e.args[0], 0)), (0, True)),
    )
    d = d.replace(
        lambda e: isinstance(e, sp.sign),
        lambda e: sp.Piecewise((1, e.args[0] > 0), (-1, e.args[0] < 0), (0, True)),
    )
    if d.has(sp.Derivative, sp.Subs, sp.DiracDelta):
        raise ValueError(f"no closed form for the derivative of {expr} in {x}")
    return d


class Guard(sp.Function):
    """Guard(x, c, δ): x + δ where x == c, else x; an `IF (x == c) { x = x + δ }` that moves x off a
    singular point (kept opaque so that sympy does not fold it into the conditions that follow)."""

    nargs = 3

    def as_piecewise(self):
        x, c, delta = self.args
        return sp.Piecewise((x + delta, sp.Eq(x, c)), (x, True))


class _Maybe:
    """The value of a name assigned on some branches of an IF only."""


UNSET, MAYBE = None, _Maybe()


@dataclass
class Mechanism:
    """What a .mod file computes, in sympy terms (symbols: v, celsius, the parameters, the states and the
    ion rows read)."""

    name: str
    kind: str
    path: str
    states: list  # [(name, unit)]
    params: list  # [(name, default, unit)]
    ion_reads: tuple
    ion_writes: tuple
    useion: list  # [(ion, names read, names written)] as the NEURON block says
    currents: list  # names of the membrane currents written
    xinf: list = field(default_factory=list)
    tau: list = field(default_factory=list)
    current: object = sp.Integer(0)  # total membrane current (mA/cm² or nA)
    ica: object = None  # the part of it written to the ion array's ica row
    cai_state: int = None  # the state written to the cai row
    initial: list = field(default_factory=list)  # every state's value at t = 0 (sympy, in v and the rest)
    event_scale: list = None  # per state, the multiple of an event's weight NET_RECEIVE adds (in params)
    exprelr_rewrites: int = 0
    guards_dropped: list = field(default_factory=list)  # V (mV) of the singularity guards replaced by limits
    symbols: dict = field(default_factory=dict)  # name -> Symbol


class _Frame:
    """Names visible to a block: the mechanism's globals and the block's locals (arguments, LOCALs)."""

    def __init__(self, globals_, locals_, writable=frozenset()):
        # writable: the kinds of names ('state', 'param') the block may set besides ASSIGNED ones and v
        self.globals, self.locals, self.writable = globals_, locals_, writable

    def copy(self):
        return _Frame(dict(self.globals), dict(self.locals), self.writable)


def _text(node):
    return nmodl.dsl.to_nmodl(node)


def _unit(node):
    return "1" if node is None else _text(node).strip().strip("()").strip() or "1"


class Reader:
    """Reads one .mod file (see the module docstring); `read()` returns its Mechanism."""

    def __init__(self, path, text):
        self.src = Source(path, text)
        self.src.check_supported()
        try:
            self.program = nmodl.dsl.NmodlDriver().parse_string(text)
        except RuntimeError as e:
            m = re.search(r"Location : (\d+)", str(e))
            first = str(e).splitlines()[0]
            raise self.src.error(f"NMODL syntax: {first}", line=int(m.group(1)) if m else None) from None
        self.blocks = {}
        for b in self.program.blocks:
            kind = type(b).__name__
            if kind in ("FunctionBlock", "ProcedureBlock", "DerivativeBlock"):
                self.blocks[b.get_node_name()] = b
            else:
                self.blocks.setdefault(kind, b)
        self.kinds = {}  # global name -> 'v' | 'celsius' | 'param' | 'state' | 'ion' | 'assigned' | 'const'
        self.symbols = {}
        self.depth = 0

    # -- declarations --------------------------------------------------------------------------------

    def _declare(self):
        neuron = self.blocks.get("NeuronBlock")
        if neuron is None:
            raise self.src.error("no NEURON block")
        name = kind = None
        self.ion_reads, self.ion_writes, self.currents, self.reversals, self.useion = [], [], [], [], []
        for s in neuron.statement_block.statements:
            t = type(s).__name__
            if t == "Suffix":
                word, name = _text(s.type), _text(s.name)
                if word not in ("SUFFIX", "POINT_PROCESS"):
                    raise self.src.error(f"{word} is not supported (SUFFIX or POINT_PROCESS)", rf"\b{word}\b")
                kind = "density" if word == "SUFFIX" else "point"
            elif t == "Useion":
                ion = _text(s.name)
                self.useion.append(
                    (ion, tuple(_text(r) for r in s.readlist), tuple(_text(w) for w in s.writelist))
                )
                for r in s.readlist:
                    self._ion_read(ion, _text(r))
                for w in s.writelist:
                    self._ion_write(ion, _text(w))
            elif t == "Nonspecific":
                self.currents.extend(_text(c) for c in s.currents)
        if name is None:
            raise self.src.error("the NEURON block names no SUFFIX or POINT_PROCESS", r"\bNEURON\b")
        self.name, self.kind = name, kind
        self.kinds.update(v="v", celsius="celsius", PI="const")
        self.symbols.update(v=sp.Symbol("v", real=True), celsius=sp.Symbol("celsius", real=True))
        self.constants = {"PI": sp.pi}
        units = self.blocks.get("UnitBlock")
        for d in units.definitions if units else ():
            if type(d).__name__ == "FactorDef":
                self._factor(d)
        self.params = []
        block = self.blocks.get("ParamBlock")
        for s in block.statements if block else ():
            pname = s.get_node_name()
            if pname in ("v", "celsius") or (pname in self.ion_reads and pname not in self.reversals):
                continue
            default = float(s.value.value) if s.value is not None else REVERSAL_DEFAULTS.get(pname, 0.0)
            self.params.append((pname, default, _unit(s.unit)))
        declared = {p for p, _, _ in self.params}
        for r in self.reversals:
            if r not in declared:
                self.params.append((r, REVERSAL_DEFAULTS.get(r, 0.0), "mV"))
        for pname, _, _ in self.params:
            self.kinds[pname] = "param"
            self.symbols[pname] = sp.Symbol(pname, real=True)
        for r in self.ion_reads:
            self.kinds[r] = "ion"
            self.symbols[r] = sp.Symbol(r, real=True)
        self.states = []
        block = self.blocks.get("StateBlock")
        for d in block.definitions if block else ():
            sname = d.get_node_name()
            self.states.append((sname, _unit(d.unit)))
            self.kinds[sname] = "state"
            self.symbols[sname] = sp.Symbol(sname, real=True)
        block = self.blocks.get("AssignedBlock")
        for d in block.definitions if block else ():
            self.kinds.setdefault(d.get_node_name(), "assigned")
        for c in self.currents:
            self.kinds.setdefault(c, "assigned")
        for w in self.ion_writes:
            if w == "ica":
                self.kinds.setdefault(w, "assigned")
        if "cai" in self.ion_writes and self.kinds.get("cai") != "state":
            raise self.src.error(
                "WRITE cai: cai must be a STATE (a calcium shell like CaDynamics)", r"\bcai\b"
            )

    def _ion_read(self, ion, var):
        if var == f"e{ion}":
            self.reversals.append(var)
        if var in ION_FIELDS:
            self.ion_reads.append(var)
        elif var != f"e{ion}":
            raise self.src.error(
                f"USEION {ion} READ {var}: brainsim's ion array has {', '.join(ION_FIELDS)} only "
                f"(other reversal potentials e<ion> become parameters)",
                rf"\bREAD\b[^}}\n]*\b{var}\b",
            )

    def _ion_write(self, ion, var):
        if var == f"i{ion}":
            self.currents.append(var)
            if var == "ica":
                self.ion_writes.append(var)
        elif var == "cai":
            self.ion_writes.append(var)
        else:
            raise self.src.error(
                f"USEION {ion} WRITE {var}: only currents i<ion> and cai can be written",
                rf"\bWRITE\b[^}}\n]*\b{var}\b",
            )

    def _factor(self, d):
        cname = d.get_node_name()
        if d.value is not None:
            value = sp.Rational(d.value.value if hasattr(d.value, "value") else _text(d.value))
        else:
            key = (_unit(d.unit1), _unit(d.unit2))
            if key not in CONSTANTS:
                known = ", ".join(f"({a}) ({b})" for a, b in CONSTANTS)
                raise self.src.error(
                    f"UNITS factor {cname} = ({key[0]}) ({key[1]}) is not known (known: {known})",
                    rf"\b{re.escape(cname)}\s*=",
                )
            value = CONSTANTS[key]
        self.kinds[cname] = "const"
        self.constants[cname] = value

    # -- execution -----------------------------------------------------------------------------------

    def _frame(self):
        g = {}
        for n, k in self.kinds.items():
            if k == "assigned":
                g[n] = UNSET
            elif k == "const":
                g[n] = self.constants[n]
            else:
                g[n] = self.symbols[n]
        return _Frame(g, {})

    def _read(self, name, frame):
        if name in frame.locals:
            value = frame.locals[name]
        elif name in frame.globals:
            value = frame.globals[name]
        else:
            raise self.src.error(f"{name} is not declared", rf"\b{re.escape(name)}\b")
        if value is UNSET or value is MAYBE:
            how = "before it is assigned" if value is UNSET else "where only some IF branches assigned it"
            raise self.src.error(
                f"{name} is read {how} (values kept between calls are not supported)",
                rf"\b{re.escape(name)}\b",
            )
        return value

    def _write(self, name, value, frame, where):
        if name in frame.locals:
            frame.locals[name] = value
        elif self.kinds.get(name) in ("assigned", "v") or self.kinds.get(name) in frame.writable:
            frame.globals[name] = value
        else:
            what = {
                "param": "a PARAMETER",
                "state": "a STATE",
                "ion": "an ion concentration or current read",
                "const": "a constant",
                "celsius": "celsius",
            }.get(self.kinds.get(name), "not declared")
            raise self.src.error(f"assignment to {name}, which is {what}", rf"\b{re.escape(name)}\s*=", where)

    def _exec(self, statements, frame, where):
        for s in statements:
            t = type(s).__name__
            if t in ("UnitState", "TableStatement", "LineComment", "BlockComment"):
                continue
            if t == "LocalListStatement":
                for var in s.variables:
                    frame.locals[var.get_node_name()] = UNSET
            elif t == "IfStatement":
                self._if(s, frame, where)
            elif t == "ExpressionStatement":
                self._statement(s.expression, frame, where)
            else:
                raise self.src.error(f"{t} statements are not supported: {_text(s).strip()[:60]}",
                                     re.escape(_text(s).split()[0]), where)  # fmt: skip

    def _statement(self, e, frame, where):
        while type(e).__name__ == "WrappedExpression":
            e = e.expression
        t = type(e).__name__
        if t == "BinaryExpression" and e.op.eval() == "=":
            self._write(e.lhs.get_node_name(), self._eval(e.rhs, frame, where), frame, where)
        elif t == "DiffEqExpression":
            lhs = e.expression.lhs
            prime = lhs.name if type(lhs).__name__ == "VarName" else lhs
            state = prime.get_node_name()
            if type(prime).__name__ != "PrimeName" or self.kinds.get(state) != "state":
                raise self.src.error(
                    f"{_text(lhs)} is not the derivative of a STATE", re.escape(_text(lhs)), where
                )
            if prime.order.eval() != 1:
                raise self.src.error(
                    f"{state}: derivatives of order > 1 are not supported", rf"\b{state}'", where
                )
            frame.globals[state + "'"] = self._eval(e.expression.rhs, frame, where)
        elif t == "FunctionCall":
            self._call(e, frame, where, statement=True)
        elif t == "SolveBlock":
            raise self.src.error("SOLVE outside BREAKPOINT", r"\bSOLVE\b", where)
        else:
            raise self.src.error(f"statement not supported: {_text(e).strip()[:60]}", None, where)

    def _if(self, s, frame, where):
        if self._guard(s, frame, where):
            return
        branches = [(s.condition, s.statement_block)] + [(b.condition, b.statement_block) for b in s.elseifs]
        els = s.elses.statement_block.statements if s.elses is not None else []
        self._branch(branches, els, frame, where)

    def _guard(self, s, frame, where):
        """Run s as a Guard if it is `IF (x == c) { x = x + δ }` (numbers c, δ; 0 < |δ| <= GUARD_SHIFT)."""
        body = s.statement_block.statements
        if (
            s.elseifs
            or s.elses is not None
            or len(body) != 1
            or type(body[0]).__name__ != "ExpressionStatement"
        ):
            return False
        cond, assign = _unwrap(s.condition), _unwrap(body[0].expression)
        if not (_is_binary(cond, "==") and _is_binary(assign, "=") and _is_binary(_unwrap(assign.rhs), "+")):
            return False
        name, add = assign.lhs.get_node_name(), _unwrap(assign.rhs)
        sides = [_unwrap(cond.lhs), _unwrap(cond.rhs)]
        names = [type(x).__name__ == "VarName" and x.get_node_name() == name for x in sides]
        if names.count(True) != 1 or not (type(_unwrap(add.lhs)).__name__ == "VarName"
                                         and _unwrap(add.lhs).get_node_name() == name):  # fmt: skip
            return False
        c = self._eval(sides[names.index(False)], frame, where)
        delta = self._eval(add.rhs, frame, where)
        if not (c.is_number and delta.is_number and 0 < abs(delta) <= GUARD_SHIFT):
            return False
        self._write(name, Guard(self._read(name, frame), c, delta), frame, where)
        return True

    def _branch(self, branches, els, frame, where):
        (cond_node, block), rest = branches[0], branches[1:]
        cond = self._condition(cond_node, frame, where)
        yes, no = frame.copy(), frame.copy()
        self._exec(block.statements, yes, where)
        if rest:
            self._branch(rest, els, no, where)
        else:
            self._exec(els, no, where)
        for scope in ("globals", "locals"):
            target, a, b = getattr(frame, scope), getattr(yes, scope), getattr(no, scope)
            for key in list(target) + [k for k in a if k not in target and k in b]:
                va, vb = a.get(key, UNSET), b.get(key, UNSET)
                if va is vb or (va is not UNSET and va is not MAYBE and vb is not UNSET and vb is not MAYBE
                                and va == vb):  # fmt: skip
                    target[key] = va
                elif va is UNSET or va is MAYBE or vb is UNSET or vb is MAYBE:
                    target[key] = MAYBE
                else:
                    target[key] = sp.Piecewise((va, cond), (vb, True))

    def _condition(self, node, frame, where):
        c = self._eval(node, frame, where)
        if isinstance(c, (sp.logic.boolalg.Boolean, sp.core.relational.Relational)):
            return c
        return sp.Ne(c, 0)

    def _eval(self, node, frame, where):
        t = type(node).__name__
        if t in ("WrappedExpression", "ParenExpression"):
            return self._eval(node.expression, frame, where)
        if t in ("Double", "Float"):
            return sp.Rational(node.value)
        if t == "Integer":
            return sp.Integer(node.value)
        if t == "DoubleUnit":
            return self._eval(node.value, frame, where)
        if t in ("VarName", "Name"):
            if t == "VarName" and node.index is not None:
                raise self.src.error(
                    f"array variables are not supported: {_text(node)}", re.escape(_text(node)), where
                )
            return self._read(node.get_node_name(), frame)
        if t == "UnaryExpression":
            x, op = self._eval(node.expression, frame, where), node.op.eval()
            return -x if op == "-" else sp.Not(x if isinstance(x, sp.logic.boolalg.Boolean) else sp.Ne(x, 0))
        if t == "BinaryExpression":
            op = node.op.eval()
            a, b = self._eval(node.lhs, frame, where), self._eval(node.rhs, frame, where)
            ops = {
                "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                "^": lambda: a**b, "==": lambda: sp.Eq(a, b), "!=": lambda: sp.Ne(a, b),
                "<": lambda: sp.Lt(a, b), "<=": lambda: sp.Le(a, b), ">": lambda: sp.Gt(a, b),
                ">=": lambda: sp.Ge(a, b), "&&": lambda: sp.And(a, b), "||": lambda: sp.Or(a, b),
            }  # fmt: skip
            if op not in ops:
                raise self.src.error(f"operator {op} is not supported", re.escape(op), where)
            return ops[op]()
        if t == "FunctionCall":
            return self._call(node, frame, where)
        raise self.src.error(f"expression not supported: {_text(node).strip()[:60]}", None, where)

    def _call(self, node, frame, where, statement=False):
        fname = node.get_node_name()
        args = [self._eval(a, frame, where) for a in node.arguments]
        if fname in FUNCTIONS and fname not in self.blocks:
            return FUNCTIONS[fname](*args)
        block = self.blocks.get(fname)
        if block is None or type(block).__name__ not in ("FunctionBlock", "ProcedureBlock"):
            raise self.src.error(
                f"call of {fname}, which is no FUNCTION or PROCEDURE", rf"\b{fname}\s*\(", where
            )
        names = [p.get_node_name() for p in block.parameters]
        if len(names) != len(args):
            raise self.src.error(f"{fname} takes {len(names)} arguments, called with {len(args)}",
                                 rf"\b{fname}\s*\(", where)  # fmt: skip
        self.depth += 1
        if self.depth > 50:
            raise self.src.error(f"{fname}: recursion is not supported", rf"\b{fname}\s*\(", where)
        inner = _Frame(frame.globals, dict(zip(names, args)))
        is_function = type(block).__name__ == "FunctionBlock"
        if is_function:
            inner.locals[fname] = UNSET
        self._exec(
            block.statement_block.statements, inner, self.src.block_start(r"(FUNCTION|PROCEDURE)", fname)
        )
        self.depth -= 1
        if is_function:
            return self._read(fname, inner)
        if not statement:
            raise self.src.error(f"PROCEDURE {fname} used as a value", rf"\b{fname}\s*\(", where)
        return None

    # -- the mechanism -------------------------------------------------------------------------------

    def read(self):
        self._declare()
        breakpoint_ = self.blocks.get("BreakpointBlock")
        solves, body = [], []
        for s in breakpoint_.statement_block.statements if breakpoint_ else ():
            e = getattr(s, "expression", None)
            (solves if type(e).__name__ == "SolveBlock" else body).append(s)
        where = self.src.block_start("BREAKPOINT")
        derivative = None
        for s in solves:
            sb = s.expression
            target = sb.block_name.get_node_name()
            method = _text(sb.method) if sb.method is not None else None
            if method not in METHODS:
                raise self.src.error(
                    f"SOLVE {target} METHOD {method}: the method must be one of {', '.join(METHODS)}",
                    rf"\bSOLVE\s+{target}\b", where,
                )  # fmt: skip
            if type(self.blocks.get(target)).__name__ != "DerivativeBlock" or derivative is not None:
                raise self.src.error(
                    f"SOLVE {target}: one DERIVATIVE block is supported", rf"\bSOLVE\s+{target}\b"
                )
            derivative = self.blocks[target]
        mech = Mechanism(
            self.name, self.kind, self.src.path, self.states, self.params, tuple(self.ion_reads),
            tuple(self.ion_writes), self.useion, self.currents, symbols=dict(self.symbols),
        )  # fmt: skip
        self._rates(mech, derivative)
        self._current(mech, body)
        self._net_receive(mech, self._initial(mech))
        return mech

    def _rates(self, mech, derivative):
        if not self.states:
            return
        if derivative is None:
            raise self.src.error("STATEs without a SOLVE of a DERIVATIVE block", r"\bSTATE\b")
        name = derivative.get_node_name()
        where = self.src.block_start("DERIVATIVE", name)
        frame = self._frame()
        self._exec(derivative.statement_block.statements, frame, where)
        states = [self.symbols[s] for s, _ in self.states]
        defaults = self._defaults()
        for (sname, _), x in zip(self.states, states):
            f = frame.globals.get(sname + "'")
            at = rf"\b{sname}\s*'"
            if f is None or f is MAYBE:
                raise self.src.error(f"DERIVATIVE {name} gives no equation {sname}' = ... on every path",
                                     r"\bDERIVATIVE\b", where)  # fmt: skip
            coupled = sorted(str(y) for y in f.free_symbols & set(states) if y != x)
            if coupled:
                raise self.src.error(
                    f"{sname}' depends on other states ({', '.join(coupled)}): only x' = (x∞ − x)/τ "
                    "equations, one per state, are supported",
                    at,
                    where,
                )
            atoms = {}
            g = _atomize(f, x, atoms)  # the parts free of x as symbols, so that x∞ = −a/b cancels
            b = sp.diff(g, x)
            if b.has(x) and sp.simplify(b).has(x):
                raise self.src.error(
                    f"{sname}' is nonlinear in {sname}: only x' = a + b·x is supported", at, where
                )
            if b == 0:
                raise self.src.error(f"{sname}' does not depend on {sname} (τ would be infinite)", at, where)
            a = g.subs(x, 0)
            back = {sym: e for e, sym in atoms.items()}
            for out, value in ((mech.xinf, -a / b), (mech.tau, -1 / b)):
                out.append(self._regularize(sp.expand(value).xreplace(back), mech, defaults))
        for out in (*mech.xinf, *mech.tau):
            extra = out.free_symbols - {self.symbols[n] for n in ("v", "celsius", *self.ion_reads)}
            extra -= {self.symbols[p] for p, _, _ in self.params}
            if extra:
                raise self.src.error(f"rates depend on {sorted(map(str, extra))}", None, where)

    def _defaults(self):
        values = {self.symbols[p]: sp.Float(d) for p, d, _ in self.params}
        values[self.symbols["celsius"]] = sp.Float(6.3)
        for r in self.ion_reads:
            values[self.symbols[r]] = sp.Float(CAI_REST if r == "cai" else REVERSAL_DEFAULTS.get(r, 0.0))
        return values

    def _regularize(self, expr, mech, defaults):
        """expr with x/(exp(x) − 1) forms as Exprelr, and its Guards replaced by their x where the result is
        proven finite at every guarded V (with the default parameters), else by their Piecewise."""
        v = self.symbols["v"]
        points = []
        stripped = _strip_guards(expr, v, points)
        if stripped is not None:
            rewritten, count = _exprelr(stripped)
            if all(_finite(rewritten.subs(v, p).subs(defaults)) for p in points):
                mech.guards_dropped.extend(p for p in points if p not in mech.guards_dropped)
                mech.exprelr_rewrites += count
                return rewritten
        kept, count = _exprelr(_unguard(expr))
        mech.exprelr_rewrites += count
        return kept

    def _current(self, mech, body):
        frame = self._frame()
        where = self.src.block_start("BREAKPOINT")
        self._exec(body, frame, where)
        total = sp.Integer(0)
        for c in self.currents:
            value = frame.globals.get(c)
            if value is UNSET or value is MAYBE:
                raise self.src.error(
                    f"BREAKPOINT does not assign the current {c} on every path", r"\bBREAKPOINT\b"
                )
            value = _unguard(value)
            total += value
            if c == "ica":
                mech.ica = value
        allowed = {self.symbols[n] for n in ("v", *self.ion_reads, *(s for s, _ in self.states))}
        allowed |= {self.symbols[p] for p, _, _ in self.params}
        extra = total.free_symbols - allowed
        if extra:
            raise self.src.error(
                f"the current depends on {sorted(map(str, extra))}, which current kernels do not receive",
                r"\bBREAKPOINT\b",
            )
        mech.current = total
        if "cai" in self.ion_writes:
            mech.cai_state = [s for s, _ in self.states].index("cai")

    def _initial(self, mech):
        """mech.initial: each state after the INITIAL block, from its start value (see the module doc).
        A PARAMETER that INITIAL sets (Exp2Syn's guard of tau1 against tau2) holds that value in every
        block, as in NEURON, where it is set once at initialisation. Returns the block's frame."""
        start = {self.symbols[s]: sp.Float(CAI_REST) if s == "cai" else sp.Integer(0) for s, _ in self.states}
        frame = self._frame()
        frame.writable = frozenset(("state", "param"))
        block = self.blocks.get("InitialBlock")
        if block is not None:
            self._exec(block.statement_block.statements, frame, self.src.block_start("INITIAL"))
        set_params = {}
        for p, _, _ in self.params:
            value = frame.globals[p]
            if value is MAYBE:
                raise self.src.error(f"INITIAL sets {p} on some IF branches only", r"\bINITIAL\b")
            if value != self.symbols[p]:
                set_params[self.symbols[p]] = _unguard(value)
        if set_params:
            for out in (mech.xinf, mech.tau):
                out[:] = [e.xreplace(set_params) for e in out]
            mech.current = mech.current.xreplace(set_params)
            mech.ica = mech.ica.xreplace(set_params) if mech.ica is not None else None
        allowed = {self.symbols[n] for n in ("v", "celsius", *self.ion_reads)}
        allowed |= {self.symbols[p] for p, _, _ in self.params}
        defaults = self._defaults()
        for sname, _ in self.states:
            value = frame.globals[sname]
            if value is MAYBE:
                raise self.src.error(f"INITIAL sets {sname} on some IF branches only", r"\bINITIAL\b")
            value = sp.sympify(value).xreplace(start)
            extra = value.free_symbols - allowed
            if extra:
                raise self.src.error(f"INITIAL: {sname} depends on {sorted(map(str, extra))}", r"\bINITIAL\b")
            mech.initial.append(self._regularize(value, mech, defaults))
        return frame

    def _net_receive(self, mech, initial):
        """mech.event_scale from NET_RECEIVE(weight): each state's change must be weight times an expression
        of the parameters (and of what INITIAL assigned), as in ExpSyn and Exp2Syn."""
        block = self.blocks.get("NetReceiveBlock")
        if block is None:
            return
        where = self.src.block_start("NET_RECEIVE")
        if mech.kind != "point":
            raise self.src.error("NET_RECEIVE in a SUFFIX mechanism: only a POINT_PROCESS takes events",
                                 r"\bNET_RECEIVE\b")  # fmt: skip
        args = [a.get_node_name() for a in block.parameters]
        if len(args) != 1:
            raise self.src.error(f"NET_RECEIVE({', '.join(args)}): one argument, the weight, is supported",
                                 r"\bNET_RECEIVE\b")  # fmt: skip
        weight = sp.Symbol("weight", real=True)
        frame = self._frame()
        frame.writable = frozenset(("state",))
        for name, kind in self.kinds.items():  # what INITIAL assigned, and the parameters it set
            if kind in ("assigned", "param") and initial.globals.get(name) not in (UNSET, MAYBE, None):
                frame.globals[name] = initial.globals[name]
        frame.locals[args[0]] = weight
        self._exec(block.statement_block.statements, frame, where)
        params = {self.symbols[p] for p, _, _ in self.params}
        mech.event_scale = []
        for sname, _ in self.states:
            x = self.symbols[sname]
            change = sp.sympify(frame.globals[sname]) - x
            scale = sp.diff(change, weight)
            if scale.free_symbols - params or sp.simplify(change - weight * scale) != 0:
                raise self.src.error(
                    f"NET_RECEIVE: {sname} must change by weight times an expression of the parameters "
                    f"(got {change})", rf"\b{sname}\s*=", where,
                )  # fmt: skip
            mech.event_scale.append(_unguard(scale))


def _atomize(expr, x, atoms):
    """expr with each largest subexpression free of x replaced by a symbol, products and powers of such
    taken apart (atoms: subexpression -> symbol)."""
    if not expr.has(x):
        if expr.is_number:
            return expr
        if expr.is_Mul:
            return sp.Mul(*[_atomize(a, x, atoms) for a in expr.args])
        if expr.is_Pow and expr.exp.is_number:
            return sp.Pow(_atomize(expr.base, x, atoms), expr.exp)
        if expr not in atoms:
            atoms[expr] = sp.Dummy(f"a{len(atoms)}")
        return atoms[expr]
    if not expr.args:
        return expr
    return expr.func(*[_atomize(a, x, atoms) for a in expr.args])


def _unwrap(node):
    while type(node).__name__ in ("WrappedExpression", "ParenExpression"):
        node = node.expression
    return node


def _is_binary(node, op):
    return type(node).__name__ == "BinaryExpression" and node.op.eval() == op


def _unguard(expr):
    """expr with every Guard written as its Piecewise (the .mod file's own semantics)."""
    return expr.replace(lambda e: isinstance(e, Guard), lambda e: e.as_piecewise())


def _strip_guards(expr, v, points):
    """expr with every Guard(x, c, δ) replaced by x, bottom-up, appending to points the V where x = c;
    None where some x = c has no single numeric solution."""
    if not expr.args:
        return expr
    args = [_strip_guards(a, v, points) for a in expr.args]
    if any(a is None for a in args):
        return None
    if not isinstance(expr, Guard):
        return expr.func(*args)
    x, c, _ = args
    roots = sp.solve(x - c, v) if x.free_symbols == {v} else []
    if len(roots) != 1 or not roots[0].is_number:
        return None
    points.append(roots[0])
    return x


def _exprelr(expr):
    """(expr with every factor pair λ·u / (β·(exp(u) − 1)) written (λ/β)·Exprelr(u), count of rewrites)."""
    if not expr.args:
        return expr, 0
    parts = [_exprelr(a) for a in expr.args]
    count = sum(c for _, c in parts)
    expr = expr.func(*[a for a, _ in parts])
    if not expr.is_Mul:
        return expr, count
    factors = list(expr.args)
    for k, f in enumerate(factors):
        if not (f.is_Pow and f.exp == -1 and f.base.is_Add and len(f.base.args) == 2):
            continue
        alpha, term = sorted(f.base.args, key=lambda a: not a.is_number)
        beta, rest = term.as_coeff_Mul()
        if not (alpha.is_number and isinstance(rest, sp.exp) and alpha + beta == 0):
            continue
        u = rest.args[0]
        for j, g in enumerate(factors):
            ratio = _proportion(g, u) if j != k else None
            if ratio is not None:
                others = [x for i, x in enumerate(factors) if i not in (j, k)]
                return sp.Mul(*others, ratio / beta, Exprelr(u)), count + 1
    return expr, count


def _proportion(g, u):
    """λ ≠ 0 (free of V) with g = λ·u, where g and u are both of degree 1 in V; else None."""
    (v,) = [s for s in u.free_symbols if s.name == "v"] or [None]
    if v is None or not (g.is_polynomial(v) and u.is_polynomial(v)):
        return None
    if sp.degree(g, v) != 1 or sp.degree(u, v) != 1:
        return None
    ratio = sp.diff(g, v) / sp.diff(u, v)
    if ratio.has(v) or ratio == 0 or sp.expand(g - ratio * u) != 0:
        return None
    return ratio


def _finite(value):
    """Whether a sympy value is a finite real number."""
    try:
        z = complex(value.evalf(30))
    except TypeError:  # symbols left, or zoo/nan
        return False
    return z.imag == 0 and abs(z.real) < float("inf")


def read(path, text):
    """The Mechanism of the .mod file at path, whose text is given (MechanismError where unsupported)."""
    return Reader(path, text).read()
