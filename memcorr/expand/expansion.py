"""The result of this stage, and the steps both regimes share.

``Expansion``: the memoryless update ``Ψ_0``, the corrections ``Ψ_1 … Ψ_R``
(``θ_{n+1} = θ_n − h Σ h^r Ψ_r``) and the states on the invariant manifold, per coordinate, in
the atoms of ``algebra``; ``coefficient`` (of ``h^r``), ``along`` (the response to moved states),
``kink_notes`` and ``oriented`` (gaps written ``1 − β``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy as sp

from ..algebra.atoms import FieldSymbol, expand_points, real_diff
from ..algebra.simplify import orient, radicands
from ..model.sampling import orientation_samples
from ..model.types import Model


@dataclass
class Expansion:
    regime: str
    order: int
    update: sp.Expr
    corrections: list[sp.Expr]
    states: dict[str, list[sp.Expr]]
    notes: list[str] = field(default_factory=list)
    # finite regime: where two decay rates coincide the generic closed forms divide 0/0; each
    # (condition, expansion) is the derivation with the rates identified, taken where it holds
    confluent: list[tuple[sp.Eq, Expansion]] = field(default_factory=list)
    # random batches (docs/method.md §7): the corrections are means over the labels, and ``noise``
    # is the part of the first one that the gradient noise adds (0 for full batches), exact or to
    # leading order in the noise
    batches: str = "full"
    noise: sp.Expr = sp.S.Zero
    noise_exact: bool = True  # False: the mean to leading order in the noise (a nonlinear program)


def coefficient(expr, h, r: int):
    """The coefficient of ``h^r`` in the Taylor series of ``expr`` at ``h = 0``."""
    for _ in range(r):
        expr = real_diff(expr, h)
    return radicands(expr.subs(h, 0)) / sp.factorial(r)


def along(expr, at, moves: dict):
    """``d/dε expr(σ + ε δ)`` at ``ε = 0``: the states moved by ``δ``; reductions of states
    (``norm(m)``) and gradients at states are differentiated as the operators they are."""
    moves = {s: d for s, d in moves.items() if d != 0 and expr.has(s)}
    if not moves:
        return sp.S.Zero
    # differentiated with the states and directions as symbols, which keeps it small, then filled in
    e = sp.Dummy("e", real=True)
    marks = {s: FieldSymbol(f"@d{i}") for i, s in enumerate(moves)}
    derivative = coefficient(expand_points(expr.xreplace({s: s + e * m for s, m in marks.items()}), 1), e, 1)
    return derivative.xreplace({m: moves[s] for s, m in marks.items()}).xreplace(at)


def kink_notes(model: Model, update) -> list[str]:
    """What the result relied on: derivatives of kinks (in the program, or in ``Ψ_0`` such as
    ``sqrt(g^2) = |g|``) taken where they are differentiable."""
    if any(e.has(sp.sign, sp.Abs, sp.Max, sp.Min) for e in [model.F, *model.Phi, update]):
        return [
            "derivatives of sign/abs/max/min were taken where they are differentiable "
            "(sign' = 0, abs' = sign): the result holds away from their kinks"
        ]
    return []


def oriented(e: Expansion, model: Model) -> Expansion:
    values = orientation_samples(model)
    return replace(
        e,
        update=orient(e.update, values),
        corrections=[orient(c, values) for c in e.corrections],
        states={k: [orient(x, values) for x in v] for k, v in e.states.items()},
    )
