"""AdamW's noise part read as a loss (docs/method.md §7, "AdamW's noise part"): why no ``G_noise`` is
formed, and what its gradient part says about the batch size.

On one coordinate every moment is a function of ``θ``: ``σ²`` the variance, ``σ²′`` its derivative,
``L″`` the curvature. Then ``CovHess(E) = L″ σ² E``, ``BatchHess(E) = XiBatchHess(E) = ½ σ²′ E`` and
``Hess(E) = L″ E``, and at ``ε → 0``, weight decay 0, ``g > 0`` the noise part over the preconditioner
``1/|g|`` is ``A σ²′/g + C L″ σ²/g²``. A local potential ``K σ²/g`` would need ``A + C = 0``.
"""

import pytest
import sympy as sp
from conftest import ROOT, derived

from memcorr.algebra.atoms import G, Hess, outer_atoms
from memcorr.algebra.moments import BatchHess, CovHess, NoiseVar, XiBatchHess

curvature, variance, slope = sp.symbols("Lpp sigma2 sigma2p")  # L″, σ², σ²′ on one coordinate
pytestmark = pytest.mark.slow  # AdamW's random-batch derivation and a polynomial in its coefficients
DEFAULTS = {"beta1": sp.Rational(9, 10), "beta2": sp.Rational(999, 1000)}


def _one_coordinate(expr):
    """``expr`` on one coordinate with ``g > 0``: every moment and Hessian as the numbers above."""
    one_d = {
        CovHess: lambda E: curvature * variance * E,
        BatchHess: lambda E: slope * E / 2,
        XiBatchHess: lambda E: slope * E / 2,
        Hess: lambda E: curvature * E,
    }
    expr = expr.xreplace({NoiseVar(): variance})
    while outer_atoms(expr):
        expr = expr.replace(lambda e: type(e) in one_d, lambda e: one_d[type(e)](*e.args))
    return expr.replace(sp.Abs, lambda x: x).replace(sp.sign, lambda x: sp.S.One)


@pytest.fixture(scope="module")
def coefficients():
    d = derived(ROOT / "derivations" / "adamw.opt", batches="random")
    symbol = {s.name: s for s in d.expansion.noise.free_symbols | d.perturbation.preconditioner.free_symbols}
    field = d.expansion.noise / d.perturbation.preconditioner
    field = sp.expand(_one_coordinate(field.subs({symbol["eps"]: 0, symbol["weight_decay"]: 0})))
    A = sp.cancel(field.coeff(slope) * G)
    C = sp.cancel(field.coeff(curvature) * G**2 / variance)
    beta = {name: symbol[name] for name in DEFAULTS}
    return A, C, field, beta


def test_the_noise_part_on_one_coordinate_is_two_terms(coefficients):
    A, C, field, _ = coefficients
    assert set(sp.Poly(field, slope, curvature).monoms()) == {(1, 0), (0, 1)}  # nothing else
    assert not (A.free_symbols | C.free_symbols) & {G, curvature, variance, slope}


def test_no_local_potential_because_the_two_coefficients_do_not_cancel(coefficients):
    A, C, _, beta = coefficients
    at_defaults = {beta[k]: v for k, v in DEFAULTS.items()}
    # (K σ²/g)′ = K σ²′/g − K L″ σ²/g²: it would need A = K, C = −K
    assert abs(float((A + C).subs(at_defaults))) > 1000
    assert sp.cancel(A + C) != 0


def test_the_gradient_part_is_twice_the_full_batch_coefficient_as_beta2_tends_to_one(coefficients):
    """Where the noise covariance is locally constant (``σ²′ = 0``) the noise part is the gradient of
    ``−C σ²/|g|``; the full-batch ``G`` of AdamW at ``ε → 0`` is ``a ‖∇L‖₁`` with
    ``a = β₁/(1−β₁) − β₂/(1−β₂)`` (docs/method.md §4). The noise coefficient ``−C`` has the sign of ``a``
    and tends to ``2a``: at leading order in the noise the batch size strengthens the same verdict."""
    _, C, _, beta = coefficients
    b1, b2 = beta["beta1"], beta["beta2"]
    a = b1 / (1 - b1) - b2 / (1 - b2)
    assert sp.cancel(sp.limit(sp.cancel(-C / a), b2, 1)) == 2
    at_defaults = {b1: DEFAULTS["beta1"], b2: DEFAULTS["beta2"]}
    assert 1.95 < float((-C / a).subs(at_defaults)) < 2.05
    for b in (b1, b2):  # and the same monotonicity in β₁ and β₂ at the defaults
        da, dc = (float(sp.diff(x, b).subs(at_defaults)) for x in (a, -C))
        assert da * dc > 0, (b, da, dc)
