"""The verdict on an implied loss ``G = coefficient · penalty``: regularizing where the
coefficient is positive (the penalty grows with ``|g|``), the condition on the parameters where it
changes sign, and its value at the defaults.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..algebra.atoms import LOSS, THETA, CoordSum, is_scalar, outer_atoms
from ..algebra.simplify import factor
from ..model.sampling import default_values
from .zero import random_points, with_extra


def scalar_branches(G_):
    """A ``Piecewise`` whose branches are one field times scalars (``3g²/2`` for ``n ≥ 3``, ``ng²/2``
    before) as that field times a scalar ``Piecewise`` — ``min(n, 3)·g²/2`` — so that the step
    dependence lands in the coefficient, where the verdict at the defaults reads it."""

    def split(pw):
        base = sp.Mul(*[f for f in sp.Mul.make_args(pw.args[0].expr) if not is_scalar(f)])
        if pw.args[0].expr == 0 or not all(is_scalar(sp.cancel(e / base)) for e, _ in pw.args):
            return pw
        return base * _extremum(sp.Piecewise(*[(sp.cancel(e / base), c) for e, c in pw.args]))

    return G_.replace(lambda e: isinstance(e, sp.Piecewise) and not is_scalar(e), split)


def _extremum(pw):
    """``Piecewise((a, c), (b, True))`` as ``min(a, b)`` where the condition ``c`` is ``b ≥ a`` up to a
    positive factor (``n ≥ 3`` for ``a = 3/2``, ``b = n/2``), as ``max(a, b)`` where it is ``b ≤ a``."""
    if len(pw.args) != 2 or pw.args[1].cond != True:  # noqa: E712  (sympy's true, not Python's)
        return pw
    (a, cond), (b, _) = pw.args
    if not isinstance(cond, (sp.Ge, sp.Gt, sp.Le, sp.Lt)) or b == a:
        return pw
    gap = cond.lhs - cond.rhs if isinstance(cond, (sp.Ge, sp.Gt)) else cond.rhs - cond.lhs  # c: gap >= 0
    ratio = sp.simplify(gap / (b - a))
    if ratio.is_number and ratio > 0:
        return sp.Min(a, b)
    if ratio.is_number and ratio < 0:
        return sp.Max(a, b)
    return pw


def split_coefficient(G_):
    """``G = coefficient · penalty``: the coefficient is that of the penalty's first term in ``g``
    alone (‖∇L‖₁ for AdamW), so that the penalty reads ``‖∇L‖₁ + λ(⟨θ, ∇L⟩ − L)``."""
    if G_ == 0:
        return sp.S.Zero, sp.S.Zero
    atoms = sorted(outer_atoms(G_) | ({LOSS} if G_.has(LOSS) else set()), key=sp.default_sort_key)
    dummies = {a: sp.Dummy(real=True) for a in atoms}
    terms = sp.collect(sp.expand(G_.xreplace(dummies)), list(dummies.values()), evaluate=False)
    back = {d: a for a, d in dummies.items()}
    parts = [(factor(c), x.xreplace(back)) for x, c in terms.items()]
    principal = [c for c, x in parts if principal_part(x) != 0]
    lead = (principal or [c for c, _ in parts])[0]
    return lead, sp.Add(*[factor(sp.cancel(c / lead)) * x for c, x in parts])


def principal_part(penalty):
    """The penalty's terms in ``g`` alone as a function of one coordinate (CoordSum(φ(g)) -> φ(g))."""
    total = sp.S.Zero
    for term in sp.Add.make_args(penalty):
        atoms = outer_atoms(term)
        if len(atoms) == 1 and isinstance(next(iter(atoms)), CoordSum):
            atom = next(iter(atoms))
            inner = atom.args[0]
            if inner.free_symbols & {THETA} or term.has(LOSS):
                continue
            total += (term / atom) * inner
    return total


def monotone_in_abs_g(phi, params, x, extra) -> int:
    """+1 if ``φ(x)`` grows with ``|x|`` at sampled parameters, −1 if it shrinks, 0 otherwise."""
    if phi == 0:
        return 0
    gs = np.linspace(0.0, 3.0, 31)
    signs = set()
    for values in random_points(params, 8, seed=2, extra=extra):
        f = sp.lambdify(x, phi.subs(values), "numpy")
        for s in (1.0, -1.0):
            ys = np.array([float(f(s * x)) for x in gs])
            steps = np.diff(ys)
            signs.add(1 if np.all(steps >= -1e-12) else -1 if np.all(steps <= 1e-12) else 0)
    return signs.pop() if len(signs) == 1 else 0


def judge(coeff, direction: int, params, extra) -> tuple[str, str | sp.Basic, str]:
    if coeff == 0:
        return "none", "False", "the memory correction has no potential part"
    if direction == 0:
        return "depends", "", "the penalty's part in the gradient does not grow or shrink with |∇L|"
    values = _values(coeff, random_points(params, 64, seed=4, extra=extra, edges=True))
    if all(v > 0 for v in values):
        return "regularizing", "True", ""
    if all(v < 0 for v in values):
        return "anti-regularizing", "False", ""
    return "depends", condition(coeff, params, extra), ""


def _values(expr, points: list[dict]) -> list[float]:
    """``expr`` (parameters only) at each point, through one compiled function."""
    symbols = sorted(points[0], key=sp.default_sort_key)
    f = sp.lambdify(symbols, expr, "mpmath")
    return [float(f(*[point[s] for s in symbols])) for point in points]


def condition(coeff, params, extra=None):
    """``coeff > 0`` without the factors whose sign is fixed in the domains: ``β1/(1−β1) − β2/(1−β2) > 0``
    is ``β1 > β2``."""
    points = random_points(params, 64, seed=5, extra=extra, edges=True)
    flip, varying = 1, []
    for f, e in sp.factor(coeff).as_powers_dict().items():
        values = _values(f, points)
        if all(v > 0 for v in values) or (e.is_even and all(v != 0 for v in values)):
            continue
        if all(v < 0 for v in values) and e.is_integer:
            flip *= (-1) ** int(e)
            continue
        varying.append(f**e)
    rest = sp.Mul(*varying)
    if rest.is_Add:
        pos = sp.Add(*[t for t in rest.args if t.could_extract_minus_sign() is False])
        neg = -sp.Add(*[t for t in rest.args if t.could_extract_minus_sign()])
        return sp.Gt(pos, neg) if flip > 0 else sp.Lt(pos, neg)
    return sp.Gt(rest, 0) if flip > 0 else sp.Lt(rest, 0)


def judged_at_defaults(coeff, direction: int, params, extra) -> tuple[str, float]:
    value = float(coeff.subs(with_extra(default_values(params), extra)))
    if direction == 0:
        return "depends", value
    return ("regularizing" if value > 0 else "anti-regularizing" if value < 0 else "none"), value
