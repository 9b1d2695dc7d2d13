"""Known results of method.md §4, reproduced symbolically (never by comparing strings)."""

import pytest
import sympy as sp

import memcorr
from memcorr.algebra.atoms import THETA, Dk, Dot, G, Hess, gradient, linear_terms
from memcorr.algebra.named import unfold

HEAD = "optimizer o\nstep h\n"


def same(a, b):
    """Equal as fields, the short forms' named fields (``Ψ_0``) put back."""
    return sp.simplify(sp.expand(unfold(a) - unfold(b))) == 0


def params(d, *names):
    return [d.model.params[n].symbol for n in names]


def test_heavy_ball():
    d = memcorr.derive("heavy_ball")
    (b,) = params(d, "beta")
    assert same(d.update, G / (1 - b))
    assert same(d.correction, b / (1 - b) ** 3 * Hess(G))


@pytest.mark.parametrize("name", ["nesterov", "nesterov_velocity"])
def test_nesterov_both_forms(name):
    d = memcorr.derive(name)
    (b,) = params(d, "beta" if name == "nesterov" else "mu")
    assert same(d.update, G / (1 - b))
    assert same(d.correction, b**2 / (1 - b) ** 3 * Hess(G))


def test_heavy_ball_as_an_explicit_history_sum_agrees():
    a, b = memcorr.derive("heavy_ball"), memcorr.derive("heavy_ball_sum")
    assert same(a.correction, b.correction.xreplace({params(b, "beta")[0]: params(a, "beta")[0]}))


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_and_adamw_exact_in_eps(name):
    d = memcorr.derive(name)
    b1, b2, eps, wd = params(d, "beta1", "beta2", "eps", "weight_decay")
    if name == "adam":  # torch's Adam adds the decay to the gradient (L2): the formula is AdamW's at 0
        d = memcorr.derive(name, params={"weight_decay": "0"})
        wd = 0
    F = G / (sp.Abs(G) + eps) + wd * THETA
    expected = Hess(F) / (sp.Abs(G) + eps) * (b1 / (1 - b1) - b2 / (1 - b2) * sp.Abs(G) / (sp.Abs(G) + eps))
    assert same(d.update, F)
    assert same(d.correction, expected)


ADAM_EPS_INSIDE = (
    HEAD
    + """param beta1 = 0.9 in (0, 1)
param beta2 = 0.999 in (0, 1)
param eps = 1e-8 > 0 small
state m = 0
state v = 0
m = beta1 * m + (1 - beta1) * g
v = beta2 * v + (1 - beta2) * g^2
theta = theta - h * m / (1 - beta1^(n + 1)) / sqrt(v / (1 - beta2^(n + 1)) + eps)
"""
)


def test_adam_with_eps_inside_the_root():
    d = memcorr.derive(ADAM_EPS_INSIDE)
    b1, b2, eps = params(d, "beta1", "beta2", "eps")
    F = G / sp.sqrt(G**2 + eps)
    assert same(d.update, F)
    expected = Hess(F) / sp.sqrt(G**2 + eps) * (b1 / (1 - b1) - b2 / (1 - b2) * G**2 / (G**2 + eps))
    assert same(d.correction, expected)


def test_lion_k_with_a_soft_sign():
    d = memcorr.derive("lion_softsign")
    b1, b2, eps, wd = params(d, "beta1", "beta2", "eps", "wd")
    psi0 = G / sp.sqrt(G**2 + eps) + wd * THETA
    hessian_of_K = eps / (G**2 + eps) ** sp.Rational(3, 2)  # K(x) = sqrt(x^2 + eps)
    assert same(d.update, psi0)
    assert same(d.correction, b1 / (1 - b2) * hessian_of_K * Hess(psi0))


def test_adam_with_equal_betas_matches_soft_sign_lion():
    beta = sp.Symbol("beta", positive=True)
    adam = memcorr.derive(ADAM_EPS_INSIDE)
    lion = memcorr.derive("lion_softsign")
    b1, b2, eps = params(adam, "beta1", "beta2", "eps")
    r1, r2, eps_l, wd = params(lion, "beta1", "beta2", "eps", "wd")
    a = unfold(adam.correction).xreplace({b1: beta, b2: beta})
    lion_c = unfold(lion.correction).xreplace({r1: beta, r2: beta, eps_l: eps, wd: 0})
    assert same(a, lion_c)


def test_exact_sign_lion_has_no_memory_correction_and_says_why():
    d = memcorr.derive("lion")
    wd = params(d, "wd")[0]
    assert same(d.update, sp.sign(G) + wd * THETA)
    assert d.correction == 0
    assert any("sign" in note for note in d.notes)


def test_qhm():
    d = memcorr.derive("qhm")
    b, nu = params(d, "beta", "nu")
    assert same(d.correction, nu * b / (1 - b) * Hess(G))


# ---------------------------------------------------------------- finite n
def K(beta, n):
    """The finite-n weight of an EMA with bias correction: (1-β)/(1-β^(n+1)) Σ_{k=1}^n k β^k."""
    k = sp.Symbol("k", integer=True)
    return (1 - beta) / (1 - beta ** (n + 1)) * sp.summation(k * beta**k, (k, 1, n))


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_finite_n_adamw_coefficient(n):
    d = memcorr.derive("adamw", regime="finite")
    b1, b2, eps, wd = params(d, "beta1", "beta2", "eps", "weight_decay")
    F = G / (sp.Abs(G) + eps) + wd * THETA
    expected = Hess(F) / (sp.Abs(G) + eps) * (K(b1, n) - K(b2, n) * sp.Abs(G) / (sp.Abs(G) + eps))
    assert same(d.update.subs(d.model.n, n), F)
    assert same(d.correction.subs(d.model.n, n), expected)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 6])
def test_finite_n_heavy_ball_against_the_definition(n):
    """M^(n) = Σ_k ∂_k F^(n) Σ_{s=n-k}^{n-1} F^(s), with F^(s)(θ,…,θ) = Σ_{j<=s} β^j g, summed by brute force."""
    d = memcorr.derive("heavy_ball", regime="finite")
    (b,) = params(d, "beta")
    F = [sum(b**j for j in range(s + 1)) for s in range(n + 1)]  # coefficient of g in F^(s)
    M = sum(b**k * sum(F[s] for s in range(n - k, n)) for k in range(1, n + 1))
    assert same(d.update.subs(d.model.n, n), F[n] * G)
    assert same(d.correction.subs(d.model.n, n), M * Hess(G))


def test_finite_n_tends_to_the_stationary_correction():
    finite, stationary = memcorr.derive("heavy_ball", regime="finite"), memcorr.derive("heavy_ball")
    (b,) = params(finite, "beta")
    n = finite.model.n
    limit = sp.limit(finite.correction.subs(b, sp.Rational(1, 3)), n, sp.oo)
    assert same(limit, stationary.correction.subs(b, sp.Rational(1, 3)))


def test_heavy_ball_second_and_third_order():
    """Heavy ball to any order (arXiv 2509.08483, Kovachki-style expansion; their Eq. for Ψ_2, Ψ_3):
    Ψ_2 = β(1+β)/(2(1−β)⁵) (2H²g + ∇³L[g, g]) and Ψ_3 with the factors (1 + 3β + β²) and (1 + 4β + β²)."""
    d = memcorr.derive("heavy_ball", order=3)
    (b,) = params(d, "beta")
    psi2 = b * (1 + b) / (2 * (1 - b) ** 5) * (2 * Hess(Hess(G)) + Dk(G, G))
    assert same(d.corrections[1], psi2)
    psi3 = b * (1 + 3 * b + b**2) / (1 - b) ** 7 * (Hess(Hess(Hess(G))) + Dk(G, Hess(G)))
    psi3 += b * (1 + 4 * b + b**2) / (1 - b) ** 7 * (Hess(Dk(G, G)) / 2 + Dk(G, G, G) / 6)
    assert same(d.corrections[2], psi3)


def test_heavy_ball_terms_are_rooted_trees():
    """Heavy ball's Ψ_r has one term per rooted tree with r + 1 nodes (OEIS A000081: 1, 1, 2, 4, 9,
    20, …), as in the B-series of the memoryless map (arXiv 2509.08483)."""
    d = memcorr.derive("heavy_ball", order=5)
    counts = [len({f for _, f in linear_terms(c)}) for c in [d.expansion.update, *d.expansion.corrections]]
    assert counts == [1, 1, 2, 4, 9, 20]


def _quadratic_coefficients(d):
    """``c_r`` with ``Ψ_r = c_r λ^(r+1) θ`` on ``L = λθ²/2``: the atoms collapse to ``Hess^r(g)`` and
    every higher derivative vanishes."""
    out = []
    for r, psi in enumerate([d.expansion.update] + d.expansion.corrections):
        nested = G
        for _ in range(r):
            nested = Hess(nested)
        quadratic = psi.replace(lambda e: isinstance(e, Dk), lambda e: sp.S.Zero)  # ∇³L = 0
        out.append(sp.expand(quadratic).coeff(nested) if r else psi / G)
    return out


@pytest.mark.slow
def test_higher_orders_match_the_exact_root_on_a_quadratic():
    """On L = λθ²/2 heavy ball is linear: the memoryless map is θ ↦ μθ with μ the slow root of
    μ² − (1 + β − hλ) μ + β = 0, so Ψ_r is the h^r coefficient of (1 − μ)/h, to order 8, for every β
    (the coefficients are Narayana polynomials in β over powers of 1 − β)."""
    x = sp.Symbol("x", positive=True)  # x = hλ
    order = 8
    d = memcorr.derive("heavy_ball", order=order)
    (b,) = params(d, "beta")
    c = sp.Symbol("c", positive=True)  # c = 1 − β, so that √((1 − β)²) is 1 − β
    root_gap = ((c + x) - sp.sqrt((c + x) ** 2 - 4 * x)) / 2  # 1 − μ, the root near 1
    series = sp.series(root_gap, x, 0, order + 2).removeO().subs(c, 1 - b)
    for r, coefficient in enumerate(_quadratic_coefficients(d)):
        assert sp.simplify(coefficient - series.coeff(x, r + 1)) == 0, r


@pytest.mark.slow
def test_order_8_fits_slope_10_against_the_slow_root():
    """By numbers (50 digits): one step of the order-R memoryless map on L = θ²/2 (β = 1/2) is
    θ ↦ (1 − h Σ_r c_r h^r) θ; against the true method's slow root μ(h) its error falls like
    h^(R+2). Order 8 fits slope ≥ 9.5 over h = 0.02 … 0.0025; order 7 falls short (≈ 9)."""
    import mpmath

    mpmath.mp.dps = 50
    d = memcorr.derive("heavy_ball", order=8)
    (b,) = params(d, "beta")
    exact = [k.subs(b, sp.Rational(1, 2)) for k in _quadratic_coefficients(d)]  # rationals
    c = [mpmath.mpf(k.p) / k.q for k in exact]
    beta = mpmath.mpf(1) / 2

    def error(h, order):
        mu = ((1 + beta - h) + mpmath.sqrt((1 + beta - h) ** 2 - 4 * beta)) / 2
        return abs(1 - h * sum(c[r] * h**r for r in range(order + 1)) - mu)

    steps = [mpmath.mpf(2) / 100 / 2**k for k in range(4)]

    def slope(order):
        e = [error(h, order) for h in steps]
        return float(mpmath.log(e[0] / e[-1]) / mpmath.log(steps[0] / steps[-1]))

    assert slope(8) >= 9.5
    assert slope(7) < 9.5


def test_heavy_ball_in_two_step_form_is_heavy_ball():
    two_step = memcorr.derive(
        "optimizer tsf\nstep h\nparam beta = 0.5 in (0, 1)\ntheta = theta - h * g + beta * (theta - theta[n - 1])\n"
    )
    (b,) = params(two_step, "beta")
    assert same(two_step.update, G / (1 - b))
    assert same(two_step.correction, b / (1 - b) ** 3 * Hess(G))


def test_gradient_descent_flow_to_second_order():
    """Backward error analysis of gradient descent (Hairer, Lubich & Wanner, Geometric Numerical
    Integration, IX.1; the modified equation of the explicit Euler method):
    Ψ̃_1 = ½ ∇²L ∇L and Ψ̃_2 = ⅓ (∇²L)² ∇L + 1/12 ∇³L[∇L, ∇L]."""
    d = memcorr.derive("gd", order=2, target="flow")
    assert same(d.corrections[0], Hess(G) / 2)
    assert same(d.corrections[1], Hess(Hess(G)) / 3 + Dk(G, G) / 12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["heavy_ball", "adabelief"])
def test_flow_time_h_map_is_the_memoryless_map(name):
    """By numbers: integrating θ' = −Σ h^r Ψ̃_r over a time h (RK4, fine steps) lands on the order-2
    memoryless map θ − h Σ h^r Ψ_r to O(h⁴); with Ψ̃_2 dropped, only to O(h³)."""
    import numpy as np

    from memcorr.algebra.evaluate import evaluate
    from memcorr.losses import builtin

    loss, x0 = builtin("nonconvex")
    flow = memcorr.derive(name, order=2, target="flow")
    mapped = memcorr.derive(name, order=2)
    values = {p.symbol: p.default for p in flow.model.params.values()}
    values |= {
        flow.model.params[k].symbol: v
        for k, v in {"eps": 0.1, "beta1": 0.5, "beta2": 0.8, "beta": 0.5}.items()
        if k in flow.model.params
    }

    def field(terms, x):
        return sum(evaluate(t, loss, x, values) for t in terms)

    def flow_map(h, keep):
        psi = [flow.expansion.update, *flow.expansion.corrections][: keep + 1]
        terms = [h**r * p for r, p in enumerate(psi)]
        x, steps = np.array(x0, float), 40
        dt = h / steps
        for _ in range(steps):
            k1 = -field(terms, x)
            k2 = -field(terms, x + dt / 2 * k1)
            k3 = -field(terms, x + dt / 2 * k2)
            k4 = -field(terms, x + dt * k3)
            x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x

    def memoryless(h):
        psi = [mapped.expansion.update, *mapped.expansion.corrections]
        return x0 - h * field([h**r * p for r, p in enumerate(psi)], np.array(x0, float))

    hs = [0.04, 0.02, 0.01]
    slopes = {}
    for keep in (1, 2):
        errors = [np.max(np.abs(flow_map(h, keep) - memoryless(h))) for h in hs]
        slopes[keep] = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert slopes[2] >= 3.75 and slopes[1] < 3.3, slopes


def test_heavy_ball_second_order_potential():
    """Heavy ball's order-2 field is a gradient (arXiv 2509.08483): Ψ_2 = P ⊙ ∇G_2 with P = 1/(1 − β)
    and G_2 = β(1+β)/(2(1−β)⁴) ⟨∇L, ∇²L ∇L⟩."""
    d = memcorr.derive("heavy_ball", order=2)
    (b,) = params(d, "beta")
    (order2,) = d.potentials
    assert order2.order == 2 and order2.potential is not None
    assert same(order2.potential, b * (1 + b) / (2 * (1 - b) ** 4) * Dot(G, Hess(G)))
    assert same(gradient(order2.potential) / (1 - b), d.corrections[1])


def test_gradient_descent_second_order_flow_is_not_a_gradient():
    """Ψ̃_2 = ⅓H²g + 1/12 ∇³L[g, g] = ∇(1/12 ⟨g, Hg⟩) + ⅙H²g: the third derivatives are matched by a
    potential, ⅙H²g is left as the non-gradient part (Rosca et al., "On a continuous time model of
    gradient descent dynamics and instability in deep learning", TMLR 2023: the second-order
    modified flow of gradient descent)."""
    d = memcorr.derive("gd", order=2, target="flow")
    (order2,) = d.potentials
    assert not order2.exact and "not a gradient field" in order2.reason
    assert same(order2.potential, Dot(G, Hess(G)) / 12)
    assert same(order2.non_gradient, Hess(Hess(G)) / 6)
    assert same(gradient(order2.potential) + order2.non_gradient, d.corrections[1])
    assert "non-gradient part" in d.summary() and "N_{2}" in d.to_latex()


def test_heavy_ball_flow_non_gradient_parts_sum_back():
    """Heavy ball's flow at orders 2 and 3: P ⊙ (∇G_r + N_r) is Ψ̃_r, and β = 0 gives gradient descent's split."""
    d = memcorr.derive("heavy_ball", order=3, target="flow")
    (b,) = params(d, "beta")
    for q, psi in zip(d.potentials, d.corrections[1:]):
        assert not q.exact and same((gradient(q.potential) + q.non_gradient) / (1 - b), psi)
    assert same(d.potentials[0].non_gradient.subs(b, 0), Hess(Hess(G)) / 6)
