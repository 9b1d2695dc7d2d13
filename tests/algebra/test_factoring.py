"""FLINT's multivariate factorization stands in for sympy's: the same content, factors and order."""

import random

import pytest
import sympy as sp
from sympy import ZZ
from sympy.polys import factortools
from sympy.polys.rings import ring

from memcorr.algebra import factoring as fast

pytestmark = pytest.mark.skipif(not fast.INSTALLED, reason="python-flint is not installed")


def test_flint_is_the_factorization_sympy_calls():
    assert factortools.dmp_zz_factor is fast.dmp_zz_factor


def _random_polynomial(rng, X):
    return sum(
        rng.randint(-3, 3) * X[0] ** rng.randint(0, 2) * X[1] ** rng.randint(0, 2) * X[2] ** rng.randint(0, 1)
        for _ in range(rng.randint(1, 4))
    )


def test_the_same_factors_in_the_same_order_as_sympys_own():
    R, *X = ring("a,b,c", ZZ)
    rng = random.Random(7)
    compared = 0
    for _ in range(200):
        p = _random_polynomial(rng, X) * _random_polynomial(rng, X) ** rng.randint(1, 2) * rng.choice([1, -2, 6])
        if p == 0:
            continue
        f = R.to_dense(p)
        assert fast.dmp_zz_factor(f, 2, ZZ) == fast._sympy_zz_factor(f, 2, ZZ), p
        compared += 1
    assert compared > 150


def test_factor_of_a_coefficient_is_unchanged():
    b1, b2, e = sp.symbols("beta1 beta2 eps", positive=True)
    x = (b1 - b2) ** 2 * (e + b1 * b2) / ((1 - b1) ** 3 * (1 + b2))
    expanded = sp.expand(sp.together(x))
    assert sp.factor(expanded) == sp.factor(x) and sp.simplify(sp.factor(expanded) - x) == 0
