"""Stage 2, the model: checked program -> state-space model (docs/method.md §2).

Input: ``Checked``. Output: ``Model`` — the pre-step states with their initial values, the state
map ``s_{n+1} = Φ(s_n, θ_n)`` and ``F`` with ``θ_{n+1} = θ_n − h F``, per coordinate.

- ``types``: ``Parameter``, ``StateVar``, ``Model``;
- ``lower``: the statements run into sympy, history as lag states, velocity forms rescaled;
- ``decay``: the memory must forget (eigenvalues of the state Jacobian inside the unit circle);
- ``sampling``: the parameter values later stages read signs and test zeros at.

``load`` runs stages 1 and 2 on a program: what ``memcorr check`` needs, without the later stages'
imports.
"""

from __future__ import annotations

from ..dsl.check import check
from ..dsl.library import read_source
from ..dsl.parse import parse
from .lower import lower
from .types import Model


def load(source_or_path) -> Model:
    """Stages 1 and 2: a program given as text, a path or a bundled name, parsed, checked and lowered."""
    text, filename = read_source(source_or_path)
    return lower(check(parse(text, filename)))
