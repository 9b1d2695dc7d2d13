"""Results as papers print them (``memcorr.present``): each rewriting is exact (checked at random
points against the long form) and reads as a paper writes it."""

import random

import sympy as sp

from memcorr.algebra.atoms import THETA, G, Hess
from memcorr.algebra.simplify import orient
from memcorr.present import finite_form
from memcorr.printing.text import text

beta, lam, n = sp.symbols("beta1 weight_decay n", real=True)
SAMPLES = [{beta: 0.9, lam: 0.01, n: k} for k in (1, 2, 10)]


def equal_at_random_points(a, b, trials: int = 8) -> bool:
    rng = random.Random(0)
    for _ in range(trials):
        point = {beta: rng.uniform(0.05, 0.95), lam: rng.uniform(0, 1), n: rng.randint(1, 40)}
        point |= {G: rng.uniform(-2, 2), THETA: rng.uniform(-2, 2)}
        # Hess(E) read as E: any linear map keeps the check exact for forms linear in the atoms
        va, vb = (
            complex(e.xreplace(point).replace(lambda x: isinstance(x, Hess), lambda x: x.args[0])) for e in (a, b)
        )
        if abs(va - vb) > 1e-9 * (1 + abs(va)):
            return False
    return True


def test_orient_turns_a_negative_gap_around():
    expr = -G * (beta**n - 1) / (beta - 1) ** 3
    oriented = orient(expr, SAMPLES)
    assert text(oriented) == "-g*(1 - β₁**n)/(1 - β₁)**3"
    assert equal_at_random_points(expr, oriented)


def test_finite_form_pulls_the_common_gap_out():
    # Adam's first moment along the memoryless history, as the expansion writes it
    long = G * (1 - beta**n) - THETA * lam * (beta**n - 1)
    short = finite_form(long, n, SAMPLES)
    assert short == (1 - beta**n) * (G + THETA * lam)
    assert equal_at_random_points(long, short)


def test_finite_form_collects_the_powers_of_beta():
    # heavy ball's Ψ_1 at step n: a polynomial in n and βⁿ, expanded
    long = (
        beta
        * (-2 * beta**n * n - beta**n + 2 * beta ** (n + 1) * n + beta ** (n + 1) - beta ** (2 * n + 1) + 1)
        * Hess(G)
        / (1 - beta) ** 3
    )
    short = finite_form(sp.expand(long), n, SAMPLES)
    assert sp.count_ops(short) < sp.count_ops(sp.expand(long))
    assert equal_at_random_points(long, short)


def test_finite_form_leaves_what_it_cannot_shorten():
    assert finite_form(G, n, SAMPLES) == G
    assert finite_form(sp.S.Zero, n, SAMPLES) == 0
