"""Stage 4, the implied loss: expansion -> loss perturbation and verdict (docs/method.md §4).

Input: ``Ψ_0`` and the corrections (exact, per coordinate) and the program's parameters.
Output: ``Perturbation`` (``G`` of ``L̃ = L + hG`` at first order, its reading, verdict and
condition) and one ``OrderPotential`` per higher order.

- ``first``: the two readings (same-method, preconditioned), the integration and the verdict;
- ``higher``: ``G_r`` for ``r ≥ 2`` by linear algebra on inner products, or what is left over;
- ``noise``: random batches' part of ``G`` (``c V``) and the verdict of the whole.
"""

from .first import Perturbation, find
from .higher import OrderPotential, higher_potentials
from .noise import with_noise

__all__ = ["OrderPotential", "Perturbation", "find", "higher_potentials", "with_noise"]
