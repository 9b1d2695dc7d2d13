"""Random batches at large noise: where the memory's verdict changes with the batch size.

Input: the concentrated map (``expand.concentrated``: ``Ψ̄_0``, ``Ψ̄_1``, per coordinate, with the
noise variance ``σ²``) and the parameters. Output: ``LargeNoise``.

With ``Ψ̄_0 = P g + R`` (preconditioned), read in one coordinate where the covariance is locally
constant (``CovHess(E) = σ² ∇²L E``, the variation terms ``BatchHess``, ``XiBatchHess`` zero), the memory's
correction is ``Ψ̄_1 = w ∇²L (P g) + (R's part)``, and ``∇²L (P g)`` is the gradient of ``Φ = Σ_j φ(g_j)``
with ``φ' = P g``, a penalty that grows with ``|∇L|``: the memory adds ``h P c ∇Φ`` with the weight
``c = w/P`` — it regularizes where ``c > 0``. ``c`` depends on the coordinate through ``ρ = σ²/g²``
alone (the small parameters, ε, at 0), so it is not one potential; its sign changes where ``ρ = ρ*``,
and with batches of ``B`` examples (``σ² = σ₁²/B``) at the critical batch size ``B* = σ₁²/(ρ* g²)`` of
that coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..algebra.atoms import THETA, G, Hess, outer_atoms
from ..algebra.moments import CovHess, NoiseVar
from ..algebra.simplify import factor
from ..model.sampling import default_values
from .first import PRECONDITIONED, readings

RHO = sp.Symbol("rho", positive=True)  # σ²/g², the noise-to-signal ratio of one coordinate


@dataclass(frozen=True)
class LargeNoise:
    """The large-noise reading of a random-batch derivation (docs/python.md); ``reason`` says why a
    part is missing. The verdicts are at the parameters' defaults."""

    update: sp.Expr | None = None  # Ψ̄_0
    correction: sp.Expr | None = None  # Ψ̄_1
    preconditioner: sp.Expr | None = None  # P of Ψ̄_0 = P g + R
    weight: sp.Expr | None = None  # c(ρ): Ψ̄_1 = P c ∇²L (P g) + …, in one coordinate, small parameters at 0
    c0: sp.Expr | None = None  # c(0): the full-batch weight
    c_inf: sp.Expr | None = None  # c(∞): the weight where the noise dominates
    ratio: sp.Expr | None = None  # ρ*: c changes sign at σ²/g² = ρ*
    ratio_at_defaults: float | None = None
    critical_batch: sp.Expr | None = None  # B* = σ²/(ρ* g²), σ² read at B = 1
    large_batches: str = ""  # the verdict where ρ < ρ* (B > B*), or at every ρ when there is no ρ*
    small_batches: str = ""  # the verdict where ρ > ρ* (B < B*)
    reason: str = ""
    between_limits: bool = False  # c(ρ) = (c0 + c_inf ρ)/(1 + ρ): the printers say so, and give c0 and c_inf


def read_large_noise(update, parts: list, params) -> LargeNoise:
    """The weight ``c(ρ)``, its sign change ``ρ*`` and the critical batch size, or the reason there is none.
    ``parts`` sum to ``Ψ̄_1`` (the means', then each kind of pairing): ``c_∞`` is printed as the sum of
    theirs, the momentum's memory less each pairing."""
    correction = sp.Add(*parts)
    base = LargeNoise(update, correction)
    forms = [(P, R) for form, P, R in readings(update) if form == PRECONDITIONED]
    if not forms:
        return _without(base, "Ψ̄₀ is not P g + R")
    P = forms[0][0]
    weights = [_hessian_weight(update, part) for part in parts]
    if any(w is None for w in weights):
        return _without(base, "the memory's Hessian term is not a weight times ∇²L (P g)", P)
    each = [_in_ratio(w / P, params) for w in weights]
    if any(c is None for c in each):
        return _without(base, "the weight depends on g beyond σ²/g²", P)
    c = factor(sp.cancel(sp.Add(*each)))
    if c == 0:
        return _without(base, "the memory has no term in ∇²L (P g)", P)
    c0 = factor(sp.limit(c, RHO, 0, "+"))
    c_inf = sp.Add(*[factor(sp.limit(part, RHO, sp.oo)) for part in each])
    at = default_values(params)
    low, high = _verdict(c0.subs(at)), _verdict(c_inf.subs(at))
    ratio, value = _sign_change(c, params)
    critical = factor(NoiseVar() / (ratio * G**2)) if ratio is not None else None
    between = sp.cancel(c - (c0 + c_inf * RHO) / (1 + RHO)) == 0
    return LargeNoise(update, correction, P, c, c0, c_inf, ratio, value, critical, low, high, "", between)


def _without(base: LargeNoise, reason: str, P=None) -> LargeNoise:
    return LargeNoise(base.update, base.correction, P, reason=reason)


def _hessian_weight(update, part):
    """``w`` with ``part = w ∇²L (P g) + …`` (a part of ``Ψ̄_1``) in one coordinate where the covariance is
    locally constant:
    the Hessian read as a scalar ``η``, ``CovHess(E)`` as ``η σ² E`` (exact in one coordinate), the noise's
    variation (``BatchHess``, ``XiBatchHess``) dropped, θ at 0 (``P g``, the gradient part of ``Ψ̄_0 = P g + R``).
    ``√(g² + σ²)`` is a positive symbol ``s`` while dividing (and ``σ² = s² − g²``), so the ratio is rational."""
    gradient_part = update.subs(THETA, 0)
    if gradient_part == 0:
        return None
    if part == 0:
        return sp.S.Zero
    eta, s = sp.Dummy("eta"), sp.Dummy("s", positive=True)
    one = part.replace(lambda x: isinstance(x, Hess), lambda x: eta * x.args[0])
    one = one.replace(lambda x: isinstance(x, CovHess), lambda x: eta * NoiseVar() * x.args[0])
    one = one.replace(lambda x: x in outer_atoms(one) and x != NoiseVar(), lambda x: sp.S.Zero)
    root = {sp.sqrt(G**2 + NoiseVar()): s}
    ratio = (sp.diff(one, eta) / gradient_part).subs(THETA, 0).xreplace(root).xreplace({NoiseVar(): s**2 - G**2})
    w = sp.cancel(sp.together(ratio))
    if w.has(THETA, eta) or outer_atoms(w):
        return None
    return factor(w.xreplace({s: sp.sqrt(G**2 + NoiseVar())}))


def _in_ratio(c, params):
    """``c`` with the small parameters at 0 and ``σ² = ρ g²``, or None where ``g`` remains."""
    small = {p.symbol: 0 for p in params.values() if p.small}
    x = sp.Dummy("x", positive=True)  # |g|; c is even in g (σ² and the step's sign enter as g², |g|)
    c = sp.cancel(sp.powdenest(c.subs(small).xreplace({NoiseVar(): RHO * G**2}).subs(G, x), force=True))
    c = factor(sp.cancel(c))
    return None if c.has(x) else c


def _sign_change(c, params):
    """``(ρ*, its value at the defaults)``: the one positive root of ``c``'s numerator at the defaults, or
    ``(None, None)``."""
    roots = [r for r in sp.solve(sp.numer(sp.together(c)), RHO) if not r.has(sp.I)]
    positive = [r for r in roots if float(r.subs(default_values(params))) > 0]
    if len(positive) != 1:
        return None, None
    ratio = factor(positive[0])
    return ratio, float(ratio.subs(default_values(params)))


def _verdict(value) -> str:
    return "regularizing" if value > 0 else "anti-regularizing" if value < 0 else "none"
