"""The finite regime (``n`` symbolic): state-space model -> the first-order memoryless map at step
``n`` (docs/method.md §1).

Input: ``Model``. Output: ``Expansion`` with ``n`` symbolic: ``Ψ_0 = F^(n)(θ, …, θ)``,
``Ψ_1 = M^(n)(θ)`` and the states along the memoryless history.

Two constructions of the same theorem:

- ``_linear``: states that are linear recursions ``s ← a s + b(θ)`` fed by the current iterate,
  and lags of ``θ`` and ``g``: each source of memory is one closed term (the bundled forms).
- ``_general``: any triangular system, ``s ← a s + b`` with a constant rate ``a`` and ``b``
  reading the states before it, nonlinearly (AdaBelief's ``(g − m)²``, RMSprop's momentum fed by
  ``g/(√v + ε)``, EMAs of EMAs, the velocity form): the first-order response ``δ`` of the states
  to the past displacements, as sums over past steps (``history_sum``), closed where geometric.

Geometric sums take the generic branch (decay rates different from 1 and from each other);
where a denominator relating two parameters vanishes (``β3 = β2``, ``β2 = β1²``), the program is
derived again with the rates identified and kept in ``Expansion.confluent``.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..algebra.atoms import (
    LOSS,
    THETA,
    FieldSymbol,
    G,
    Hess,
    directional,
    distribute,
    expand_points,
    outer_atoms,
    real_diff,
    simplify,
)
from ..algebra.simplify import once_each, radicands, tidy
from ..algebra.sums import field_sum, history_sum, pure_atom, summed
from ..errors import DerivationError
from ..model.types import Model
from .expansion import Expansion, along, kink_notes, oriented
from .recurrence import recurrent


def finite(model: Model, order: int) -> Expansion:
    """The first-order finite-n memoryless map of docs/method.md §1, ``n`` symbolic, with the
    derivations where two decay rates coincide (``Expansion.confluent``)."""
    if order != 1:
        raise DerivationError(
            "the finite regime is first order (docs/method.md §1); use --regime stationary for higher orders"
        )
    split = _classify(model)
    expansion = _linear(model, *split) if split is not None else _general_or_loops(model)
    expansion.confluent = [
        (cond, finite(_identified(model, sub), order)) for cond, sub in _confluences(expansion, model).items()
    ]
    expansion.notes += [
        f"where {cond.lhs} = {cond.rhs} the closed sums above divide 0/0; the generated map and "
        "correction take their limit, the derivation with the rates identified (Expansion.confluent); "
        "the penalty does not"
        for cond, _ in expansion.confluent
    ]
    return oriented(expansion, model)


def _general_or_loops(model: Model) -> Expansion:
    """Closed sums over the steps where they exist and are flat (O(n) per call); else loops."""
    states = _triangular(model)
    if states is None:
        return recurrent(model)
    expansion = _general(model, states)
    exprs = [expansion.update, *expansion.corrections, *[x for v in expansion.states.values() for x in v]]
    nested = any(s.function.has(sp.Sum) or len(s.limits) > 1 for e in exprs for s in e.atoms(sp.Sum))
    return recurrent(model) if nested else expansion


def _confluences(e: Expansion, model: Model) -> dict:
    """{condition: substitution} for each denominator factor relating two or more parameters
    (``β1 − β3``, ``β2 − β1²``): a geometric sum's generic closed form, 0/0 where it vanishes."""
    params = {p.symbol for p in model.params.values()}
    exprs = sp.Tuple(e.update, *e.corrections, *[x for v in e.states.values() for x in v])
    bases = {p.base for p in exprs.atoms(sp.Pow) if p.exp.is_negative and p.base.free_symbols <= params}
    out: dict = {}
    for base in sorted(bases, key=sp.default_sort_key):
        numerator = sp.numer(sp.together(base))
        for factor, _ in sp.factor_list(numerator)[1] if numerator.is_polynomial() else []:
            if len(factor.free_symbols) < 2:
                continue
            for p in sorted(factor.free_symbols, key=str, reverse=True):  # β3 in terms of β1
                solutions = sp.solve(factor, p)
                if len(solutions) == 1:
                    out.setdefault(sp.Eq(p, solutions[0]), {p: solutions[0]})
                    break
    return out


def _identified(model: Model, sub: dict) -> Model:
    """``model`` with a parameter replaced by an expression in the others."""
    states = tuple(replace(st, update=st.update.xreplace(sub), init=st.init.xreplace(sub)) for st in model.states)
    return replace(model, F=model.F.xreplace(sub), states=states)


def _linear(model: Model, recursions: dict, lags: dict) -> Expansion:
    """Every source of memory as one closed term: recursions ``s ← a s + b(θ)`` and lags."""
    h, n = model.h, model.n
    s = sp.Dummy("s", integer=True, nonnegative=True)
    F = expand_points(model.F, 1)

    def memoryless_states(step):
        """Every state after ``step`` updates with all iterates equal to theta."""
        values = {}
        for sym, (a, b, init) in recursions.items():
            values[sym] = a**step * init + b * _geometric(a, step)
        for sym, (base, _) in lags.items():
            values[sym] = base
        return values

    F_s = _cancel_transients(F.subs(h, 0).xreplace(memoryless_states(s)).subs(n, s), s)  # F̄(s)
    update = tidy(F_s.xreplace({s: n}))  # F̄(n): the same cancellations, taken once
    at_n = memoryless_states(n)
    # one term per source of memory, each tidied on its own: they read as separate effects
    terms = [real_diff(F, h).subs(h, 0).xreplace(at_n)] if F.has(h) else []
    F0 = F.subs(h, 0)
    for sym, (a, b, init) in recursions.items():
        W = _weighted_sum(F_s, (a ** (n - s - 1) - a**n) / (1 - a), s, n)
        Q = _window_sum(F_s, s, n, n)
        terms.append(_state_derivative(F0, at_n, sym, directional(b, W) + a**n * directional(init, Q), n))
    for sym, (base, k) in lags.items():
        Q = _window_sum(F_s, s, n, sp.Min(k, n))
        terms.append(_state_derivative(F0, at_n, sym, directional(base, Q), n))
    states = {st.name: [tidy(at_n[st.symbol])] for st in model.states}
    return Expansion("finite", 1, update, [sp.Add(*[tidy(t) for t in terms])], states, kink_notes(model, update))


def _state_derivative(F0, at_n, sym, delta, n):
    """``F_s[δ]``: the derivative of ``F`` when the state ``sym`` moves by the field ``δ``.

    Taken as ``d/dt F(s + tδ)`` so that reductions (``norm(m)``) and gradients at a state
    (``grad(theta[n-1])``) are differentiated as the operators they are, not coordinatewise; with the
    states as symbols, filled in after (``along``): differentiating RAdam's filled-in map took seconds."""
    if delta == 0:
        return sp.S.Zero
    return _cancel_transients(along(F0, at_n, {sym: delta}), n)


def _geometric(a, steps):
    """``Σ_{i<steps} a^i``."""
    return steps if a == 1 else (1 - a**steps) / (1 - a)


def _cancel_transients(expr, step):
    """Cancel bias corrections like ``(1 − β^(n+1)) g / (1 − β^(n+1))``, under roots too,
    factoring only the products that involve the step so that the rest keeps its shape."""
    # keep b^(n-s) whole inside sums (no overflow); the stand-ins are fields, as the sums are
    sums = {e: FieldSymbol(f"@sum{i}") for i, e in enumerate(sorted(expr.atoms(sp.Sum), key=sp.default_sort_key))}
    expr = radicands(sp.expand_power_exp(expr.xreplace(sums)))
    expr = expr.replace(lambda e: e.is_Mul and e.has(step), once_each(sp.factor))
    return expr.xreplace({d: e for e, d in sums.items()})


def _classify(model: Model):
    """Split the states into linear recursions ``s ← a s + b(θ)`` fed by the current iterate alone,
    and lags; None where a state is not one of them (a velocity-form state carries the step size)."""
    h, n = model.h, model.n
    syms = set(model.symbols)
    recursions, lags = {}, {}
    for st in model.states:
        if st.velocity:
            return None
        if st.origin == "lag" and st.name.split("[")[0] in ("theta", "g"):
            base = THETA if st.name.startswith("theta") else G
            lags[st.symbol] = (base, int(st.name.split("-")[1].rstrip("]")))
            continue
        a = sp.diff(st.update, st.symbol)
        b = sp.expand(st.update - a * st.symbol)
        if a.free_symbols & (syms | {h, n, THETA, G, LOSS}) or outer_atoms(a) or b.free_symbols & (syms | {h, n}):
            return None
        recursions[st.symbol] = (a, b, st.init)
    return recursions, lags


def _weighted_sum(F_s, weight, s, n):
    """``W = Σ_{s=0}^{n−1} w(n, s) F̄(s)``, the direction of ``D b`` for a recursion."""
    return field_sum(F_s, weight, s, 0, n - 1)


def _window_sum(F_s, s, n, k):
    """``Q_k = Σ_{s=n−k}^{n−1} F̄(s)``: the displacement ``θ^(n−k) − θ^(n)`` over ``h``, to first order."""
    return field_sum(F_s, sp.S.One, s, n - k, n - 1)


# ------------------------------------------------------------ any triangular state system
def _general(model: Model, states: list) -> Expansion:
    """docs/method.md §1 as the first-order response of the states to the past displacements.

    Along the memoryless history (every iterate ``θ``, ``h = 0``) the states are ``σ_t``,
    ``σ_{t+1} = Φ(σ_t, θ)``. On the true history ending at ``θ^(n) = θ`` the iterates are
    ``θ^(t) = θ + h q_t``, ``q_t = Σ_{v=t}^{n−1} F̄(v)``, and the states ``σ_t + h δ_t``:
    ``δ_{t+1} = Φ_s δ_t + Φ_θ[q_t] + ∂_h Φ``, ``δ_0 = D init[q_0]``. Then ``M^(n) = F_s δ_n + ∂_h F``.
    With ``s ← a s + b`` (constant ``a``, ``b`` reading earlier states) both are sums over past
    steps: ``x_t = a^t x_0 + Σ_{u<t} a^(t−1−u) forcing(u)``."""
    h, n = model.h, model.n
    t = sp.Dummy("t", integer=True, nonnegative=True)
    phi = {st.symbol: expand_points(st.update, 1) for st in states}
    F = expand_points(model.F, 1)
    sigma: dict = {}  # σ_t, a function of the dummy t
    delta: dict = {}  # δ_t
    rate = {}
    for st in states:
        s = st.symbol
        rate[s] = a = sp.diff(phi[s].subs(h, 0), s)
        u = sp.Dummy("u", integer=True, nonnegative=True)
        feed = sp.expand((phi[s].subs(h, 0) - a * s).subs(n, u).xreplace(_at(sigma, t, u)))
        sigma[s] = tidy(_recursion(a, st.init, radicands(feed), t, u))

    def F_bar(step):
        return _cancel_transients(F.subs(h, 0).subs(n, step).xreplace(_at(sigma, t, step)), step)

    step_v = sp.Dummy("v", integer=True, nonnegative=True)
    F_v = tidy(F_bar(step_v))

    def q(step):  # θ^(step) − θ^(n), over h, to first order
        v = sp.Dummy("v", integer=True, nonnegative=True)
        return sp.Sum(F_v.xreplace({step_v: v}), (v, step, n - 1))

    for st in states:
        s, a = st.symbol, rate[st.symbol]
        u = sp.Dummy("u", integer=True, nonnegative=True)
        # the program's n is the step u here; q and δ keep the history's end n
        b = (phi[s].subs(h, 0) - a * s).subs(n, u)
        at_u = _at(sigma, t, u)
        forcing = (
            directional(b, q(u)).xreplace(at_u)
            + along(b, at_u, _at(delta, t, u))
            + real_diff(phi[s], h).subs(h, 0).subs(n, u).xreplace(at_u)
        )
        # summed at t = n only, where every range ends at n − 1 and the sums can be exchanged
        delta[s] = _recursion(a, directional(st.init, q(0)), forcing, t, u, summed=False)
    at_n = _at(sigma, t, n)
    correction = real_diff(F, h).subs(h, 0).xreplace(at_n) + along(F.subs(h, 0), at_n, _at(delta, t, n))
    correction = summed(correction)
    update = tidy(F_bar(n))
    out = {st.name: [tidy(at_n[st.symbol])] for st in model.states}
    return Expansion("finite", 1, update, [_tidy_closed(correction)], out, kink_notes(model, update))


def _tidy_closed(expr):
    """``tidy`` for the closed terms; terms with a sum over steps stay as built (tidy groups
    terms by their atoms, and an atom inside a sum reads that sum's step)."""
    terms = distribute(expr)
    open_ = [t for t in terms if t.has(sp.Sum)]
    sums = _gathered(sp.Add(*open_))
    stable = {s: sp.Sum(_stable(s.function), *s.limits) for s in sums.atoms(sp.Sum)}
    return tidy(sp.Add(*[t for t in terms if not t.has(sp.Sum)])) + sums.xreplace(stable)


def _stable(body):
    """Powers of one base combined (``β^n β^(−k) = β^(n−k)``), quotients split first
    (``(β1/β2)^k = β1^k β2^(−k)``): no factor overflows where the product does not."""

    def steps(p):  # a power growing with the steps, of a product of parameters
        return p.is_Pow and p.base.is_Mul and pure_atom(p.base) and not p.exp.is_number

    split = sp.expand_power_exp(body).replace(steps, lambda p: sp.Mul(*[b**p.exp for b in sp.Mul.make_args(p.base)]))
    return sp.powsimp(split, combine="exp")


def _triangular(model: Model) -> list | None:
    """The states in an order where each reads only itself (linearly, at a constant rate) and
    those before it; None where the states feed each other or a rate is not constant."""
    h = model.h
    pending = {st.symbol: st for st in model.states}
    out = []
    while pending:
        ready = [
            st
            for s, st in pending.items()
            if not (expand_points(st.update, 1).subs(h, 0).free_symbols & (set(pending) - {s}))
        ]
        if not ready:
            return None
        for st in ready:
            s = st.symbol
            at_zero = expand_points(st.update, 1).subs(h, 0)
            a = sp.diff(at_zero, s)
            if (
                a.free_symbols - {p.symbol for p in model.params.values()}
                or outer_atoms(a)
                or sp.diff(at_zero, s, 2) != 0
            ):
                return None
            out.append(st)
            del pending[s]
    return out


def _at(values: dict, t, step) -> dict:
    """``values`` (functions of the dummy ``t``) at ``step``."""
    return {s: x.xreplace({t: step}) for s, x in values.items()}


def _recursion(a, start, forcing, t, u, summed=True):
    """``x_t`` of ``x_{t+1} = a x_t + forcing(t)``, ``x_0 = start``: ``a^t start + Σ_{u<t} a^(t−1−u) forcing(u)``;
    the sum left unevaluated unless ``summed`` (it is summed once its range is known)."""
    if a == 0:  # a lag: the forcing one step back, the start at t = 0
        previous = forcing.xreplace({u: t - 1})
        return (
            previous
            if simplify(previous.xreplace({t: 0}) - start) == 0
            else sp.Piecewise((start, sp.Eq(t, 0)), (previous, True))
        )
    if not summed:
        return a**t * start + sp.Sum(a ** (t - 1 - u) * forcing, (u, 0, t - 1))
    return a**t * start + history_sum(a ** (t - 1 - u) * forcing, u, 0, t - 1)


def _gathered(expr):
    """Sums over the same steps as one sum (each is a pass over the steps in the generated code):
    ``c_1 Σ_v A_v + c_2 Σ_v B_v = Σ_v (c_1 A_v + c_2 B_v)`` for coefficients without atoms (an atom
    inside a sum would be evaluated at every step), inside Hessians when they are scalars."""
    groups: dict = {}
    rest = []
    for term in distribute(expr.replace(lambda e: isinstance(e, Hess), lambda e: Hess(_gathered(e.args[0])))):
        factors = sp.Mul.make_args(term)
        wrapped = [x for x in factors if isinstance(x, (sp.Sum, Hess)) and x.has(sp.Sum)]
        inner = (
            wrapped[0].args[0]
            if len(wrapped) == 1 and isinstance(wrapped[0], Hess)
            else wrapped[0]
            if wrapped
            else None
        )
        c = term / wrapped[0] if wrapped else None
        if (
            not isinstance(inner, sp.Sum)
            or len(inner.limits) != 1
            or (isinstance(wrapped[0], sp.Sum) and outer_atoms(c))
        ):
            rest.append(term)
            continue
        # in front of a Hessian only the scalar part of c goes inside; the rest is shared
        outside = sp.Mul(*[x for x in sp.Mul.make_args(c) if not pure_atom(x)]) if isinstance(wrapped[0], Hess) else 1
        v, lo, hi = inner.limits[0]
        common, bodies = groups.setdefault((type(wrapped[0]), lo, hi, outside), (v, []))
        bodies.append(c / outside * inner.function.xreplace({v: common}))
    merged = []
    for (kind, lo, hi, outside), (v, bodies) in groups.items():
        total = sp.Sum(sp.Add(*bodies), (v, lo, hi))
        merged.append(outside * Hess(total) if kind is Hess else total)
    return sp.Add(*rest, *merged)
