"""Stage 5: state-space model -> memoryless map (docs/method.md §1–2).

Input: ``lower.Model``. Output: ``Expansion`` — the memoryless update ``Ψ_0``,
the corrections ``Ψ_1 … Ψ_R`` (``θ_{n+1} = θ_n − h Σ h^r Ψ_r``) and the state
on the invariant manifold ``S = Σ h^r S_r``, per coordinate, in the atoms of
``calculus``.

Two regimes:

- ``stationary`` (n → ∞), any order: the invariant-manifold recursion. With
  ``S(h)`` and ``Ψ(h)`` known below order ``r``, matching ``h^r`` in
  ``S(θ − hΨ(θ)) = Φ(S(θ), θ)`` gives ``(I − Φ_s) S_r = [Φ]_r − [S(θ − hΨ)]_r``
  (brackets: the ``h^r`` coefficient of the known part), then ``Ψ_r = [F(S)]_r``.
- ``finite`` (step ``n`` symbolic), first order: the seed's theorem,
  ``Ψ_0 = F^(n)(θ, …, θ)`` and ``Ψ_1 = M^(n)(θ)``, for any triangular state
  system with constant decay rates (``finite.py``).

Before either, a ``max``/``min`` of a state's own value is replaced by its branch
active at the fixed point (``active_branches``; Adamax).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, replace

import networkx as nx
import sympy as sp

from .calculus import (
    FieldSymbol,
    Grad,
    LossAt,
    directional,
    expand_points,
    outer_atoms,
    real_diff,
    simplify,
)
from .errors import DerivationError, DSLError
from .lower import Model, default_values, drop_transients, orientation_samples, update_span
from .present import orient, radicands, tidy
from .series import Series

log = logging.getLogger("memcorr")

DIRECTION = FieldSymbol("@u", real=True)  # a fixed direction: D^m S[u, …, u]


@dataclass
class Expansion:
    regime: str
    order: int
    update: sp.Expr
    corrections: list[sp.Expr]
    states: dict[str, list[sp.Expr]]
    notes: list[str] = field(default_factory=list)
    # finite regime: where two decay rates coincide the generic closed forms divide 0/0; each
    # (condition, expansion) is the derivation with the rates identified, taken where it holds
    confluent: list[tuple[sp.Eq, Expansion]] = field(default_factory=list)


def coefficient(expr, h, r: int):
    """The coefficient of ``h^r`` in the Taylor series of ``expr`` at ``h = 0``."""
    for _ in range(r):
        expr = real_diff(expr, h)
    return radicands(expr.subs(h, 0)) / sp.factorial(r)


# ------------------------------------------------------------ shared steps
def along(expr, at, moves: dict):
    """``d/dε expr(σ + ε δ)`` at ``ε = 0``: the states moved by ``δ``; reductions of states
    (``norm(m)``) and gradients at states are differentiated as the operators they are."""
    moves = {s: d for s, d in moves.items() if d != 0 and expr.has(s)}
    if not moves:
        return sp.S.Zero
    # differentiated with the states and directions as symbols, which keeps it small, then filled in
    e = sp.Dummy("e", real=True)
    marks = {s: FieldSymbol(f"@d{i}") for i, s in enumerate(moves)}
    derivative = coefficient(expand_points(expr.xreplace({s: s + e * m for s, m in marks.items()}), 1), e, 1)
    return derivative.xreplace({m: moves[s] for s, m in marks.items()}).xreplace(at)


def _stationary_limit(expr, model: Model):
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
    coordinatewise, which makes ``I − Φ_s`` a matrix of per-coordinate scalars.
    """
    h = model.h
    syms = model.symbols
    phi = dict(zip(syms, (_stationary_limit(u, model) for u in model.Phi)))
    F = _stationary_limit(model.F, model)
    settled, sign_notes = _settled_signs([*phi.values(), F], model)
    phi, F = {s: u.xreplace(settled) for s, u in phi.items()}, F.xreplace(settled)
    blocks = _components(phi)

    S0: dict = {}
    for block in blocks:
        S0.update(_fixed_point(block, phi, S0, model))
    _check_points([*phi.values(), F], S0, h)
    S = [S0]
    psi = [tidy(F.xreplace(S0).subs(h, 0))]
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
    states = {st.name: [S[r][st.symbol] for r in range(order + 1)] for st in model.states}
    notes = sign_notes + kink_notes(model, psi[0])
    return oriented(Expansion("stationary", order, psi[0], psi[1:], states, notes), model)


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


def oriented(e: Expansion, model: Model) -> Expansion:
    values = orientation_samples(model)
    return Expansion(
        e.regime,
        e.order,
        orient(e.update, values),
        [orient(c, values) for c in e.corrections],
        {k: [orient(x, values) for x in v] for k, v in e.states.items()},
        e.notes,
        e.confluent,
    )


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


def kink_notes(model: Model, update) -> list[str]:
    """What the result relied on: derivatives of kinks (in the program, or in ``Ψ_0`` such as
    ``sqrt(g^2) = |g|``) taken where they are differentiable."""
    if any(e.has(sp.sign, sp.Abs, sp.Max, sp.Min) for e in [model.F, *model.Phi, update]):
        return [
            "derivatives of sign/abs/max/min were taken where they are differentiable "
            "(sign' = 0, abs' = sign): the result holds away from their kinks"
        ]
    return []


# ------------------------------------------------------------ modified flow
def modified_flow(e: Expansion) -> Expansion:
    """The ODE ``θ' = −Ψ̃(θ)``, ``Ψ̃ = Σ h^r Ψ̃_r``, whose time-``h`` flow is the memoryless map to
    the expansion's order (docs/method.md §5; backward error analysis). The flow's step is
    ``Σ_k h^k/k! L^{k−1} f`` with ``f = −Ψ̃`` and ``L u = D u[f]``; matching ``h^{r+1}`` with the
    map's ``−Ψ_r`` gives ``Ψ̃_r = Ψ_r + [Σ_{k≥2} h^k/k! L^{k−1} f]_{r+1}``, ``f`` known below ``r``
    (first order: ``Ψ̃_1 = Ψ_1 + ½ DΨ_0[Ψ_0]``). In the finite regime ``n`` is held for the step."""
    flow = [e.update]
    for r in range(1, e.order + 1):
        log.info("modified flow: order %d of %d", r, e.order)
        f = [-x for x in flow]  # f = Σ_b h^b f_b, known to h^(r−1)
        # lie[m]: the coefficient of h^m in L^(k−1) f, kept only to the degree the step reads
        # (D[E][u] is linear in u, so L u = Σ_b h^b D u[f_b]); the h^(r+1) term of the step
        # collects h^k/k! · [L^(k−1) f]_(r+1−k)
        lie, step = f, sp.S.Zero
        for k in range(2, r + 2):
            top = r + 1 - k
            lie = [sp.Add(*[directional(lie[a], f[m - a]) for a in range(m + 1)]) for m in range(top + 1)]
            step += lie[top] / sp.factorial(k)
        flow.append(tidy(e.corrections[r - 1] + step))
    notes = e.notes + (
        ["the flow holds n fixed over each step (the map changes with n)"] if e.regime == "finite" else []
    )
    return Expansion(e.regime, e.order, e.update, flow[1:], e.states, notes)


def expand(model: Model, order: int = 1, regime: str = "stationary") -> Expansion:
    model, notes = active_branches(model)
    if regime == "stationary":
        e = stationary(model, order)
    elif regime == "finite":
        from .finite import finite  # finite.py builds on this module's Expansion

        e = finite(model, order)
    else:
        raise DerivationError(f"unknown regime `{regime}`: use stationary or finite")
    e.notes = notes + e.notes
    return e


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
