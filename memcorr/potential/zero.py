"""Numeric zero-testing: where symbolic simplification cannot show that an expression vanishes,
its values at random points of a nonconvex loss and of the parameters' domains decide.
"""

from __future__ import annotations

import functools
import random

import numpy as np
import sympy as sp

from ..algebra.atoms import Noise, NoiseGrad
from ..algebra.evaluate import evaluate
from ..losses import batch_nonconvex, nonconvex
from ..model.sampling import sample
from ..model.types import Parameter


def random_points(
    params: dict[str, Parameter], count: int, seed: int = 1, extra: dict | None = None, edges: bool = False
) -> list[dict]:
    """Random points inside the parameters' domains (``extra``: fixed values, such as ``n``)."""
    rng = random.Random(seed)
    # random points, and each parameter near both ends of its domain (a sign may change only there)
    ends = [(p, u) for p in params.values() for u in (0.001, 0.999)] if edges else []
    points = []
    for i in range(count + len(ends)):
        point = {p.symbol: sample(p, rng.uniform(0.001, 0.999)) for p in params.values()}
        if i >= count:
            p, u = ends[i - count]
            point[p.symbol] = sample(p, u)
        points.append(with_extra(point, extra))
    return points


def with_extra(point: dict, extra: dict | None) -> dict:
    """``point`` with the fixed values of ``extra`` (``n``), then its expressions (``β^n``) evaluated there."""
    fixed = {k: v for k, v in (extra or {}).items() if sp.sympify(v).is_number}
    point = {**point, **fixed}
    point.update({k: float(sp.sympify(v).subs(point)) for k, v in (extra or {}).items() if k not in fixed})
    return point


@functools.cache
def check_loss(batches: bool = False):
    """The loss of the random-point checks, built once (its derivative tensors are compiled lazily); a
    batch loss for expressions in the gradient noise."""
    return batch_nonconvex() if batches else nonconvex()


ZERO_CHECK_STEP = 6  # the largest step counter a zero check takes (see numerically_zero)


def numerically_zero(expr, params: dict[str, Parameter], extra: dict | None = None, scale=None) -> bool:
    """``expr`` vanishes at random points of a nonconvex loss and of the parameters' domains. A step
    counter fixed in ``extra`` (``n``) is taken at most ``ZERO_CHECK_STEP``: an identity in ``n`` holds at
    every ``n``, early steps keep the transients ``βⁿ`` large, and each sum over the past steps is written
    out term by term (soft-sign Lion's finite regime: a third of its derivation at n = 30)."""
    if expr == 0:
        return True
    loss = check_loss(expr.has(Noise, NoiseGrad))
    rng = np.random.default_rng(3)
    early = {k: min(v, ZERO_CHECK_STEP) if isinstance(v, int) else v for k, v in (extra or {}).items()}
    for values in random_points(params, 3, extra=early):
        theta = rng.uniform(-1.5, 1.5, 3)
        try:
            value = np.abs(evaluate(expr, loss, theta, values))
            size = 1.0 if scale is None else 1.0 + np.max(np.abs(evaluate(scale, loss, theta, values)))
        except ValueError:  # a symbol with no value (a step index left free by a failed integral): not shown zero
            return False
        if not np.all(np.isfinite(value)) or np.max(value) > 1e-8 * size:
            return False
    return True
