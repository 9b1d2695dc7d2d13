"""The stationary regime (``n → ∞``), any order: the invariant-manifold recursion
(docs/method.md §2).

Input: ``Model``. Output: ``Expansion``. With ``S(h)`` and ``Ψ(h)`` known below order ``r``,
matching ``h^r`` in ``S(θ − hΨ(θ)) = Φ(S(θ), θ)`` gives ``(I − Φ_s) S_r = [Φ]_r − [S(θ − hΨ)]_r``
(brackets: the ``h^r`` coefficient of the known part), then ``Ψ_r = [F(S)]_r``.
"""

from __future__ import annotations

import logging

import networkx as nx
import sympy as sp

from ..algebra.atoms import FieldSymbol, Grad, LossAt, directional, outer_atoms, simplify
from ..algebra.series import Series
from ..algebra.simplify import radicands, tidy
from ..errors import DerivationError, DSLError
from ..model.decay import update_span
from ..model.sampling import default_values, drop_transients
from ..model.types import Model
from .expansion import Expansion, kink_notes, oriented
from .linear import linear_recursion

log = logging.getLogger("memcorr")

DIRECTION = FieldSymbol("@u", real=True)  # a fixed direction: D^m S[u, …, u]


def stationary_limit(expr, model: Model):
    """Drop transients ``b^(n+c)`` with ``|b| < 1`` at the defaults; any other ``n`` is an error."""
    expr = drop_transients(expr, model.n, default_values(model.params))
    if expr.has(model.n):
        raise DerivationError(
            "the step counter n appears other than in decaying powers like beta^(n+1); "
            "the stationary regime needs the method to settle as n grows "
            "(use --regime finite)"
        )
    return expr


# ------------------------------------------------------------ stationary
def stationary(model: Model, order: int) -> Expansion:
    """The invariant-manifold recursion of docs/method.md §2 up to ``order``.

    States are solved in dependency order (strongly connected components of "the
    update of s reads t"), so a state may read another through a gradient at a
    point (``grad(theta[n-1])``); within a component the coupling must act
    coordinatewise, which makes ``I − Φ_s`` a matrix of per-coordinate scalars. A program linear
    in the gradients is solved one coefficient per elementary differential (``linear``), any
    other with truncated series of sympy expressions.
    """
    h = model.h
    phi = dict(zip(model.symbols, (stationary_limit(u, model) for u in model.Phi)))
    F = stationary_limit(model.F, model)
    settled, sign_notes = _settled_signs([*phi.values(), F], model)
    phi, F = {s: u.xreplace(settled) for s, u in phi.items()}, F.xreplace(settled)
    blocks = _components(phi)

    S0: dict = {}
    for block in blocks:
        S0.update(_fixed_point(block, phi, S0, model))
    _check_points([*phi.values(), F], S0, h)
    psi = [tidy(F.xreplace(S0).subs(h, 0))]
    params = sorted((p.symbol for p in model.params.values()), key=sp.default_sort_key)
    linear = linear_recursion(phi, F, S0, blocks, h, params, order) if order else None
    S_r, psi_r = linear or _series_recursion(phi, F, S0, psi[0], blocks, h, order)
    S, psi = [S0, *S_r], psi + psi_r
    states = {st.name: [S[r][st.symbol] for r in range(order + 1)] for st in model.states}
    notes = sign_notes + kink_notes(model, psi[0])
    return oriented(Expansion("stationary", order, psi[0], psi[1:], states, notes), model)


def _series_recursion(phi: dict, F, S0: dict, psi0, blocks: list, h, order: int) -> tuple[list, list]:
    """``[S_1, …]`` and ``[Ψ_1, …]`` with truncated series of sympy expressions (any program)."""
    syms = list(phi)
    S, psi = [S0], [psi0]
    # I − Φ_s of each component, the same at every order
    A = [sp.eye(len(block)) - _block_jacobian(block, phi, S0, h) for block in blocks] if order else []
    chains: dict = {}  # (state, i) -> [S_i, D S_i[u], D² S_i[u, u], …], reused at every order
    for r in range(1, order + 1):
        log.info("invariant manifold: order %d of %d", r, order)
        shifted = _shifted(S, psi, h, r, chains)
        S_r: dict = {}
        for block, A_block in zip(blocks, A):
            known = Series({s: [S[i][s] for i in range(r)] + [S_r.get(s, 0)] for s in syms}, h, r)
            rhs = sp.Matrix([known.coefficient(phi[s], r) - shifted[s] for s in block])
            S_r.update({s: tidy(x) for s, x in zip(block, A_block.LUsolve(rhs))})
        S.append(S_r)
        full = Series({s: [S[i][s] for i in range(r + 1)] for s in syms}, h, r)
        psi.append(tidy(full.coefficient(F, r)))
    return S[1:], psi[1:]


def _settled_signs(exprs, model: Model) -> tuple[dict, list[str]]:
    """``sign(e)`` of a parameter-only ``e`` once ``n`` has settled (RAdam's switch ``ρ_t > 5`` becomes
    ``ρ_∞ > 5``): its value at the defaults, with a note giving where in the domain that value holds."""
    params = {p.symbol: p for p in model.params.values()}
    values = default_values(model.params)
    settled, notes = {}, []
    for node in sorted(set().union(*(e.atoms(sp.sign) for e in exprs)), key=sp.default_sort_key):
        arg = node.args[0]
        value = sp.sign(arg.subs(values))
        if not arg.free_symbols or not arg.free_symbols <= set(params) or value == 0:
            continue
        settled[node] = value
        where = ""
        domain = params[next(iter(arg.free_symbols))].domain
        if len(arg.free_symbols) == 1 and domain is not None:
            (x,) = arg.free_symbols
            ends = [sp.oo * e if abs(e) == float("inf") else sp.nsimplify(e) for e in (domain.lo, domain.hi)]
            interval = sp.Interval(*ends, not domain.lo_closed, not domain.hi_closed)
            region = sp.solveset(value * arg > 0, x, interval)
            if region != interval and isinstance(region, sp.Interval):
                left, right = ("<" if o else "≤" for o in (region.left_open, region.right_open))
                where = f"; it holds where {region.start} {left} {x} {right} {region.end}"
        notes.append(f"as n grows, {node} settles at {value} (its value at the defaults{where})")
    return settled, notes


def _components(phi: dict) -> list[list]:
    """The states in dependency order, grouped into strongly connected components."""
    graph = nx.DiGraph()
    graph.add_nodes_from(phi)
    for s, update in phi.items():
        graph.add_edges_from((t, s) for t in update.free_symbols & set(phi))
    condensed = nx.condensation(graph)
    order = list(phi)
    return [sorted(condensed.nodes[c]["members"], key=order.index) for c in nx.topological_sort(condensed)]


def _fixed_point(block, phi, upstream, model: Model) -> dict:
    """``S_0`` of one component: ``s = Φ(s)`` at ``h = 0``, the upstream states known."""
    equations = [phi[s].xreplace(upstream).subs(model.h, 0) - s for s in block]
    if any(atom.free_symbols & set(block) for e in equations for atom in outer_atoms(e)):
        raise DerivationError(
            f"the fixed point of {', '.join(map(str, block))} is implicit (a state is read "
            "through a gradient or a reduction of itself); cannot solve for S_0"
        )
    try:
        solutions = sp.solve(equations, block, dict=True)
    except NotImplementedError:
        solutions = []
    if not solutions or any(s not in solutions[0] for s in block):
        names = ", ".join(map(str, block))
        why = f"cannot solve for the fixed point S_0 = Phi(S_0, theta) of {names}"
        if any(e.has(sp.Max, sp.Min) for e in equations):
            state = next(st for st in model.states if st.symbol in block and phi[st.symbol].has(sp.Max, sp.Min))
            program = model.checked.program
            raise DSLError(
                f"{why}: its update takes a max/min, and which branch is active at the fixed point could "
                "not be decided (a branch that reads another state is not judged)",
                update_span(model, state),
                hint=f"if one branch always wins near the fixed point, write the update of `{state.name}` "
                "with that branch alone",
            ).located(program.source, program.filename)
        raise DerivationError(why)
    return {s: radicands(simplify(solutions[0][s])) for s in block}


def _check_points(exprs, S0, h):
    """Every gradient or loss at another point must be taken at theta + O(h), and no root, power or
    ``abs`` may sit at its singular point 0 on the manifold (centered RMSprop's ``sqrt(v − m²)``)."""
    for e in exprs:
        for atom in e.xreplace(S0).subs(h, 0).atoms(Grad, LossAt):
            raise DerivationError(
                f"{atom} is evaluated at a point that does not approach theta as the "
                "step size vanishes; only points theta + O(h) can be expanded"
            )
        for node in e.atoms(sp.Pow, sp.Abs):
            base = node.args[0]
            if (isinstance(node, sp.Abs) or not node.exp.is_Integer) and base.has(*S0):
                if sp.simplify(base.xreplace(S0).subs(h, 0)) == 0:
                    raise DerivationError(
                        f"{node} is singular on the invariant manifold: its argument {base} vanishes there "
                        "for every loss, so the step has no expansion in powers of the step size "
                        "(centered RMSprop's full-batch variance v − m² is this case)"
                    )


def _block_jacobian(block, phi, S0, h):
    """``Φ_s`` of one component at the fixed point: per-coordinate scalars, or DerivationError."""
    rows = [phi[s].subs(h, 0) for s in block]
    if any(atom.free_symbols & set(block) for e in rows for atom in outer_atoms(e)):
        raise DerivationError(
            "a state reads itself through a reduction or a gradient at h = 0; the "
            "manifold recursion needs I - Phi_s to act coordinatewise"
        )
    return sp.Matrix(rows).jacobian(block).xreplace(S0)


def _shifted(S, psi, h, r, chains) -> dict:
    """``[S(θ − hΨ(θ))]_r`` for every state from the known ``S_0 … S_{r−1}`` and ``Ψ_0 … Ψ_{r−1}``:
    ``Σ_i Σ_m [D^m S_i[δ, …, δ]]_{r−i} / m!`` with ``δ = −h Σ_q h^q Ψ_q``, which starts at ``h``."""
    shift = Series({DIRECTION: [0, *(-p for p in psi[:r])]}, h, r)
    out = {}
    for s in S[0]:
        total = sp.S.Zero
        for i in range(r):
            chain = chains.setdefault((s, i), [S[i][s]])
            for m in range(1, r - i + 1):
                if len(chain) <= m:
                    chain.append(directional(chain[-1], DIRECTION))
                total += shift.coefficient(chain[m], r - i) / sp.factorial(m)
        out[s] = total
    return out
