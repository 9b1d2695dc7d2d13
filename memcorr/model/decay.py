"""The memory must decay: the state map's Jacobian at the fixed point has every eigenvalue
inside the unit circle (docs/method.md §2).

Checked numerically at the defaults (a ``DSLError`` at the offending update) and at points inside
the parameters' domains (a warning), block by block over the states that feed each other.
"""

from __future__ import annotations

import logging
import random

import mpmath
import networkx as nx
import sympy as sp

from ..algebra.atoms import LOSS, THETA, G, outer_atoms
from ..errors import DSLError, DSLWarning, Span
from .sampling import default_values, domain_samples, drop_transients
from .types import Model, StateVar

log = logging.getLogger("memcorr")


def _fixed_point_phi(model: Model, values: dict, rng: random.Random) -> list[sp.Expr]:
    """``Φ`` at ``h = 0``, ``n → ∞``, the parameters at ``values`` and every field at a random
    value in [0.5, 1.5] (drawn in a fixed order: the result must not depend on the hash seed)."""
    leaves = {THETA: rng.uniform(0.5, 1.5), G: rng.uniform(0.5, 1.5), LOSS: rng.uniform(0.5, 1.5)}
    phi = []
    for u in model.Phi:
        u = drop_transients(u.subs(model.h, 0), model.n, values).subs(model.n, 10**6)
        atoms = sorted(outer_atoms(u), key=sp.default_sort_key)
        u = u.xreplace({a: sp.Float(rng.uniform(0.5, 1.5)) for a in atoms})
        phi.append(u.subs(values).subs(leaves))
    return phi


def _blocks(model: Model, phi: list[sp.Expr]) -> list[list[int]]:
    """The states in blocks that feed each other (strongly connected), upstream blocks first: the
    Jacobian is block-triangular in this order, so its eigenvalues are those of its diagonal blocks."""
    syms = model.symbols
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(syms)))
    graph.add_edges_from((j, i) for i, u in enumerate(phi) for j, s in enumerate(syms) if u.has(s))
    condensed = nx.condensation(graph)
    return [sorted(condensed.nodes[c]["members"]) for c in nx.lexicographical_topological_sort(condensed)]


def _block_jacobian(phi: list[sp.Expr], syms: list, known: dict):
    """Solve the block ``s = Φ(s)`` by Newton's method (the upstream states fixed at ``known``) and
    return its Jacobian there and the solution. mpmath's numbers (loaded with sympy anyway) keep
    ``memcorr check`` free of numpy."""
    phi = [u.xreplace(known) for u in phi]
    # at a tie of max/min both one-sided slopes count: H(0) = 1 is the cautious choice
    jac = (
        sp.Matrix(phi)
        .jacobian(syms)
        .replace(lambda e: isinstance(e, sp.Heaviside), lambda e: sp.Heaviside(e.args[0], 1))
    )

    def at(exprs, s):
        point = dict(zip(syms, s))
        return mpmath.matrix([[complex(e.xreplace(point)) for e in row] for row in exprs])

    s = mpmath.matrix(len(syms), 1)
    for _ in range(60):
        try:
            step = mpmath.lu_solve(mpmath.eye(len(syms)) - at(jac.tolist(), s), s - at([[e] for e in phi], s))
        except ZeroDivisionError:
            break
        s = mpmath.matrix([x.real for x in s - step])
        if mpmath.norm(step) < 1e-13 * (1 + mpmath.norm(s)):
            break
    return at(jac.tolist(), s), [sp.Float(x) for x in s]


def _finite_coupling(phi: list[sp.Expr], upstream: dict, here: dict) -> bool:
    """The block's derivatives in the upstream states are numbers at the fixed point: the Jacobian has
    no eigenvalue to judge where one is not (``sqrt(v)'`` at a ``v`` left at 0)."""
    point = {**upstream, **here}
    for u in phi:
        for s in sorted(u.free_symbols & set(upstream), key=sp.default_sort_key):
            d = sp.diff(u, s).replace(lambda e: isinstance(e, sp.Heaviside), lambda e: sp.Heaviside(e.args[0], 1))
            if not mpmath.isfinite(complex(d.xreplace(point))):
                return False
    return True


def spectral_check(model: Model, values: dict, rng) -> tuple[float, str] | None:
    """The largest |eigenvalue| of Φ_s at the fixed point (``h = 0``, ``n → ∞``, random fields) and
    the state it belongs to, block by block: milliseconds for the usual triangular systems."""
    if not model.states:
        return None
    syms, phi = model.symbols, _fixed_point_phi(model, values, rng)
    known: dict = {}
    worst: tuple[float, str] | None = None
    try:
        for block in _blocks(model, phi):
            block_syms = [syms[i] for i in block]
            if len(block) > 1:  # the costly case: a coupled block's fixed point and eigenvalues
                log.info(
                    "decay check: %d states that feed each other (%s)", len(block), ", ".join(map(str, block_syms))
                )
            block_phi = [phi[i] for i in block]
            jacobian, solution = _block_jacobian(block_phi, block_syms, known)
            if not all(mpmath.isfinite(x) for row in jacobian.tolist() for x in row):
                return None  # (a state left at 0 under a root: sqrt(v)' = ∞)
            if not _finite_coupling(block_phi, known, dict(zip(block_syms, solution))):
                return None
            known.update(zip(block_syms, solution))
            eigvals, eigvecs = mpmath.eig(jacobian)
            moduli = [abs(v) for v in eigvals]
            i = max(range(len(moduli)), key=moduli.__getitem__)
            owner = max(range(len(moduli)), key=lambda r: abs(eigvecs[r, i]))
            if worst is None or float(moduli[i]) > worst[0]:
                worst = float(moduli[i]), model.states[block[owner]].name
    except (ZeroDivisionError, ValueError, TypeError, OverflowError):
        return None  # not a number at this point (e.g. log of a negative): nothing to judge
    return worst


def check_decay(model: Model) -> list[DSLWarning]:
    """DSLError if the memory does not decay at the defaults; warnings elsewhere in the domains."""
    rng = random.Random(0)
    found = spectral_check(model, default_values(model.params), rng)
    if found and found[0] >= 1 - 1e-9:
        radius, name = found
        state = next(s for s in model.states if s.name == name)
        span = update_span(model, state)
        raise DSLError(
            f"the memory of `{name.split('[')[0]}` does not decay: its update has eigenvalue "
            f"{radius:.4g} (every eigenvalue must be smaller than 1 in modulus)",
            span,
            hint="the expansion replaces past iterates by the current one, which needs memory "
            "that forgets geometrically; use an average, e.g. "
            f"`{name} = beta * {name} + (1 - beta) * …` with beta < 1",
        )
    warnings = []
    for point in domain_samples(model.params):
        found = spectral_check(model, point, rng)
        if found and found[0] >= 1 - 1e-9:
            where = ", ".join(f"{s}={v:g}" for s, v in point.items())
            warnings.append(
                DSLWarning(
                    f"the memory of `{found[1]}` does not decay at {where}, inside the parameters' domains",
                    update_span(model, model.states[0]),
                    hint="narrow the domains to where the method forgets its past",
                )
            )
            break
    return warnings


def update_span(model: Model, state: StateVar) -> Span:
    """Where the program assigns ``state`` last (its declaration if it never does)."""
    for st in reversed(model.checked.statements):
        if st.target == state.name:
            return st.span
    return state.span
