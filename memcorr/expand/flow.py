"""The modified flow: the ODE whose time-``h`` flow is the memoryless map (docs/method.md §5).

Input: ``Expansion`` of the map. Output: ``Expansion`` of the flow (``target="flow"``).
"""

from __future__ import annotations

import logging
import math

import sympy as sp

from ..algebra.atoms import THETA, Dk, FieldSymbol, G, Hess, directional, linear_terms
from ..algebra.simplify import tidy
from ..algebra.trees import AtPoint, Field, Ring, add_into, combination, from_expr, polynomial_fraction, to_expr
from ..errors import DerivationError
from .expansion import Expansion
from .linear import Coefficients
from .recurrence import Recurrence

log = logging.getLogger("memcorr")


def modified_flow(e: Expansion) -> Expansion:
    """The ODE ``θ' = −Ψ̃(θ)``, ``Ψ̃ = Σ h^r Ψ̃_r``, whose time-``h`` flow is the memoryless map to
    the expansion's order (docs/method.md §5; backward error analysis). The flow's step is
    ``Σ_k h^k/k! L^{k−1} f`` with ``f = −Ψ̃`` and ``L u = D u[f]``; matching ``h^{r+1}`` with the
    map's ``−Ψ_r`` gives ``Ψ̃_r = Ψ_r + [Σ_{k≥2} h^k/k! L^{k−1} f]_{r+1}``, ``f`` known below ``r``
    (first order: ``Ψ̃_1 = Ψ_1 + ½ DΨ_0[Ψ_0]``). In the finite regime ``n`` is held for the step."""
    if e.update.has(Recurrence):
        raise DerivationError(
            "the modified flow differentiates the map, and this finite-n map is a loop over the "
            "past steps with no closed form; use --target map (or the stationary regime)"
        )
    flow = _in_trees(e) or _in_series(e)
    notes = e.notes + (
        ["the flow holds n fixed over each step (the map changes with n)"] if e.regime == "finite" else []
    )
    return Expansion(e.regime, e.order, e.update, flow, e.states, notes)


def _in_series(e: Expansion) -> list:
    """``[Ψ̃_1, …]`` with sympy's directional derivative (any map)."""
    flow = [e.update]
    for r in range(1, e.order + 1):
        log.info("modified flow: order %d of %d", r, e.order)
        f = [-x for x in flow]  # f = Σ_b h^b f_b, known to h^(r−1)
        # lie[m]: the coefficient of h^m in L^(k−1) f, kept only to the degree the step reads
        # (D[E][u] is linear in u, so L u = Σ_b h^b D u[f_b]); the h^(r+1) term of the step
        # collects h^k/k! · [L^(k−1) f]_(r+1−k)
        lie, step = f, sp.S.Zero
        for k in range(2, r + 2):
            top = r + 1 - k
            lie = [sp.Add(*[directional(lie[a], f[m - a]) for a in range(m + 1)]) for m in range(top + 1)]
            step += lie[top] / sp.factorial(k)
        flow.append(tidy(e.corrections[r - 1] + step))
    return flow[1:]


def _normal(field: Field, ring: Ring) -> Field:
    return {t: ring.normal(c) for t, c in field.items()}


def _elementary(expr) -> bool:
    """A quick look before the conversion: no field other than ``g``, ``θ`` and no function other than
    ``Hess`` and ``D_k`` (AdamW's ``|g|`` fails here, not after splitting its long corrections)."""
    return expr.atoms(FieldSymbol) <= {G, THETA} and all(isinstance(a, (Hess, Dk)) for a in expr.atoms(sp.Function))


def _in_trees(e: Expansion) -> list | None:
    """``[Ψ̃_1, …]`` one coefficient per elementary differential, where every ``Ψ_r`` is a sum over
    them with coefficients rational in the parameters (the programs linear in the gradients);
    ``None`` otherwise. The same recursion as ``_in_series``."""
    psi = [e.update, *e.corrections]
    if any(not _elementary(x) for x in psi):
        return None
    terms = [c for x in psi for c, _ in linear_terms(x)]
    try:
        params = sorted(set().union(*(c.free_symbols for c in terms)), key=sp.default_sort_key)
        ring = Ring(params, [d for d in {polynomial_fraction(c, params)[1] for c in terms} if d != 1])
        fields = [from_expr(x, ring) for x in psi]
    except (ValueError, sp.PolynomialError):
        return None
    coefficient = Coefficients(ring)
    f: list[Field] = []  # f = −Ψ̃, known to h^(r−1)
    along: list[AtPoint] = []  # D[·][f_b], each tree's derivative along f_b taken once

    def known(field: Field):
        direction = {t: -c for t, c in field.items()}
        f.append(direction)
        along.append(AtPoint(ring, lambda k: direction if k == 1 else {}))

    known(fields[0])
    flow = []
    for r in range(1, e.order + 1):
        log.info("modified flow: order %d of %d", r, e.order)
        lie, step = f, dict(fields[r])
        for k in range(2, r + 2):
            top = r + 1 - k
            lie = [
                _normal(combination((1, along[m - a].field(lie[a], 1)) for a in range(m + 1)), ring)
                for m in range(top + 1)
            ]
            add_into(step, lie[top], sp.QQ(1, math.factorial(k)))
        flow.append(to_expr(step, coefficient))
        known(step)
    return flow
