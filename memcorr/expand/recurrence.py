"""The finite regime for any state system: the first-order memoryless map as loops over the steps.

Input: ``Model``. Output: ``Expansion`` whose formulas are ``Recurrence`` atoms,
loops the generated code runs in O(n) vectorized steps (an HVP per step where the states read
the gradient).

docs/method.md §1 as the first-order response of the states to the past displacements, computed
step by step instead of summed in closed form: for the programs whose closed form does not
exist (a rate that changes with the step or with the state: NAdam's μ-product, Adadelta) or
nests sums over the steps (a state fed by a nonlinear function of another: RMSprop's momentum
on ``g/(√v + ε)``), which would cost O(n²) and more per call. Along the memoryless history
(every iterate ``θ``, ``h = 0``) the states are ``σ_{t+1} = Φ(σ_t, θ)``; on the true history
ending at ``θ^(n) = θ`` the iterates are ``θ + h q_t``, ``q_t = Σ_{v=t}^{n−1} F̄(v)``, and the
states ``σ_t + h δ_t`` with ``δ_{t+1} = Φ_s δ_t + Φ_θ[q_t] + ∂_h Φ``, ``δ_0 = D init[q_0]``.
Then ``M^(n) = F_s δ_n + ∂_h F``. Two loops: the first sums ``q_0 = Σ_{t<n} F̄(t)``, the second
runs ``σ``, ``δ`` and ``q_{t+1} = q_t − F̄(t)`` forward.
"""

from __future__ import annotations

import sympy as sp

from ..algebra.atoms import FieldAtom, FieldSymbol, directional, expand_points, real_diff
from ..errors import DerivationError
from .expansion import Expansion, along, coefficient, kink_notes


class Recurrence(FieldAtom):
    """``Recurrence(out, vars, inits, steps, t, n)``: run ``vars ← steps`` (simultaneously, at
    step ``t``) for ``t = 0, …, n − 1`` from ``vars = inits``, then ``out`` (at ``t = n``).

    ``vars`` and ``t`` are bound; ``inits`` are evaluated before the loop, outside it."""

    nargs = 6

    @property
    def parts(self):
        out, names, inits, steps, t, n = self.args
        return out, list(names), list(inits), list(steps), t, n

    @property
    def free_symbols(self):
        out, names, inits, steps, t, n = self.parts
        inside = set().union(out.free_symbols, *[s.free_symbols for s in steps]) - set(names) - {t}
        return inside.union(n.free_symbols, *[i.free_symbols for i in inits])

    def _eval_derivative(self, x):
        if x in self.free_symbols:
            raise DerivationError("a loop over the past steps has no closed form to differentiate")
        return sp.S.Zero


def recurrent(model) -> Expansion:
    """The finite-n expansion of ``model`` as ``Recurrence`` atoms (any state system)."""
    h, n = model.h, model.n
    t = sp.Dummy("t", integer=True, nonnegative=True)
    states = [st.symbol for st in model.states]
    phi = {st.symbol: expand_points(st.update, 1) for st in model.states}
    at_t = {s: p.subs(h, 0).subs(n, t) for s, p in phi.items()}
    init = [st.init.subs(n, 0) for st in model.states]
    F = expand_points(model.F, 1)
    F0 = F.subs(h, 0)
    F_t = F0.subs(n, t)

    def loop(out, names=(), inits=(), steps=()):
        """``out`` after the memoryless states' loop, with more loop variables."""
        return Recurrence(
            out, sp.Tuple(*states, *names), sp.Tuple(*init, *inits), sp.Tuple(*at_t.values(), *steps), t, n
        )

    total = FieldSymbol("Q")
    q_0 = loop(total, [total], [0], [total + F_t])  # Σ_{t<n} F̄(t)
    q = FieldSymbol("q")
    delta = {s: FieldSymbol(f"delta_{s}") for s in states}
    moves = [
        along(at_t[s], {}, delta) + directional(at_t[s], q) + real_diff(phi[s], h).subs(h, 0).subs(n, t) for s in states
    ]
    start = [directional(i, q_0) for i in init]
    correction = loop(
        coefficient(F, h, 1) + along(F0, {}, delta),
        [*delta.values(), q],
        [*start, q_0],
        [*moves, q - F_t],
    )
    update = loop(F0)
    out = {st.name: [loop(st.symbol)] for st in model.states}
    return Expansion("finite", 1, update, [correction], out, kink_notes(model, F0))
