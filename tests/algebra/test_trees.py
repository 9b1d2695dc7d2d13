"""Fields as sums over elementary differentials (``memcorr.algebra.trees``): Taylor's theorem at a
moving point tree by tree, against the sympy engine (``series``) and the directional derivative."""

import math

import pytest
import sympy as sp

from memcorr.algebra.atoms import THETA, Dk, FieldSymbol, G, Grad, Hess, directional
from memcorr.algebra.series import Series
from memcorr.algebra.trees import GRAD, POSITION, AtPoint, Ring, node, partitions, to_expr

h = sp.Symbol("h", real=True)
beta = sp.Symbol("beta", positive=True)


def fraction(ring, c):
    p, q = ring.fraction(c)
    return p.as_expr() / q.as_expr()


def test_a_coefficient_whose_denominator_is_not_shared_is_refused():
    """The recursion's ring holds ``p / D^e`` for one ``D``: anything else is a ValueError (the
    program then takes the general engine), not a wrong coefficient."""
    ring = Ring([beta], [1 - beta])
    with pytest.raises(ValueError):
        ring.of(1 / (1 + beta))
    with pytest.raises(ValueError):
        ring.of(sp.sqrt(beta))


def test_partitions_are_the_multisets_of_orders():
    assert sorted(partitions(4)) == sorted([(4,), (3, 1), (2, 2), (2, 1, 1), (1, 1, 1, 1)])
    assert list(partitions(0)) == [()]


def test_a_ring_coefficient_comes_back_as_the_same_fraction():
    ring = Ring([beta], [(1 - beta) ** 3, (1 - beta) ** 2 * (1 + beta)])
    for c in [beta / (1 - beta) ** 3, (1 + beta) / 2, sp.Rational(3, 7), beta**2 / ((1 - beta) ** 2 * (1 + beta))]:
        p, q = ring.fraction(ring.of(c) * ring.of(c))
        assert sp.cancel(p.as_expr() / q.as_expr() - c**2) == 0


def test_the_gradient_at_a_moving_point_matches_the_series_engine():
    """``∇L(θ + δ)`` with ``δ = h β g + h² (Hess(g) + θ)``, to order 4: tree by tree as sympy's series
    engine expands ``Grad`` at a moving point."""
    ring = Ring([beta], [])
    delta = {1: {GRAD: ring.of(beta)}, 2: {node([GRAD]): ring.one, POSITION: ring.one}}
    moving = AtPoint(ring, lambda k: delta.get(k, {}))
    point = THETA + h * beta * G + h**2 * (Hess(G) + THETA)
    expected = Series({}, h, 4).of(Grad(point))
    for k in range(5):
        got = to_expr(moving.tree(GRAD, k), lambda c: fraction(ring, c))
        assert sp.expand(got - expected[k]) == 0, k


def test_a_nested_tree_moves_by_its_directional_derivatives():
    """``T(θ + h u)`` has ``D^k T[u, …, u]/k!`` at ``h^k`` (Taylor's theorem), for
    ``T = ∇³L[g, Hess(θ)]`` and ``u = g``: the tree recursion against ``directional`` applied k times."""
    ring = Ring([], [])
    tree = node([GRAD, node([POSITION])])
    moving = AtPoint(ring, lambda k: {GRAD: ring.one} if k == 1 else {})
    u = FieldSymbol("u")
    derivative = Dk(G, Hess(THETA))
    for k in range(4):
        got = to_expr(moving.tree(tree, k), lambda c: fraction(ring, c))
        assert sp.expand(got - derivative.xreplace({u: G}) / math.factorial(k)) == 0, k
        derivative = directional(derivative, u)
