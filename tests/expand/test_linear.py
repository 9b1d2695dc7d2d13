"""The manifold recursion of programs linear in the gradients, tree by tree (``expand.linear``):
the same results as the general engine, the programs it takes, and heavy ball to order 8 against
its known structure."""

import sys

import pytest
import sympy as sp
from conftest import LINEAR

import memcorr
from memcorr.algebra.atoms import Dk, G, Hess, linear_terms
from memcorr.expand import expand

stationary_module = sys.modules["memcorr.expand.stationary"]


@pytest.mark.parametrize("name", LINEAR)
def test_the_tree_recursion_equals_the_general_engine(name, monkeypatch):
    """Ψ_1 … Ψ_3 and the states, term for term, with the tree recursion and with the sympy series
    engine it replaces for these programs."""
    model = memcorr.load(name)
    calls = []
    real = stationary_module.linear_recursion
    monkeypatch.setattr(stationary_module, "linear_recursion", lambda *a: calls.append(real(*a)) or calls[-1])
    fast = expand(model, 3)
    assert calls and calls[0] is not None, "the program should take the tree recursion"
    monkeypatch.setattr(stationary_module, "linear_recursion", lambda *a: None)
    general = expand(model, 3)
    assert fast.corrections == general.corrections
    assert fast.states == general.states


@pytest.mark.parametrize("name", ["adamw", "lion_softsign", "signum", "lars"])
def test_a_program_nonlinear_in_the_gradients_takes_the_general_engine(name, monkeypatch):
    calls = []
    real = stationary_module.linear_recursion
    monkeypatch.setattr(stationary_module, "linear_recursion", lambda *a: calls.append(real(*a)) or calls[-1])
    expand(memcorr.load(name), 1)
    assert calls == [None]


def _eulerian(n, b):
    """``Σ_k A(n, k) b^k`` with the Eulerian numbers ``A(n, k)`` (1, 4, 1 for n = 3)."""
    return sum(sum((-1) ** j * sp.binomial(n + 1, j) * (k + 1 - j) ** n for j in range(k + 2)) * b**k for k in range(n))


def _narayana(n, b):
    """``Σ_k N(n, k) b^(k−1)`` with the Narayana numbers ``N(n, k) = C(n, k) C(n, k−1)/n`` (1, 3, 1 for n = 3)."""
    return sum(sp.binomial(n, k) * sp.binomial(n, k - 1) / n * b ** (k - 1) for k in range(1, n + 1))


def test_heavy_ball_to_order_8_has_the_published_structure():
    """Heavy ball's Ψ_r (arXiv 2509.08483, the B-series of its memoryless map): one term per rooted tree
    with r + 1 nodes (OEIS A000081: 1, 1, 2, 4, 9, 20, 48, 115, 286), the tall tree ``(∇²L)^r ∇L``
    weighted by the Narayana polynomial ``β N_r(β)/(1 − β)^(2r+1)`` and the bushy tree
    ``∇^(r+1)L[∇L, …, ∇L]`` by the Eulerian polynomial ``β A_r(β)/(r! (1 − β)^(2r+1))``."""
    e = expand(memcorr.load("heavy_ball"), 8)
    (b,) = e.update.free_symbols - {G}
    counts = [len({f for _, f in linear_terms(c)}) for c in [e.update, *e.corrections]]
    assert counts == [1, 1, 2, 4, 9, 20, 48, 115, 286]
    for r, psi in enumerate(e.corrections, start=1):
        psi = sp.expand(psi)
        tall, bushy = G, Dk(*[G] * r) if r > 1 else Hess(G)
        for _ in range(r):
            tall = Hess(tall)
        assert sp.cancel(psi.coeff(tall) - b * _narayana(r, b) / (1 - b) ** (2 * r + 1)) == 0, r
        assert sp.cancel(psi.coeff(bushy) - b * _eulerian(r, b) / (sp.factorial(r) * (1 - b) ** (2 * r + 1))) == 0, r


flow_module = sys.modules["memcorr.expand.flow"]


@pytest.mark.parametrize("name", ["heavy_ball", "nesterov_velocity", "qhm", "sgd_momentum"])
def test_the_flow_in_trees_equals_the_flow_in_series(name, monkeypatch):
    """The modified flow Ψ̃_1 … Ψ̃_3 of a map that is a sum over elementary differentials, one coefficient
    per tree, equals sympy's (exactly; QHM's Ψ̃_1 is written over one denominator where sympy's sum kept
    ``βν/(1 − β) + 1/2``)."""
    e = expand(memcorr.load(name), 3)
    assert flow_module._in_trees(e) is not None
    fast = flow_module.modified_flow(e)
    monkeypatch.setattr(flow_module, "_in_trees", lambda e: None)
    general = flow_module.modified_flow(e)
    for a, b in zip(fast.corrections, general.corrections, strict=True):
        assert sp.cancel(sp.expand(a - b)) == 0


def test_a_map_with_other_atoms_takes_the_flow_in_series():
    e = expand(memcorr.load("lion_softsign"), 1)
    assert flow_module._in_trees(e) is None


def test_gradient_descent_flow_in_trees_is_the_books():
    """Backward error analysis of the explicit Euler method (Hairer, Lubich & Wanner, Geometric Numerical
    Integration, IX.1, the modified equation of gradient descent): Ψ̃_1 = ½ Hg and
    Ψ̃_2 = ⅓ H²g + 1/12 ∇³L[g, g], one coefficient per tree."""
    trees = flow_module._in_trees(expand(memcorr.load("gd"), 2))
    assert trees is not None
    assert sp.expand(trees[0] - Hess(G) / 2) == 0
    assert sp.expand(trees[1] - (Hess(Hess(G)) / 3 + Dk(G, G) / 12)) == 0
