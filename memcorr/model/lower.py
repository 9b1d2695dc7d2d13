"""Checked program -> state-space model (docs/method.md §2).

Input: ``dsl.check.Checked``. Output: ``Model`` — the pre-step states ``s`` with
their initial values, the state map ``s_{n+1} = Φ(s_n, θ_n)`` and ``F`` with
``θ_{n+1} = θ_n − h F(s_n, θ_n)``, all sympy expressions for one coordinate.

What lowering does, in order:

- statements run top to bottom; temporaries are inlined, a read of a state sees
  its old value before its assignment and the new one after;
- ``theta[n - k]`` and ``g[n - k]`` become lag states (a shift register, initial
  value the starting point); ``sum(k = a .. n, c r^k X(θ_{n−k}))`` becomes a
  state ``σ ← r σ + X(θ_n)`` (and its lags when ``a > 1``); a sum with literal
  bounds is unrolled;
- a state of order ``h`` (velocity form, docs/language.md) is rescaled, ``v = h w``, and so is
  ``θ − θ[n−k]`` in a two-step form (``d_k = (θ − θ[n−k])/h``);
- states that never influence ``theta`` are left out (``check`` warns about them);
- ``F = (θ − θ_new)/h`` must have a limit as ``h → 0`` (docs/language.md's rule), and the
  memory must decay: the state Jacobian at the fixed point has every
  eigenvalue inside the unit circle (checked numerically at the defaults and
  at points inside the parameters' domains).
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from fractions import Fraction

import sympy as sp

from ..algebra.atoms import LOSS, THETA, CoordSum, Dot, FieldSymbol, G, Grad, LossAt, Norm, outer_atoms, simplify
from ..dsl.ast import Call, Chain, History, IndexedSum, Name, Neg, Node, Num, ParamDecl, Pow, Visitor
from ..dsl.check import Checked, history_lag, sum_bound
from ..dsl.parse import literal
from ..errors import DSLError, Span
from .decay import check_decay
from .types import Model, Parameter, StateVar

log = logging.getLogger("memcorr")

MAX_LITERAL_EXPONENT = 100  # 9^9^9 would otherwise be computed exactly, forever
_FUNCTIONS = {
    "sqrt": sp.sqrt,
    "abs": sp.Abs,
    "sign": lambda x: sp.S.One if x.is_nonnegative else sp.sign(x),  # sign(g²) = 1 away from its kink
    "exp": sp.exp,
    "log": sp.log,
    "tanh": sp.tanh,
    "max": sp.Max,
    "min": sp.Min,
    "grad": Grad,
    "loss": LossAt,
    "norm": Norm,
    "dot": Dot,
    "sum": CoordSum,
}


# ------------------------------------------------------------------ symbols
def param_symbol(p: ParamDecl) -> sp.Symbol:
    """A real symbol whose sign assumptions follow the declared domain."""
    assumptions = {"real": True}
    dom = p.domain
    if dom is not None:
        if dom.lo > 0 or (dom.lo == 0 and not dom.lo_closed):
            assumptions["positive"] = True
        elif dom.lo >= 0:
            assumptions["nonnegative"] = True
        elif dom.hi < 0 or (dom.hi == 0 and not dom.hi_closed):
            assumptions["negative"] = True
    return sp.Symbol(p.name, **assumptions)


def number(text: str) -> sp.Rational:
    """A literal, exactly: ``1e-8`` is 1/10^8, not the nearest binary float."""
    exact = Fraction(text)
    return sp.Rational(exact.numerator, exact.denominator)


# ------------------------------------------------------------------ lowering
class _Lowering(Visitor):
    def __init__(self, checked: Checked):
        self.c = checked
        self.h = sp.Symbol(checked.step, positive=True)
        self.n = sp.Symbol("n", integer=True, nonnegative=True)
        self.params = {
            name: Parameter(name, param_symbol(p), p.default, p.domain, p.small) for name, p in checked.params.items()
        }
        self.constants = {name: p.symbol for name, p in self.params.items()}
        self.constants[checked.step] = self.h
        self.states: dict[str, StateVar] = {}
        for name, decl in checked.states.items():
            if not checked.reaches_theta(name):
                continue  # warned about in check; without influence it has no place in the model
            sym = FieldSymbol(name, real=True)
            init = self.expr(decl.init, {}) if decl.init is not None else sp.S.Zero
            self.states[name] = StateVar(name, sym, init, sym, "state", decl.span)
        self.sums = 0

    # ----------------------------------------------------------- expressions
    def expr(self, node: Node, env: dict[str, sp.Expr], index: dict[str, sp.Symbol] | None = None):
        """AST expression -> sympy, reading names from ``env`` (``index``: the sum indices in scope)."""
        return self.visit(node, env, index or {})

    def visit_Num(self, node: Num, env, index):
        return number(node.text)

    def visit_Name(self, node: Name, env, index):
        return self.name(node, env, index)

    def visit_Neg(self, node: Neg, env, index):
        return -self.expr(node.operand, env, index)

    def visit_Chain(self, node: Chain, env, index):  # one n-ary Add or Mul: linear, not quadratic, in length
        values = [self.expr(o, env, index) for o in node.operands]
        if node.ops[0] in "+-":
            return sp.Add(values[0], *[v if op == "+" else -v for op, v in zip(node.ops, values[1:])])
        return sp.Mul(values[0], *[v if op == "*" else 1 / v for op, v in zip(node.ops, values[1:])])

    def visit_Pow(self, node: Pow, env, index):
        base, exponent = self.expr(node.base, env, index), self.expr(node.exponent, env, index)
        if base.is_Number and exponent.is_Number and abs(exponent) > MAX_LITERAL_EXPONENT:
            raise DSLError(
                f"a power of numbers with exponent {sp.sstr(exponent)[:20]} is too large "
                f"(the limit is {MAX_LITERAL_EXPONENT})",
                node.span,
            )
        return base**exponent

    def visit_Call(self, node: Call, env, index):
        return _FUNCTIONS[node.func](*[self.expr(a, env, index) for a in node.args])

    def visit_History(self, node: History, env, index):
        return self.history(node, index)

    def visit_IndexedSum(self, node: IndexedSum, env, index):
        return self.indexed_sum(node, env, index)

    def name(self, node: Name, env, index):
        if node.id in index:
            return index[node.id]
        if node.id in env:
            return env[node.id]
        fixed = {"theta": THETA, "g": G, "n": self.n, "loss": LOSS}
        if node.id in fixed:
            return fixed[node.id]
        return self.constants[node.id]

    def history(self, node: History, index):
        var, lag = history_lag(node.index, frozenset(index))
        if var is not None:
            return _HistoryAt(node.name, lag)
        return self.lag(node.name, lag, node.span)

    def lag(self, base: str, lag: int, span: Span) -> sp.Expr:
        """The value of ``base`` (theta, g or a state) ``lag`` steps back, through lag states."""
        current = {"theta": THETA, "g": G}.get(base)
        if lag == 0:
            return current
        init = current
        previous = current
        for k in range(1, lag + 1):
            name = f"{base}[n-{k}]"
            if name not in self.states:
                sym = FieldSymbol(name, real=True)
                self.states[name] = StateVar(name, sym, init, previous, "lag", span)
            previous = self.states[name].symbol
        return previous

    def indexed_sum(self, node: IndexedSum, env, index):
        assert isinstance(node.lo, Num)  # check() admits literal lower bounds only
        lo = int(float(node.lo.text))
        to_n, end = sum_bound(node.hi)
        k = sp.Dummy(node.index, integer=True, nonnegative=True)
        if not to_n:  # literal bounds: unroll
            total = sp.S.Zero
            for j in range(lo, end + 1):
                body = self.expr(node.body, env, {**index, node.index: sp.Integer(j)})
                total += self.unroll_history(body, j, node.span)
            return total
        body = sp.expand(self.expr(node.body, env, {**index, node.index: k}))
        return sp.Add(*[self.geometric_term(t, k, lo, end, node) for t in sp.Add.make_args(body)])

    def unroll_history(self, body, j: int, span: Span):
        marks = body.atoms(_HistoryAt)
        return body.xreplace({m: self.lag(m.base, j + m.offset, span) for m in marks})

    def geometric_term(self, term, k, lo: int, d: int, node: IndexedSum):
        """``Σ_{k=lo}^{n−d} c r^k X(θ_{n−d−k})`` -> ``c r^lo σ_{n−lo−d}`` with ``σ ← r σ + X(θ_n)``.

        The history inside must be read ``d`` steps behind the index (``theta[n - d - k]``), so
        that the sum is the full geometric sum of ``d`` steps ago; a term without history is a
        constant in ``k`` and sums the same way."""
        marks = term.atoms(_HistoryAt)
        weight, x = term.as_independent(*marks, as_Add=False) if marks else (term, sp.S.One)
        constant, geometric = weight.as_independent(k, as_Add=False)
        ratio = simplify(geometric.subs(k, k + 1) / geometric)
        if x.has(k) or ratio.has(k) or ratio.has(self.n):
            raise DSLError(
                "the weights of a sum over the history must be geometric in the index (like `beta^k`)",
                node.body.span,
                hint="write the sum as `sum(k = 0 .. n, beta^k * X)` with X depending on `theta[n - k]` or `g[n - k]`",
            )
        if any(m.offset != d for m in marks):
            hi = "n" if d == 0 else f"n - {d}"
            raise DSLError(
                f"a sum up to `{hi}` reads the history as `theta[{hi} - k]` or `g[{hi} - k]`",
                node.body.span,
                hint="other shifts would reach before the first step",
            )
        current = x.xreplace({m: {"theta": THETA, "g": G}[m.base] for m in marks})
        self.sums += 1
        name = f"sigma{self.sums}"
        sym = FieldSymbol(name, real=True)
        self.states[name] = StateVar(name, sym, sp.S.Zero, ratio * sym + current, "sum", node.span)
        back = lo + d  # σ_{n−back}: the pre-step σ is σ_{n−1}
        value = (
            ratio * sym + current if back == 0 else (sym if back == 1 else self.state_lag(name, back - 1, node.span))
        )
        return constant * geometric.subs(k, lo) * value

    def state_lag(self, name: str, lag: int, span: Span):
        previous = self.states[name].symbol
        for j in range(1, lag + 1):
            lag_name = f"{name}[n-{j}]"
            if lag_name not in self.states:
                sym = FieldSymbol(lag_name, real=True)
                self.states[lag_name] = StateVar(lag_name, sym, sp.S.Zero, previous, "lag", span)
            previous = self.states[lag_name].symbol
        return previous

    # ------------------------------------------------------------- statements
    def run(self):
        # every declared state is readable; the ones that never reach theta just stay out of the model
        env: dict[str, sp.Expr] = {name: FieldSymbol(name, real=True) for name in self.c.states}
        theta_new = None
        for st in self.c.statements:
            value = self.expr(st.expr, env)
            if st.target == "theta":
                theta_new = value
            else:
                env[st.target] = value
        updates = {name: env[name] for name in self.c.states if name in self.states}
        self.states.update(
            {name: replace(s, update=updates[name]) for name, s in self.states.items() if name in updates}
        )
        self.temporaries = {name: value for name, value in env.items() if name not in self.c.states}
        return theta_new


class _HistoryAt(sp.Symbol):
    """Marks ``theta[n - offset - k]`` / ``g[…]`` inside a history sum while its terms are sorted."""

    def __new__(cls, base: str, offset: int = 0):
        obj = sp.Symbol.__new__(cls, f"{base}[n-{offset}-k]", real=True)
        obj.base, obj.offset = base, offset
        return obj


# --------------------------------------------------------------- h-scaling
def over_h(expr, h):
    """``expr / h`` with the ``h`` cancelled where ``expr`` carries it as a factor."""
    return sp.factor_terms(sp.factor_terms(expr) / h)


def _constant(expr) -> bool:
    """No field symbol, loss or atom: the same number at every point and coordinate."""
    return not any(isinstance(x, FieldSymbol) or x == LOSS for x in expr.free_symbols) and not outer_atoms(expr)


def rescale_velocity(states: dict[str, StateVar], theta_new, h):
    """Find states of order ``h`` (velocity form) and substitute ``v = h w``.

    A declared state starting at 0 whose update at ``h = 0`` is ``a·v`` (its own
    decaying part, nothing else) stays of order ``h``; states fed only by such
    states and ``h``-terms follow, hence the loop.
    """
    velocity: set[str] = set()
    changed = True
    while changed:
        changed = False
        scale = {states[v].symbol: h * states[v].symbol for v in velocity}
        for name, s in states.items():
            if name in velocity or s.origin != "state" or s.init != 0 or s.update == s.symbol:
                continue
            at_zero = s.update.xreplace(scale).subs(h, 0)
            a = sp.diff(at_zero, s.symbol)
            if _constant(a) and _vanishes(at_zero - a * s.symbol):
                velocity.add(name)
                changed = True
    scale = {states[v].symbol: h * states[v].symbol for v in velocity}
    out = {}
    for name, s in states.items():
        update = s.update.xreplace(scale)
        if name in velocity:
            update = over_h(update, h)
        out[name] = replace(s, update=update, velocity=name in velocity)
    return out, theta_new.xreplace(scale)


def _vanishes(expr) -> bool:
    """``expr == 0``, expanded; a number at one point first, since expanding a long chain of
    states (each reading the new value of the one before) costs seconds and rarely vanishes."""
    rng = random.Random(0)
    atoms = sorted(outer_atoms(expr), key=sp.default_sort_key)
    at = expr.xreplace({a: sp.Float(rng.uniform(0.5, 1.5)) for a in atoms})
    at = at.xreplace({x: sp.Float(rng.uniform(0.5, 1.5)) for x in sorted(at.free_symbols, key=sp.default_sort_key)})
    value = sp.N(at)
    if value.is_number and value.is_extended_real and abs(value) > 1e-6:
        return False
    return sp.expand(expr) == 0


def rescale_differences(states: dict[str, StateVar], theta_new, h, checked: Checked):
    """Two-step form (``theta + beta * (theta - theta[n - 1]) - h * g``): ``θ − θ[n−k]`` is of order
    ``h``. When ``θ − θ_new`` vanishes at ``h = 0`` only once the past iterates equal ``θ``, write
    ``θ[n−k] = θ − h d_k`` with ``d_k = (θ − θ[n−k])/h``, a state of order 1 whose update follows
    from ``θ_{n+1} = θ_n − h F``: ``d_1 ← −F``, ``d_k ← d_{k−1} − F``."""
    lags = sorted(
        (s for s in states.values() if s.origin == "lag" and s.name.startswith("theta[")), key=lambda s: s.name
    )
    at_zero = (THETA - theta_new).subs(h, 0)
    if not lags or at_zero == 0 or simplify(at_zero.xreplace({s.symbol: THETA for s in lags})) != 0:
        return states, theta_new
    diffs = {s.name: FieldSymbol(f"d{s.name}", real=True) for s in lags}
    to_diff = {s.symbol: THETA - h * diffs[s.name] for s in lags}
    theta_new = theta_new.xreplace(to_diff)
    F = theta_form(theta_new, h, checked)
    out = {}
    for name, s in states.items():
        if name not in diffs:
            out[name] = replace(s, update=s.update.xreplace(to_diff))
            continue
        k = int(name.split("-")[1].rstrip("]"))
        previous = diffs[f"theta[n-{k - 1}]"] if k > 1 else 0
        out[f"d{name}"] = StateVar(f"d{name}", diffs[name], sp.S.Zero, previous - F, "difference", s.span)
    return out, theta_new


# ------------------------------------------------------------------ driver
def lower(checked: Checked) -> Model:
    """Build and validate the state-space model of a checked program."""
    program = checked.program
    try:
        lw = _Lowering(checked)
        theta_new = lw.run()
        states, theta_new = rescale_velocity(lw.states, theta_new, lw.h)
        states, theta_new = rescale_differences(states, theta_new, lw.h, checked)
        F = theta_form(theta_new, lw.h, checked)
        model = Model(
            program.name,
            program.description,
            lw.h,
            lw.n,
            lw.params,
            tuple(states.values()),
            F,
            checked,
            temporaries=lw.temporaries,
        )
        warnings = check_decay(model)
    except DSLError as err:
        raise err.located(program.source, program.filename) from None
    located = tuple(w.located(program.source, program.filename) for w in warnings)
    return replace(model, warnings=tuple(checked.warnings) + located)


def theta_form(theta_new, h, checked: Checked):
    """``F = (θ − θ_new)/h``, or a DSLError if ``θ − θ_new`` does not vanish with ``h``."""
    diff = THETA - theta_new
    st = checked.statements[checked.theta_index]
    at_zero = diff.subs(h, 0)
    if at_zero != 0 and simplify(at_zero) != 0:
        raise DSLError(
            f"the update is not `theta - {h} * (…)`: theta − (new theta) = {sp.sstr(at_zero)} when {h} = 0",
            st.span,
            hint=f"every change of theta must carry the step size `{h}`",
        )
    F = over_h(diff, h)
    if F.subs(h, 0).has(sp.zoo, sp.nan, sp.oo):
        # a quotient such as `(theta - h*u) / (1 + h*wd)` (Adan's decay): over one denominator h cancels
        numerator, denominator = sp.fraction(sp.together(diff))
        F = over_h(sp.expand(numerator), h) / denominator
    if F.subs(h, 0).has(sp.zoo, sp.nan, sp.oo):
        raise DSLError(
            f"(theta − new theta)/{h} has no limit as {h} → 0",
            st.span,
            hint=f"write the update as `theta = theta - {h} * (…)`",
        )
    return F


# ------------------------------------------------------------ fixed values
def _number_text(value) -> str:
    """A parameter's value as text: numbers (``5``, ``0.95``) by their shortest exact-enough repr."""
    if isinstance(value, bool):
        return str(value)  # not a number: refused by the caller
    if isinstance(value, (int, float, Fraction)) or isinstance(value, sp.Number):
        return repr(float(value)) if not isinstance(value, int) else str(value)
    return str(value).strip()


def with_values(model: Model, values: dict) -> Model:
    """The model with some parameters fixed to numbers (``derive --param beta2=0.95``): they leave
    ``params`` and are substituted exactly (``0.95`` is 19/20) everywhere; a name the program does
    not declare, a value that is no number or lies outside the parameter's domain is a DSLError."""
    program, decls = model.checked.program, model.checked.params
    fixed, numbers = {}, {}
    for name, text in values.items():
        if name not in decls:
            known = ", ".join(decls) or "none"
            raise DSLError(
                f"--param {name}={text}: `{name}` is not a parameter of {model.name}",
                program.optimizer.span,
                hint=f"its parameters: {known}",
            ).located(program.source, program.filename)
        decl = decls[name]
        text = _number_text(text)
        sign, digits = (-1 if text[:1] == "-" else 1), text[1:] if text.startswith(("+", "-")) else text
        try:
            value = sign * number(literal(digits, decl.span))
        except DSLError as err:
            raise DSLError(f"--param {name}={text}: {err.message}", decl.span, hint=err.hint).located(
                program.source, program.filename
            ) from None
        if decl.domain is not None and not decl.domain.contains(float(value)):
            raise DSLError(
                f"--param {name}={text} is outside the domain {decl.domain} of `{name}`",
                decl.span,
                hint="pick a value inside the declared domain",
            ).located(program.source, program.filename)
        fixed[model.params[name].symbol] = value
        numbers[name] = float(value)

    def put(e):
        return e.xreplace(fixed)

    states = tuple(replace(s, init=put(s.init), update=put(s.update)) for s in model.states)
    return replace(
        model,
        params={k: p for k, p in model.params.items() if p.symbol not in fixed},
        states=states,
        F=put(model.F),
        temporaries={k: put(v) for k, v in model.temporaries.items()},
        fixed={**model.fixed, **numbers},
    )


def per_group(model: Model) -> tuple[Model, tuple[str, ...]]:
    """The model with every hyperparameter that does not set how fast a state forgets (it appears in
    no state's derivative by itself, nor in a power of ``n``: weight decay, ε, dampening) turned into a
    per-coordinate field. Expanded, it is the map with those hyperparameters allowed to differ from
    coordinate to coordinate (``Memoryless``'s parameter groups): a field is never pulled out of a
    Hessian-vector product as a parameter is, so ``∇²L[λθ]`` stays ``∇²L[λ ⊙ θ]``. Returns the model
    and the names turned into fields."""
    syms = model.symbols
    rates = {x for u, s in zip(model.Phi, syms) for x in sp.diff(u, s).free_symbols}
    rates |= {x for e in [*model.Phi, model.F] for p in e.atoms(sp.Pow) if p.exp.has(model.n) for x in p.free_symbols}
    names = tuple(k for k, p in model.params.items() if p.symbol not in rates)
    fields = {model.params[k].symbol: FieldSymbol(k, real=True) for k in names}

    def put(e):
        return e.xreplace(fields)

    states = tuple(replace(s, init=put(s.init), update=put(s.update)) for s in model.states)
    params = {k: p for k, p in model.params.items() if k not in names}
    return replace(model, params=params, states=states, F=put(model.F)), names
