"""Exact rewritings that shorten (``memcorr.algebra.simplify``): each is shorter and equal."""

import random

import sympy as sp

from memcorr.algebra.atoms import THETA, G, Hess
from memcorr.algebra.simplify import factor, radicands, shortest, simplify_arguments, tidy

beta, lam, eps = sp.symbols("beta lam eps", positive=True)


def equal(a, b) -> bool:
    rng = random.Random(1)
    for _ in range(6):
        point = {beta: rng.uniform(0.1, 0.9), lam: rng.uniform(0, 1), eps: rng.uniform(0.01, 1)}
        point |= {G: rng.uniform(-2, 2), THETA: rng.uniform(-2, 2)}
        va, vb = (complex(e.subs(point)) for e in (a, b))
        if abs(va - vb) > 1e-9 * (1 + abs(va)):
            return False
    return True


def test_a_root_of_a_square_is_an_absolute_value():
    assert radicands(sp.sqrt(beta * G**2 + (1 - beta) * G**2)) == sp.Abs(G)


def test_factor_cancels_through_the_absolute_value():
    assert factor(G**2 / sp.Abs(G)) == sp.Abs(G)


def test_tidy_collects_per_atom_with_factored_coefficients():
    long = beta * Hess(G) + beta**2 * Hess(G) + lam * G - lam * beta * G
    short = tidy(long)
    assert equal(long.subs(Hess(G), 1), short.subs(Hess(G), 1))
    assert short.coeff(Hess(G)) == beta * (beta + 1)


def test_shortest_is_no_longer_and_equal():
    long = G / (eps + sp.Abs(G)) + lam * THETA * sp.Abs(G) / (eps + sp.Abs(G)) + lam * THETA * eps / (eps + sp.Abs(G))
    short = shortest(long)
    assert sp.count_ops(short) < sp.count_ops(long) and equal(long, short)


def test_arguments_of_functions_are_shortened():
    assert simplify_arguments(sp.sign(beta * G + (1 - beta) * G)) == sp.sign(G)
