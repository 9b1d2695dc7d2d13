"""Sums over the past steps (``memcorr.algebra.sums``): closed forms where the weights are
geometric, the sum pushed inside a Hessian, nested ranges swapped — each equal to the sum it
rewrites, checked by summing term by term at a given ``n``."""

import sympy as sp

from memcorr.algebra.atoms import G, Hess
from memcorr.algebra.sums import field_sum, geometric_in, history_sum

beta = sp.Symbol("beta", positive=True)
n = sp.Symbol("n", integer=True, nonnegative=True)
u, v = sp.symbols("u v", integer=True, nonnegative=True)


def at(expr, steps: int):
    """``expr`` at ``n = steps`` and ``β = 1/3``, every remaining sum done term by term."""
    return sp.nsimplify(expr.subs({n: steps, beta: sp.Rational(1, 3)}).doit())


def test_a_geometric_weight_sums_in_closed_form():
    total = field_sum(G, beta**u, u, 0, n - 1)
    assert not total.has(sp.Sum) and sp.simplify(total - G * (1 - beta**n) / (1 - beta)) == 0


def test_which_weights_are_geometric():
    assert geometric_in(u * beta ** (2 * u + 1), u)
    assert not geometric_in(1 / (u + 1), u)


def test_the_sum_goes_inside_a_hessian():
    out = history_sum(beta**u * Hess(G), u, 0, n - 1)
    assert not out.has(sp.Sum) and out.has(Hess)
    assert at(out, 5) == at(sp.Sum(beta**u, (u, 0, 4)).doit() * Hess(G), 5)


def test_nested_ranges_are_swapped():
    """``Σ_{u<n} β^u Σ_{v<u} G`` counts each ``v`` with ``Σ_{v<u<n} β^u``."""
    nested = sp.Sum(beta**u * sp.Sum(G, (v, 0, u - 1)), (u, 0, n - 1))
    out = history_sum(beta**u * sp.Sum(G, (v, 0, u - 1)), u, 0, n - 1)
    for steps in (1, 2, 6):
        assert sp.simplify(at(out, steps) - at(nested, steps)) == 0
