"""The modified flow: the ODE whose time-``h`` flow is the memoryless map (docs/method.md §5).

Input: ``Expansion`` of the map. Output: ``Expansion`` of the flow (``target="flow"``).
"""

from __future__ import annotations

import logging

import sympy as sp

from ..algebra.atoms import directional
from ..algebra.simplify import tidy
from ..errors import DerivationError
from .expansion import Expansion
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
    notes = e.notes + (
        ["the flow holds n fixed over each step (the map changes with n)"] if e.regime == "finite" else []
    )
    return Expansion(e.regime, e.order, e.update, flow[1:], e.states, notes)
