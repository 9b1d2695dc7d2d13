"""The truncated power series in ``h`` (``memcorr.algebra.series``): each operation against the
Taylor series sympy computes from the whole expression."""

import sympy as sp

from memcorr.algebra.atoms import FieldSymbol, G, Hess
from memcorr.algebra.series import Series, compositions, convolve

h, a, b = sp.symbols("h a b", real=True)


def test_convolve_truncates_the_product():
    assert convolve([1, 2, 3], [4, 5, 6], 2) == [4, 13, 28]
    assert convolve([0, 1], [0, 1], 1) == [0, 0]


def test_compositions_are_every_ordered_split():
    assert sorted(compositions(2, 2)) == [(0, 2), (1, 1), (2, 0)]
    assert len(list(compositions(3, 3))) == 10  # C(5, 2)


def test_functions_of_a_series_match_taylor():
    s = sp.Symbol("s")  # stands for a + b h + h²
    series = Series({s: [a, b, 1]}, h, 3)
    expr = sp.exp(s) / (1 + h * s) + sp.sqrt(s)
    exact = sp.series(expr.subs(s, a + b * h + h**2), h, 0, 4).removeO()
    for r in range(4):
        assert sp.simplify(series.coefficient(expr, r) - exact.coeff(h, r)) == 0


def test_a_hessian_of_a_moving_field_is_multilinear():
    s = FieldSymbol("s")  # a field: Hess must not pull it out as a scalar
    series = Series({s: [G, G]}, h, 2)  # S = g + h g
    assert series.of(Hess(s)) == [Hess(G), Hess(G), 0]
