"""The truncated power series in ``h`` (``memcorr.algebra.series``): each operation against the
Taylor series sympy computes from the whole expression."""

import sympy as sp

from memcorr.algebra.atoms import FieldSymbol, G, Hess
from memcorr.algebra.series import Series, convolve

h, a, b = sp.symbols("h a b", real=True)


def test_convolve_truncates_the_product():
    assert convolve([1, 2, 3], [4, 5, 6], 2) == [4, 13, 28]
    assert convolve([0, 1], [0, 1], 1) == [0, 0]


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


def test_a_repeated_argument_counts_every_ordering_once_with_its_weight():
    """``D_3(δ, δ, δ)`` over multisets of δ's terms (the shared list) equals the sum over every ordering
    (three equal but distinct lists, expanded one by one)."""
    from memcorr.algebra.atoms import Dk

    u, w = FieldSymbol("u"), FieldSymbol("w")
    series = Series({}, h, 4)
    delta = series.pad([0, a * G, Hess(u) + b * w, u])
    shared = series._multilinear(Dk, [delta, delta, delta])
    apart = series._multilinear(Dk, [delta, list(delta), list(delta)])
    assert all(sp.expand(x - y) == 0 for x, y in zip(shared, apart))
    assert shared[3] == a**3 * Dk(G, G, G)
