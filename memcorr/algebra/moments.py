"""Batch moments: the per-coordinate atoms of the mean over random batches (docs/method.md §7).

With batches ``b`` drawn uniformly, ``ξ_b = ∇L_b − ∇L`` is the gradient noise of batch ``b``. The
mean of a nonlinear program's correction, to leading order in the noise, needs four fields beyond
``V`` and ``∇V`` (coordinate ``j``; every one vanishes with the noise):

- ``NoiseVar()``        ``σ²_j = E_b ξ_{b,j}²``, the per-coordinate variance;
- ``CovHess(E)``        ``E_b[ξ_{b,j} (∇²L (ξ_b ⊙ E))_j] = Σ_i ∇²L_{ji} Cov_{ji} E_i``;
- ``BatchHess(E)``      ``E_b[(∇²L_b (ξ_b ⊙ E))_j] = ½ Σ_i E_i ∂_j σ²_i`` (``E = 1``: ``½ ∂_j V``);
- ``XiBatchHess(E)``    ``E_b[ξ_{b,j} (∇²L_b E)_j] = ½ D[σ²_j][E]``.

Each is linear in its field. Their derivatives are not in the calculus: random batches are derived
at first order.
"""

from __future__ import annotations

from ..errors import DerivationError
from .atoms import FieldAtom, _Linear

FIRST_ORDER = "random batches are derived at first order (use --order 1)"


class NoiseVar(FieldAtom):
    """``σ²_j = E_b (∂_j L_b − ∂_j L)²``: the variance of coordinate ``j`` of the batch gradient."""

    nargs = 0
    is_nonnegative = True

    def directional(self, u):
        return 2 * XiBatchHess(u)


class _Moment(_Linear, FieldAtom):
    def directional(self, u):
        raise DerivationError(f"the derivative of a batch moment is not in the calculus: {FIRST_ORDER}")


class CovHess(_Moment):
    """``E_b[ξ_{b,j} (∇²L (ξ_b ⊙ E))_j]``: the Hessian weighted entrywise by the gradient covariance, on ``E``."""


class BatchHess(_Moment):
    """``E_b[(∇²L_b (ξ_b ⊙ E))_j]``: a batch's Hessian on its own noise weighted by ``E``."""


class XiBatchHess(_Moment):
    """``E_b[ξ_{b,j} (∇²L_b E)_j]``: a batch's noise against its own Hessian on ``E``."""


MOMENTS = (NoiseVar, CovHess, BatchHess, XiBatchHess)
