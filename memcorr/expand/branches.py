"""Before either regime: a ``max``/``min`` of a state's own value replaced by the branch active at
the fixed point (Adamax), where that is the same map near it.

Input: ``Model``. Output: ``Model`` and a note per replaced branch.
"""

from __future__ import annotations

import random
from dataclasses import replace

import sympy as sp

from ..model.sampling import default_values
from ..model.types import Model


def active_branches(model: Model) -> tuple[Model, list[str]]:
    """A state updated through ``max``/``min`` of its own value (Adamax's ``u = max(β₂u, |g| + ε)``)
    by the branch active at its fixed point, where that branch does not read the state and the
    other is strictly on the losing side there (at the defaults and random fields): the same map
    near the fixed point, so the expansion is the same. Returns the model and a note per state."""
    rng = random.Random(0)
    active, notes = {}, []
    for st in model.states:
        for node in st.update.atoms(sp.Max, sp.Min):
            keep = [a for a in node.args if not a.has(st.symbol)]
            if len(keep) != 1 or len(node.args) != 2:
                continue
            (other,) = [a for a in node.args if a is not keep[0]]
            fixed = st.update.xreplace({node: keep[0]}).subs(model.h, 0)
            if fixed.has(st.symbol) or not _losing(node, other.xreplace({st.symbol: fixed}), keep[0], model, rng):
                continue
            active[node] = keep[0]
            notes.append(
                f"`{st.name}`: its {node.func.__name__.lower()} takes the branch {keep[0]} at the fixed point "
                f"({other} loses there), and near it; the expansion uses that branch"
            )
    if not active:
        return model, []
    # the same node wherever the state's new value is read (F, later states)
    states = tuple(replace(st, update=st.update.xreplace(active)) for st in model.states)
    return replace(model, F=model.F.xreplace(active), states=states), notes


def _losing(node, other, winner, model: Model, rng) -> bool:
    """Is ``other`` strictly below (max) or above (min) ``winner`` at the defaults, random fields?"""
    sign = 1 if isinstance(node, sp.Max) else -1
    for _ in range(5):
        point = {**default_values(model.params), model.n: 10**6}
        # in a defined order: the draws must not depend on the hash seed
        free = sorted((winner - other).free_symbols - set(point), key=sp.default_sort_key)
        point.update({x: rng.uniform(-2, 2) for x in free})
        gap = (sign * (winner - other)).xreplace(point).evalf()
        # an operator left (a Hessian, a norm), or a complex value (a root of a negative draw): not decided here
        if not (gap.is_number and gap.is_extended_real and gap > 0):
            return False
    return True
