"""Random batches for programs nonlinear in the gradients (docs/method.md §7): the mean correction to
leading order in the noise, against the linear programs' exact mean, explicit lag sums, Monte Carlo over
the labels and the trajectory check."""

import functools
import math

import numpy as np
import pytest
import sympy as sp

import memcorr
from memcorr.algebra.atoms import THETA, G
from memcorr.algebra.evaluate import evaluate
from memcorr.algebra.moments import BatchHess, XiBatchHess
from memcorr.errors import DerivationError
from memcorr.expand.moments import _a, _batch_hessian, _covariance, _Jets, _k, _mean_of_P, filters, lagsum, noise_part
from memcorr.losses import batch_quadratics
from memcorr.model.lower import with_values
from memcorr.pipeline import load
from memcorr.verify.batches import Labelled, verify_batches
from memcorr.verify.checks import brute_force_correction


def test_lagsum_closed_forms():
    b = sp.Symbol("b")
    assert sp.simplify(lagsum(_k * b**_k, _k, 1, sp.oo) - b / (1 - b) ** 2) == 0
    assert sp.simplify(lagsum(b ** (_a - 1), _a, 1, _k - 1) - (1 - b ** (_k - 1)) / (1 - b)) == 0
    assert lagsum(_a, _a, 1, 3) == 6


def test_heavy_ball_through_the_nonlinear_route_is_the_exact_mean():
    # Cattaneo, Klusowski & Shigida (2023), §5.2: E M = M + β/((1−β)²(1+β)) · ½∇V, and BatchHess(1) = ½∇V
    model = load("heavy_ball")
    b = model.params["beta"].symbol
    assert sp.simplify(noise_part(model) - b / ((1 - b) ** 2 * (1 + b)) * BatchHess(1)) == 0


@pytest.mark.slow
def test_lag_sums_equal_the_explicit_sums_over_the_history():
    # every weight of N as a closed form against its sum over lags written out (AdamW, fast decay)
    model = load("adamw")
    jets = _Jets(filters(model))
    values = {**jets.values()}
    numbers = {p.symbol: v for p, v in zip(model.params.values(), [0.1, 0.2, 0.1, 0.05])} | {G: 0.7, THETA: 0.3}

    def num(expr):
        return float(sp.sympify(expr).xreplace(values).xreplace(numbers))

    @functools.lru_cache(None)
    def D(*lags):  # jets.derivative with the numbers put in first: at 0, a coefficient of the polynomial in the marks
        response, marks = jets.response(list(dict.fromkeys(lags)))
        powers = [lags.count(lag) for lag in marks]
        poly = sp.Poly(response.xreplace(values).xreplace(numbers), *marks.values())
        return float(poly.coeff_monomial(tuple(powers))) * math.prod(math.factorial(k) for k in powers)

    K = 12  # 0.2^12 ≈ 4e-9
    assert num(_mean_of_P(jets)) == pytest.approx(
        sum(k / 2 * sum(D(a, a, k) for a in range(K + 1)) for k in range(1, K + 1)), rel=1e-5
    )
    explicit = sum(D(p + s, k) * D(p) for k in range(1, K + 1) for s in range(1, k + 1) for p in range(K + 1 - s))
    assert num(_covariance(jets, lambda u: u)) == pytest.approx(explicit, rel=1e-5)
    closed = _batch_hessian(jets, 0).replace(BatchHess, lambda u: u).replace(XiBatchHess, lambda u: 0)
    assert num(closed) == pytest.approx(sum(D(k) * sum(D(a) for a in range(k)) for k in range(1, K + 1)), rel=1e-5)


@pytest.mark.parametrize(
    "name, refusal",
    [
        ("adabelief", "not an exponential filter"),
        ("lion", "kink"),
        ("lamb", "reduction over the coordinates"),
    ],
)
def test_what_has_no_expansion_in_the_noise_is_refused(name, refusal):
    with pytest.raises(DerivationError, match=refusal):
        memcorr.derive(name, batches="random")


def test_a_filter_reading_theta_otherwise_than_coupled_decay_is_refused():
    text = """optimizer theta_filter "a filter of g θ"
step lr
param beta = 0.9 in (0, 1)
state m = 0
m = beta * m + (1 - beta) * g * theta
theta = theta - lr * m / (1 + m^2)
"""
    with pytest.raises(DerivationError, match=r"reads θ otherwise than through d = g \+ λθ"):
        memcorr.derive(text, batches="random")
    # the decay in the first moment only: the two filters average different gradients
    two = """optimizer half_coupled "decay in m, not in v"
step lr
param wd = 0.1 >= 0
state m = 0
state v = 0
m = 0.9 * m + 0.1 * (g + wd * theta)
v = 0.99 * v + 0.01 * g^2
theta = theta - lr * m / (1 + v)
"""
    with pytest.raises(DerivationError, match="filter different gradients"):
        memcorr.derive(two, batches="random")


def test_coupled_decay_is_the_decayed_loss_and_leaves_no_reading_at_large_noise():
    # the filters read d = g + λθ, the gradient of L + λ‖θ‖²/2: at λ = 0 the program with the decay fixed to 0
    model = load("adam")
    lam = model.params["weight_decay"].symbol
    assert filters(model).decay == lam
    coupled = noise_part(model).subs(lam, 0)
    assert sp.simplify(coupled - noise_part(with_values(model, {"weight_decay": "0"}))) == 0
    d = memcorr.derive("adam", batches="random")
    assert "coupled weight decay" in d.large_noise.reason


@pytest.mark.parametrize("regime, target", [("finite", "map"), ("stationary", "flow")])
def test_leading_order_is_the_stationary_map(regime, target):
    with pytest.raises(DerivationError, match="stationary map"):
        memcorr.derive("adamw", regime=regime, target=target, batches="random")


def _monte_carlo_mean(d, loss, theta, hyper, sequences, n=90, seed=1):
    """``E M^(n)(θ)`` over label sequences by the definition (docs/method.md §1), every row a sequence."""
    labels = np.random.default_rng(seed).integers(loss.batches, size=(sequences, n + 2))
    M = brute_force_correction(d, Labelled(loss, labels, keep=n + 2), np.tile(theta, (sequences, 1)), n, hyper)
    return M.mean(axis=0), M.std(axis=0) / np.sqrt(sequences)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, hyper",
    [
        ("adamw", {"beta1": 0.5, "beta2": 0.8, "eps": 0.1, "weight_decay": 0.05}),
        ("lion_softsign", {"beta1": 0.5, "beta2": 0.6, "eps": 0.5, "wd": 0.0}),
        ("adam", {"beta1": 0.5, "beta2": 0.8, "eps": 0.1, "weight_decay": 0.3}),  # coupled decay: d = g + λθ
    ],
)
def test_the_mean_correction_is_the_monte_carlo_mean(name, hyper):
    # small mirrored noise: the leading order is off by O(spread⁴); the full-batch part alone is not the mean
    d = memcorr.derive(name, batches="random")
    loss = batch_quadratics(spread=0.1, mirrored=True)
    theta = np.array([1.0, -0.5])
    values = {p.symbol: hyper[p.name] for p in d.model.params.values()}
    mean, stderr = _monte_carlo_mean(d, loss, theta, hyper, sequences=100_000)
    full = evaluate((d.expansion.corrections[0] - d.expansion.noise).subs(values), loss, theta, {})
    noise = evaluate(d.expansion.noise.subs(values), loss, theta, {})
    assert np.all(np.abs(noise) > 10 * stderr)  # the noise part is resolved
    assert np.all(np.abs(mean - full - noise) < 4 * stderr + 0.03 * np.abs(noise))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, fixed, hyper",
    [
        ("adamw", {}, {"beta1": 0.5, "beta2": 0.8, "eps": 0.1, "weight_decay": 0.05}),
        ("adam", {}, {"beta1": 0.5, "beta2": 0.8, "eps": 0.1, "weight_decay": 0.05}),  # coupled decay
        # momentum fixed in the derivation (a free one makes `buf` a nested state): the true method reads it there
        ("rmsprop", {"momentum": "0"}, {"alpha": 0.8, "eps": 0.1, "weight_decay": 0.05}),
    ],
)
def test_the_mean_trajectory_reaches_second_order(name, fixed, hyper):
    # docs/method.md §7: along the same labels, E M's mean difference falls as h², the full-batch part's as h
    d = memcorr.derive(name, batches="random", params=fixed)
    loss = batch_quadratics(spread=0.3, mirrored=True)
    report = verify_batches(d, loss, np.array([2.0, -1.0]), hyper, h0=0.01, steps=40, sequences=600)
    orders = report.orders()
    assert orders["E M"] >= 1.75, report.table()
    # the noise's O(h) drift shows against the O(h²) part only at small h: measured 1.46 here, falling
    assert orders["full-batch part"] <= orders["E M"] - 0.5, report.table()
    assert report.errors["full-batch part"][-1] >= 3 * report.errors["E M"][-1], report.table()


def test_the_numpy_module_computes_the_mean_correction():
    # the generated code's batch moments against the evaluator's, on a batch loss
    d = memcorr.derive("lion_softsign", batches="random")
    module = memcorr.load_module(d)
    hyper = {"beta1": 0.5, "beta2": 0.6, "eps": 0.5, "wd": 0.01}
    values = {p.symbol: hyper[p.name] for p in d.model.params.values()}
    loss, theta = batch_quadratics(spread=0.5), np.array([0.7, -0.4])
    expected = evaluate(d.expansion.corrections[0].subs(values), loss, theta, {})
    assert np.allclose(module.correction(theta, loss, **hyper), expected, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(evaluate(d.expansion.noise.subs(values), loss, theta, {})) > 1e-3
