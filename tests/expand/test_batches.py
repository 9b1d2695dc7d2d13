"""Random batches (docs/method.md §7): the mean correction, its pair weights and the implied loss,
against the published results and by numbers."""

import numpy as np
import pytest
import sympy as sp
from conftest import LINEAR

import memcorr
from memcorr.algebra.atoms import CoordSum, G, Hess, Noise, NoiseGrad, gradient
from memcorr.algebra.evaluate import evaluate, noise, noise_gradient
from memcorr.errors import DerivationError
from memcorr.expand.batches import linear_system, pair_weights
from memcorr.losses import BatchLoss, batch_nonconvex, batch_quadratics, checked_batches, quadratic
from memcorr.pipeline import load


def same(a, b) -> bool:
    return sp.simplify(sp.sympify(a) - sp.sympify(b)) == 0


def test_heavy_ball_pair_weights_are_the_seeds():
    # Cattaneo, Klusowski & Shigida (2023), §5.2: same-step pairs weigh β/((1−β)²(1+β)), pairs of
    # different steps 2β²/((1−β)³(1+β)); together the full-batch β/(1−β)³
    same_step, squares = pair_weights(*linear_system(load("heavy_ball")))
    b = load("heavy_ball").params["beta"].symbol
    assert same(same_step, b / ((1 - b) ** 2 * (1 + b)))
    assert same(b / (1 - b) ** 3 - same_step, 2 * b**2 / ((1 - b) ** 3 * (1 + b)))
    assert same(squares, 1 / (1 - b**2))  # Σ_k β^(2k)


def test_heavy_ball_implied_loss_is_the_seeds():
    # seed §5.2: L̃ = L + h β/(2(1−β)²)‖∇L‖² + h β/(2(1−β)(1+β)) E_b‖∇L_b − ∇L‖²
    d = memcorr.derive("heavy_ball", batches="random")
    b = d.model.params["beta"].symbol
    p = d.perturbation
    expected = b / (2 * (1 - b) ** 2) * CoordSum(G**2) + b / (2 * (1 - b) * (1 + b)) * Noise()
    assert same(p.potential, expected)
    assert same(p.noise_coefficient, b / (2 * (1 - b) * (1 + b)))
    assert p.verdict == "regularizing" and p.verdict_full == "regularizing"
    # the whole correction is the preconditioner times ∇G
    assert same(d.expansion.corrections[0] - p.preconditioner * gradient(p.potential), 0)


def test_sgd_flow_is_smith_et_al():
    # Smith, Dherin, Barrett & De (ICLR 2021), eq. (3): SGD's modified loss L + (h/4m) Σ_b ‖∇L_b‖²,
    # which is L + h/4 (‖∇L‖² + V)
    d = memcorr.derive("gd", batches="random", target="flow")
    assert same(d.perturbation.potential, (CoordSum(G**2) + Noise()) / 4)
    assert d.expansion.noise == NoiseGrad() / 4


def test_the_map_of_sgd_has_no_noise_term():
    # no memory, no pairs: the map's correction stays 0 (the noise enters only through the flow)
    assert memcorr.derive("gd", batches="random").expansion.corrections == [0]


@pytest.mark.parametrize("name", LINEAR)
def test_the_full_batch_part_is_the_full_batch_derivation(name):
    full = memcorr.derive(name)
    mean = memcorr.derive(name, batches="random")
    assert same(mean.expansion.corrections[0] - mean.expansion.noise - full.expansion.corrections[0], 0)
    assert mean.expansion.noise.has(NoiseGrad) or mean.expansion.noise == 0
    assert mean.batches == "random" and full.batches == "full"


def test_finite_pair_weights_sum_the_first_steps():
    # Σ_{k=1}^{n} β^k Σ_{i<k} β^i, summed by hand for heavy ball at n = 4 and β = 1/3
    model = load("heavy_ball")
    same_step, squares = pair_weights(*linear_system(model, finite=True), n=model.n)
    b, n = model.params["beta"].symbol, model.n
    by_hand = sum(sp.Rational(1, 3) ** k * sum(sp.Rational(1, 3) ** i for i in range(k)) for k in range(1, 5))
    assert same_step.subs({b: sp.Rational(1, 3), n: 4}) == by_hand
    assert squares.subs({b: sp.Rational(1, 3), n: 4}) == sum(sp.Rational(1, 9) ** k for k in range(5))


def test_one_batch_equals_full_batches():
    # m = 1: V = 0 and ∇V = 0, so E M is M, numerically on a batch loss with a single batch
    L = BatchLoss([batch_quadratics(m=1).batch(0)])
    x = np.array([0.7, -0.3])
    mean = memcorr.derive("heavy_ball", batches="random")
    full = memcorr.derive("heavy_ball")
    values = {mean.model.params["beta"].symbol: 0.9}
    assert noise(L, x) == 0
    assert np.allclose(evaluate(mean.expansion.corrections[0], L, x, values), evaluate(full.correction, L, x, values))
    assert np.isclose(
        float(evaluate(mean.perturbation.potential, L, x, values)),
        float(evaluate(full.perturbation.potential, L, x, values)),
    )


def test_noise_atoms_match_finite_differences():
    L, x = batch_nonconvex(), np.array([0.4, -0.9, 1.1])
    e = 1e-6
    fd = np.array([(noise(L, x + e * u) - noise(L, x - e * u)) / (2 * e) for u in np.eye(3)])
    assert np.allclose(noise_gradient(L, x), fd, atol=1e-6)
    assert np.linalg.norm(noise_gradient(L, x)) > 0.1  # the batches' Hessians differ: ∇V ≠ 0
    # E_b[∇²L_b ∇L_b] = ∇²L ∇L + ½ ∇V, the pairing rule of §7
    same_batch = np.mean([p.hvp(x, p.grad(x)) for p in L.parts], axis=0)
    assert np.allclose(same_batch, L.hvp(x, L.grad(x)) + noise_gradient(L, x) / 2)
    assert np.allclose(evaluate(Hess(G) + NoiseGrad() / 2, L, x, {}), same_batch)


@pytest.mark.parametrize(
    "name, construct",
    [("rmsprop", "`buf` is not an exponential filter"), ("nadam", "3 filters"), ("lion", "kink"), ("signum", "kink")],
)
def test_nonlinear_programs_without_an_expansion_are_refused_with_the_construct(name, construct):
    # the others (AdamW, Adam, soft-sign Lion) have their mean to leading order in the noise: test_moments.py
    with pytest.raises(DerivationError, match=construct):
        memcorr.derive(name, batches="random")


@pytest.mark.parametrize(
    "options, message",
    [({"order": 2}, "first order"), ({"batches": "some"}, "unknown batches")],
)
def test_what_is_not_derived_is_refused(options, message):
    with pytest.raises(DerivationError, match=message):
        memcorr.derive("heavy_ball", **{"batches": "random", **options})


def test_a_gradient_at_a_point_of_the_current_batch_is_refused():
    program = """optimizer extra
step h
theta = theta - h * grad(theta - h * g)
"""
    with pytest.raises(DerivationError, match="current batch at a point"):
        memcorr.derive(program, batches="random")


class _FirstOrder:
    """A loss with what first order needs (docs/python.md): no ``dgrad``."""

    def __init__(self, a):
        self.a = a

    def value(self, x):
        return float(self.a * np.sum(x**2) / 2)

    def grad(self, x):
        return self.a * np.asarray(x, float)

    def hvp(self, x, v):
        return self.a * np.asarray(v, float)


def test_a_batch_loss_averages_what_its_parts_have():
    # parts without dgrad still average their gradients and Hessian products; quadratics average at once, exactly
    L, x, v = BatchLoss([_FirstOrder(1.0), _FirstOrder(3.0)]), np.array([1.0, -2.0]), np.array([0.5, 1.0])
    assert np.allclose(L.grad(x), 2 * x) and np.allclose(L.hvp(x, v), 2 * v)
    Q = batch_nonconvex()
    for args in [(x[:1].repeat(3),), (x[:1].repeat(3), v[:1].repeat(3)), (x[:1].repeat(3),) * 3]:
        assert np.allclose(Q.dgrad(*args), np.mean([p.dgrad(*args) for p in Q.parts], axis=0), rtol=1e-13)


def test_bad_batch_losses_are_refused():
    x = np.zeros(2)
    with pytest.raises(ValueError, match="at least one batch"):
        BatchLoss([])
    with pytest.raises(ValueError, match="batch loss"):
        checked_batches(quadratic(), np.zeros(3))
    mixed = BatchLoss([batch_quadratics(m=1).batch(0), batch_quadratics(m=1, dim=3).batch(0)])
    with pytest.raises(ValueError):
        checked_batches(mixed, x)


def test_the_generated_numpy_module_averages_over_batches():
    d = memcorr.derive("heavy_ball", batches="random")
    module = memcorr.load_module(d)
    L, x = batch_nonconvex(), np.array([0.4, -0.9, 1.1])
    b = 0.9
    expected = b / (1 - b) ** 3 * L.hvp(x, L.grad(x)) + b / (2 * (1 - b) ** 2 * (1 + b)) * noise_gradient(L, x)
    assert np.allclose(module.correction(x, L), expected)
    g = L.grad(x)
    assert np.isclose(module.penalty(x, L), b / (2 * (1 - b) ** 2) * g @ g + b / (2 * (1 - b) * (1 + b)) * noise(L, x))
    with pytest.raises(TypeError, match="batch loss"):
        module.correction(np.zeros(3), quadratic())


def test_outputs_name_both_parts():
    d = memcorr.derive("heavy_ball", batches="random")
    import json

    record = json.loads(d.to_json())
    assert record["batches"] == "random"
    assert record["perturbation"]["verdict_full"] == "regularizing"
    assert "V" in record["perturbation"]["noise"]["latex"]
    assert "V = E_b" in d.summary() and r"\mathbb{E}_b" in d.to_latex()
    assert "L.noise_grad(theta)" in d.to_torch()  # the micro-batch estimator (tests/printing/test_torch_noise.py)


NEGATIVE_NESTEROV = """optimizer nesterov_negative
step lr
param beta = -0.8 in (-1, -0.7)
state v = 0
v = beta * v + g
theta = theta - lr * (g + beta * v)
"""


def test_opposite_parts_give_a_critical_batch_size():
    # Nesterov with momentum β < (1 − √5)/2: the full-batch part regularizes, the noise part
    # anti-regularizes (β²(1 + β − β²) < 0), so the sign of G follows the batch size
    d = memcorr.derive(NEGATIVE_NESTEROV, batches="random")
    p = d.perturbation
    assert (p.verdict, p.verdict_full) == ("depends", "regularizing")
    L, x = batch_nonconvex(), np.array([0.4, -0.9, 1.1])
    b = d.model.params["beta"].symbol
    values = {b: -0.8}
    V1 = noise(L, x)
    B_star = float(evaluate(p.critical_batch, L, x, values))
    full = float(evaluate(p.potential - p.noise, L, x, values))
    c = float(p.noise_coefficient.subs(values))

    def G(B):  # V of batches of B examples: V_1/B
        return full + c * V1 / B

    assert B_star > 0 and G(1.1 * B_star) > 0 > G(0.9 * B_star)
    assert "regularizing above it" in d.summary()
