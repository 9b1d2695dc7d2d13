"""Stage 5: state-space model -> memoryless map (method.md §1–2).

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
  ``Ψ_0 = F^(n)(θ, …, θ)`` and ``Ψ_1 = M^(n)(θ)``, for states that are linear
  recursions ``s ← a s + b(θ)`` fed by the current iterate, and lags of ``θ`` and
  ``g``. Geometric sums are summed in closed form (the generic branch, valid
  when the decay rates differ from 1 and from each other).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import sympy as sp

from .calculus import (
    LOSS,
    THETA,
    FieldSymbol,
    G,
    Grad,
    LossAt,
    directional,
    distribute,
    expand_points,
    linear_terms,
    outer_atoms,
    real_diff,
    simplify,
)
from .errors import DerivationError
from .lower import Model, default_values, drop_transients, orientation_samples
from .present import orient, radicands, tidy
from .series import Series

DIRECTION = FieldSymbol("@u", real=True)  # a fixed direction: D^m S[u, …, u]


@dataclass
class Expansion:
    regime: str
    order: int
    update: sp.Expr
    corrections: list[sp.Expr]
    states: dict[str, list[sp.Expr]]
    notes: list[str] = field(default_factory=list)


def coefficient(expr, h, r: int):
    """The coefficient of ``h^r`` in the Taylor series of ``expr`` at ``h = 0``."""
    for _ in range(r):
        expr = real_diff(expr, h)
    return radicands(expr.subs(h, 0)) / sp.factorial(r)


# ------------------------------------------------------------ shared steps
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
    """The invariant-manifold recursion of method.md §2 up to ``order``.

    States are solved in dependency order (strongly connected components of "the
    update of s reads t"), so a state may read another through a gradient at a
    point (``grad(theta[n-1])``); within a component the coupling must act
    coordinatewise, which makes ``I − Φ_s`` a matrix of per-coordinate scalars.
    """
    h = model.h
    syms = model.symbols
    phi = dict(zip(syms, (_stationary_limit(u, model) for u in model.Phi)))
    F = _stationary_limit(model.F, model)
    blocks = _components(phi)

    S0: dict = {}
    for block in blocks:
        S0.update(_fixed_point(block, phi, S0, h))
    _check_points([*phi.values(), F], S0, h)
    S = [S0]
    psi = [tidy(F.xreplace(S0).subs(h, 0))]
    # I − Φ_s of each component, the same at every order
    A = [sp.eye(len(block)) - _block_jacobian(block, phi, S0, h) for block in blocks] if order else []
    chains: dict = {}  # (state, i) -> [S_i, D S_i[u], D² S_i[u, u], …], reused at every order
    for r in range(1, order + 1):
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
    return _oriented(Expansion("stationary", order, psi[0], psi[1:], states, _notes(model, psi[0])), model)


def _oriented(e: Expansion, model: Model) -> Expansion:
    values = orientation_samples(model)
    return Expansion(
        e.regime,
        e.order,
        orient(e.update, values),
        [orient(c, values) for c in e.corrections],
        {k: [orient(x, values) for x in v] for k, v in e.states.items()},
        e.notes,
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


def _fixed_point(block, phi, upstream, h) -> dict:
    """``S_0`` of one component: ``s = Φ(s)`` at ``h = 0``, the upstream states known."""
    equations = [phi[s].xreplace(upstream).subs(h, 0) - s for s in block]
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
        raise DerivationError(f"cannot solve for the fixed point S_0 = Phi(S_0, theta) of {', '.join(map(str, block))}")
    return {s: radicands(simplify(solutions[0][s])) for s in block}


def _check_points(exprs, S0, h):
    """Every gradient or loss at another point must be taken at theta + O(h)."""
    for e in exprs:
        for atom in e.xreplace(S0).subs(h, 0).atoms(Grad, LossAt):
            raise DerivationError(
                f"{atom} is evaluated at a point that does not approach theta as the "
                "step size vanishes; only points theta + O(h) can be expanded"
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


def _notes(model: Model, update) -> list[str]:
    """What the result relied on: derivatives of kinks (in the program, or in ``Ψ_0`` such as
    ``sqrt(g^2) = |g|``) taken where they are differentiable."""
    if any(e.has(sp.sign, sp.Abs, sp.Max, sp.Min) for e in [model.F, *model.Phi, update]):
        return [
            "derivatives of sign/abs/max/min were taken where they are differentiable "
            "(sign' = 0, abs' = sign): the result holds away from their kinks"
        ]
    return []


# ------------------------------------------------------------ finite n
def finite(model: Model, order: int) -> Expansion:
    """The first-order finite-n memoryless map of method.md §1, ``n`` symbolic."""
    if order != 1:
        raise DerivationError(
            "the finite regime is first order (method.md §1); use --regime stationary for higher orders"
        )
    h, n = model.h, model.n
    s = sp.Dummy("s", integer=True, nonnegative=True)
    recursions, lags = _classify(model)
    F = expand_points(model.F, 1)

    def memoryless_states(step):
        """Every state after ``step`` updates with all iterates equal to theta."""
        values = {}
        for sym, (a, b, init) in recursions.items():
            values[sym] = a**step * init + b * _geometric(a, step)
        for sym, (base, _) in lags.items():
            values[sym] = base
        return values

    def F_bar(step):
        return _cancel_transients(F.subs(h, 0).xreplace(memoryless_states(step)).subs(n, step), step)

    update = tidy(F_bar(n))
    at_n = memoryless_states(n)
    # one term per source of memory, each tidied on its own: they read as separate effects
    terms = [real_diff(F, h).subs(h, 0).xreplace(at_n)] if F.has(h) else []
    F0, F_s = F.subs(h, 0), F_bar(s)
    for sym, (a, b, init) in recursions.items():
        W = _weighted_sum(F_s, (a ** (n - s - 1) - a**n) / (1 - a), s, n)
        Q = _window_sum(F_s, s, n, n)
        terms.append(_state_derivative(F0, at_n, sym, directional(b, W) + a**n * directional(init, Q), n))
    for sym, (base, k) in lags.items():
        Q = _window_sum(F_s, s, n, sp.Min(k, n))
        terms.append(_state_derivative(F0, at_n, sym, directional(base, Q), n))
    states = {st.name: [tidy(at_n[st.symbol])] for st in model.states}
    return _oriented(
        Expansion("finite", 1, update, [sp.Add(*[tidy(t) for t in terms])], states, _notes(model, update)), model
    )


def _state_derivative(F0, at_n, sym, delta, n):
    """``F_s[δ]``: the derivative of ``F`` when the state ``sym`` moves by the field ``δ``.

    Taken as ``d/dt F(s + tδ)`` so that reductions (``norm(m)``) and gradients at a state
    (``grad(theta[n-1])``) are differentiated as the operators they are, not coordinatewise."""
    if delta == 0:
        return sp.S.Zero
    t = sp.Dummy("t", real=True)
    moved = F0.xreplace({**at_n, sym: at_n[sym] + t * delta})
    return _cancel_transients(coefficient(expand_points(moved, 1), t, 1), n)


def _geometric(a, steps):
    """``Σ_{i<steps} a^i``."""
    return steps if a == 1 else (1 - a**steps) / (1 - a)


def _cancel_transients(expr, step):
    """Cancel bias corrections like ``(1 − β^(n+1)) g / (1 − β^(n+1))``, under roots too,
    factoring only the products that involve the step so that the rest keeps its shape."""
    # keep b^(n-s) whole inside sums (no overflow); the stand-ins are fields, as the sums are
    sums = {e: FieldSymbol(f"@sum{i}") for i, e in enumerate(sorted(expr.atoms(sp.Sum), key=sp.default_sort_key))}
    expr = radicands(sp.expand_power_exp(expr.xreplace(sums)))
    expr = expr.replace(lambda e: e.is_Mul and e.has(step), sp.factor)
    return expr.xreplace({d: e for e, d in sums.items()})


def _classify(model: Model):
    """Split the states into linear recursions ``s ← a s + b(θ)`` and lags; else DerivationError."""
    h, n = model.h, model.n
    syms = set(model.symbols)
    recursions, lags = {}, {}
    for st in model.states:
        if st.velocity:
            raise DerivationError(
                f"state `{st.name}` is in velocity form (it carries the step size); "
                "the finite regime needs states independent of h"
            )
        if st.origin == "lag" and st.name.split("[")[0] in ("theta", "g"):
            base = THETA if st.name.startswith("theta") else G
            lags[st.symbol] = (base, int(st.name.split("-")[1].rstrip("]")))
            continue
        a = sp.diff(st.update, st.symbol)
        b = sp.expand(st.update - a * st.symbol)
        if a.free_symbols & (syms | {h, n, THETA, G, LOSS}) or outer_atoms(a) or b.free_symbols & (syms | {h, n}):
            raise DerivationError(
                f"state `{st.name}` is not a linear recursion s <- a*s + b(theta) fed "
                "by the current iterate alone; the finite regime covers those "
                "(use --regime stationary)"
            )
        recursions[st.symbol] = (a, b, st.init)
    return recursions, lags


def _separate(expr, s):
    """``expr(s)`` as ``Σ q_t(s) E_t``: scalar weights depending on ``s`` times fields free of ``s``."""
    terms = {}
    for coeff, fld in linear_terms(expr):
        if fld.has(s):
            return None
        terms[fld] = terms.get(fld, 0) + coeff
    return terms


def _closed_sum(weight, s, lo, hi):
    """``Σ_{s=lo}^{hi} weight`` in closed form, taking the generic branch of any Piecewise."""
    total = sp.summation(sp.expand_power_exp(weight), (s, lo, hi))
    total = total.replace(lambda e: isinstance(e, sp.Piecewise), _generic_branch)
    return sp.factor_terms(simplify(total))


def _generic_branch(pw):
    for expr, cond in pw.args:
        if cond is sp.true or isinstance(cond, sp.Ne):
            return expr
    return pw.args[-1][0]


def _field_sum(expr, weight, s, lo, hi):
    """``Σ_{s=lo}^{hi} weight(s) · expr(s)`` for a field ``expr``: closed form where the weights
    are geometric (sums of ``s^k b^s``), else one ``Sum`` that generated code evaluates by a loop."""
    parts = _separate(expr, s)
    if parts is None or not all(_geometric_in(weight * q, s) for q in parts.values()):
        return sp.Sum(weight * expr, (s, lo, hi))
    return sp.Add(*[_closed_sum(weight * q, s, lo, hi) * fld for fld, q in parts.items()])


def _geometric_in(weight, s) -> bool:
    """Is ``weight`` a sum of products of ``s^k`` and ``b^(a s + c)``, which sum in closed form?"""
    for term in distribute(sp.expand_power_exp(weight)):
        for f in sp.Mul.make_args(term):
            if not f.has(s):
                continue
            if f.is_Pow and not f.base.has(s) and sp.diff(f.exp, s, 2) == 0:
                continue
            if f == s or (f.is_Pow and f.base == s and f.exp.is_positive and f.exp.is_integer):
                continue
            return False
    return True


def _weighted_sum(F_s, weight, s, n):
    """``W = Σ_{s=0}^{n−1} w(n, s) F̄(s)``, the direction of ``D b`` for a recursion."""
    return _field_sum(F_s, weight, s, 0, n - 1)


def _window_sum(F_s, s, n, k):
    """``Q_k = Σ_{s=n−k}^{n−1} F̄(s)``: the displacement ``θ^(n−k) − θ^(n)`` over ``h``, to first order."""
    return _field_sum(F_s, sp.S.One, s, n - k, n - 1)


# ------------------------------------------------------------ modified flow
def modified_flow(e: Expansion) -> Expansion:
    """The ODE ``θ' = −Ψ̃(θ)``, ``Ψ̃ = Σ h^r Ψ̃_r``, whose time-``h`` flow is the memoryless map to
    the expansion's order (method.md §5; backward error analysis). The flow's step is
    ``Σ_k h^k/k! L^{k−1} f`` with ``f = −Ψ̃`` and ``L u = D u[f]``; matching ``h^{r+1}`` with the
    map's ``−Ψ_r`` gives ``Ψ̃_r = Ψ_r + [Σ_{k≥2} h^k/k! L^{k−1} f]_{r+1}``, ``f`` known below ``r``
    (first order: ``Ψ̃_1 = Ψ_1 + ½ DΨ_0[Ψ_0]``). In the finite regime ``n`` is held for the step."""
    h = sp.Dummy("h", positive=True)
    flow = [e.update]
    for r in range(1, e.order + 1):
        f = -sp.Add(*[h**j * flow[j] for j in range(r)])
        step, lie = sp.S.Zero, f
        for k in range(2, r + 2):
            lie = directional(lie, f)
            step += h**k / sp.factorial(k) * lie
        flow.append(tidy(e.corrections[r - 1] + Series({}, h, r + 1).coefficient(step, r + 1)))
    notes = e.notes + (
        ["the flow holds n fixed over each step (the map changes with n)"] if e.regime == "finite" else []
    )
    return Expansion(e.regime, e.order, e.update, flow[1:], e.states, notes)


def expand(model: Model, order: int = 1, regime: str = "stationary") -> Expansion:
    if regime == "stationary":
        return stationary(model, order)
    if regime == "finite":
        return finite(model, order)
    raise DerivationError(f"unknown regime `{regime}`: use stationary or finite")
