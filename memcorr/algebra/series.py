"""Truncated power series in the step size ``h``, as coefficient lists ``[c_0, …, c_R]``.

Input: a per-coordinate expression in the atoms of ``atoms`` whose ``h``
dependence enters through ``h`` itself and through symbols standing for series
(the states ``S(θ) = Σ h^i S_i``, a displacement ``δ = −hΣ h^q Ψ_q``), and the
order ``R``. Output: the coefficients of ``h^0 … h^R``.

The expression tree is evaluated bottom-up on coefficient lists, truncating at
``h^R`` as it goes — sums coefficientwise, products by convolution, powers by
the recurrence of ``a^α``, functions by their Taylor series at ``c_0``, the
multilinear atoms (``Hess``, ``D_k``, ``Dot``) by multilinear convolution, and a
gradient or loss at a moving point ``θ + δ(h)`` by its Taylor series in ``δ`` —
instead of building the whole expression and differentiating it ``R`` times in
``h``. Each subexpression is evaluated once (cached).
"""

from __future__ import annotations

import functools
import math
from typing import cast

import sympy as sp

from ..errors import DerivationError
from .atoms import LOSS, THETA, Dk, Dot, G, Grad, Hess, LossAt, Norm, _Linear, linear_terms, real_diff, simplify

Coefficients = list


class SeriesError(DerivationError):
    """The expression has no power series in ``h`` this engine can take (e.g. ``1/h``): the program
    cannot be derived, and the command line says so (exit 2)."""


def convolve(a: Coefficients, b: Coefficients, R: int) -> Coefficients:
    """``(a · b)`` truncated at ``h^R``."""
    out = [sp.S.Zero] * (R + 1)
    for i, x in enumerate(a):
        if x == 0:
            continue
        for j in range(R + 1 - i):
            if b[j] != 0:
                out[i + j] += x * b[j]
    return out


class Series:
    """Evaluate expressions to order ``R`` with ``subs`` (symbol → coefficient list) for the
    symbols that stand for series, and ``h`` itself as ``[0, 1, 0, …]``."""

    def __init__(self, subs: dict, h, R: int):
        self.R, self.h = R, h
        self.subs = {s: self.pad(c) for s, c in subs.items()}
        self.moving = set(self.subs) | {h}
        self.cache: dict = {}

    def pad(self, coefficients) -> Coefficients:
        c = [sp.sympify(x) for x in list(coefficients)[: self.R + 1]]
        return c + [sp.S.Zero] * (self.R + 1 - len(c))

    def constant(self, expr) -> Coefficients:
        return [expr] + [sp.S.Zero] * self.R

    def coefficient(self, expr, r: int):
        """The ``h^r`` coefficient of ``expr``."""
        return self.of(expr)[r]

    def of(self, expr) -> Coefficients:
        """The coefficients ``[c_0, …, c_R]`` of ``expr``."""
        if expr in self.cache:
            return self.cache[expr]
        if expr in self.subs:
            out = self.subs[expr]
        elif expr == self.h:
            out = self.pad([0, 1])
        elif not (expr.free_symbols & self.moving):
            out = self.constant(expr)
        else:
            out = self._compound(expr)
        self.cache[expr] = out
        return out

    def _compound(self, expr) -> Coefficients:
        if expr.is_Add:
            parts = [self.of(a) for a in expr.args]
            return [sp.Add(*[p[k] for p in parts]) for k in range(self.R + 1)]
        if expr.is_Mul:
            fixed = sp.Mul(*[a for a in expr.args if not (a.free_symbols & self.moving)])
            out = self.constant(fixed)
            for a in expr.args:
                if a.free_symbols & self.moving:
                    out = convolve(out, self.of(a), self.R)
            return out
        if expr.is_Pow:
            return self._power(expr.base, expr.exp)
        if isinstance(expr, _Linear):  # Hess, CoordSum, the batch moments: linear in their field
            atom = cast(sp.Function, expr)
            return self._multilinear(atom.func, [self.of(atom.args[0])])
        if isinstance(expr, Dk):
            return self._multilinear(Dk, [self.of(a) for a in expr.args])
        if isinstance(expr, Dot):
            return self._multilinear(Dot, [self.of(a) for a in expr.args])
        if isinstance(expr, Norm):
            return self._power(Dot(expr.args[0], expr.args[0]), sp.S.Half)
        if isinstance(expr, (Grad, LossAt)):
            return self._at_point(expr)
        if isinstance(expr, sp.Function) and len(expr.args) == 1:
            return self._function(expr)
        raise SeriesError(f"no series in h for {expr.func}")

    def _multilinear(self, func, args: list[Coefficients]) -> Coefficients:
        """``func`` (``Hess``, ``D_k``, ``Dot``, ``CoordSum``: linear in each argument) of series
        arguments, by multilinear convolution. Each coefficient is split into scalar times field
        once, and the atoms are built from canonical fields directly (``evaluate=False``).

        A symmetric atom's repeated argument (``D_k(δ, …, δ)``: Taylor's theorem at a moving point) is
        expanded over multisets of its terms with multinomial weights, not over all orderings: the
        orderings are the same atom, and there are up to ``k!`` times as many of them."""
        groups = _grouped(args) if func.symmetric else [(a, 1) for a in args]
        combined: list[list] = [[((), ())]] + [[] for _ in range(self.R)]  # per order: (scalars, fields)
        for a, count in groups:
            picks = self._picks(a, count)
            combined = [
                [(s1 + s2, f1 + f2) for i in range(r + 1) for s1, f1 in combined[i] for s2, f2 in picks[r - i]]
                for r in range(self.R + 1)
            ]
        out = []
        for terms in combined:
            by_atom: dict = {}
            for scalars, fields in terms:
                if func.symmetric:
                    fields = sorted(fields, key=sp.default_sort_key)
                head = Hess if func is Dk and len(fields) == 1 else func  # D_k of one argument is Hess
                by_atom.setdefault(head(*fields, evaluate=False), []).append(sp.Mul(*scalars))
            out.append(sp.Add(*[sp.Add(*cs) * atom for atom, cs in by_atom.items()]))
        return out

    def _picks(self, a: Coefficients, count: int) -> list[list]:
        """``count`` terms of the series ``a`` taken as a multiset, per total order:
        ``(weight and scalars, fields)`` with the multinomial weight of the orderings."""
        terms = [(i, c, f) for i in range(self.R + 1) for c, f in _terms(a[i])]
        out: list[list] = [[] for _ in range(self.R + 1)]

        def extend(start: int, chosen: list, order: int):
            if len(chosen) == count:
                weight = math.factorial(count)
                for t in set(chosen):
                    weight //= math.factorial(chosen.count(t))
                out[order].append(((weight, *(terms[t][1] for t in chosen)), tuple(terms[t][2] for t in chosen)))
                return
            for t in range(start, len(terms)):
                if order + terms[t][0] <= self.R:
                    extend(t, chosen + [t], order + terms[t][0])

        extend(0, [], 0)
        return out

    def _power(self, base, exp) -> Coefficients:
        if exp.free_symbols & self.moving:
            raise SeriesError(f"the exponent of {base}**{exp} depends on h")
        a = self.of(base)
        if exp.is_Integer and exp >= 0:
            out = self.constant(sp.S.One)
            for _ in range(int(exp)):
                out = convolve(out, a, self.R)
            return out
        lead = next((k for k, x in enumerate(a) if x != 0), None)
        if lead is None:
            raise SeriesError(f"{base}**{exp}: the base vanishes to order h^{self.R}")
        shift = lead * exp
        if lead and not (shift.is_Integer and shift >= 0):
            raise SeriesError(f"{base}**{exp} has no power series in h")
        # a = h^lead · b with b_0 ≠ 0; b^α by b_k = (1/(k b_0)) Σ_{j=1..k} (α j − k + j) b_j b_{k−j}
        b = a[lead:] + [sp.S.Zero] * lead
        out = [b[0] ** exp] + [sp.S.Zero] * self.R
        for k in range(1, self.R + 1):
            total = sp.Add(*[(exp * j - k + j) * b[j] * out[k - j] for j in range(1, k + 1) if b[j] != 0])
            out[k] = total / (k * b[0])
        return [sp.S.Zero] * int(shift) + out[: self.R + 1 - int(shift)]

    def _taylor(self, derivatives, a: Coefficients) -> Coefficients:
        """``Σ_m f^(m)(a_0)/m! (a − a_0)^m`` from the derivatives ``f^(m)(a_0)``."""
        eps = [sp.S.Zero] + a[1:]
        out, power = self.constant(derivatives(0)), self.constant(sp.S.One)
        for m in range(1, self.R + 1):
            power = convolve(power, eps, self.R)
            if all(x == 0 for x in power):
                break
            d = derivatives(m)
            if d != 0:
                out = [o + d * p / math.factorial(m) for o, p in zip(out, power)]
        return out

    def _function(self, expr) -> Coefficients:
        """An elementwise function of one argument, by its Taylor series (``|x|' = sign x``)."""
        a = self.of(expr.args[0])
        x = sp.Dummy("x", real=True)
        chain = [expr.func(x)]

        def derivative(m):
            while len(chain) <= m:
                chain.append(real_diff(chain[-1], x))
            return chain[m].xreplace({x: a[0]})

        return self._taylor(derivative, a)

    def _at_point(self, atom) -> Coefficients:
        """``∇L`` or ``L`` at ``θ + δ(h)`` by Taylor's theorem in ``δ`` (which starts at ``h^1``):
        ``∇L(θ+δ) = Σ_m ∇^{m+1}L[δ^m]/m!`` and ``L(θ+δ) = L + Σ_{m≥1} ⟨δ, ∇^m L[δ^{m−1}]⟩/m!``."""
        point = self.of(atom.args[0])
        if simplify(point[0] - THETA) != 0:
            raise SeriesError(f"{atom} is not taken at theta + O(h)")
        delta = [sp.S.Zero] + point[1:]
        if isinstance(atom, Grad):
            terms = [self._derivative(delta, m) for m in range(self.R + 1)]
            return [sp.Add(*[t[k] / math.factorial(m) for m, t in enumerate(terms)]) for k in range(self.R + 1)]
        out = self.constant(LOSS)
        for m in range(1, self.R + 1):
            term = self._multilinear(Dot, [delta, self._derivative(delta, m - 1)])
            out = [o + t / math.factorial(m) for o, t in zip(out, term)]
        return out

    def _derivative(self, delta: Coefficients, k: int) -> Coefficients:
        """``∇^{k+1}L[δ, …, δ]`` (k copies) as a field: ``g``, ``Hess(δ)``, ``D_k(δ, …)``."""
        if k == 0:
            return self.constant(G)
        return self._multilinear(Dk, [delta] * k)


def _grouped(args: list[Coefficients]) -> list[tuple[Coefficients, int]]:
    """The arguments with how often each occurs (the same list object)."""
    groups: list[list] = []
    for a in args:
        for g in groups:
            if g[0] is a:
                g[1] += 1
                break
        else:
            groups.append([a, 1])
    return [(a, n) for a, n in groups]


@functools.cache
def _terms(coefficient) -> list[tuple]:
    """``coefficient`` as ``[(scalar, field), …]`` with canonical fields, zero terms left out: what
    a multilinear atom's own ``eval`` would split it into."""
    if coefficient == 0:
        return []
    split = linear_terms(coefficient)
    return [(c, f) for c, f in split if c != 0]
