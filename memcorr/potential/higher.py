"""The implied loss beyond first order: ``Ψ_r = P ⊙ ∇G_r`` for r ≥ 2 (docs/method.md §4, per order).

Input: the corrections ``Ψ_2 … Ψ_R`` (long forms) and the first order's reading ``P``.
Output: one ``OrderPotential`` per order — ``G_r`` as a combination, with constant
coefficients, of inner products ``⟨a, b⟩`` of the fields ``Ψ_r/P`` is built from (``g``,
``θ``, its atoms and their arguments), found by linear algebra on the canonical terms of
``∇⟨a, b⟩`` (``algebra.atoms.gradient``) and checked by differentiating back.

When no combination has that gradient, ``Ψ_r/P = ∇G_r + N_r``: ``G_r`` matches the terms with
the highest derivative of ``L`` (only a potential's Hessians can produce those), then the next
lower ones while the equations stay consistent, and ``N_r`` is what is left. Gradient descent's
modified flow ``Ψ̃_2 = ⅓H²g + 1/12 ∇³L[g, g] = ∇(1/12 ⟨g, Hg⟩) + ⅙H²g`` leaves ``⅙H²g``, the split
of Rosca et al. (TMLR 2023) for the second-order modified flow of gradient descent.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

from ..algebra.atoms import (
    LOSS,
    THETA,
    Dk,
    Dot,
    FieldAtom,
    G,
    Hess,
    gradient,
    linear_terms,
    outer_atoms,
    simplify,
    sum_by_key,
)
from ..algebra.simplify import tidy

MAX_PIECES = 10  # at most 55 inner products tried; a larger field is reported without a potential
MAX_OPS = 600  # fields longer than this are not tried either: the ansatz would cost more than the derivation


@dataclass
class OrderPotential:
    """``Ψ_r = P ⊙ (∇G_r + N_r)``: ``N_r`` (``non_gradient``) zero when ``G_r`` is exact;
    ``potential None`` and the reason when the field was not tried."""

    order: int
    potential: sp.Expr | None
    reason: str = ""
    non_gradient: sp.Expr = sp.S.Zero

    @property
    def exact(self) -> bool:
        return self.potential is not None and self.non_gradient == 0


def higher_potentials(corrections, preconditioner) -> list[OrderPotential]:
    """One entry per order r ≥ 2 of ``corrections`` (``[Ψ_1, Ψ_2, …]``)."""
    out = []
    for r, psi in enumerate(corrections[1:], start=2):
        if preconditioner is None:
            out.append(OrderPotential(r, None, "no first-order reading P to precondition with"))
            continue
        pieces = _pieces(psi / preconditioner)
        if len(pieces) > MAX_PIECES:  # said before expanding: the expansion alone can take seconds
            out.append(OrderPotential(r, None, f"Ψ_{r}/P has {len(pieces)} pieces: too large to try"))
            continue
        field = sp.expand(psi / preconditioner)
        ops = sp.count_ops(field)
        if ops > MAX_OPS:
            out.append(OrderPotential(r, None, f"Ψ_{r}/P has {ops} operations expanded: too large to try"))
            continue
        potential, rest = integrate(field, pieces)
        reason = "" if rest == 0 else f"Ψ_{r}/P is not a gradient field of inner products of its terms"
        out.append(OrderPotential(r, potential, reason, rest))
    return out


def integrate(field, pieces):
    """``(G, N)`` with ``∇G + N = field``, ``G`` from inner products of ``pieces``: ``N = 0`` when
    ``field`` is a gradient, otherwise the part left after matching the most-derivative terms."""
    if field == 0:
        return sp.S.Zero, sp.S.Zero
    pieces = sorted(pieces, key=sp.default_sort_key)
    candidates = [Dot(a, b) for a, b in itertools.combinations_with_replacement(pieces, 2)]
    candidates = [c for c in candidates if c != 0]
    unknowns = sp.symbols(f"c0:{len(candidates)}")
    equations: dict = {key: -value for key, value in _coefficients(field).items()}
    for c, candidate in zip(unknowns, candidates):
        for key, value in _coefficients(gradient(candidate)).items():
            equations[key] = equations.get(key, 0) + c * value
    levels = {key: _derivatives(key) for key in equations}
    solution = None
    for level in sorted(set(levels.values()), reverse=True):
        found = sp.linsolve([value for key, value in equations.items() if levels[key] >= level], unknowns)
        if not found:
            break
        (solution,) = found
    if solution is None:
        return sp.S.Zero, field
    free = {u: 0 for u in unknowns}  # a free coefficient multiplies an inner product with zero gradient
    potential = sp.factor_terms(sp.Add(*[s.xreplace(free) * c for s, c in zip(solution, candidates)]))
    rest = _coefficients(field - gradient(potential))
    return potential, tidy(sp.Add(*[simplify(v) * f * scalars for (f, scalars), v in rest.items()]))


def _derivatives(key) -> int:
    """The highest derivative of ``L`` in the term ``key`` of ``_coefficients`` (``g`` 1, ``Hess`` 2, ``D_k`` k + 1)."""
    field_part, scalars = key
    return _highest(field_part * scalars)


def _highest(e) -> int:
    own = 1 if e == G else 2 if isinstance(e, Hess) else len(e.args) + 1 if isinstance(e, Dk) else 0
    return max([own, *(_highest(a) for a in e.args)])


def _pieces(field) -> set:
    """``g``, ``θ``, the field atoms of ``field`` and, recursively, their arguments."""
    found = {G, THETA}

    def visit(e):
        for atom in outer_atoms(e):
            if isinstance(atom, FieldAtom):
                found.add(atom)
            for arg in atom.args:
                if isinstance(atom, (Hess, Dk)):
                    found.update(t for _, t in linear_terms(arg) if t != 1)
                visit(arg)

    visit(field)
    return found


def _coefficients(expr) -> dict:
    """``expr`` as ``{(field part, scalar atoms): parameter coefficient}``: two expressions are equal
    when these are."""
    pairs = []
    for coeff, fld in linear_terms(sp.expand(expr)):
        factors = sp.Mul.make_args(coeff)
        reduced = sp.Mul(*[f for f in factors if outer_atoms(f) or f.has(LOSS)])
        pairs.append(((fld, reduced), sp.Mul(*[f for f in factors if not (outer_atoms(f) or f.has(LOSS))])))
    return sum_by_key(pairs)
