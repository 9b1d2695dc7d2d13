"""Parameter values at which later stages read signs, test for zero and check decay.

The defaults (a parameter without one takes the middle of its domain), points spread inside the
domains, the defaults at a few steps ``n`` (where ``orient`` reads the sign of a gap), and
``drop_transients``: the ``βⁿ`` that die as ``n → ∞`` at given values.
"""

from __future__ import annotations

import math

import sympy as sp

from .types import Model, Parameter


def sample(p: Parameter, u: float) -> float:
    """A point inside ``p``'s domain, ``u`` of the way across (its default if no domain)."""
    dom = p.domain
    if dom is None:
        return p.default if p.default is not None else u
    if math.isfinite(dom.lo) and math.isfinite(dom.hi):
        return dom.lo + u * (dom.hi - dom.lo)
    return dom.lo + 10 * u if math.isfinite(dom.lo) else dom.hi - 10 * u


def domain_samples(params: dict[str, Parameter]) -> list[dict]:
    """Points inside every parameter's domain."""
    return [{p.symbol: sample(p, u) for p in params.values()} for u in (0.1, 0.5, 0.9)]


def default_values(params: dict[str, Parameter]) -> dict:
    """The defaults; a parameter without one takes the middle of its domain."""
    return {p.symbol: p.default if p.default is not None else sample(p, 0.5) for p in params.values()}


def orientation_samples(model: Model) -> list[dict]:
    """The defaults at a few steps ``n ≥ 1``: where ``present.orient`` reads the signs of parameter
    gaps (``1 − βⁿ`` vanishes at ``n = 0``, so the first step tells nothing)."""
    return [{**default_values(model.params), model.n: n} for n in (1, 2, 10)]


def drop_transients(expr, n, values: dict):
    """Drop ``b^(a n + c)`` transients (``|b|^a < 1`` at ``values``), as ``n → ∞``. A parameter fixed to
    ``1/2`` leaves ``2^(−n−1)``: base above 1, slope negative."""

    def decays(p):
        if not (isinstance(p, sp.Pow) and p.exp.has(n)):
            return False
        slope, base = sp.diff(p.exp, n), abs(complex(p.base.subs(values)))
        return bool((slope.is_positive and base < 1) or (slope.is_negative and base > 1))

    return expr.replace(decays, lambda p: sp.S.Zero)
