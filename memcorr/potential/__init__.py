"""Stage 4, the implied loss: expansion -> loss perturbation and verdict (docs/method.md §4).

Input: ``Ψ_0`` and the corrections (exact, per coordinate) and the program's parameters.
Output: ``Perturbation`` (``G`` of ``L̃ = L + hG`` at first order, its reading, verdict and
condition) and one ``OrderPotential`` per higher order.

- ``first``: the two readings (same-method, preconditioned), the integration and the verdict;
- ``higher``: ``G_r`` for ``r ≥ 2`` by linear algebra on inner products, or what is left over;
- ``noise``: random batches' part of ``G`` (``c V``) and the verdict of the whole;
- ``large_noise``: random batches at large noise, the weight of the memory term as a function of
  ``σ²/g²``, where its sign changes and the critical batch size.
"""

from .first import Perturbation, find
from .higher import OrderPotential, higher_potentials
from .large_noise import LargeNoise, read_large_noise
from .noise import with_noise

__all__ = [
    "LargeNoise",
    "OrderPotential",
    "Perturbation",
    "find",
    "higher_potentials",
    "read_large_noise",
    "with_noise",
]
