"""Random batches at large noise: the step read at the means of its second-moment states.

Input: a ``Model`` whose states are exponential filters of the current gradient (``moments.filters``).
Output: the first-order stationary ``Expansion`` of the mean map at large noise (docs/method.md §7,
"At large noise"). Write the step as ``F(y, x)`` in the new states ``y`` and the batch gradient ``x``;
it must be affine in ``x`` and in the first-moment filters (inputs ``k x``), and may be nonlinear in
the second-moment filters (inputs ``q x² + l x``, Adam's ``v``). Then

- every filter's input is replaced by its mean over the batch, ``b(g) + ½ b''(g) σ²`` (``g² → g² + σ²``),
  and the step reads the states at those means (``concentrated``), whose memoryless map the stationary
  recursion expands: ``Ψ̄_0``, and the part of ``Ψ̄_1`` that pairs means with means;
- ``pairings`` adds the products of fluctuations that stay when the second-moment filters concentrate:
  the noise a step's batch put into the steps since, against that batch's own entry in ``v``'s memory
  (``CovHess``) or against the first-moment filters the step reads now (``CovHess``, ``σ² Hess``), and
  the batch Hessian against the noise of its own step (``BatchHess``).

What is left out: the fluctuation of the second-moment filters themselves, of relative size
``√(1 − r)`` (a filter ``v ← r v + (1 − r) g²`` averages about ``(1 + r)/(1 − r)`` batches: Adam's
``β₂ = 0.999``, 2000), and the third cumulants of the noise. Unlike the expansion in the noise
(``moments``) the reading holds where ``σ²`` is as large as ``g²`` or larger — where mini-batch
training of adaptive methods runs, and where the verdict changes with the batch size.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..algebra.atoms import G, Hess
from ..algebra.moments import BatchHess, CovHess, NoiseVar
from ..errors import DerivationError
from ..model.types import Model
from .expansion import Expansion
from .moments import Filters, filters
from .stationary import stationary

NOTE = (
    "large noise: the step at the means of its second-moment filters, with the pairings of the noise that stay "
    "(a filter v ← r v + (1 − r) g² averages about (1 + r)/(1 − r) batches; the reading holds as r → 1, at any "
    "noise level; third cumulants of the noise left out); σ² = E_b ξ_b² per coordinate"
)


def concentrated(model: Model, f: Filters | None = None) -> Model:
    """The program with the filters' inputs at their means and the step reading them there, or a
    DerivationError naming what the reading does not cover (``f``: the model's filters, if known)."""
    f = f or filters(model, most=None)
    names = {st.symbol: st.name for st in model.states}
    if f.decay != 0:
        raise DerivationError(
            "the filters read θ (coupled weight decay): the reading is made for filters of the gradient alone "
            "(fix it, e.g. --param weight_decay=0)"
        )
    for s, r, b in zip(f.states, f.r, f.b):
        if sp.diff(b, G, 3) != 0 or r == 0:
            raise DerivationError(
                f"the input of `{names[s]}` is not a filter of g and g² (its mean over the batch "
                "is not a function of the mean gradient and σ²)"
            )
    _check_affine(f, names)
    means = _means(f)
    # F reads each new state r s + b(g); s + (b̄ − b)/r makes it read r s + b̄(g)
    step = f.F.xreplace({s: s + (mean - b) / r for s, r, b, mean in zip(f.states, f.r, f.b, means)})
    updates = dict(zip(f.states, (r * s + mean for s, r, mean in zip(f.states, f.r, means))))
    states = tuple(
        replace(st, init=sp.S.Zero, update=updates[st.symbol]) for st in model.states if st.symbol in updates
    )
    return replace(model, states=states, F=step)


def _check_affine(f, names) -> None:
    """The step as a function of the new states ``y`` and the current gradient must be affine in the
    gradient and the first-moment filters (inputs linear in ``g``): their means pass through it."""
    ys, in_new = _in_new_states(f)
    first = [(y, names[s]) for s, y, b in zip(f.states, ys, f.b) if sp.diff(b, G, 2) == 0]
    linear = [(G, "the current gradient"), *((y, f"`{name}`") for y, name in first)]
    for i, (x, what) in enumerate(linear):
        for z, other in linear[i:]:
            if sp.simplify(sp.diff(in_new, x, z)) != 0:
                pair = what if z == x else f"{what} and {other}"
                raise DerivationError(
                    f"the step is not affine in {pair}; its mean over the batches is not the step "
                    "at the mean (the reading covers steps nonlinear only in second-moment filters, as Adam's √v)"
                )


def _means(f: Filters) -> list[sp.Expr]:
    """Each filter's input at its mean over the batch, ``b(g) + ½ b''(g) σ²`` (exact for ``b`` of degree 2)."""
    return [b + sp.diff(b, G, 2) / 2 * NoiseVar() for b in f.b]


def _in_new_states(f: Filters) -> tuple[list, sp.Expr]:
    """Symbols ``y`` for the new states and the step ``F(y, x)`` in them and the current gradient: ``F`` reads
    each new state as ``r s + b(g)``, so ``s = (y − b(g))/r``."""
    ys = [sp.Dummy(f"y{i}") for i in range(len(f.states))]
    return ys, f.F.xreplace({s: (y - b) / r for s, y, r, b in zip(f.states, ys, f.r, f.b)})


def concentrated_expansion(model: Model) -> tuple[Expansion, list[sp.Expr]]:
    """``Ψ̄_0`` and ``Ψ̄_1`` at large noise, stationary regime, and ``Ψ̄_1`` in its parts: the means', then
    each kind of pairing (``pairings``)."""
    f = filters(model, most=None)
    e = stationary(concentrated(model, f), 1)
    parts = [e.corrections[0], *pairings(f, e.update)]
    e.corrections = [sp.Add(*parts)]
    e.notes = [*e.notes, NOTE]
    return e, parts


def pairings(f: Filters, psi0) -> list[sp.Expr]:
    """The pairs of fluctuations in ``E M`` at large noise (the module docstring), one sum per kind, in the
    order below. With ``B_m = ∂F/∂y_m``,
    ``C = ∂F/∂x``, ``F_v = ∂F/∂y_v``, ``F_vm = ∂²F/∂y_v∂y_m`` at the means, and the lag sums
    ``S0(r) = Σ_{ℓ≥1} r^ℓ``, ``S1(r, s) = Σ_{ℓ≥1} r^ℓ (1 − s^ℓ)/(1 − s)``, ``S2(r, s) = Σ_{ℓ≥1} ℓ (rs)^ℓ``:

    - a batch ``ℓ`` steps back moved every step since through ``B_m k_m s^i`` and ``C``; against its own
      entry ``2q x`` in ``v`` (its own entry):
      ``F_v 2q (Σ_m k_m S1(r_v, r_m) CovHess(B_m) + S0(r_v) CovHess(C))``;
    - against the first-moment filters the step reads now (the momentum now):
      ``b̄_v' Σ_m F_vm r_m S1(r_v, r_m) (Σ_m' k_m k_m'/(1 − r_m r_m') CovHess(B_m') + k_m CovHess(C))``,
      and their shared batch ``ℓ`` back (the shared batch): ``Σ_m F_vm 2q k_m S2(r_v, r_m) σ² Hess(Ψ̄_0)``;
    - the batch Hessian against its own step's noise, in every filter ``φ`` (the batch Hessian):
      ``F_φ b̄_φ' (Σ_m k_m S1(r_φ, r_m) BatchHess(B_m) + S0(r_φ) BatchHess(C))``.
    """
    ys, step = _in_new_states(f)
    means = _means(f)
    at = {y: sp.cancel(mean / (1 - r)) for y, mean, r in zip(ys, means, f.r)}

    def value(e):
        return sp.cancel(e.xreplace(at))

    first = [i for i, b in enumerate(f.b) if sp.diff(b, G, 2) == 0]
    k = {i: sp.diff(f.b[i], G) for i in first}
    B = {i: value(sp.diff(step, ys[i])) for i in first}
    C = value(sp.diff(step, G))

    def S0(r):
        return r / (1 - r)

    def S1(r, s):
        return r / ((1 - r) * (1 - r * s))

    def through(moment, r):  # the noise of a batch r-weighted ℓ steps back, in the steps since, under `moment`
        return sp.Add(*[k[m] * S1(r, f.r[m]) * moment(B[m]) for m in first]) + S0(r) * moment(C)

    own, now, shared = [], [], []
    for v, r in enumerate(f.r):
        q = sp.diff(f.b[v], G, 2) / 2
        if q == 0:
            continue
        own.append(value(sp.diff(step, ys[v])) * 2 * q * through(CovHess, r))
        slope = value(sp.diff(means[v], G))  # b̄_v', the mean of b_v'(x)
        for m in first:
            F_vm, s = value(sp.diff(step, ys[v], ys[m])), f.r[m]
            read = sp.Add(*[k[m] * k[n] / (1 - s * f.r[n]) * CovHess(B[n]) for n in first]) + k[m] * CovHess(C)
            now.append(slope * F_vm * s * S1(r, s) * read)
            shared.append(F_vm * 2 * q * k[m] * r * s / (1 - r * s) ** 2 * NoiseVar() * Hess(psi0))
    # the batch Hessian against its own step's noise, every filter
    batch = [
        value(sp.diff(step, y)) * value(sp.diff(mean, G)) * through(BatchHess, r) for y, mean, r in zip(ys, means, f.r)
    ]
    return [sp.Add(*own), sp.Add(*now), sp.Add(*shared), sp.Add(*batch)]
