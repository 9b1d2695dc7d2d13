"""The expansion stage (``memcorr.expand``) on small models: heavy ball's invariant manifold, its
finite-n closed form, a loop where no closed form exists, the modified flow and the active branch
of a max — each against a result derived by hand or the other regime."""

import pytest
import sympy as sp

import memcorr
from memcorr.algebra.atoms import G, Hess
from memcorr.errors import DerivationError
from memcorr.expand import expand, modified_flow
from memcorr.expand.recurrence import Recurrence

HEAVY_BALL = "optimizer hb\nstep h\nparam beta = 0.9 in (0, 1)\nstate v = 0\nv = beta * v + g\ntheta = theta - h * v\n"


def test_stationary_heavy_ball_is_the_known_first_order_form():
    """Ψ_0 = g/(1 − β), Ψ_1 = β Hess(g)/(1 − β)³ (arXiv 2509.08483, the first-order memoryless map)."""
    model = memcorr.load(HEAVY_BALL)
    beta = model.params["beta"].symbol
    e = expand(model, 1, "stationary")
    assert sp.simplify(e.update - G / (1 - beta)) == 0
    assert sp.simplify(e.corrections[0] - beta * Hess(G) / (1 - beta) ** 3) == 0


def test_finite_form_tends_to_the_stationary_one():
    model = memcorr.load(HEAVY_BALL)
    stationary, finite = expand(model, 1, "stationary"), expand(model, 1, "finite")
    beta = model.params["beta"].symbol
    at_defaults = {beta: sp.Rational(9, 10)}
    limit = sp.limit(finite.corrections[0].subs(at_defaults).subs(Hess(G), 1), model.n, sp.oo)
    assert sp.simplify(limit - stationary.corrections[0].subs(at_defaults).subs(Hess(G), 1)) == 0


def test_a_rate_that_changes_with_the_state_is_a_loop():
    """Adadelta's finite-n map has no closed form: a Recurrence the generated code runs."""
    e = expand(memcorr.load("adadelta"), 1, "finite")
    assert e.update.has(Recurrence) and e.corrections[0].has(Recurrence)
    with pytest.raises(DerivationError, match="loop over the past steps"):
        modified_flow(e)


def test_the_flow_of_gradient_descent_is_the_known_one():
    """Ψ̃_1 = ½ Hess(g): the flow on L + (h/4)‖∇L‖² (Barrett & Dherin 2021, Theorem 3.1)."""
    flow = modified_flow(expand(memcorr.load("gd"), 1, "stationary"))
    assert sp.simplify(flow.corrections[0] - Hess(G) / 2) == 0


def test_a_max_of_the_state_takes_its_active_branch():
    e = expand(memcorr.load("adamax"), 1, "stationary")
    assert any("takes the branch" in note for note in e.notes)
    assert not e.update.has(sp.Max)
