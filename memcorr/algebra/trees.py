"""Vector fields as sums over elementary differentials, with polynomial coefficients.

Input: the fields of a program linear in the gradients (docs/method.md §3 restricted to ``θ``,
``g``, ``Hess`` and ``D_k``), each a sum of coefficient × elementary differential. Output: the same
sums with the directional derivative's Taylor series at a moving point taken tree by tree, and
``to_expr`` back to the atoms of ``atoms``.

An elementary differential is a rooted tree: the leaves ``g`` (``∇L``) and ``θ``, and a node
``∇^{k+1}L[E_1, …, E_k]`` (``Hess`` for ``k = 1``) with its subtrees ``E_i`` as children, kept
sorted because the derivative is symmetric. A ``Field`` is a dict ``{tree: coefficient}`` with
coefficients in a sympy polynomial ring over ``QQ`` (``Ring``): arithmetic on them is exact and
no sympy expression is built until the result is printed. This is how B-series codes reach high
orders (one coefficient per tree); the general engine (``series``) grows sympy sums instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import sympy as sp
from sympy.polys.rings import ring

from .atoms import THETA, Dk, G, Hess, linear_terms

Tree = tuple
GRAD: Tree = ("g",)
POSITION: Tree = ("theta",)
Field = dict


def node(children) -> Tree:
    """``∇^{k+1}L[children]``: one node over its (sorted) subtrees."""
    return ("D", tuple(sorted(children)))


def polynomial_fraction(expr, params: list) -> tuple:
    """``expr = num / den`` with both polynomials in ``params``: a factored coefficient as it
    stands (cheap), anything else cancelled."""
    num, den = sp.fraction(sp.sympify(expr))
    if not (num.is_polynomial(*params) and den.is_polynomial(*params)):
        num, den = sp.fraction(sp.cancel(expr))
    return num, den


class Ring:
    """Polynomials in the parameters and ``w = 1/D`` over ``QQ``: every coefficient of a linear
    program is ``p / D^e`` for one common denominator ``D`` (the lcm of its coefficients' and of
    the inverted ``I − Φ_s``'s), so ring arithmetic (no gcd) is all the recursion needs."""

    def __init__(self, params: list[sp.Symbol], denominators: list[sp.Expr]):
        self.params = params
        self.denominator = sp.factor(sp.lcm_list(denominators)) if denominators else sp.S.One
        self._w = sp.Dummy("w")
        self.R, *gens = ring([*params, self._w], sp.QQ)
        self.w = gens[-1]
        self.one = self.R.one
        self._d = self.R.from_expr(sp.expand(self.denominator))
        self._powers = [self.one]

    def of(self, expr) -> object:
        """A coefficient (rational in the parameters, its denominator dividing ``D``) in the ring;
        ``ValueError`` for anything else (a root of a parameter, ``h``)."""
        num, den = polynomial_fraction(expr, self.params)
        if den == 1:
            return self.R.from_expr(sp.expand(num)) if num != 0 else self.R.zero
        scale, rest = sp.fraction(sp.cancel(self.denominator / den))
        if rest.free_symbols:
            raise ValueError(f"{den} does not divide the common denominator {self.denominator}")
        return self.R.from_expr(sp.expand(num * scale / rest)) * self.w

    def fraction(self, c) -> tuple:
        """``c = p / q`` with ``p``, ``q`` polynomials in the parameters, cancelled."""
        p, top = self._over_power(c)
        return p.cancel(self._power(top))

    def normal(self, c):
        """``c`` as ``p · w^e`` with one power of ``w``: sums of several powers, multiplied again and
        again (the modified flow's Lie derivatives), would otherwise grow every combination of them."""
        p, top = self._over_power(c)
        return p * self.w**top

    def _over_power(self, c) -> tuple:
        """``(p, e)`` with ``c = p / D^e``, ``p`` free of ``w``."""
        top = max((m[-1] for m in c.monoms()), default=0)
        by_power: dict = {}
        for (*powers, e), coeff in c.terms():
            by_power.setdefault(e, {})[tuple(powers) + (0,)] = coeff
        total = sum((self.R(terms) * self._power(top - e) for e, terms in by_power.items()), self.R.zero)
        return total, top

    def _power(self, k: int):
        """``D^k`` in the ring, each power built once."""
        while len(self._powers) <= k:
            self._powers.append(self._powers[-1] * self._d)
        return self._powers[k]


def add_into(out: Field, field: Field, scale=1) -> Field:
    """``out += scale · field`` in place, zero coefficients dropped."""
    for tree, c in field.items():
        value = out.get(tree, 0) + c * scale
        if value:
            out[tree] = value
        else:
            out.pop(tree, None)
    return out


def combination(terms) -> Field:
    """``Σ scale · field`` over ``(scale, field)`` pairs."""
    out: Field = {}
    for scale, field in terms:
        add_into(out, field, scale)
    return out


def derivative(fields: list[Field], ring_one) -> Field:
    """``∇^{k+1}L[F_1, …, F_k]`` of ``k ≥ 1`` fields, by multilinearity."""
    partial: dict = {(): ring_one}
    for f in fields:
        grown: dict = {}
        for children, c in partial.items():
            for tree, x in f.items():
                key = (*children, tree)
                grown[key] = grown.get(key, 0) + c * x
        partial = grown
    out: Field = {}
    for children, c in partial.items():
        add_into(out, {node(children): c})
    return out


def partitions(k: int, largest: int | None = None):
    """The partitions of ``k`` into parts ``≥ 1``, largest part first."""
    if k == 0:
        yield ()
        return
    for part in range(min(k, largest or k), 0, -1):
        for rest in partitions(k - part, part):
            yield (part, *rest)


def compositions(k: int, parts: int):
    """``k`` written as an ordered sum of ``parts`` whole numbers ``≥ 0``."""
    if parts == 0:
        if k == 0:
            yield ()
        return
    for first in range(k + 1):
        for rest in compositions(k - first, parts - 1):
            yield (first, *rest)


class AtPoint:
    """Trees at a moving point ``θ + δ(h)``, order by order: ``delta(k)`` is the ``h^k`` coefficient
    of ``δ`` (``k ≥ 1``, asked for only once it is known). Taylor's theorem in ``δ``, node by node:
    ``g(θ+δ) = Σ_m ∇^{m+1}L[δ^m]/m!`` and ``E(θ+δ)`` for ``E = ∇^{k+1}L[E_1…E_k]`` is
    ``Σ_m ∇^{k+m+1}L[δ^m, E_1(θ+δ), …, E_k(θ+δ)]/m!``; the ``m`` copies of ``δ`` taken as a
    multiset of orders (a partition) with weight ``1/Π(multiplicity!)``."""

    def __init__(self, ring: Ring, delta: Callable[[int], Field]):
        self.ring, self.delta = ring, delta
        self.memo: dict = {}

    def field(self, f: Field, k: int) -> Field:
        """The ``h^k`` coefficient of ``f(θ + δ)``."""
        return combination((c, self.tree(t, k)) for t, c in f.items())

    def tree(self, t: Tree, k: int) -> Field:
        if (t, k) not in self.memo:
            self.memo[t, k] = self._tree(t, k)
        return self.memo[t, k]

    def _tree(self, t: Tree, k: int) -> Field:
        one = self.ring.one
        if k == 0:
            return {t: one}
        if t == POSITION:
            return self.delta(k)
        children = () if t == GRAD else t[1]
        out: Field = {}
        for a in range(k + 1):
            for parts in partitions(a):
                if not parts and not children:
                    continue
                weight = sp.QQ(1, math.prod(math.factorial(len(list(g))) for _, g in itertools.groupby(parts)))
                shifts = [self.delta(j) for j in parts]
                for orders in compositions(k - a, len(children)):
                    moved = [self.tree(c, o) for c, o in zip(children, orders)]
                    add_into(out, derivative([*shifts, *moved], one), weight)
        return out


def from_expr(expr, ring: Ring) -> Field:
    """A sum of coefficient × elementary differential (``g``, ``θ``, ``Hess``, ``D_k`` of such) as a
    field; ``ValueError`` for anything else (a product of fields, a reduction, a state)."""
    out: Field = {}
    for c, f in linear_terms(expr):
        if c != 0:
            add_into(out, {_tree(f): ring.of(c)})
    return out


def _tree(f) -> Tree:
    if f == G:
        return GRAD
    if f == THETA:
        return POSITION
    if isinstance(f, (Hess, Dk)):
        return node(_tree(a) for a in f.args)
    raise ValueError(f"{f} is not an elementary differential")


def to_expr(field: Field, coefficient: Callable) -> sp.Expr:
    """``Σ coefficient(c) · atom`` in the atoms of ``atoms``."""
    atoms: dict = {}

    def atom(t: Tree):
        if t not in atoms:
            if t == GRAD:
                atoms[t] = G
            elif t == POSITION:
                atoms[t] = THETA
            else:
                args = sorted((atom(c) for c in t[1]), key=sp.default_sort_key)
                atoms[t] = Hess(*args, evaluate=False) if len(args) == 1 else Dk(*args, evaluate=False)
        return atoms[t]

    return sp.Add(*[coefficient(c) * atom(t) for t, c in field.items()])
