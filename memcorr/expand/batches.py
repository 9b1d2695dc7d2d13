"""Random batches (docs/method.md §7): the full-batch expansion -> its mean over the batch labels.

Input: ``Model`` (``plan``, asked before the expansion) and the full-batch first-order ``Expansion`` of
the map or of its flow (``expected``). Output: the same ``Expansion`` with ``E M`` in place of ``M`` and
the noise part on its own (``Expansion.noise``).

Step ``n`` reads batch ``b_n``. For a program linear in the gradients with constant coefficients,
``F^(n) = Σ_k c_k ∇L_{b_{n−k}}(θ^(n−k))`` with ``c_0 = D``, ``c_k = C A^(k−1) B`` (``A, B, C, D`` the
program's state-space matrices at ``h = 0``). ``M = Σ_k c_k ∇²L_{b_{n−k}} Σ_{v=n−k}^{n−1} Ψ_0^(v)``
pairs the Hessian of step ``n − k`` with the gradients of the steps after it; a pair from the same
step has mean ``E_b[∇²L_b ∇L_b] = ∇²L∇L + ½∇V``, any other pair the full-batch product. So
``E M = M + C_s ½∇V`` with the same-step weight ``C_s = Σ_{k≥1} c_k Σ_{i<k} c_i``, exactly. The flow adds
``½ E DΨ_0[Ψ_0]``, whose same-step weight is ``K = Σ_k c_k²``. A program nonlinear in the gradients
(exponential filters read through a smooth step: Adam, AdamW, soft-sign Lion) has its mean to leading
order in the noise (``moments``), in the stationary regime.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from ..algebra.atoms import LOSS, THETA, G, Grad, LossAt, NoiseGrad, outer_atoms
from ..algebra.simplify import factor
from ..errors import DerivationError
from ..model.types import Model
from .expansion import Expansion
from .moments import filters, noise_part
from .stationary import stationary_limit

BATCHES = ("full", "random")
EXACT = (
    "random batches: the correction is its mean over the batch labels, exact for this program (linear in "
    "the gradients); V = E_b‖∇L_b − ∇L‖² is the gradient noise; the states are their means"
)
LEADING = (
    "random batches: the correction is its mean over the batch labels to leading order in the gradient noise "
    "(exact: false: the remainder is of third order in the noise ξ_b = ∇L_b − ∇L, the gradient noise of batch b); "
    "σ² = E_b ξ_b² is its variance per coordinate; the states are their full-batch values"
)


class NotLinear(DerivationError):
    """A statement of the program is not linear in the gradients: the exact mean does not apply."""


@dataclass(frozen=True)
class Plan:
    """How the mean over the labels is formed: the linear weights ``(C_s, K)``, or ``None`` for the
    leading order in the noise of a nonlinear program."""

    weights: tuple[sp.Expr, sp.Expr] | None


def plan(model: Model, regime: str, order: int, target: str) -> Plan:
    """The way to the mean over the labels, or a DerivationError saying why there is none — asked before
    the expansion, so that a refusal costs no derivation."""
    if order != 1:
        raise DerivationError("random batches are derived at first order (docs/method.md §7): use --order 1")
    finite = regime == "finite"
    try:
        A, B, C, D, E = linear_system(model, finite)
    except NotLinear as linear:
        if finite or target == "flow":
            raise DerivationError(
                f"{linear}; the leading order in the noise is derived for the stationary map "
                "(use --regime stationary, --target map)"
            ) from None
        filters(model)  # refuses here what is not an exponential filter read through a smooth step
        return Plan(None)
    return Plan(pair_weights(A, B, C, D, E, n=model.n if finite else None))


def expected(e: Expansion, how: Plan, target: str, model: Model) -> Expansion:
    """``e`` (full batch, first order) averaged over random batches: ``E M = M + C_s ½∇V`` (the flow's
    ``½ E DΨ_0[Ψ_0]`` adds ``K/2 · ½∇V``), or ``M`` plus its leading order in the noise."""
    if how.weights is None:
        noise, note = noise_part(model), LEADING
    else:
        same_step, squares = how.weights
        noise, note = factor(same_step + (squares / 2 if target == "flow" else 0)) * NoiseGrad() / 2, EXACT
    return replace(
        e,
        corrections=[e.corrections[0] + noise],
        notes=[*e.notes, note],
        batches="random",
        noise=noise,
        noise_exact=how.weights is not None,
    )


def linear_system(model: Model, finite: bool = False) -> tuple[sp.Matrix, ...]:
    """``(A, B, C, D, E)`` of ``s' = A s + B g + (θ terms)``, ``F = C s + D g + (θ terms)`` at ``h = 0`` and
    ``s_0 = E g_0 + (θ terms)`` (``E = 0`` in the stationary regime, which forgets ``s_0``), with coefficients
    free of the loss, or a DerivationError naming the construct that is not. In the finite regime the
    coefficients must also be free of ``n``: then the coefficient of the gradient ``k < n`` steps back is
    the same at every step."""
    syms = model.symbols
    h, n = model.h, model.n
    names = {st.symbol: st.name for st in model.states}
    rows = []
    for where, expr in [*((f"the update of `{st.name}`", st.update) for st in model.states), ("the step", model.F)]:
        _check_points(expr, where, h)
        settled = expr if finite else stationary_limit(expr, model)
        at_zero = settled.replace(lambda x: isinstance(x, Grad), lambda x: G).subs(h, 0)
        if finite and at_zero.has(n):
            raise DerivationError(
                f"random batches: {where} changes with the step n; the finite-n mean over the labels is derived "
                "for coefficients that do not (use --regime stationary)"
            )
        jac = [sp.diff(at_zero, x) for x in [*syms, G]]
        rest = sp.expand(at_zero - sum(j * x for j, x in zip(jac, [*syms, G])))
        loss_free = not at_zero.has(LOSS) and not outer_atoms(at_zero)
        if not loss_free or any(j.free_symbols & {*syms, G, THETA} for j in jac) or rest.free_symbols & {*syms, G}:
            raise NotLinear(
                f"random batches: {where} is not linear in the gradients with constant coefficients "
                f"({sp.sstr(at_zero.xreplace({s: sp.Symbol(name) for s, name in names.items()}))}); the mean of a "
                "nonlinear function of several batch gradients needs an expansion in the noise (docs/method.md §7)"
            )
        rows.append(jac)
    J = sp.Matrix(rows)
    d = len(syms)
    A, B, C, D = J[:d, :d], J[:d, d:], J[d:, :d], J[d:, d:]
    return A, B, C, D, _initial_gradient(model) if finite else sp.zeros(d, 1)


def _initial_gradient(model: Model) -> sp.Matrix:
    """``E`` of initial states ``s_0 = E g_0 + (θ terms)`` (PyTorch's momentum buffer starts at the first
    gradient), or a DerivationError where an initial state is not of that form."""
    column = []
    for st in model.states:
        e = sp.diff(st.init, G)
        if e.free_symbols & {G, THETA, *model.symbols} or st.init.has(LOSS) or outer_atoms(st.init):
            raise DerivationError(
                f"random batches: the initial value of `{st.name}` is not linear in the first gradient with a "
                "constant coefficient; the finite-n mean over the labels is not derived for it "
                "(use --regime stationary)"
            )
        column.append(e)
    return sp.Matrix(column) if column else sp.zeros(0, 1)


def _check_points(expr, where: str, h) -> None:
    """A gradient away from the iterate must be at ``θ + h·(older steps)``: a point that reads the
    current gradient pairs two factors of the same batch inside one step, a past iterate reads
    the current batch at an old point; neither is in the pairing above."""
    for atom in expr.atoms(Grad, LossAt):
        offset = atom.args[0] - THETA
        if isinstance(atom, LossAt) or offset.has(G) or offset.subs(h, 0) != 0:
            raise DerivationError(
                f"random batches: {where} reads {sp.sstr(atom)}, the current batch at a point that is not "
                "θ + h·(earlier steps); its mean over the batches is not derived"
            )


def pair_weights(A, B, C, D, E, n=None) -> tuple[sp.Expr, sp.Expr]:
    """``(C_s, K)``: ``C_s = Σ_{k=1}^{n} c_k Σ_{i<k} c_i^{(n−k+i)}`` (a Hessian ``k`` steps back against the
    same step's gradient in the maps since) and ``K = Σ_{k=0}^{n} c_k²``, for ``c_0 = D``, ``c_k = C A^(k−1) B``;
    ``n = None``: the whole history (the stationary regime). The first step's gradient also enters
    through the initial state ``E g_0``: ``c_n = C A^(n−1)(A E + B)`` and, at step 0, ``D + C E``."""
    d = A.shape[0]
    if d == 0:
        return sp.S.Zero, factor(D[0, 0] ** 2)
    if n is None:
        same, squares = _sums(A, B, C, D, None)
        return _tidy(same), _tidy(squares)
    # steps 1 … n−1 back as in the stationary sums; the first step on its own
    same, squares = _sums(A, B, C, D, n - 1)
    first = A * E + B
    c_n = (C * A ** (n - 1) * first)[0, 0]
    before = (D + C * E + C * (sp.eye(d) - A).inv() * (sp.eye(d) - A ** (n - 1)) * first)[0, 0]
    return _tidy(same + c_n * before), _tidy(squares + c_n**2)


def _sums(A, B, C, D, n):
    """The sums of ``pair_weights`` over ``k ≤ n`` (all ``k`` for ``n = None``) without the initial state. With
    ``u = (I − A)⁻¹B``, ``W = C(I − A)⁻¹``, ``X = Σ_{j≥0} A^j B Bᵀ (Aᵀ)^j`` (``X = A X Aᵀ + B Bᵀ``) and its first
    ``n`` terms ``X_n = X − Aⁿ X (Aⁿ)ᵀ``: ``C_s = W(I − Aⁿ)B (D + C u) − C X_n Wᵀ``, ``K = D² + C X_n Cᵀ``."""
    d = A.shape[0]
    inverse = (sp.eye(d) - A).inv()
    u, W = inverse * B, C * inverse
    X = _lyapunov(A, B * B.T)
    tail = sp.zeros(d, d) if n is None else A**n
    X_n = X - tail * X * tail.T
    same = (W * (sp.eye(d) - tail) * B * (D + C * u) - C * X_n * W.T)[0, 0]
    return same, (D * D + C * X_n * C.T)[0, 0]


def _tidy(weight):
    """A weight as papers print it: factored, with the powers ``βⁿ`` kept whole."""
    return sp.factor(sp.cancel(sp.powsimp(sp.expand_power_base(weight), combine="exp")))


def _lyapunov(A, Q):
    """``X = A X Aᵀ + Q`` (the decay check has made every eigenvalue of ``A`` smaller than 1 in modulus)."""
    d = A.shape[0]
    X = sp.Matrix(d, d, sp.symbols(f"x0:{d * d}"))
    solution = sp.solve(list(X - A * X * A.T - Q), list(X), dict=True)[0]
    return X.xreplace(solution)
