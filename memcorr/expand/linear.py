"""The manifold recursion of a program linear in the gradients, tree by tree (docs/method.md §2).

Input: the stationary ``Φ`` and ``F`` (transients dropped), the fixed point ``S_0``, the blocks of
states in dependency order and the order ``R``. Output: ``S_1 … S_R`` and ``Ψ_1 … Ψ_R``, or
``None`` when the program is not linear, and the general engine (``stationary``) takes it.

Linear: ``Φ`` and ``F`` are sums of coefficient × (a state, ``g``, ``θ``, or ``∇L`` at ``θ + δ``
with ``δ`` such a sum that vanishes at ``h = 0``), the coefficients polynomial in ``h`` and
rational in the parameters — the heavy-ball family (heavy ball, Nesterov in both forms, QHM,
AggMo, SGD with dampening and weight decay). Then every ``S_r`` and ``Ψ_r`` is a sum over
elementary differentials and the equations of ``stationary`` are solved in ``algebra.trees``, one
coefficient per tree: heavy ball's order 8 (115 trees in ``Ψ_8``) without a sympy sum in the loop.
"""

from __future__ import annotations

import functools
import logging

import sympy as sp

from ..algebra.atoms import THETA, FieldAtom, G, Grad, LossValue, ScalarAtom
from ..algebra.simplify import factor
from ..algebra.trees import GRAD, POSITION, AtPoint, Field, Ring, add_into, combination, polynomial_fraction, to_expr

log = logging.getLogger("memcorr")


class _NotLinear(Exception):
    """The program is outside the linear family."""


def linear_recursion(phi: dict, F, S0: dict, blocks: list, h, params: list, order: int):
    """``([S_1, …], [Ψ_1, …])`` as sympy expressions (``S_r``: {state: field}), or ``None``."""
    try:
        forms = _Forms(phi, F, S0, blocks, h, params)
    except _NotLinear:
        return None
    return forms.solve(order)


class _Forms:
    """``Φ``, ``F``, the gradients' points and ``S_0`` as linear forms ``{object: [c_0, c_1, …]}``
    (``c_j`` the ``h^j`` coefficient; objects: the states, ``g``, ``θ``, ``Grad(x)``), in the ring."""

    def __init__(self, phi: dict, F, S0: dict, blocks: list, h, params: list):
        self.h, self.states, self.blocks = h, list(phi), blocks
        raw_phi = {s: self._parse(u) for s, u in phi.items()}
        raw_F = self._parse(F)
        raw_S0 = {s: self._parse(x) for s, x in S0.items()}
        inverses = [self._inverse(block, raw_phi) for block in blocks]
        raw_points = {}
        for atom in {o for form in [raw_F, *raw_phi.values()] for o in form if isinstance(o, Grad)}:
            raw_points[atom] = self._delta(atom)
        coefficients = [
            c
            for form in [raw_F, *raw_phi.values(), *raw_S0.values(), *raw_points.values()]
            for cs in form.values()
            for c in cs
        ]
        coefficients += [c for inv in inverses for c in inv]
        denominators = {polynomial_fraction(c, params)[1] for c in coefficients}
        try:
            self.ring = Ring(params, [d for d in denominators if d != 1])
            self.phi = {s: self._converted(f) for s, f in raw_phi.items()}
            self.F = self._converted(raw_F)
            self.S0 = {s: self._field(self._converted(f)) for s, f in raw_S0.items()}
            self.inverses = [[[self.ring.of(x) for x in row] for row in inv.tolist()] for inv in inverses]
            self.points = {a: self._converted(f) for a, f in raw_points.items()}
        except (ValueError, sp.PolynomialError) as e:
            raise _NotLinear from e

    def _parse(self, expr) -> dict:
        """``expr`` as ``{object: [h^0 coefficient, h^1 coefficient, …]}``, or ``_NotLinear``."""
        form: dict = {}
        for term in sp.Add.make_args(sp.expand(expr)):
            objects = [f for f in sp.Mul.make_args(term) if f in self.states or f in (G, THETA) or isinstance(f, Grad)]
            if len(objects) != 1:
                raise _NotLinear
            (obj,) = objects
            coefficient = term / obj
            if coefficient.has(G, THETA, *self.states) or coefficient.atoms(FieldAtom, ScalarAtom, LossValue):
                raise _NotLinear
            poly = coefficient.as_poly(self.h)
            if poly is None:
                raise _NotLinear
            coefficients = poly.all_coeffs()[::-1]  # by powers of h, from h^0
            known = form.setdefault(obj, [])
            known.extend([sp.S.Zero] * (len(coefficients) - len(known)))
            for j, c in enumerate(coefficients):
                known[j] += c
        return form

    def _delta(self, atom) -> dict:
        """``x − θ`` of ``Grad(x)``, which must vanish at ``h = 0`` term by term (so that the point at
        order ``k`` reads the states below ``k`` only)."""
        form = self._parse(atom.args[0] - THETA)
        if any(cs and cs[0] != 0 for cs in form.values()):
            raise _NotLinear
        return form

    def _inverse(self, block, raw_phi) -> sp.Matrix:
        """``(I − Φ_s)^{-1}`` of one block: ``Φ_s`` the ``h^0`` coefficients of its own states."""
        jacobian = sp.Matrix([[(raw_phi[s].get(t) or [0])[0] for t in block] for s in block])
        return (sp.eye(len(block)) - jacobian).inv().applyfunc(sp.cancel)

    def _converted(self, form: dict) -> dict:
        return {obj: [self.ring.of(c) for c in cs] for obj, cs in form.items()}

    # ------------------------------------------------------------ the recursion
    def solve(self, order: int):
        ring = self.ring
        S: list[dict] = [dict(self.S0)]
        current: dict = {}

        def value(obj, j: int) -> Field:
            if obj in self.states:
                return S[j][obj] if j < len(S) else current.get(obj, {})
            if obj == G or obj == THETA:
                return {GRAD if obj == G else POSITION: ring.one} if j == 0 else {}
            return points[obj].tree(GRAD, j)

        def at(form: dict, k: int) -> Field:
            return combination((c, value(obj, k - j)) for obj, cs in form.items() for j, c in enumerate(cs) if j <= k)

        points = {a: AtPoint(ring, functools.partial(at, f)) for a, f in self.points.items()}
        psi = [at(self.F, 0)]

        def back(k: int) -> Field:  # δ = −hΨ: its h^k coefficient is −Ψ_{k−1}
            return {t: -c for t, c in psi[k - 1].items()}

        shift = AtPoint(ring, back)
        for r in range(1, order + 1):
            log.info("invariant manifold: order %d of %d", r, order)
            current = {}
            for block, inverse in zip(self.blocks, self.inverses):
                rhs = [add_into(at(self.phi[s], r), _shifted(shift, S, s, r), -1) for s in block]
                for i, s in enumerate(block):
                    current[s] = combination((inverse[i][j], rhs[j]) for j in range(len(block)))
            S.append(current)
            psi.append(at(self.F, r))
        coefficient = Coefficients(ring)
        states = [{s: to_expr(f, coefficient) for s, f in S_r.items()} for S_r in S[1:]]
        return states, [to_expr(p, coefficient) for p in psi[1:]]

    def _field(self, form: dict) -> Field:
        """A field of ``g`` and ``θ`` alone (``S_0``)."""
        out: Field = {}
        for obj, cs in form.items():
            if obj not in (G, THETA) or len(cs) > 1:
                raise _NotLinear
            add_into(out, {GRAD if obj == G else POSITION: cs[0]})
        return out


class Coefficients:
    """A ring coefficient as ``tidy`` writes it (``factor``, the shorter form), each distinct
    fraction factored once: the coefficients of many trees differ by a rational factor only."""

    def __init__(self, ring: Ring):
        self.ring = ring
        self.done: dict = {}

    def __call__(self, c) -> sp.Expr:
        p, q = self.ring.fraction(c)
        scale = p.ring.domain.to_sympy(p.LC) / q.ring.domain.to_sympy(q.LC)
        key = (p.monic(), q.monic())
        if key not in self.done:
            self.done[key] = factor(key[0].as_expr() / key[1].as_expr())
        return scale * self.done[key]


def _shifted(shift: AtPoint, S: list[dict], s, r: int) -> Field:
    """``[S(θ − hΨ(θ))]_r`` without its ``S_r`` term: ``Σ_{i<r} [S_i(θ + δ)]_{r−i}``."""
    return combination((1, shift.field(S[i][s], r - i)) for i in range(r))
