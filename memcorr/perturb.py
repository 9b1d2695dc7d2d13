"""Stage 6: the implied loss perturbation and its verdict (docs/method.md §4).

Input: ``Ψ_0`` and ``Ψ_1`` (per coordinate, exact) and the program's parameters.
Output: ``Perturbation`` — a scalar ``G`` such that, to first order, the memoryless
map is a familiar method on ``L̃ = L + hG``, in one of two readings:

- same-method: ``Ψ_1 = (∂Ψ_0/∂g) ⊙ ∇G`` (``Ψ_0`` run on ``∇L̃``);
- preconditioned: ``Ψ_0 = P ⊙ ∇L + R`` and ``Ψ_1 = P ⊙ ∇G`` (``R`` decoupled, e.g. weight decay).

In both, ``∇G = Ψ_1 / P`` is integrated with the rules of §3: ``Hess(E(g, θ))`` with a
constant coefficient is ``∇ CoordSum(Φ)`` with ``∂Φ/∂g = E``, and what ``∂Φ/∂θ`` leaves over
must be ``c g + f(θ)``, i.e. ``∇(c loss + CoordSum(∫f))``. A coefficient that is not constant
makes the field a non-gradient; then the parameters declared ``small`` are expanded and
the exact leading ``G`` is reported with the remainder ``Ψ_1 − P ⊙ ∇G`` and its order.
Every ``G`` is differentiated back (``calculus.gradient``) and compared with the field,
symbolically or at random points.

The verdict: ``G = coefficient · penalty`` where the penalty's part in ``g`` alone grows with
``|g|`` (‖∇L‖₁, ‖∇L‖², Σ√(g² + ε), …): a positive coefficient regularizes, a negative one
anti-regularizes; ``condition`` is where it is positive, within the parameters' domains.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .calculus import LOSS, THETA, CoordSum, FieldSymbol, G, Hess, gradient, is_scalar, outer_atoms, real_diff
from .lower import Parameter, _sample, default_values
from .present import affine_in_g, factor, rename, shortest, signs, tidy, unfold
from .recurrence import Recurrence

SAME, PRECONDITIONED, NONE = "same-method", "preconditioned", "none"


@dataclass
class Perturbation:
    """``L̃ = L + h G`` with ``Ψ_1 = preconditioner ⊙ ∇G + remainder`` (docs/python.md)."""

    potential: sp.Expr | None  # G; None when no reading integrates
    form: str  # "same-method" | "preconditioned" | "none"
    preconditioner: sp.Expr | None  # P: ∂Ψ_0/∂g (same-method) or Ψ_0 = P ⊙ ∇L + R
    exact: bool
    remainder: sp.Expr  # Ψ_1 − P ⊙ ∇G (0 when exact)
    remainder_order: str  # "O(eps)" when not exact
    coefficient: sp.Expr  # G = coefficient · penalty
    penalty: sp.Expr
    condition: str  # where the coefficient is positive (sympy syntax), "True", "False"
    verdict: str  # "regularizing" | "anti-regularizing" | "depends" | "none" | "unknown" (no potential)
    verdict_at_defaults: str
    coefficient_at_defaults: float | None
    decoupled: sp.Expr = sp.S.Zero  # R of the preconditioned form
    reason: str = ""  # why there is no potential, or why the verdict is "depends"
    relation: sp.Basic | None = None  # the condition as a sympy relation (verdict "depends"), never re-read from text
    at_step: int | None = None  # finite regime: the step n at which the defaults are judged
    coefficient_as_n_grows: float | None = None  # finite regime: the coefficient at the defaults as n → ∞


# ------------------------------------------------------------ readings
def readings(update, x=G) -> list[tuple[str, sp.Expr, sp.Expr]]:
    """``(form, P, R)`` for the two readings, ``update`` written in the variable ``x = a g + b(θ)``
    (``g`` itself, or a field the program named); the same-method one only where ``∂Ψ_0/∂g ≠ 0``."""
    a, b = _slope(x)
    out = []
    same = factor(a * real_diff(update, x))
    if same != 0:
        out.append((SAME, same, sp.S.Zero))
    rest = sp.Add(*[t for t in sp.Add.make_args(sp.expand(update)) if not t.has(x)])
    per_x = factor(sp.cancel((update - rest) / x))  # Ψ_0 = per_x (a g + b) + rest
    precond, decoupled = factor(a * per_x), shortest(per_x * b + rest)
    if precond != 0 and not (out and sp.cancel(precond - same) == 0 and decoupled == 0):
        out.append((PRECONDITIONED, precond, decoupled))
    return out


def _slope(x):
    """``(a, b)`` with ``x = a g + b(θ)``."""
    if x == G:
        return sp.S.One, sp.S.Zero
    a = sp.diff(x.definition, G)
    return a, sp.expand(x.definition - a * G)


def _divide(field_, P):
    """``field / P`` term by term, each coefficient (the part outside the atoms) factored."""
    out = sp.S.Zero
    for term in sp.Add.make_args(field_):
        atoms = sp.Mul(*[f for f in sp.Mul.make_args(term) if outer_atoms(f)])
        out += factor(sp.cancel(term / atoms / P)) * atoms
    return out


# ------------------------------------------------------------ integration
def _constant(c) -> bool:
    """Parameters only (no field, no loss, no reduction): a coefficient a gradient may carry."""
    return not outer_atoms(c) and not any(isinstance(s, FieldSymbol) or s == LOSS for s in c.free_symbols)


def integrate(field_, x=G):
    """``G`` with ``∇G = field`` by the rules of docs/method.md §3, or ``(None, why)``; ``field`` is
    written in ``x = a g + b(θ)``, so ``∂Φ/∂g = E`` is ``Φ = ∫E dx / a``."""
    E, rest = sp.S.Zero, sp.S.Zero
    for term in sp.Add.make_args(field_):
        atoms = outer_atoms(term)
        if not atoms:
            rest += term
            continue
        if len(atoms) != 1 or not isinstance(next(iter(atoms)), Hess):
            return None, f"the field has a term {term} that is not a Hessian applied to a field"
        atom = next(iter(atoms))
        c = factor(sp.cancel(term / atom))
        if c.has(atom) or not _constant(c):
            return None, f"the coefficient {c} of {atom} is not constant, so the field is not a gradient"
        E += c * atom.args[0]
    if E.has(LOSS) or rest.has(LOSS) or outer_atoms(E) or outer_atoms(rest):
        return None, "the field reads the loss or a reduction outside a Hessian"
    phi = antiderivative(E, x)
    if phi is None:
        return None, f"could not integrate {E} in {x}"
    phi = phi / _slope(x)[0]
    left = unfold(rest) - real_diff(unfold(phi), THETA)
    left = factor(sp.expand(left.replace(sp.sign, lambda a: a / sp.Abs(a))))
    c = factor(real_diff(left, G))
    f = factor(sp.expand(left - c * G))
    if not _constant(c) or f.has(G):
        return None, f"the part {left} outside the Hessians is not c·g + f(θ): not a gradient"
    f_int = antiderivative(f, THETA) if f != 0 else sp.S.Zero
    if f_int is None:
        return None, f"could not integrate {f} in θ"
    return CoordSum(sp.expand(phi + f_int)) + c * LOSS, ""


def antiderivative(E, x):
    """``Φ`` with ``∂Φ/∂x = E`` for a field ``E`` that may hold ``|x|`` and ``sign(x)``.

    The odd part of ``E`` integrates to an even ``Φ`` and the even part to an odd one, each
    found on ``x > 0`` and extended: ``A(|x|)`` or ``sign(x)·A(|x|)`` unless ``A`` itself already
    has the right parity (``x²/2``, ``√(x² + ε)``, ``λθx``)."""
    if E == 0:
        return sp.S.Zero
    p, q = sp.Dummy("p", positive=True), sp.Dummy("q", real=True)
    Ep, Em = E.subs(x, p), E.subs(x, -p)
    parts = {"odd": sp.cancel((Ep - Em) / 2), "even": sp.cancel((Ep + Em) / 2)}
    phi = sp.S.Zero
    for parity, integrand in parts.items():
        if integrand == 0:
            continue
        A = sp.integrate(integrand, p)
        if A.has(sp.Integral):
            return None
        if parity == "even":  # Φ odd: A(0) = 0
            A = sp.cancel(A - sp.limit(A, p, 0, "+"))
        Aq = A.subs(p, q)
        sign = 1 if parity == "odd" else -1
        if sp.cancel(sp.expand(Aq.subs(q, -q) - sign * Aq)) == 0:
            phi += Aq.subs(q, x)
        else:
            phi += A.subs(p, sp.Abs(x)) * (1 if parity == "odd" else sp.sign(x))
    return phi


# ------------------------------------------------------------ checking
def _points(
    params: dict[str, Parameter], count: int, seed: int = 1, extra: dict | None = None, edges: bool = False
) -> list[dict]:
    """Random points inside the parameters' domains (``extra``: fixed values, such as ``n``)."""
    rng = random.Random(seed)
    # random points, and each parameter near both ends of its domain (a sign may change only there)
    ends = [(p, u) for p in params.values() for u in (0.001, 0.999)] if edges else []
    points = []
    for i in range(count + len(ends)):
        point = {p.symbol: _sample(p, rng.uniform(0.001, 0.999)) for p in params.values()}
        if i >= count:
            p, u = ends[i - count]
            point[p.symbol] = _sample(p, u)
        points.append(_with_extra(point, extra))
    return points


def _with_extra(point: dict, extra: dict | None) -> dict:
    """``point`` with the fixed values of ``extra`` (``n``), then its expressions (``β^n``) evaluated there."""
    fixed = {k: v for k, v in (extra or {}).items() if sp.sympify(v).is_number}
    point = {**point, **fixed}
    point.update({k: float(sp.sympify(v).subs(point)) for k, v in (extra or {}).items() if k not in fixed})
    return point


@functools.cache
def _check_loss():
    """The loss of the random-point checks, built once (its derivative tensors are compiled lazily)."""
    from .losses import nonconvex

    return nonconvex()


def numerically_zero(expr, params: dict[str, Parameter], extra: dict | None = None, scale=None) -> bool:
    """``expr`` vanishes at random points of a nonconvex loss and of the parameters' domains."""
    from .evaluate import evaluate

    if expr == 0:
        return True
    loss = _check_loss()
    rng = np.random.default_rng(3)
    for values in _points(params, 3, extra=extra):
        theta = rng.uniform(-1.5, 1.5, 3)
        try:
            value = np.abs(evaluate(expr, loss, theta, values))
            size = 1.0 if scale is None else 1.0 + np.max(np.abs(evaluate(scale, loss, theta, values)))
        except ValueError:  # a symbol with no value (a step index left free by a failed integral): not shown zero
            return False
        if not np.all(np.isfinite(value)) or np.max(value) > 1e-8 * size:
            return False
    return True


def _differentiates_back(G_, P, psi1, params, extra) -> bool:
    back = sp.expand(unfold(psi1) - unfold(P) * gradient(unfold(G_)))
    return tidy(back) == 0 or numerically_zero(back, params, extra, scale=psi1)


# ------------------------------------------------------------ small parameters
def _leading(field_, small: list, max_order: int = 2):
    """The first nonzero coefficient of the field in the small parameters, and its order."""
    t = sp.Dummy("t", positive=True)
    scaled = field_.xreplace({s: t * s for s in small})
    for k in range(max_order + 1):
        if k:
            scaled = real_diff(scaled, t)
        term = signs(tidy(scaled.subs(t, 0) / sp.factorial(k)))
        if term.has(sp.zoo, sp.nan, sp.oo):
            return None, k
        if term != 0:
            return term, k
    return None, max_order


def _order_text(small: list, k: int) -> str:
    names = ", ".join(map(str, small))
    return f"O({names})" if k == 1 else f"O({names}^{k})" if len(small) == 1 else f"O(({names})^{k})"


# ------------------------------------------------------------ the driver
def find(update, psi1, params: dict[str, Parameter], extra: dict | None = None, fields=()) -> Perturbation:
    """The perturbed loss of the map ``Ψ_0 + hΨ_1`` (``extra``: values of ``n`` etc. for checks;
    ``fields``: the program's named fields, tried as the variable the results are written in).

    Powers of the step counter (``β^(n+1)`` in the finite regime) are opaque positive symbols while
    integrating, which keeps factoring fast; they are put back in the result."""
    steps = set(extra or {})
    known = steps | {p.symbol for p in params.values()}
    powers = {
        e for x in (update, psi1) for e in x.atoms(sp.Pow) if e.exp.free_symbols & steps and e.free_symbols <= known
    }
    opaque = {e: sp.Dummy(f"pow{i}", positive=True) for i, e in enumerate(sorted(powers, key=sp.default_sort_key))}
    found = _find(
        update.xreplace(opaque),
        psi1.xreplace(opaque),
        params,
        {**(extra or {}), **{d: e for e, d in opaque.items()}},
        fields,
    )
    return _restored(found, {d: e for e, d in opaque.items()})


def _restored(p: Perturbation, back: dict) -> Perturbation:
    if not back:
        return p

    def put(e):
        return e.xreplace(back) if isinstance(e, sp.Basic) else e

    # the condition comes back from its relation, never from its text: read back through sympify, a
    # parameter named `beta`, `gamma` or `S` would become sympy's function or constant of that name
    relation = put(p.relation)
    condition_ = str(relation) if relation is not None else p.condition
    reason = p.reason
    for d in sorted(back, key=lambda d: -len(str(d))):  # _pow10 before _pow1
        reason = reason.replace(str(d), str(back[d]))
    return Perturbation(
        put(p.potential),
        p.form,
        put(p.preconditioner),
        p.exact,
        put(p.remainder),
        p.remainder_order,
        put(p.coefficient),
        put(p.penalty),
        condition_,
        p.verdict,
        p.verdict_at_defaults,
        p.coefficient_at_defaults,
        put(p.decoupled),
        reason,
        relation,
    )


MAX_OPS = 300  # beyond this the symbolic integration swells (and sympy may recurse past the C stack)


def _find(update, psi1, params, extra, fields) -> Perturbation:
    x = G
    for f in fields:
        if f.name != "Psi_0" and affine_in_g(f):
            named_update, named_psi1 = rename(update, [f]), tidy(rename(psi1, [f]))
            if not named_update.has(G) and not named_psi1.has(G):
                x, update, psi1 = f, named_update, named_psi1
                break
    if update.has(Recurrence) or psi1.has(Recurrence):
        return _no_potential(psi1, "the map is a loop over the past steps, with no closed form to integrate")
    forms = readings(update, x)
    if psi1 == 0:
        form, P, R = forms[0] if forms else (PRECONDITIONED, sp.S.Zero, update)
        return _with_verdict(sp.S.Zero, form, P, True, sp.S.Zero, "", params, R, x, extra)
    if sp.count_ops(psi1) > MAX_OPS:
        return _no_potential(
            psi1, f"the correction has {sp.count_ops(psi1)} operations, more than the {MAX_OPS} memcorr integrates"
        )
    small = [p.symbol for p in params.values() if p.small]
    inexact, reasons = None, []
    for form, P, R in forms:
        V = _divide(psi1, P)
        G_, why = integrate(V, x)
        if G_ is not None and _differentiates_back(G_, P, psi1, params, extra):
            return _with_verdict(G_, form, P, True, sp.S.Zero, "", params, R, x, extra)
        reasons.append(f"{form}: {why or 'the integral did not differentiate back'}")
        found = _leading_potential(V, small, x, params, extra) if inexact is None and small else None
        if found is not None:
            G_, lead, k = found
            # Ψ_1 − P ⊙ ∇G = P ⊙ (V − ∇G), and ∇G is the leading part of V
            inexact = (G_, form, P, P * tidy(V - lead), _order_text(small, k + 1), R)
    if inexact is not None:
        G_, form, P, remainder, order, R = inexact
        return _with_verdict(G_, form, P, False, remainder, order, params, R, x, extra)
    why = "; ".join(reasons) + ("" if small else _small_would_help(psi1, forms, params, x, extra))
    return _no_potential(psi1, why)


def _small_would_help(psi1, forms, params, x, extra) -> str:
    """Why no parameter was expanded in, and which tiny one (a default below 1e-3, such as ε) would
    give ``G`` to leading order if declared ``small``."""
    tiny = [p for p in params.values() if p.default is not None and 0 < abs(p.default) <= 1e-3]
    for p in tiny:
        for _, P, _ in forms:
            if _leading_potential(_divide(psi1, P), [p.symbol], x, params, extra) is not None:
                return (
                    f"; declaring `{p.name}` small (`param {p.name} = {p.default:g} … small`) would give G to "
                    f"leading order in {p.name}"
                )
    return "; no parameter is declared small to expand in"


def _leading_potential(V, small: list, x, params, extra):
    """``(G, lead, k)`` with ``∇G`` the leading term ``lead`` of ``V = Ψ_1/P`` in the ``small``
    parameters (order ``k``), checked by differentiating back; None where there is none. Sums over
    steps are not expanded (that swells)."""
    if V.has(sp.Sum):
        return None
    lead, k = _leading(V, small)
    G_, _ = integrate(lead, x) if lead is not None else (None, "")
    if G_ is None or not _differentiates_back(G_, sp.S.One, lead, params, extra):
        return None
    return G_, lead, k


def _no_potential(psi1, why: str) -> Perturbation:
    """An honest "no potential": the whole correction is the remainder and the verdict is unknown."""
    return Perturbation(
        None,
        NONE,
        None,
        False,
        psi1,
        "",
        sp.S.One,
        sp.S.Zero,
        "",
        "unknown",
        "unknown",
        None,
        sp.S.Zero,
        f"no potential: {why}",
    )


def _with_verdict(G_, form, P, exact, remainder, order, params, R, x, extra) -> Perturbation:
    G_ = scalar_branches(G_)
    coeff, penalty = split_coefficient(G_)
    direction = _monotone_in_abs_g(_principal(penalty), params, x, extra)
    if direction < 0:  # the penalty grows with |∇L|; the coefficient carries the sign
        coeff, penalty = -coeff, -penalty
    verdict, relation, reason = _verdict(coeff, direction, params, extra)
    at_defaults, value = _at_defaults(coeff, direction, params, extra) if verdict != "none" else ("none", 0.0)
    condition_ = str(relation)
    relation = relation if isinstance(relation, sp.Basic) else None
    return Perturbation(
        G_,
        form,
        P,
        exact,
        remainder,
        order,
        coeff,
        penalty,
        condition_,
        verdict,
        at_defaults,
        value,
        R,
        reason,
        relation,
    )


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
    principal = [c for c, x in parts if _principal(x) != 0]
    lead = (principal or [c for c, _ in parts])[0]
    return lead, sp.Add(*[factor(sp.cancel(c / lead)) * x for c, x in parts])


def _principal(penalty):
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


def _monotone_in_abs_g(phi, params, x, extra) -> int:
    """+1 if ``φ(x)`` grows with ``|x|`` at sampled parameters, −1 if it shrinks, 0 otherwise."""
    if phi == 0:
        return 0
    gs = np.linspace(0.0, 3.0, 31)
    signs = set()
    for values in _points(params, 8, seed=2, extra=extra):
        f = sp.lambdify(x, phi.subs(values), "numpy")
        for s in (1.0, -1.0):
            ys = np.array([float(f(s * x)) for x in gs])
            steps = np.diff(ys)
            signs.add(1 if np.all(steps >= -1e-12) else -1 if np.all(steps <= 1e-12) else 0)
    return signs.pop() if len(signs) == 1 else 0


def _verdict(coeff, direction: int, params, extra) -> tuple[str, str | sp.Basic, str]:
    if coeff == 0:
        return "none", "False", "the memory correction has no potential part"
    if direction == 0:
        return "depends", "", "the penalty's part in the gradient does not grow or shrink with |∇L|"
    values = _values(coeff, _points(params, 64, seed=4, extra=extra, edges=True))
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
    points = _points(params, 64, seed=5, extra=extra, edges=True)
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


def _at_defaults(coeff, direction: int, params, extra) -> tuple[str, float]:
    value = float(coeff.subs(_with_extra(default_values(params), extra)))
    if direction == 0:
        return "depends", value
    return ("regularizing" if value > 0 else "anti-regularizing" if value < 0 else "none"), value
