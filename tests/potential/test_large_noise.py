"""The large-noise reading (docs/method.md §7, "At large noise"): the weight ``c(ρ)`` of Adam's memory
term as a function of ``ρ = σ²/g²``, where it changes sign, and the critical batch size — checked
against a program that spells the mean out, and against the true Adam with mini-batches.

The numbers: one coordinate, ``L_b(θ) = λθ²/2 + c_b θ`` with ``c_b ~ N(μ, ρμ²)`` (batch gradients
``λθ + c_b``: one Hessian, the noise level ``ρ`` at ``θ = 0``). Along the true method's own trajectory,
after its memory has settled, ``E[F_true − F_memoryless]/h`` is the mean correction ``E M``; the
memoryless step keeps the batch labels and reads every gradient at the current iterate. In one
coordinate ``E M = c(ρ) λ P² g`` (``P = 1/√(g² + σ²)``), so the measured weight is
``Σ (F_true − F_memoryless)/h / Σ λ P² g``.
"""

import re

import numpy as np
import pytest
import sympy as sp
from conftest import PDFLATEX, ROOT, compile_tex, derived

import memcorr
from memcorr.expand.concentrated import concentrated
from memcorr.expand.stationary import stationary
from memcorr.potential.large_noise import RHO, read_large_noise

ADAMW = ROOT / "derivations" / "adamw.opt"


@pytest.fixture(scope="module")
def reading():
    return derived(ADAMW, batches="random").large_noise


def _at(expr, **values):
    names = {s.name: s for s in expr.free_symbols}
    return float(expr.subs({names[k]: v for k, v in values.items() if k in names}))


def test_the_weight_runs_from_the_full_batch_value_to_its_large_noise_limit(reading):
    b1, b2 = sp.symbols("beta1 beta2", real=True, positive=True)
    names = {s.name: s for s in reading.weight.free_symbols}
    c0 = reading.c0.xreplace({names["beta1"]: b1, names["beta2"]: b2})
    # c(0) is AdamW's full-batch coefficient β₁/(1 − β₁) − β₂/(1 − β₂) (its implied loss a·‖∇L‖₁)
    assert sp.simplify(c0 - (b1 / (1 - b1) - b2 / (1 - b2))) == 0
    assert reading.between_limits and sp.cancel(reading.weight - (reading.c0 + reading.c_inf * RHO) / (1 + RHO)) == 0
    assert sp.cancel(reading.ratio + reading.c0 / reading.c_inf) == 0  # c(ρ*) = 0
    assert reading.large_batches == "anti-regularizing" and reading.small_batches == "regularizing"
    assert 100 < reading.ratio_at_defaults < 200


def test_the_short_forms_equal_the_long_ones(reading):
    """What the printers show (``Ψ̄_0``, ``Ψ̄_1``) equals the expansion it was shortened from, at a point
    of a nonconvex batch loss whose Hessians differ (every batch moment nonzero)."""
    from memcorr.algebra.evaluate import evaluate
    from memcorr.expand.concentrated import concentrated_expansion
    from memcorr.losses import batch_nonconvex

    model = derived(ADAMW, batches="random").model
    long, _ = concentrated_expansion(model)
    values = {p.symbol: v for p, v in zip(model.params.values(), (0.8, 0.95, 0.01, 0.1))}
    loss, theta = batch_nonconvex(), np.array([0.4, -0.7, 0.2])
    for short, exact in ((reading.update, long.update), (reading.correction, long.corrections[0])):
        assert np.allclose(evaluate(short, loss, theta, values), evaluate(exact, loss, theta, values), rtol=1e-9)


def test_the_large_noise_limit_is_the_momentum_less_three_pairings(reading):
    """docs/method.md §7 prints ``c_∞`` as the momentum's memory less the pairings with ``v``'s memory:
    the batch's own entry, the momentum read now, and the batch they share."""
    names = {s.name: s for s in reading.c_inf.free_symbols}
    b1, b2 = names["beta1"], names["beta2"]
    pairings = (
        b2 * (1 - b1) / (1 - b1 * b2)
        + b1 * b2 * (1 - b1) / ((1 + b1) * (1 - b1 * b2))
        + b1 * b2 * (1 - b1) * (1 - b2) / (1 - b1 * b2) ** 2
    )
    assert sp.cancel(reading.c_inf - (b1 / (1 - b1) - pairings)) == 0


def test_rmsprop_without_momentum_anti_regularizes_at_every_batch_size():
    d = memcorr.derive("rmsprop", batches="random", params={"momentum": "0", "weight_decay": "0"})
    alpha = next(s for s in d.large_noise.weight.free_symbols if s.name == "alpha")
    expected = -alpha * (1 + (1 - alpha) * RHO) / ((1 - alpha) * (1 + RHO))
    assert sp.cancel(d.large_noise.weight - expected) == 0
    assert d.large_noise.ratio is None and d.large_noise.small_batches == "anti-regularizing"


def test_the_mean_part_is_the_program_with_the_variance_spelled_out():
    """Without the pairings, the reading is memcorr's full-batch derivation of a program whose ``v``
    averages ``g² + s`` (``s`` a constant variance): the transformation of the model, checked by the
    engine that every full-batch test checks."""
    spelled = derived(ROOT / "tests" / "programs" / "adam_constant_variance.opt")
    model = derived(ADAMW, batches="random").model
    mean = stationary(concentrated(model), 1)
    names = {x.name: x for e in (spelled.expansion.corrections[0], mean.corrections[0]) for x in e.free_symbols}
    one = _one_coordinate(mean.corrections[0].subs({names["eps"]: 0, names["weight_decay"]: 0}), names["s"])
    two = _one_coordinate(spelled.expansion.corrections[0], names["s"])
    for point in (
        {"beta1": 0.9, "beta2": 0.999, "s": 2.0, "g": 0.7},
        {"beta1": 0.5, "beta2": 0.9, "s": 0.1, "g": -1.3},
    ):
        assert _at(one, **point) == pytest.approx(_at(two, **point), rel=1e-12)


def _one_coordinate(expr, s):
    from memcorr.algebra.atoms import Hess
    from memcorr.algebra.moments import NoiseVar, XiBatchHess

    curvature = sp.Symbol("Lpp")
    expr = expr.xreplace({NoiseVar(): s}).replace(lambda e: isinstance(e, XiBatchHess), lambda e: sp.S.Zero)
    return expr.replace(lambda e: isinstance(e, Hess), lambda e: curvature * e.args[0]).subs(curvature, 1.3)


def measured_weight(rho, beta1, beta2, lam=0.05, mu=1.0, h=1e-4, sequences=4000, steps=400, seed=0):
    """``E[F_true − F_memoryless]/h / (λ P² g)`` for Adam (ε = 0) along its own trajectory (module docstring)."""
    rng = np.random.default_rng(seed)
    sd = np.sqrt(rho) * mu
    theta = np.zeros(sequences)
    # the labels' own filters (c_b, c_b²): the memoryless step rebuilds m and v from them at the current θ
    e1, e2, e2sq = np.full(sequences, mu), np.full(sequences, mu), np.full(sequences, mu**2 + sd**2)
    m, v = e1.copy(), e2sq.copy()
    settle = int(8 / (1 - beta2))
    num = den = 0.0
    for n in range(settle + steps):
        c = mu + sd * rng.standard_normal(sequences)
        x = lam * theta + c
        m, v = beta1 * m + (1 - beta1) * x, beta2 * v + (1 - beta2) * x * x
        e1, e2, e2sq = beta1 * e1 + (1 - beta1) * c, beta2 * e2 + (1 - beta2) * c, beta2 * e2sq + (1 - beta2) * c * c
        F = m / np.sqrt(v)
        if n >= settle:
            memoryless = (lam * theta + e1) / np.sqrt(lam**2 * theta**2 + 2 * lam * theta * e2 + e2sq)
            g = lam * theta + mu
            num += np.sum(F - memoryless) / h
            den += np.sum(lam * g / (g * g + sd**2))
        theta = theta - h * F
    return num / den


def _close(seen, predicted):
    """Within the simulation's error and the reading's own: it leaves out the fluctuation of ``v``, a
    relative ``O(1 − β₂)`` (β₂ = 0.99 here), and the third cumulants (zero for Gaussian noise)."""
    return abs(seen - predicted) <= 0.4 + 0.05 * abs(predicted)


def _seen(rho, beta1, beta2):
    return np.mean([measured_weight(rho, beta1, beta2, seed=s) for s in (0, 1)])


def test_the_true_adams_memory_changes_sign_where_predicted(reading):
    beta1, beta2 = 0.9, 0.99
    ratio = _at(reading.ratio, beta1=beta1, beta2=beta2)  # 11.9: the mean part alone says 10
    seen = {f: _seen(f * ratio, beta1, beta2) for f in (0.25, 1.0, 4.0, 30.0)}
    for f, value in seen.items():
        assert _close(value, _at(reading.weight, beta1=beta1, beta2=beta2, rho=f * ratio)), (f, value)
    assert seen[0.25] < 0 < seen[4.0]  # anti-regularizing at large batches, regularizing at small ones
    assert abs(seen[1.0]) < 0.1 * seen[4.0]


def test_without_the_pairings_the_sign_at_large_noise_is_wrong(reading):
    """β₁ = 0.5: the step's own noise in the memory of v outweighs the momentum's memory, and Adam
    stays anti-regularizing at every noise level; the means alone would call it regularizing there."""
    beta1, beta2, rho = 0.5, 0.99, 300.0
    assert _at(reading.ratio, beta1=beta1, beta2=beta2) < 0  # no ρ* > 0
    predicted = _at(reading.weight, beta1=beta1, beta2=beta2, rho=rho)
    mean_only = _at(_mean_field_weight(beta1, beta2), rho=rho)
    seen = _seen(rho, beta1, beta2)
    assert _close(seen, predicted) and seen < 0 < mean_only


def _mean_field_weight(beta1, beta2):
    model = derived(ADAMW, batches="random").model
    e = stationary(concentrated(model), 1)
    names = {p.symbol.name: p.symbol for p in model.params.values()}
    values = {names["beta1"]: sp.Float(beta1), names["beta2"]: sp.Float(beta2)}
    fixed = {k: p for k, p in model.params.items() if k not in ("beta1", "beta2")}
    return read_large_noise(e.update.subs(values), [e.corrections[0].subs(values)], fixed).weight


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (.ci/run installs it)")
def test_the_document_with_the_reading_compiles(reading, tmp_path):
    d = derived(ADAMW, batches="random")
    source = d.to_latex(standalone=True)
    assert r"\rho^* = -c_0/c_\infty" in source and r"c_\infty &=" in source
    log = compile_tex(source, tmp_path)
    widest = max([float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)] or [0.0])
    assert widest <= 5, f"a line {widest} pt wider than the text"  # as the committed documents


def test_a_step_nonlinear_in_the_momentum_has_no_reading():
    d = derived(ROOT / "derivations" / "lion_softsign.opt", batches="random")
    assert d.large_noise.weight is None
    assert "not affine in the current gradient" in d.large_noise.reason
