"""The noise part of the implied loss under random batches (docs/method.md §7).

Input: the full-batch ``Perturbation`` and the noise part of ``E M`` (``w ½∇V``). Output: the
``Perturbation`` of the whole ``G = G_full + G_noise`` with ``G_noise = c V``, ``∇G_noise`` the noise
part over the preconditioner, and the verdict of the sum: where the two parts have opposite signs
it depends on the noise level, and with batches of ``B`` examples (``V = V_1/B``) it changes at the
critical batch size ``B* = −c V_1 / (coefficient · penalty)``.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..algebra.atoms import Noise, NoiseGrad, is_scalar, outer_atoms
from ..algebra.simplify import factor
from .first import Perturbation
from .verdict import judge, judged_at_defaults


def with_noise(p: Perturbation, noise, params, extra=None) -> Perturbation:
    """``p`` with ``G_noise`` added; ``noise`` is ``P ⊙ ∇G_noise`` (0 for full batches)."""
    if noise == 0:
        return p
    if p.potential is None:
        return replace(p, reason=p.reason + "; the noise part is not integrated without a full-batch reading")
    moments = outer_atoms(noise) - {NoiseGrad()}  # a nonlinear program's mean: variances, covariances
    c = None if moments else factor(sp.cancel(noise / (NoiseGrad() * p.preconditioner)))
    if c is None or not is_scalar(c) or c.has(Noise):
        why = "is not c ∇V" if moments else "is not a gradient over the preconditioner"
        return replace(
            p,
            potential=None,
            verdict="unknown",
            verdict_at_defaults="unknown",
            reason=f"no potential: the noise part of the correction {why}; the full-batch verdict: "
            f"{p.verdict} ({p.verdict_at_defaults} at the defaults)",
        )
    noise_verdict, _, _ = judge(c, 1, params, extra)
    noise_at_defaults, c_value = judged_at_defaults(c, 1, params, extra)
    verdict = _sum(p.verdict, noise_verdict)
    at_defaults = _sum(p.verdict_at_defaults, noise_at_defaults)
    relation, critical, reason = p.relation, None, p.reason
    if verdict == "depends" and p.verdict != "depends":
        relation = sp.Gt(p.coefficient * p.penalty + c * Noise(), 0)
        critical = factor(-c / p.coefficient) * Noise() / p.penalty
        reason = "the full-batch and noise parts have opposite signs: the sign of G follows the noise level"
    return replace(
        p,
        potential=p.potential + c * Noise(),
        noise=c * Noise(),
        noise_coefficient=c,
        verdict_full=p.verdict,
        verdict=verdict,
        verdict_at_defaults=at_defaults,
        relation=relation,
        condition=str(relation) if relation is not None else p.condition,
        critical_batch=critical,
        reason=reason,
    )


def _sum(full: str, noise: str) -> str:
    """The verdict of ``G_full + G_noise`` from the verdicts of its parts."""
    if noise == "none" or full == noise:
        return full
    if full == "none":
        return noise
    return "depends"
