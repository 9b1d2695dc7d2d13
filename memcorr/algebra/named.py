"""Named fields: a per-coordinate quantity the program named (``d = g + λθ``) or ``Ψ_0``, kept as
a symbol in the short forms; ``unfold`` puts the definitions back, ``rename`` writes an
expression in a field ``d = a g + b(θ)`` where that is shorter (the implied loss is integrated
in that variable)."""

from __future__ import annotations

import sympy as sp

from .atoms import FieldSymbol, G, is_scalar, outer_atoms
from .simplify import shortest, simplify_arguments


class NamedField(FieldSymbol):
    """A per-coordinate quantity with a name and a definition (``d = g + λθ``)."""

    def __new__(cls, name: str, definition):
        # uncached, and equal only with the same definition: sympy caches symbols by name, and two
        # programs' Ψ_0 must not share one object
        obj = FieldSymbol.__xnew__(cls, name, real=True)
        obj.definition = sp.sympify(definition)
        return obj

    def __getnewargs_ex__(self):  # pickling (the derivation cache): the definition, not Symbol's assumptions
        return (self.name, self.definition), {}

    def _hashable_content(self):
        return super()._hashable_content() + (self.definition,)


def unfold(expr):
    """``expr`` with every named field replaced by its definition (atoms re-evaluated)."""
    while True:
        named = {s: s.definition for s in expr.free_symbols if isinstance(s, NamedField)}
        if not named:
            return expr
        expr = expr.xreplace(named)


def affine_in_g(f) -> bool:
    """``f = a g + b(θ)`` with a constant ``a ≠ 0``."""
    a = sp.diff(f.definition, G)
    return a != 0 and is_scalar(a) and not outer_atoms(a) and not sp.expand(f.definition - a * G).has(G)


def rename(expr, fields: list[NamedField]):
    """Write ``expr`` in a named field ``d = a g + b(θ)`` (``g = (d − b)/a``) where that is shorter."""
    for f in filter(affine_in_g, fields):
        a = sp.diff(f.definition, G)
        g_of_d = (f - (f.definition - a * G)) / a
        candidate = simplify_arguments(expr.xreplace({G: g_of_d}))
        candidate = sp.Add(*[shortest(t) if not outer_atoms(t) else t for t in sp.Add.make_args(candidate)])
        if sp.count_ops(candidate) < sp.count_ops(expr):
            expr = candidate
    return expr
