"""Exact rewritings that shorten an expression (shared by the expansion and the presentation).

- ``tidy``: a sum over the atoms, each coefficient factored;
- ``factor``/``shortest``: the shorter of a few equal forms, ``|x|`` masked so that ``g²/|g|`` cancels;
- ``radicands``: the factored form under every root (``sqrt(βg² + (1 − β)g²) = |g|``);
- ``simplify_arguments``: the arguments of functions and atoms at their shortest;
- ``orient``: parameter gaps written as papers do, ``β/(1 − β)^3`` not ``−β/(β − 1)^3``.
"""

from __future__ import annotations

import functools

import sympy as sp

from .atoms import FieldSymbol, distribute, linear_terms, outer_atoms, sum_by_key


def once_each(f):
    """``f`` computed once per distinct argument: ``replace`` calls it on every occurrence of a subtree,
    and the finite regime's sums repeat the same products thousands of times."""
    done: dict = {}

    def cached(e):
        if e not in done:
            done[e] = f(e)
        return done[e]

    return cached


def radicands(expr):
    """Factor under every root, so that ``sqrt(beta g^2 + (1 - beta) g^2)`` becomes ``|g|``."""
    return expr.replace(
        lambda e: e.is_Pow and e.exp.is_Rational and not e.exp.is_integer,
        once_each(lambda e: sp.Pow(sp.factor(e.base), e.exp)),
    )


def tidy(expr):
    """A readable form: a sum over the atoms (and their products), each coefficient factored;
    the part without atoms stays a sum of fields with factored scalar coefficients."""
    groups = sum_by_key(_by_atoms(term) for term in distribute(radicands(expr)))
    plain = groups.pop(sp.S.One, sp.S.Zero)
    fields = sum_by_key((fld, coeff) for coeff, fld in linear_terms(plain))
    return sp.Add(*[factor(c) * f for f, c in fields.items()]) + sp.Add(*[factor(c) * k for k, c in groups.items()])


def _by_atoms(term) -> tuple:
    """``(the product of the atoms of term in a fixed order, its coefficient)``."""
    atoms = sp.Mul(*sorted(outer_atoms(term), key=sp.default_sort_key))
    return atoms, term / atoms


@functools.lru_cache(maxsize=4096)  # one derivation meets the same coefficient in its map, states and loss
def factor(coefficient):
    """Factor a coefficient, keeping whichever form is shorter.

    ``|x|`` becomes a positive symbol ``a`` and ``x^(2k)`` becomes ``a^(2k)`` first, so that
    ``g^2/|g|`` cancels (sympy rewrites ``|g|^2`` back to ``g^2`` for real ``g``)."""
    masked, back = _mask_abs(coefficient)
    factored = sp.factor(masked)
    if sp.count_ops(factored) > sp.count_ops(masked):
        return coefficient
    return _unmask(factored, back)


def _mask_abs(expr):
    """``|x| -> a`` (a positive field) and ``x^(2k) -> a^(2k)`` for the field symbols ``x``."""
    back = {}
    fields = sorted(
        {a.args[0] for a in expr.atoms(sp.Abs, sp.sign) if isinstance(a.args[0], FieldSymbol)}, key=sp.default_sort_key
    )
    for i, field_ in enumerate(fields):
        a = FieldSymbol(f"@abs{i}", positive=True)  # a field: atoms must not pull it out as a scalar
        back[a] = sp.Abs(field_)
        expr = expr.xreplace({sp.sign(field_): field_ / a})
        expr = expr.replace(
            lambda e, f=field_: e.is_Pow and e.base == f and e.exp.is_integer,
            lambda e, f=field_, a=a: a**e.exp if e.exp.is_even else f * a ** (e.exp - 1),
        ).xreplace({sp.Abs(field_): a})
    return expr, back


def _unmask(expr, back):
    """Undo ``_mask_abs``: ``a -> |x|``, and ``x/|x|`` read as ``sign(x)`` again."""
    return signs(expr.xreplace(back))


def signs(expr):
    """``x/|x|`` written ``sign(x)`` for every field ``x`` (inside atoms too)."""
    for a in expr.atoms(sp.Abs):
        if isinstance(a.args[0], FieldSymbol):
            expr = expr.subs(a.args[0] / a, sp.sign(a.args[0]))
    return expr


@functools.lru_cache(maxsize=4096)
def shortest(expr):
    """The shortest of a few exact rewritings of an expression without atoms."""
    masked, back = _mask_abs(expr)
    candidates = [masked, sp.factor(masked), sp.cancel(masked)]
    for s in sorted(back, key=sp.default_sort_key):
        # partial fractions in a masked |x| (AdamW's coefficient in |g|; in the library they never win in another
        # field): rational and small only, apart is costly; over a numerator free of x they only spread one
        # fraction over more terms (RMSprop: 46 of its 49 calls, 1.5 s)
        if sp.count_ops(masked) > 150 or not masked.is_rational_function(s):
            continue
        together = sp.together(masked)
        if not sp.fraction(together)[0].has(s):
            continue
        try:
            candidates.append(sp.apart(together, s))
        except (sp.PolynomialError, NotImplementedError):
            pass
    return min([expr] + [_unmask(c, back) for c in candidates], key=sp.count_ops)


def orient(expr, samples: list[dict]):
    """Write every parameter-only sum that is negative at all ``samples`` with its sign outside:
    ``-β/(β − 1)^3`` reads ``β/(1 − β)^3`` and ``-g(βⁿ − 1)`` reads ``g(1 − βⁿ)``, as in papers."""

    def negative(base) -> bool:
        if not base.is_Add or not base.free_symbols or not base.free_symbols <= set(samples[0]):
            return False
        return all(bool(base.subs(values) < 0) for values in samples)

    expr = expr.replace(
        lambda e: e.is_Pow and e.exp.is_integer and negative(e.base),
        lambda e: (-1) ** e.exp * sp.Pow(-e.base, e.exp),
    )

    def negative_gap(f) -> bool:  # βⁿ − 1, not β₁ − β₂ (whose sign is the result: anti-regularizing)
        return negative(f) and any(t.is_number for t in f.args)

    return expr.replace(
        lambda e: e.is_Mul and any(negative_gap(f) for f in e.args),
        lambda e: sp.Mul(*[-f if negative_gap(f) else f for f in e.args]) * (-1) ** sum(map(negative_gap, e.args)),
    )


def _is_application(e) -> bool:
    return (isinstance(e, sp.Function) and not isinstance(e, (sp.Sum, sp.Piecewise)) and bool(e.args)) or (
        e.is_Pow and e.exp.is_Rational and not e.exp.is_integer
    )


def simplify_arguments(expr):
    """Every function's and atom's arguments at their shortest exact form."""

    def short(arg):
        if not isinstance(arg, sp.Expr) or not arg.free_symbols or arg.is_Symbol:
            return arg
        options = [arg, sp.expand(arg), factor(arg)]
        return min(options, key=sp.count_ops)

    def rebuild(e):
        if e.is_Pow:
            return sp.Pow(short(e.base), e.exp)
        return e.func(*[short(a) for a in e.args])

    return expr.replace(_is_application, rebuild)
