"""Stage 3: state-space model -> memoryless map (docs/method.md §1–2, §5).

Input: ``Model``. Output: ``Expansion`` — ``Ψ_0``, the corrections ``Ψ_1 … Ψ_R`` and the states
on the invariant manifold, per coordinate.

- ``branches``: a ``max``/``min`` of a state's own value by its branch active at the fixed point;
- ``stationary`` (``n → ∞``, any order): the invariant-manifold recursion, and ``linear``: the same
  recursion one coefficient per elementary differential, for programs linear in the gradients;
- ``finite`` (step ``n`` symbolic, first order): closed forms of the sums over the past steps,
  and ``recurrence``: loops over the steps where no closed form exists;
- ``flow``: the modified flow of either map (``target="flow"``);
- ``batches``: the mean over random batches of the first-order correction (``batches="random"``),
  exact for programs linear in the gradients, and ``moments``: its leading order in the noise for
  exponential filters read through a smooth step; ``concentrated``: the same filters at large noise,
  the step at the means of its second-moment filters.
"""

from __future__ import annotations

from ..errors import DerivationError
from ..model.types import Model
from .branches import active_branches
from .expansion import Expansion
from .finite import finite
from .flow import modified_flow
from .stationary import stationary

__all__ = ["Expansion", "expand", "modified_flow"]


def expand(model: Model, order: int = 1, regime: str = "stationary") -> Expansion:
    model, notes = active_branches(model)
    if regime == "stationary":
        e = stationary(model, order)
    elif regime == "finite":
        e = finite(model, order)
    else:
        raise DerivationError(f"unknown regime `{regime}`: use stationary or finite")
    e.notes = notes + e.notes
    return e
