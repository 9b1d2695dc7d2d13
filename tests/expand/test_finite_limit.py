"""The finite-n map tends to the stationary one as n grows (method.md §2: ``Ψ_1`` is the limit of
``M^(n)`` when transients decay), for every program both regimes derive, from the generated code."""

import math

import numpy as np
import pytest
from conftest import BUNDLED, GOOD, NOT_STATIONARY, derived, short_memory

import memcorr
from memcorr.expand.recurrence import Recurrence
from memcorr.losses import builtin

LOSS, X0 = builtin("nonconvex")
BOTH = [p for p in BUNDLED + GOOD if p.stem not in NOT_STATIONARY]
RATE, STEPS = 0.2, 30  # every parameter in (0, 1) at 0.2: 0.2^30 ~ 1e-21, the transients are gone
# maps that loop over the steps (memcorr/expand/recurrence.py) settle at rates that are not parameters:
# Adadelta's ρ + (1 − ρ) g²/(v + ε) ≈ 0.92 here; O(n) per call, so many steps
LOOP_STEPS = 3000
FAST = {"nadam": dict(momentum_decay=50.0)}  # its schedule 0.96^(ψ n) settles within the steps


@pytest.mark.slow
@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.stem)
def test_finite_map_tends_to_the_stationary_map(path):
    finite, stationary = derived(path, regime="finite"), derived(path)
    hyper = {k: rate(finite.model.params[k], v) for k, v in short_memory(finite).items()} | FAST.get(path.stem, {})
    # a rate whose domain excludes 0.2 (RAdam's beta2 > 2/3) sits near its lower end, over more steps
    steps = max(STEPS, math.ceil(math.log(0.2**STEPS) / math.log(max([RATE, *(v for v in hyper.values() if v < 1)]))))
    if finite.update.has(Recurrence):
        steps = LOOP_STEPS
    at_n = memcorr.load_module(finite)
    limit = memcorr.load_module(stationary)
    for name in ("update", "correction"):
        far = getattr(at_n, name)(X0, LOSS, n=steps, **hyper)
        assert np.all(np.isfinite(far)), (name, far)
        assert np.allclose(far, getattr(limit, name)(X0, LOSS, **hyper), rtol=1e-9, atol=1e-12), name


def rate(p, value: float) -> float:
    """0.2 for a rate in (0, 1) whose domain holds it; just inside the lower end where it does not."""
    if p.small or not 0 < value < 1:
        return value
    return RATE if p.domain is None or p.domain.contains(RATE) else p.domain.lo + 0.05
