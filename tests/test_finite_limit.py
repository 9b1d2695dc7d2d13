"""The finite-n map tends to the stationary one as n grows (method.md §2: ``Ψ_1`` is the limit of
``M^(n)`` when transients decay), for every program both regimes derive, from the generated code."""

import numpy as np
import pytest
from conftest import BUNDLED, GOOD, NOT_FINITE, NOT_STATIONARY, derived, short_memory

import memcorr
from memcorr.losses import builtin

LOSS, X0 = builtin("nonconvex")
BOTH = [p for p in BUNDLED + GOOD if p.stem not in NOT_FINITE | NOT_STATIONARY]
RATE, STEPS = 0.2, 30  # every parameter in (0, 1) at 0.2: 0.2^30 ~ 1e-21, the transients are gone
# (30 steps, not more: forms left as nested sums over steps cost O(n^3) per call, see CHANGELOG)


@pytest.mark.slow
@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.stem)
def test_finite_map_tends_to_the_stationary_map(path):
    finite, stationary = derived(path, regime="finite"), derived(path)
    hyper = {k: RATE if 0 < v < 1 and not finite.model.params[k].small else v for k, v in short_memory(finite).items()}
    at_n = memcorr.load_module(finite)
    limit = memcorr.load_module(stationary)
    for name in ("update", "correction"):
        far = getattr(at_n, name)(X0, LOSS, n=STEPS, **hyper)
        assert np.all(np.isfinite(far)), (name, far)
        assert np.allclose(far, getattr(limit, name)(X0, LOSS, **hyper), rtol=1e-9, atol=1e-12), name
