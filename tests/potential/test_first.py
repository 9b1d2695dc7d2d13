"""The implied loss perturbation (method.md §4–5): literature results, symbolically."""

import random

import pytest
import sympy as sp

import memcorr
from memcorr.algebra.atoms import LOSS, THETA, CoordSum, G, Hess, gradient
from memcorr.algebra.named import unfold
from memcorr.potential.first import antiderivative, find, integrate


def same(a, b):
    return sp.simplify(sp.expand(unfold(a) - unfold(b))) == 0


def sym(d, name):
    return d.model.params[name].symbol


def equivalent(condition: str, d, truth, trials=400):
    """``condition`` (a string, as api.md gives it) holds exactly where ``truth`` does."""
    names = {name: p.symbol for name, p in d.model.params.items()}
    rel = sp.sympify(condition, locals=names)
    rng = random.Random(0)
    for _ in range(trials):
        point = {s: rng.uniform(0.01, 0.99) for s in names.values()}
        if abs(point[names["beta1"]] - point[names["beta2"]]) < 1e-6:
            continue
        assert bool(rel.subs(point)) == truth(point), point


def test_heavy_ball():
    # Heavy ball, method.md §4 (after Cattaneo & Shigida 2025, Thm. 1 and §3 there):
    # L̃ = L + h β/(2(1−β)²) ‖∇L‖², preconditioner 1/(1−β): regularizing.
    d = memcorr.derive("heavy_ball")
    b = sym(d, "beta")
    p = d.perturbation
    assert p.exact and p.verdict == "regularizing" and p.verdict_at_defaults == "regularizing"
    assert same(p.potential, b / (2 * (1 - b) ** 2) * CoordSum(G**2))
    assert same(p.preconditioner, 1 / (1 - b))
    assert p.condition == "True"


def test_adamw_as_eps_vanishes():
    # AdamW, Cattaneo & Shigida (NeurIPS 2025), the AdamW corollary; method.md §4:
    # coefficient β1/(1−β1) − β2/(1−β2) on ‖∇L‖₁ + λ(θ·∇L − L), anti-regularizing at the defaults (−990).
    d = memcorr.derive("adamw")
    b1, b2, eps, wd = (sym(d, n) for n in ("beta1", "beta2", "eps", "weight_decay"))
    p = d.perturbation
    c = b1 / (1 - b1) - b2 / (1 - b2)
    assert p.form == "preconditioned" and not p.exact and p.remainder_order == "O(eps)"
    assert same(p.potential, c * (CoordSum(sp.Abs(G)) + wd * (CoordSum(THETA * G) - LOSS)))
    assert same(p.preconditioner, 1 / (sp.Abs(G) + eps))
    assert same(p.decoupled, wd * THETA)
    assert p.verdict == "depends" and p.verdict_at_defaults == "anti-regularizing"
    assert p.coefficient_at_defaults == pytest.approx(-990)
    equivalent(p.condition, d, lambda v: v[b1] > v[b2])


def test_adamw_remainder_is_what_was_left_out():
    d = memcorr.derive("adamw")
    p = d.perturbation
    # Ψ_1 = P ⊙ ∇G + remainder, exactly; the remainder vanishes with eps (its stated order)
    assert same(
        d.expansion.corrections[0], unfold(p.preconditioner) * gradient(unfold(p.potential)) + unfold(p.remainder)
    )
    eps = sym(d, "eps")
    assert sp.simplify(unfold(p.remainder).subs(eps, 0).replace(sp.sign, lambda x: x / sp.Abs(x))) == 0


@pytest.mark.parametrize("name", ["lion_softsign"])
def test_lion_k_regularizes(name):
    # Lion-K (Chen et al. 2023; method.md §4): L̃ = L + h β1/(1−β2) (K(∇L) + …), K = Σ√(g² + ε).
    d = memcorr.derive(name)
    b1, b2, eps, wd = (sym(d, n) for n in ("beta1", "beta2", "eps", "wd"))
    p = d.perturbation
    assert p.form == "same-method" and p.exact and p.verdict == "regularizing"
    k = b1 / (1 - b2)
    assert same(p.potential, k * (CoordSum(sp.sqrt(G**2 + eps)) + wd * (CoordSum(THETA * G) - LOSS)))


def test_tanh_lion_regularizes():
    # Lion-K with K(x) = κ log cosh(x/κ) (Chen et al. 2023, the tanh example): regularizing.
    d = memcorr.derive(
        "optimizer tl\nstep h\nparam beta1 = 0.9 in (0, 1)\nparam beta2 = 0.99 in (0, 1)\n"
        "param kappa = 0.1 > 0\nstate m = 0\nc = beta1 * m + (1 - beta1) * g\n"
        "theta = theta - h * tanh(c / kappa)\nm = beta2 * m + (1 - beta2) * g\n"
    )
    p = d.perturbation
    assert p.exact and p.form == "same-method" and p.verdict == "regularizing"


def test_exact_sign_lion_has_no_correction():
    # Lion with the exact sign (Chen et al. 2023): the memory correction vanishes where sign is differentiable.
    d = memcorr.derive("lion")
    assert d.correction == 0
    assert d.perturbation.verdict == "none" and d.perturbation.potential == 0
    assert same(d.update, sp.sign(G) + sym(d, "wd") * THETA)  # sign(β g + (1 − β) g) is sign(g)


def test_rmsprop_anti_regularizes():
    # RMSProp (method.md §4, the Adam result with β1 = 0): G = −α/(1−α) ‖∇L‖₁ (torch's defaults:
    # no momentum, no weight decay).
    d = memcorr.derive("rmsprop", params={"weight_decay": "0", "momentum": "0"})
    a = sym(d, "alpha")
    p = d.perturbation
    assert p.verdict == "anti-regularizing" and p.condition == "False"
    assert same(p.potential, -a / (1 - a) * CoordSum(sp.Abs(G)))


def test_adam_equal_betas_matches_soft_sign_lion():
    # Adam with β1 = β2 = β and soft-sign Lion with ρ1 = ρ2 = ρ (method.md §4): both are the same method on
    # L + h β/(1−β) Σ_i K(∂_i L), K' the method's own direction: Adam's K(x) = |x| − ε log(|x| + ε),
    # Lion's K(x) = √(x² + ε); the same G, each in its own K.
    adam, lion = memcorr.derive("adam", params={"weight_decay": "0"}), memcorr.derive("lion_softsign")
    b, eps = sym(adam, "beta1"), sym(adam, "eps")
    equal = {sym(adam, "beta2"): b}
    p = find(adam.expansion.update.subs(equal), adam.expansion.corrections[0].subs(equal), adam.model.params)
    r, e, wd = sym(lion, "beta1"), sym(lion, "eps"), sym(lion, "wd")
    equal = {sym(lion, "beta2"): r, wd: 0}
    q = find(lion.expansion.update.subs(equal), lion.expansion.corrections[0].subs(equal), lion.model.params)
    assert p.exact and q.exact and p.form == q.form == "same-method"
    assert same(p.potential, b / (1 - b) * CoordSum(sp.Abs(G) - eps * sp.log(sp.Abs(G) + eps)))
    assert same(q.potential, r / (1 - r) * CoordSum(sp.sqrt(G**2 + e)))


def test_igr_gradient_descent_flow():
    # Implicit gradient regularization (Barrett & Dherin 2021, eq. 2): the flow of GD is L + h/4 ‖∇L‖².
    d = memcorr.derive("gd", target="flow")
    p = d.perturbation
    assert same(p.potential, CoordSum(G**2) / 4) and p.exact and p.verdict == "regularizing"


def test_heavy_ball_flow():
    # Heavy-ball flow (Ghosh et al. 2023, "Implicit regularization in heavy-ball momentum", Thm. 3.1;
    # method.md §5): h (1+β)/(4(1−β)²) ‖∇L‖² with preconditioner 1/(1−β).
    d = memcorr.derive("heavy_ball", target="flow")
    b = sym(d, "beta")
    p = d.perturbation
    assert same(p.potential, (1 + b) / (4 * (1 - b) ** 2) * CoordSum(G**2))
    assert same(p.preconditioner, 1 / (1 - b))
    assert same(d.correction, (1 + b) / (2 * (1 - b) ** 3) * Hess(G))


def test_torch_adam_with_l2_reads_in_its_named_field():
    # torch's Adam adds L2 decay to the gradient, d = g + λθ: the result is Adam's with g → d
    d = memcorr.derive("tests/programs/good/adam_l2.opt")
    b1, b2 = sym(d, "beta1"), sym(d, "beta2")
    (q,) = [f for f in d.fields if f.name == "q"]
    p = d.perturbation
    assert same(p.potential, (b1 - b2) / ((1 - b1) * (1 - b2)) * CoordSum(sp.Abs(q)))
    assert p.verdict_at_defaults == "anti-regularizing"


def test_no_potential_is_said_not_guessed():
    # a coefficient of Hess(g) that depends on θ: no gradient form in either reading, nothing small
    d = memcorr.derive(
        "optimizer x\nstep h\nparam beta = 0.5 in (0, 1)\nstate v = 0\n"
        "v = beta * v + g\ntheta = theta - h * v * (1 + theta^2)\n"
    )
    p = d.perturbation
    assert p.potential is None and p.verdict == "unknown" and p.form == "none"
    assert "no potential" in p.reason and "small" in p.reason
    from memcorr.losses import builtin

    loss, x0 = builtin("nonconvex")
    with pytest.raises(ValueError, match="no potential"):  # the generated penalty says so too
        memcorr.load_module(d).penalty(x0, loss)


def test_integrate_rules_of_section_3():
    b = sp.Symbol("b", positive=True)
    # Hess(φ(g)) = ∇ CoordSum(Φ(g)); Hess(θ) = ∇(CoordSum(θ g) − loss); θ = ∇ ½ CoordSum(θ²)
    for field_ in (b * Hess(G), Hess(sp.sign(G)), Hess(THETA), THETA, b * Hess(G) + Hess(THETA) + THETA):
        potential, why = integrate(field_)
        assert potential is not None, why
        assert sp.simplify(sp.expand(gradient(potential) - field_)) == 0
    assert integrate(G * Hess(G))[0] is None
    assert antiderivative(sp.sign(G), G) == sp.Abs(G)
