"""Sums over the past steps: ``Σ_{u=lo}^{hi} term`` with the summation pushed inside products,
atoms and nested sums, the first step split off where a term changes there, and sums swapped so
that the closed forms of geometric weights apply.
"""

from __future__ import annotations

import sympy as sp

from .atoms import FieldSymbol, Hess, distribute, linear_terms, outer_atoms, simplify, sum_by_key


def history_sum(expr, u, lo, hi):
    """``Σ_{u=lo}^{hi} expr``, with the sum pushed as far in as linearity allows.

    Per term: a weight in ``u`` alone sums in closed form where geometric; a Hessian whose
    argument depends on ``u`` takes the sum inside (``Σ c_u H[X_u] = H[Σ c_u X_u]``); a nested sum
    whose range depends on ``u`` is swapped (``Σ_u c_u Σ_{v=u}^{N} X_v = Σ_v X_v Σ_{u≤v} c_u``,
    ``Σ_u c_u Σ_{v<u} X_v = Σ_v X_v Σ_{u>v} c_u``); whatever is left stays one ``Sum`` that the
    generated code evaluates."""
    out = sp.S.Zero
    for term in distribute(expr):
        first = _first_step(term, u, lo)
        if first is not None:  # a lag's start: the first step on its own, the rest one step later
            at_lo, later = first
            out += summed(at_lo) + history_sum(later, u, lo + 1, hi)
            continue
        pulled = _pull_out(term)
        if pulled != term:
            out += history_sum(pulled, u, lo, hi)
            continue
        factors = sp.Mul.make_args(term)
        free = sp.Mul(*[f for f in factors if not f.has(u)])
        dep = [f for f in factors if f.has(u)]
        if not dep:
            out += free * (hi - lo + 1)
            continue
        weight = [f for f in dep if pure_atom(f)]
        rest = [f for f in dep if not pure_atom(f)]
        c = sp.Mul(*weight)
        if not rest:
            out += free * field_sum(c, sp.S.One, u, lo, hi)
        elif len(rest) == 1 and isinstance(rest[0], Hess):
            out += free * Hess(history_sum(c * rest[0].args[0], u, lo, hi))
        else:
            nested = [f for f in rest if isinstance(f, sp.Sum) and _bounds_on(f, u)]
            swapped = (
                _swap(nested[0], sp.Mul(*[f for f in dep if f is not nested[0]]), u, lo, hi)
                if len(nested) == 1
                else None
            )
            out += free * (swapped if swapped is not None else sp.Sum(sp.Mul(*dep), (u, lo, hi)))
    return out


def _first_step(term, u, lo):
    """``(term at u = lo, term for u > lo)`` when ``term`` holds ``Piecewise((A, Eq(u, lo)), (B, True))``."""
    for pw in term.atoms(sp.Piecewise):
        (a, cond), (b, _) = pw.args[0], pw.args[-1]
        if len(pw.args) == 2 and cond == sp.Eq(u, lo):
            return term.xreplace({pw: a}).xreplace({u: lo}), term.xreplace({pw: b})
    return None


def _pull_out(term):
    """Every sum factor of ``term`` split into its terms, with the factors that do not depend on
    its own index taken outside (``Σ_v a^u X_v = a^u Σ_v X_v``)."""
    factors = sp.Mul.make_args(term)
    sums = [f for f in factors if isinstance(f, sp.Sum)]
    if not sums:
        return term
    out = sp.Mul(*[f for f in factors if not isinstance(f, sp.Sum)])
    for s in sums:
        body, v, lo, hi = outer_range(s)
        split = sp.S.Zero
        for part in distribute(sp.expand_power_exp(body)):  # a^(u − v) = a^u a^(−v)
            inside = [f for f in sp.Mul.make_args(part) if f.has(v)]
            outside = [f for f in sp.Mul.make_args(part) if not f.has(v)]
            split += sp.Mul(*outside) * field_sum(sp.Mul(*inside), sp.S.One, v, lo, hi)
        out *= split
    return out


def outer_range(s: sp.Sum):
    """``Σ_{v=lo}^{hi} body`` for the outermost range of ``s`` (sympy merges nested sums into
    one with several ranges, innermost first)."""
    v, lo, hi = s.limits[-1]
    body = sp.Sum(s.function, *s.limits[:-1]) if len(s.limits) > 1 else s.function
    return body, v, lo, hi


def pure_atom(f) -> bool:
    """A weight: numbers, parameters and step indices only (no field, atom or sum)."""
    return not (f.has(sp.Sum) or outer_atoms(f) or any(isinstance(x, FieldSymbol) for x in f.free_symbols))


def _bounds_on(s: sp.Sum, u) -> bool:
    return any(a.has(u) or b.has(u) for _, a, b in s.limits)


def _swap(inner: sp.Sum, c, u, lo, hi):
    """``Σ_{u=lo}^{hi} c_u Σ_{v=A(u)}^{B(u)} X_v`` with the order of summation exchanged, for
    ``A = u, B ≥ hi`` fixed (a window to the end) or ``A`` fixed, ``B = u − 1`` (the past)."""
    X, v, A, B = outer_range(inner)
    if X.has(u):  # the body must not read the outer step (pulled out before)
        return None
    w = sp.Dummy("w", integer=True, nonnegative=True)
    if A == u and not B.has(u) and simplify(B - hi) == 0:
        return history_sum(X.xreplace({v: w}) * history_sum(c, u, lo, w), w, lo, B)
    if B == u - 1 and not A.has(u):
        # v runs to hi: the inner range u = v+1 … hi is empty at v = hi, so the bounds match the rest
        return history_sum(X.xreplace({v: w}) * history_sum(c, u, w + 1, hi), w, A, hi)
    return None


def separate(expr, s):
    """``expr(s)`` as ``Σ q_t(s) E_t``: scalar weights depending on ``s`` times fields free of ``s``."""
    pairs = [(fld, coeff) for coeff, fld in linear_terms(expr)]
    if any(fld.has(s) for fld, _ in pairs):
        return None
    return sum_by_key(pairs)


def closed_sum(weight, s, lo, hi):
    """``Σ_{s=lo}^{hi} weight`` in closed form, taking the generic branch of any Piecewise.

    Computed once per sum up to the names of its step indices: the finite regime meets the same few
    geometric sums hundreds of times, each time over fresh ``Dummy`` indices (AdaBelief's: 251
    calls, 24 distinct)."""
    key, back = _standard_indices(tuple(map(sp.sympify, (weight, s, lo, hi))))
    if key not in _CLOSED:
        _CLOSED[key] = _closed_sum(*key)
    return _CLOSED[key].xreplace(back)


_CLOSED: dict = {}
_STAND_INS: dict = {}


def _standard_indices(exprs: tuple):
    """``exprs`` with every ``Dummy`` replaced by a stand-in kept for the process, and the way back.
    Stand-ins are per name and rank (in ``dummy_index`` order), created in rank order, so that they
    sort among themselves as the dummies they replace do: sympy orders terms the same way."""
    dummies = sorted(set().union(*(e.atoms(sp.Dummy) for e in exprs)), key=lambda d: (d.name, d.dummy_index))
    there: dict = {}
    for d in dummies:
        rank = sum(1 for other in there if other.name == d.name)
        label = (d.name, rank, tuple(sorted(d.assumptions0.items())))
        if label not in _STAND_INS:
            _STAND_INS[label] = sp.Dummy(d.name, **d.assumptions0)
        there[d] = _STAND_INS[label]
    return tuple(e.xreplace(there) for e in exprs), {v: k for k, v in there.items()}


def _closed_sum(weight, s, lo, hi):
    total = sp.summation(sp.expand_power_exp(weight), (s, lo, hi))
    total = total.replace(lambda e: isinstance(e, sp.Piecewise), _generic_branch)
    return sp.factor_terms(simplify(total))


def _generic_branch(pw):
    for expr, cond in pw.args:
        if cond is sp.true or isinstance(cond, sp.Ne):
            return expr
    return pw.args[-1][0]


def field_sum(expr, weight, s, lo, hi):
    """``Σ_{s=lo}^{hi} weight(s) · expr(s)`` for a field ``expr``: closed form where the weights
    are geometric (sums of ``s^k b^s``), else one ``Sum`` that generated code evaluates by a loop."""
    parts = separate(expr, s)
    if parts is None or not all(geometric_in(weight * q, s) for q in parts.values()):
        return sp.Sum(weight * expr, (s, lo, hi))
    return sp.Add(*[closed_sum(weight * q, s, lo, hi) * fld for fld, q in parts.items()])


def geometric_in(weight, s) -> bool:
    """Is ``weight`` a sum of products of ``s^k`` and ``b^(a s + c)``, which sum in closed form?"""
    for term in distribute(sp.expand_power_exp(weight)):
        for f in sp.Mul.make_args(term):
            if not f.has(s):
                continue
            if f.is_Pow and not f.base.has(s) and sp.diff(f.exp, s, 2) == 0:
                continue
            if f == s or (f.is_Pow and f.base == s and f.exp.is_positive and f.exp.is_integer):
                continue
            return False
    return True


def summed(expr):
    """Every outermost sum of ``expr`` through ``history_sum``."""
    sums = [s for s in expr.atoms(sp.Sum) if not any(isinstance(x, sp.Dummy) for x in s.free_symbols)]
    return expr.xreplace({s: history_sum(*outer_range(s)) for s in sums})
