"""The finite-n map tends to the stationary one as n grows (method.md §2: ``Ψ_1`` is the limit of
``M^(n)`` when transients decay), for every program both regimes derive, from the generated code."""

import numpy as np
import pytest
from conftest import BUNDLED, GOOD, NOT_FINITE, NOT_STATIONARY, derived, short_memory

import memcorr
from memcorr.losses import builtin

LOSS, X0 = builtin("nonconvex")
BOTH = [p for p in BUNDLED + GOOD if p.stem not in NOT_FINITE | NOT_STATIONARY]
STEPS = 120  # short-memory rates are at most 0.7: 0.7^120 ~ 3e-19, the transients are gone


@pytest.mark.slow
@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.stem)
def test_finite_map_tends_to_the_stationary_map(path):
    finite, stationary = derived(path, regime="finite"), derived(path)
    hyper = short_memory(finite)
    at_n = memcorr.load_module(finite)
    limit = memcorr.load_module(stationary)
    for name in ("update", "correction"):
        far = getattr(at_n, name)(X0, LOSS, n=STEPS, **hyper)
        assert np.all(np.isfinite(far)), (name, far)
        assert np.allclose(far, getattr(limit, name)(X0, LOSS, **hyper), rtol=1e-9, atol=1e-12), name
