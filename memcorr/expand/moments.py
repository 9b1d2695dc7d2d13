"""Random batches for programs nonlinear in the gradients: ``E M`` to leading order in the noise.

Input: a ``Model`` whose states are exponential filters of the current gradient, ``s_m ← r_m s_m +
b_m(g)`` with constant ``r_m``, and whose step ``F(s, g, θ)`` is smooth (AdamW, soft-sign Lion, AdEMAMix;
Adam with ``weight_decay = 0``, RMSprop with ``momentum = 0``). Output: the noise part ``N`` of the
stationary mean ``E M = M + N + O(ξ³)`` (docs/method.md §7), in the batch moments of ``algebra.moments``.

Per coordinate ``i`` the step reads the history ``x_ℓ`` (the batch gradient ``ℓ`` steps back) as
``F(y)``, ``y = (s_1 … s_d, x_0)``, ``s_m = Σ_{ℓ≥1} r_m^{ℓ−1} b_m(x_ℓ)``. With ``P_k = ∂F/∂x_k`` the
correction is ``M = Σ_{k≥1} P_k · ∇²L_{b_{n−k}} Σ_{σ=1}^{k} Ψ_0^(n−σ)``. Writing ``x_ℓ = g + ξ_{b_{n−ℓ}}`` and
keeping pairs of the same label:

- ``T_B`` the mean of ``P_k``: ``½ Σ_a ∂²P_k/∂x_a² σ²``, against ``∇²L Ψ_0``;
- ``T_C`` the mean of ``Ψ_0^(s)``: ``∇²L(½ Σ_a ∂²F/∂x_a² σ²)``;
- ``T_D`` ``P_k``'s argument ``a`` and ``Ψ_0^(n−σ)``'s argument ``a − σ`` read the same batch: the
  covariance, ``CovHess``;
- ``T_E``, ``T_F`` the batch Hessian against the noise of its own step in ``P_k`` (``XiBatchHess``) or
  in ``Ψ_0^(s)`` (``BatchHess``).

Sums over the lags are geometric: every derivative of ``F`` in ``x_ℓ`` carries ``r_m^{ℓ−1}``. They are
taken over symbols standing for the derivatives of ``F`` and ``b`` ("jets"), then the jets filled in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

from ..algebra.atoms import LOSS, THETA, FieldSymbol, G, Hess, outer_atoms, sum_by_key
from ..algebra.moments import BatchHess, CovHess, NoiseVar, XiBatchHess
from ..algebra.simplify import factor
from ..errors import DerivationError
from ..model.types import Model
from .stationary import stationary_limit

_k, _a, _s, _p = sp.symbols("k a sigma a_", integer=True, positive=True)
MAX_FILTERS = 2
NON_SMOOTH = (sp.sign, sp.Abs, sp.Max, sp.Min, sp.Heaviside)


@dataclass(frozen=True)
class Filters:
    """The program as filters: ``r[m]``, ``b[m]`` (expressions in ``g``), the step ``F`` in the
    state symbols, ``g`` and ``θ``, and the fixed point ``Z[m] = b[m]/(1 − r[m])``.

    With coupled weight decay (``decay = λ ≠ 0``: the filters read ``d = g + λθ``) ``g`` stands for
    ``d``, the gradient of ``L + λ‖θ‖²/2``: same noise, every batch Hessian shifted by ``λ``
    (``to_loss`` translates back)."""

    states: list
    r: list
    b: list
    F: sp.Expr
    decay: sp.Expr = sp.S.Zero

    @property
    def point(self) -> dict:
        return {s: factor(sp.cancel(b / (1 - r))) for s, r, b in zip(self.states, self.r, self.b)}

    def to_loss(self, expr) -> sp.Expr:
        """``expr``, derived for the loss ``L + λ‖θ‖²/2``, in the program's own loss: ``g → g + λθ``,
        ``∇²L E → ∇²L E + λE`` and ``CovHess(E) → CovHess(E) + λσ²E``; the other moments pair a batch's
        Hessian with its own noise, whose mean is zero, so the shift leaves them."""
        lam = self.decay
        if lam == 0:
            return expr
        expr = expr.replace(lambda x: isinstance(x, Hess), lambda x: x + lam * x.args[0])
        expr = expr.replace(lambda x: isinstance(x, CovHess), lambda x: x + lam * NoiseVar() * x.args[0])
        return expr.xreplace({G: G + lam * THETA})


def filters(model: Model, most: int | None = MAX_FILTERS) -> Filters:
    """The program as filters, or a DerivationError naming what is not (docs/method.md §7); at most
    ``most`` of them (``None``: any number)."""
    F = stationary_limit(model.F, model).subs(model.h, 0)
    updates = {st.symbol: stationary_limit(st.update, model).subs(model.h, 0) for st in model.states}
    read = _read(F, updates)  # a state the step never reads, not even through others, is left out
    states = [st for st in model.states if st.symbol in read]
    syms = [st.symbol for st in states]
    names = {st.symbol: st.name for st in states}
    r, b = [], []
    for st in states:
        update = updates[st.symbol]
        rate = sp.diff(update, st.symbol)
        rest = sp.expand(update - rate * st.symbol)
        if rate.free_symbols & {*syms, G, THETA} or rest.free_symbols & set(syms):
            raise DerivationError(
                f"random batches: the update of `{st.name}` is not an exponential filter of the current gradient "
                f"(s ← r s + b(g) with a constant r); the mean over the labels is derived for filters "
                "(fix a parameter that couples the states, e.g. --param momentum=0)"
            )
        r.append(rate)
        b.append(rest)
    if most is not None and len(states) > most:
        raise DerivationError(
            f"random batches: the step reads {len(states)} filters; the leading order in the noise is derived for "
            f"at most {most} (the closed forms of more grow past what a paper prints and take minutes)"
        )
    for what, expr in [("the step", F), *((f"the update of `{names[s]}`", x) for s, x in zip(syms, b))]:
        if expr.has(LOSS) or outer_atoms(expr):
            raise DerivationError(
                f"random batches: {what} reads the loss, a gradient away from θ or a reduction over the coordinates; "
                "the mean of a nonlinear program over the labels is derived per coordinate"
            )
        if expr.has(*NON_SMOOTH):
            raise DerivationError(
                f"random batches: {what} has a kink (sign/abs/max/min); the noise crosses it at first order, so "
                "the mean over the labels has no expansion in the noise"
            )
    decay, b = _coupled_decay(b, [names[s] for s in syms])
    return Filters(syms, r, b, F.xreplace({G: G - decay * THETA}), decay)


def _coupled_decay(inputs: list, names: list) -> tuple[sp.Expr, list]:
    """``λ`` and the inputs in ``d`` (written ``g``) where every filter reads ``θ`` only through
    ``d = g + λθ`` (coupled weight decay, Adam's L2 term); ``0`` and the inputs where none reads ``θ``; a
    DerivationError otherwise."""
    if not any(b.has(THETA) for b in inputs):
        return sp.S.Zero, inputs
    decay, first, in_d = None, None, []
    for b, name in zip(inputs, names):
        if not b.has(G, THETA):
            in_d.append(b)
            continue  # a constant input (NAdam's product of momentum factors)
        lam = sp.cancel(sp.diff(b, THETA) / sp.diff(b, G)) if b.has(G) else None
        rewritten = sp.expand(b.xreplace({G: G - lam * THETA})) if lam is not None else b
        if lam is None or lam.has(G, THETA) or rewritten.has(THETA):
            raise DerivationError(
                f"random batches: the update of `{name}` reads θ otherwise than through d = g + λθ (coupled weight "
                "decay, the gradient of L + λ‖θ‖²/2); the leading order in the noise is derived for filters of "
                "the gradient and of such d"
            )
        if decay is not None and sp.simplify(lam - decay) != 0:
            raise DerivationError(
                f"random batches: `{name}` and `{first}` filter different gradients (g + λθ with different λ); "
                "the leading order in the noise is derived for filters of one gradient"
            )
        decay, first = lam, first or name
        in_d.append(rewritten)
    return decay, in_d


def _read(F, updates: dict) -> set:
    """The states ``F`` reads, directly or through the updates of states it reads."""
    seen: set = set()
    todo = [s for s in updates if F.has(s)]
    while todo:
        s = todo.pop()
        if s not in seen:
            seen.add(s)
            todo += [t for t in updates if updates[s].has(t)]
    return seen


class _Jets:
    """Symbols for the derivatives of ``F`` in ``y`` and of ``b_m`` in ``x`` at the full-batch point,
    and their values."""

    def __init__(self, f: Filters):
        self.f = f
        self.d = len(f.states)
        self.y = [*f.states, G]  # the arguments of F: the states, then the current gradient
        n = self.d + 1
        # field symbols: inside a moment they stay there (a plain symbol would be pulled out as a constant)
        self.F1 = [FieldSymbol(f"@F_{i}", real=True) for i in range(n)]
        self.F2 = {key: FieldSymbol("@F_" + "".join(map(str, key)), real=True) for key in _keys(n, 2)}
        self.F3 = {key: FieldSymbol("@F_" + "".join(map(str, key)), real=True) for key in _keys(n, 3)}
        self.B = {(m, p): FieldSymbol(f"@b_{m}_{p}", real=True) for m in range(self.d) for p in range(1, 4)}

    def response(self, lags: list, degree: int = 3) -> sp.Expr:
        """``F`` along the gradients ``lag`` to third order: a polynomial in one perturbation
        symbol per lag (its terms of total degree ``degree`` and less, at least)."""
        marks = {lag: sp.Dummy(f"x{lag}") for lag in lags}
        dy = []
        distinct = [lag for lag in lags if lag != 0]
        powers = range(1, min(degree, 3) + 1)
        for m in range(self.d):
            total = sp.S.Zero
            for lag in distinct:
                dx = marks[lag]
                total += self.f.r[m] ** (lag - 1) * sum(self.B[m, p] * dx**p / sp.factorial(p) for p in powers)
            dy.append(total)
        dy.append(marks.get(0, sp.S.Zero))
        n = self.d + 1
        out = sum(self.F1[i] * dy[i] for i in range(n))
        if degree >= 2:
            out += sum(self.F2[_key(i, j)] * dy[i] * dy[j] for i in range(n) for j in range(n)) / 2
        if degree >= 3:
            triples = [(i, j, k) for i in range(n) for j in range(n) for k in range(n)]
            out += sum(self.F3[_key(i, j, k)] * dy[i] * dy[j] * dy[k] for i, j, k in triples) / 6
        return out, marks

    def derivative(self, *wrt) -> sp.Expr:
        """``∂F/∂x_lag…`` at the point, in the jets (lags with the same symbol coincide). Only the terms of
        the response's degree ``len(wrt)`` survive at the point: the others are left out (AdamW's noise part
        takes eight first and second derivatives beside six third ones)."""
        out, marks = self.response(list(dict.fromkeys(wrt)), degree=len(wrt))
        out = sp.diff(out, *[marks[w] for w in wrt])
        return sp.expand(out.xreplace({m: 0 for m in marks.values()}), force=True)

    def values(self) -> dict:
        """The jets' values at the full-batch point (expressions in ``g`` and ``θ``)."""
        point = self.f.point
        out = {}
        tables = [{(i,): sym for i, sym in enumerate(self.F1)}, self.F2, self.F3]
        for table in tables:
            for key, sym in table.items():
                out[sym] = factor(sp.cancel(sp.diff(self.f.F, *[self.y[i] for i in key]).xreplace(point)))
        for (m, p), sym in self.B.items():
            out[sym] = factor(sp.diff(self.f.b[m], *([G] * p)))
        return out

    def field(self, lag) -> sp.Expr:
        """``∂F/∂x_lag`` of coordinate ``j`` as ``Σ_m r_m^{lag−1} U_m`` (``U_x`` at lag 0), the jets filled in:
        the argument of a moment, split so the lag's powers stay outside it."""
        if lag == 0:
            return [(sp.S.One, self.F1[self.d])]
        return [(self.f.r[m] ** (lag - 1), self.F1[m] * self.B[m, 1]) for m in range(self.d)]


def _keys(n: int, order: int):
    return list(itertools.combinations_with_replacement(range(n), order))


def _key(*idx):
    return tuple(sorted(idx))


def noise_part(model: Model) -> sp.Expr:
    """``N = E M − M`` to leading order in the noise, stationary regime (the module docstring)."""
    f = filters(model)
    jets = _Jets(f)
    psi0 = f.F.xreplace(f.point)
    W = (jets.derivative(0, 0) + lagsum(jets.derivative(_a, _a), _a, 1, sp.oo)) / 2
    total = _mean_of_P(jets) * NoiseVar() * Hess(psi0)
    total += lagsum(_k * jets.derivative(_k), _k, 1, sp.oo) * Hess(NoiseVar() * W)
    total += _covariance(jets, CovHess)
    total += _batch_hessian(jets, psi0)
    return f.to_loss(collected(total.xreplace(jets.values())))


def collected(expr) -> sp.Expr:
    """``expr`` as ``Σ c · (product of moments and atoms)``, each coefficient factored."""
    groups = sum_by_key(_split(term) for term in sp.Add.make_args(sp.expand(expr, deep=False)))
    # together first: cancel's own common denominator of these nested sums of fractions is ten times slower
    return sp.Add(*[factor(sp.cancel(sp.together(c))) * atoms for atoms, c in groups.items()])


def _split(term) -> tuple:
    """``(product of the moments and atoms, the rest)`` of one term."""
    parts = sp.Mul.make_args(term)
    return sp.Mul(*[p for p in parts if outer_atoms(p)]), sp.Mul(*[p for p in parts if not outer_atoms(p)])


def _mean_of_P(jets: _Jets) -> sp.Expr:
    """``Σ_k k · ½ Σ_{a≥0} ∂²P_k/∂x_a²`` (``k`` maps since step ``n − k``): ``T_B``'s weight."""

    def at(a):
        return jets.derivative(a, a, _k)

    inner = at(0) + lagsum(at(_a), _a, 1, sp.oo) - at(_a).xreplace({_a: _k}) + jets.derivative(_k, _k, _k)
    return lagsum(_k * inner / 2, _k, 1, sp.oo)


def _covariance(jets: _Jets, cov) -> sp.Expr:
    """``T_D = Σ_{k≥1} Σ_{σ=1}^{k} Σ_{a'≥0} ∂²F/∂x_{a'+σ}∂x_k · cov(∂F/∂x_{a'})``, the lag ``a' + σ = k``
    (one batch for both arguments of ``P_k``) taken apart."""

    def dist(a):
        return jets.derivative(a, _k)

    same = jets.derivative(_k, _k) - dist(_a).xreplace({_a: _k})  # coincident minus distinct at a = k
    ((one, u_x),) = jets.field(0)
    first = lagsum(lagsum(dist(_s), _s, 1, _k) + same, _k, 1, sp.oo) * cov(u_x)
    rest = sp.S.Zero
    for rate, u in jets.field(_p):
        inner = lagsum(lagsum(dist(_p + _s) * rate, _p, 1, sp.oo), _s, 1, _k) + same * lagsum(rate, _p, 1, _k - 1)
        rest += lagsum(inner, _k, 1, sp.oo) * cov(u)
    return first + rest


def _batch_hessian(jets: _Jets, psi0) -> sp.Expr:
    """``T_E + T_F``: the Hessian of batch ``b_{n−k}`` against that batch's noise in ``P_k`` and in the steps since."""
    P = jets.derivative(_k)
    out = lagsum(_k * jets.derivative(_k, _k), _k, 1, sp.oo) * XiBatchHess(psi0)
    ((one, u_x),) = jets.field(0)
    out += lagsum(P, _k, 1, sp.oo) * BatchHess(u_x)
    for rate, u in jets.field(_a):
        out += lagsum(P * lagsum(rate, _a, 1, _k - 1), _k, 1, sp.oo) * BatchHess(u)
    return out


def lagsum(expr, i, lo, hi):
    """``Σ_{i=lo}^{hi} expr`` for ``expr`` a sum of terms ``c · i^p · Π base^(α i + γ)`` (``hi`` may be ∞: then
    every ratio is a decay rate below 1 in modulus)."""
    total = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(expr, force=True)):
        ratio, power, rest = sp.S.One, 0, []
        for part in sp.Mul.make_args(term):
            base, e = part.as_base_exp()
            if not part.has(i):
                rest.append(part)
            elif base == i:
                power += int(e)
            else:
                slope = sp.diff(e, i)
                if slope.has(i) or base.has(i):
                    raise ValueError(f"not geometric in {i}: {part}")
                ratio *= base**slope
                rest.append(base ** (e - slope * i))
        total += sp.Mul(*rest) * _geometric(ratio, power, lo, hi, i)
    return total


def _geometric(ratio, p: int, lo, hi, i):
    """``Σ_{i=lo}^{hi} i^p ratio^i`` in closed form."""
    if ratio == 1:
        if hi == sp.oo:
            raise ValueError("a sum over the whole history that does not decay")
        return sp.summation(i**p, (i, lo, hi))
    R = sp.Dummy("R")
    s = R**lo / (1 - R) if hi == sp.oo else (R**lo - R ** (hi + 1)) / (1 - R)
    for _ in range(p):
        s = R * sp.diff(s, R)
    return s.xreplace({R: ratio})
