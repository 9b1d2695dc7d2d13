"""The implied loss perturbation at first order, and its verdict (docs/method.md §4).

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
Every ``G`` is differentiated back (``algebra.atoms.gradient``) and compared with the field,
symbolically or at random points.

The verdict: ``G = coefficient · penalty`` where the penalty's part in ``g`` alone grows with
``|g|`` (‖∇L‖₁, ‖∇L‖², Σ√(g² + ε), …): a positive coefficient regularizes, a negative one
anti-regularizes; ``condition`` is where it is positive, within the parameters' domains.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..algebra.atoms import LOSS, THETA, CoordSum, FieldSymbol, G, Hess, gradient, outer_atoms, real_diff
from ..algebra.named import affine_in_g, rename, unfold
from ..algebra.simplify import factor, shortest, signs, tidy
from ..expand.recurrence import Recurrence
from ..model.types import Parameter
from .verdict import judge, judged_at_defaults, monotone_in_abs_g, principal_part, scalar_branches, split_coefficient
from .zero import numerically_zero

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
    # random batches (docs/method.md §7): potential = coefficient · penalty + noise, noise = noise_coefficient · V
    noise: sp.Expr = sp.S.Zero
    noise_coefficient: sp.Expr = sp.S.Zero
    verdict_full: str = ""  # the verdict of the full-batch part alone (random batches)
    critical_batch: sp.Expr | None = None  # B at which G changes sign when the parts disagree, V read at B = 1


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
    if psi1 != 0 and sp.count_ops(psi1) > MAX_OPS:  # before the readings: RAdam's finite map takes seconds to read
        return _no_potential(
            psi1, f"the correction has {sp.count_ops(psi1)} operations, more than the {MAX_OPS} memcorr integrates"
        )
    forms = readings(update, x)
    if psi1 == 0:
        form, P, R = forms[0] if forms else (PRECONDITIONED, sp.S.Zero, update)
        return _with_verdict(sp.S.Zero, form, P, True, sp.S.Zero, "", params, R, x, extra)
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
    direction = monotone_in_abs_g(principal_part(penalty), params, x, extra)
    if direction < 0:  # the penalty grows with |∇L|; the coefficient carries the sign
        coeff, penalty = -coeff, -penalty
    verdict, relation, reason = judge(coeff, direction, params, extra)
    at_defaults, value = judged_at_defaults(coeff, direction, params, extra) if verdict != "none" else ("none", 0.0)
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
