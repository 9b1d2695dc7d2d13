"""Stage 5 (finite n, any state system): the first-order memoryless map as loops over the steps.

Input: ``lower.Model``. Output: ``expand.Expansion`` whose formulas are ``Recurrence`` atoms,
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

from .calculus import FieldAtom, FieldSymbol, _arg, directional, expand_points, real_diff
from .errors import DerivationError
from .expand import Expansion, along, coefficient, kink_notes


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

    def _latex(self, printer, exp=None):
        """One row per update, as a paper defines a recursion: the result at ``t = n``, then the
        updates for ``t = 0 … n − 1``, then the start; long right-hand sides broken over rows."""
        from .printing.latex import WIDTH, broken  # the printers import this module

        out, names, inits, steps, t, n = self.parts
        tp, np_ = printer._print(t), printer._print(n)

        def lines(expr):
            return r" \\ & \qquad ".join(broken(expr, printer, width=WIDTH - 20))  # right of `lhs = ` and `x ←`

        rows = [rf"\Big[{lines(out)}\Big]_{{{tp} = {np_}}}", rf"\text{{after, for }} {tp} = 0, \dots, {np_} - 1:"]
        rows += [rf"\quad {_arg(printer, x)} \leftarrow {lines(s)}," for x, s in zip(names, steps)]
        # the start: plain values on one row, a start that is itself a loop on rows of its own
        plain = [(x, i) for x, i in zip(names, inits) if not i.has(Recurrence)]
        rows.append(r"\text{from } " + r",\ ".join(rf"{_arg(printer, x)} = {printer._print(i)}" for x, i in plain))
        rows += [rf"\quad {_arg(printer, x)} = {printer._print(i)}" for x, i in zip(names, inits) if i.has(Recurrence)]
        tex = r"\begin{aligned}[t] & " + r" \\ & ".join(rows) + r"\end{aligned}"
        return rf"\left({tex}\right)^{{{exp}}}" if exp else tex

    def _sympystr(self, printer):
        """``[out]_{t=n}`` after the updates for ``t = 0, …, n − 1`` from the start, in one line."""
        out, names, inits, steps, t, n = self.parts
        rule = ", ".join(f"{printer._print(x)} ← {printer._print(s)}" for x, s in zip(names, steps))
        start = ", ".join(f"{printer._print(x)} = {printer._print(i)}" for x, i in zip(names, inits))
        t_, n_ = printer._print(t), printer._print(n)
        return f"[{printer._print(out)}]_{{{t_}={n_}}} after, for {t_} = 0, …, {n_} − 1: {rule}; from {start}"


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
