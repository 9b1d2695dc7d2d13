"""Numeric checks of a derivation against the true method (docs/method.md §6).

Input: a ``Derivation``, a loss (the protocol of ``losses``), a start point and
hyperparameters. Output: ``Report`` — for step sizes ``h, h/2, h/4, …`` the
trajectory errors and consistency residuals of the corrected map (order ``r``)
and of the uncorrected one (order 0), with fitted orders.

The true method is ``Interpreter``: it runs the program's statements on NumPy
arrays straight from the checked AST (not from the lowered model), so the
checks test the lowering as well as the expansion.

- trajectory: both methods from the same start — the finite form from the
  program's initial state at ``n = 0``; the stationary form from a warm start:
  the true method is driven along a history built backwards on the memoryless
  map, long enough for its initial state to be forgotten, which puts it on the
  invariant manifold ``S(θ_0)`` — then the largest error over ``n h ≤ T``;
- consistency: along the same history, the true method's ``F`` at the last step
  against the memoryless ``Ψ``; the residual is ``O(h^{r+1})``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..expand.recurrence import Recurrence
from ..printing import load_module
from .interpreter import Interpreter


# ----------------------------------------------------------------- reports
@dataclass
class Report:
    name: str
    regime: str
    order: int
    hs: list[float]
    errors: dict[str, list[float]] = field(default_factory=dict)  # "corrected"/"uncorrected"
    residuals: dict[str, list[float]] = field(default_factory=dict)
    warm_start: int = 0
    settled: bool = True  # the horizon covers many memory lengths (see verify)
    horizon: int = 0  # the most steps verify runs at the largest h
    vanishes: bool = False  # every correction is 0: the check is that Ψ_0 alone is exact (rounding level)

    ROUNDING = 1e-11  # residuals below this are rounding: the map is exact there

    @staticmethod
    def fitted(hs, values, finest: int = 3) -> float:
        """Least-squares slope of log(value) against log(h) over the ``finest`` smallest h, where
        the order is approached; inf when every value is at rounding level (an exact map)."""
        v = np.asarray(values, float)[-finest:]
        if np.all(v < 1e-11):  # rounding level: the map is exact here
            return math.inf
        return float(np.polyfit(np.log(hs[-finest:]), np.log(np.maximum(v, 1e-300)), 1)[0])

    def orders(self) -> dict[str, float]:
        out = {f"trajectory {k}": self.fitted(self.hs, v) for k, v in self.errors.items()}
        out.update({f"residual {k}": self.fitted(self.hs, v) for k, v in self.residuals.items()})
        return out

    @property
    def required(self) -> float:
        return self.order + 1 - 0.25

    @property
    def finite(self) -> bool:
        """Every error and residual is a number: a NaN or inf (a step that blew up) fails the check."""
        values = [*self.errors.values(), *self.residuals.values()]
        return all(math.isfinite(x) for v in values for x in v)

    @property
    def passed(self) -> bool:
        """The residual order, and the trajectory order where the horizon lets it settle."""
        if not self.finite:
            return False
        if self.vanishes:
            return max(self.residuals["corrected"]) < self.ROUNDING
        o = self.orders()
        trajectory = o["trajectory corrected"] >= self.required or not self.settled
        return trajectory and o["residual corrected"] >= self.required

    def table(self) -> str:
        lines = [
            f"{self.name}: {self.regime} regime, correction to order {self.order}"
            + (f" (warm start: {self.warm_start} steps along the memoryless history)" if self.warm_start else ""),
            f"{'h':>10} {'traj. corrected':>16} {'traj. order 0':>14} {'resid. corrected':>17} {'resid. order 0':>15}",
        ]
        for i, h in enumerate(self.hs):
            lines.append(
                f"{h:>10.3e} {self.errors['corrected'][i]:>16.3e} {self.errors['uncorrected'][i]:>14.3e}"
                f" {self.residuals['corrected'][i]:>17.3e} {self.residuals['uncorrected'][i]:>15.3e}"
            )
        if self.vanishes:
            return "\n".join(lines + self._vanishing_lines())
        o = self.orders()
        lines.append(
            f"fitted order   trajectory: corrected {o['trajectory corrected']:.2f}, "
            f"uncorrected {o['trajectory uncorrected']:.2f};  residual: corrected "
            f"{o['residual corrected']:.2f}, uncorrected {o['residual uncorrected']:.2f}"
        )
        lines.append(self._where_it_holds())
        if not self.settled:
            lines.append(
                f"note: the memory outlasts the horizon (at most {self.horizon} steps at the largest h), so the "
                "trajectory order may not have settled; the residual decides"
            )
        if not self.finite:
            lines.append(
                "note: some errors are not numbers (NaN or inf): the method or its memoryless map blew up at "
                "these step sizes; try a smaller --h"
            )
        lines.append(f"required: corrected order >= {self.required:.2f}  ->  " + ("PASS" if self.passed else "FAIL"))
        return "\n".join(lines)

    def local_orders(self) -> list[float]:
        """The slope of the corrected residual between successive step sizes (largest h first)."""
        v = np.asarray(self.residuals["corrected"], float)
        with np.errstate(all="ignore"):
            return list(np.log(v[:-1] / v[1:]) / np.log(np.asarray(self.hs[:-1]) / np.asarray(self.hs[1:])))

    def _where_it_holds(self) -> str:
        """The step sizes at which the corrected residual shows the required order: the expansion is
        asymptotic, so a large h may fall short where the smaller ones do not."""
        if not self.finite:
            return "local residual orders: not numbers at these h"
        local = self.local_orders()
        text = ", ".join(f"{x:.2f}" for x in local)
        holding = [i for i, x in enumerate(local) if all(y >= self.required for y in local[i:])]
        if not holding:
            return f"local residual orders (h halved each time): {text}; the order does not hold at these h"
        return (
            f"local residual orders (h halved each time): {text}; the order holds from h = "
            f"{self.hs[holding[0]]:.3g} down"
        )

    def _vanishing_lines(self) -> list[str]:
        worst = max(self.residuals["corrected"])
        exact = worst < self.ROUNDING
        return [
            f"the correction vanishes ({'Ψ_1' if self.order == 1 else f'Ψ_1 = … = Ψ_{self.order}'} = 0): the "
            "memoryless map Ψ_0 alone should follow "
            "the method to this order, with no fitted order to show",
            f"largest residual of Ψ_0 {worst:.2e}: "
            + ("rounding level, the map is exact along the history" if exact else "above rounding level"),
            "required: residual at rounding level  ->  " + ("PASS" if self.passed else "FAIL"),
        ]


def _backward(module, loss, x0, h, order, steps, hyper, sweeps):
    """``θ_0 = x0`` and ``θ_{k−1}`` solving ``θ_{k−1} − hΨ(θ_{k−1}) = θ_k``: oldest first."""
    history = [np.asarray(x0, float)]
    for _ in range(steps):
        target = history[-1]
        theta = target
        for _ in range(sweeps):  # each sweep gains one power of h
            theta = target + h * module.memoryless(theta, loss, h, order=order, **hyper)
        history.append(theta)
    return history[::-1]


def _decay_rate(model, params) -> float:
    """The spectral radius of the state map at the fixed point (0 without states)."""
    import random

    import sympy as sp

    from ..model.decay import spectral_check

    found = spectral_check(model, {model.params[k].symbol: sp.Float(v) for k, v in params.items()}, random.Random(0))
    return found[0] if found else 0.0


def hyperparameters(model, params: dict | None) -> tuple[dict, dict]:
    """``(hyper, program)``: the values the generated module takes (the defaults, with ``params`` over them),
    and those the true method reads, which also holds the parameters the derivation fixed (``Model.fixed``)."""
    hyper = {p.name: p.default for p in model.params.values()}
    hyper.update({k: v for k, v in (params or {}).items() if k not in model.fixed})
    return hyper, {**model.fixed, **hyper}


MAX_HORIZON = 5000  # steps at the largest h with thorough=True (eight times as many at the smallest)
# the same in the stationary regime by default: memories up to 100 steps settle (ten lengths), up to 500 with
# thorough. Not in the finite regime, whose residual is taken at the horizon's step n: with a slow memory,
# n = 1000 is still inside the transient, where the asymptotic order in h shows late (Adam: 1.44, FAIL)
QUICK_HORIZON = 1000
LOOP_HORIZON = 60  # maps that loop over the past steps: O(n) per call, O(n²) per run; six memory lengths at ρ = 0.9
STATIONARY_N = 10**6  # the step counter of a warm-started method: every beta^n has died out


def _sums_over_history(model) -> bool:
    """Does the program sum over its whole history (``sum(k = … .. n, …)``)? Then only a long
    warm start puts the true method on the manifold; otherwise ``S(θ)`` can be set directly."""
    return any(s.origin == "sum" for s in model.states)


def _memory_steps(model, rho, tol=1e-10) -> int:
    """Warm-start length: enough history for every lag, and, when the program sums over its
    whole history, enough for the slowest decay rate of the state map to fall below ``tol``."""
    if not _sums_over_history(model) or rho <= 0:
        return _max_lag(model) + 1
    return int(math.ceil(math.log(tol) / math.log(rho))) + _max_lag(model)


def _max_lag(model) -> int:
    return sum(1 for s in model.states if s.origin in ("lag", "difference"))


def _spread(module, loss, x0, hyper, kw) -> float:
    """``‖DΨ_0(x0)‖``: how fast nearby memoryless trajectories separate, by central differences."""
    eps = 1e-6
    jac = np.array(
        [
            (module.update(x0 + eps * e, loss, **kw, **hyper) - module.update(x0 - eps * e, loss, **kw, **hyper))
            / (2 * eps)
            for e in np.eye(len(x0))
        ]
    )
    return max(float(np.linalg.norm(jac, 2)), 1e-3)


def _default_h(module, loss, x0, hyper, span: int, finite: bool) -> float:
    """A largest step inside the asymptotic range: the first correction at most 5% of the
    update (``h‖Ψ_1‖ ≤ 0.05‖Ψ_0‖``; 2% in the finite regime), and over ``span`` steps (the warm start's history, or
    the finite run) nearby trajectories separate at most e-fold (``h ≤ 1/(λ·span)``) and the
    gradient changes by at most its size (``h·span·‖H‖‖Ψ_0‖ ≤ ‖g‖``)."""
    x0 = np.asarray(x0, float)
    probes = [{"n": n} for n in (1, 10, 100, 1000)] if finite else [{}]
    h = 0.02
    for kw in probes:
        psi0 = np.linalg.norm(module.update(x0, loss, **kw, **hyper))
        psi1 = np.linalg.norm(module.correction(x0, loss, order=1, **kw, **hyper))
        if psi1 > 0:  # the finite form has transients in n too: a smaller share for it
            h = min(h, (0.02 if finite else 0.05) * psi0 / psi1)
    span = max(span, 1)
    curvature = np.linalg.norm([loss.hvp(x0, e) for e in np.eye(len(x0))], 2)
    drift = curvature * np.linalg.norm(module.update(x0, loss, **probes[-1], **hyper)) * span
    h = min(h, np.linalg.norm(loss.grad(x0)) / max(drift, 1e-12))
    return min(h, 1.0 / (_spread(module, loss, x0, hyper, probes[-1]) * span))


def verify(
    derivation,
    loss,
    x0,
    params: dict | None = None,
    h0: float | None = None,
    steps: int = 20,
    halvings: int = 3,
    module=None,
    thorough: bool = False,
) -> Report:
    """Both checks of docs/method.md §6 at ``h0, h0/2, …`` over ``steps`` steps of the largest h.

    ``module`` is the generated NumPy module to check (by default, generated now). The horizon covers ten
    memory lengths, at most ``QUICK_HORIZON`` steps in the stationary regime (``MAX_HORIZON`` in the finite
    one, and with ``thorough``, which also halves once more): a longer memory leaves the trajectory order
    unsettled, and the residual decides."""

    model = derivation.model
    hyper, program = hyperparameters(model, params)
    module = module or load_module(derivation)
    order = derivation.order
    finite = derivation.regime == "finite"
    rho = _decay_rate(model, hyper)
    memory = 0 if finite else _memory_steps(model, rho)
    # Run many memory lengths: the per-step defect of the truncated manifold, O(h^(r+1)), piles
    # up in the state until the memory forgets it, and the order shows only after that.
    wanted = int(10 / max(1 - rho, 1e-12))
    horizon = MAX_HORIZON if thorough or finite else QUICK_HORIZON
    if finite and derivation.expansion.update.has(Recurrence):
        horizon = LOOP_HORIZON
    halvings += thorough
    steps = max(steps, min(wanted, horizon))
    if h0 is None:
        h0 = _default_h(module, loss, x0, hyper, max(steps, memory), finite)
    hs = [h0 / 2**k for k in range(halvings + 1)]
    report = Report(
        model.name,
        derivation.regime,
        order,
        hs,
        {"corrected": [], "uncorrected": []},
        {"corrected": [], "uncorrected": []},
        memory,
        settled=wanted <= steps,
        horizon=horizon,
        vanishes=all(c == 0 for c in derivation.expansion.corrections),
    )
    T = steps * h0
    for h in hs:
        n_steps = int(round(T / h))
        true = Interpreter(model.checked, loss, h, program)
        if finite:
            true.start(x0)
        else:
            _warm_start(true, module, model, loss, x0, h, order, memory, hyper)
        residuals = {} if finite else {label: _residual(module, true, loss, h, r, hyper) for label, r in _maps(order)}
        paths = _paths(true, module, loss, h, n_steps, order, hyper, finite)
        truth = np.array(true.thetas[-n_steps - 1 :])
        for label, r in _maps(order):
            path = np.array(paths[label])
            report.errors[label].append(float(np.max(np.linalg.norm(truth - path, axis=1))))
            if finite:  # the true method driven along the memoryless trajectory from x0, at its end
                F = driven_F(true.c, loss, h, true.constants, paths[label])
                residuals[label] = float(
                    np.linalg.norm(F - module.memoryless(path[-1], loss, h, order=r, n=n_steps, **hyper))
                )
            report.residuals[label].append(residuals[label])
    return report


def _maps(order: int) -> tuple:
    """The two memoryless maps every check compares: corrected to ``order``, and uncorrected."""
    return (("corrected", order), ("uncorrected", 0))


def _warm_start(true, module, model, loss, x0, h, order, memory, hyper):
    """Put the true method on the invariant manifold at ``x0``: drive it along a history built
    backwards on the memoryless map. Without sums over the whole history, the history only has
    to cover the lags: the declared states start at ``S(θ)`` from the generated
    ``initial_state`` (velocity-form states times ``h``) and ``n`` is large."""
    history = _backward(module, loss, x0, h, order, memory, hyper, order + 2)
    if _sums_over_history(model):
        true.start(history[0])
        for theta in history[1:]:
            true.step(forced=theta)
        return
    true.start(history[0], n0=STATIONARY_N)
    # the lags (g[n-1], …) fill from the history first: a state fed by them (Adan's EMA of
    # g - g[n-1]) set before would take one step off the manifold, an O(h) error
    lags = _max_lag(model)
    for theta in history[1 : lags + 1]:
        true.step(forced=theta)
    manifold = module.initial_state(true.theta, loss, h, order=order, **hyper)
    for s in model.states:
        if s.origin == "state":
            true.states[s.name] = manifold[s.name] * (h if s.velocity else 1.0)
    for theta in history[lags + 1 :]:
        true.step(forced=theta)


def _paths(true, module, loss, h, n_steps, order, hyper, finite) -> dict[str, list]:
    """The true method over ``n_steps`` from its current state, and the memoryless maps of order ``order``
    ("corrected") and 0 ("uncorrected") from the same point: the maps' iterates (the true ones stay in
    ``true.thetas``)."""
    start_n = true.n
    paths = {label: [true.theta] for label, _ in _maps(order)}
    for i in range(n_steps):
        true.step()
        kw = {"n": start_n + i} if finite else {}
        for label, r in _maps(order):
            th = paths[label][-1]
            paths[label].append(th - h * module.memoryless(th, loss, h, order=r, **kw, **hyper))
    return paths


def _residual(module, true, loss, h, r, hyper):
    """|F_true − Ψ| at the end of a history that follows the memoryless map of order r (the stationary
    regime: the warm start built that history)."""
    return float(np.linalg.norm(true.peek() - module.memoryless(true.theta, loss, h, order=r, **hyper)))


def driven_F(checked, loss, h, constants, path, n0: int = 0):
    """``F`` of the true method driven along the iterates ``path`` (from its initial state, its step
    counter starting at ``n0``), at the end."""
    run = Interpreter(checked, loss, h, constants)
    run.start(path[0], n0=n0)
    for theta in path[1:]:
        run.step(forced=theta)
    return run.peek()


def brute_force_correction(derivation, loss, theta, n: int, hyper: dict, eps: float = 1e-5):
    """``M^(n)(θ)`` by its definition (docs/method.md §1), for checking the finite-n formula; ``theta``
    may be a stack of points, one per row (a row per label sequence under random batches).

    The true method with every iterate at ``θ`` gives ``F^(s)(θ,…,θ)``; then one JVP through
    ``n`` unrolled steps — the method driven along ``θ_{n−k} = θ + ε Σ_{s=n−k}^{n−1} F^(s)``,
    its ``F^(n)`` differentiated in ``ε`` at 0 by a central difference."""
    theta = np.asarray(theta, float)
    checked = derivation.model.checked
    hyper = {**derivation.model.fixed, **hyper}
    const = Interpreter(checked, loss, 1.0, hyper)
    const.start(theta)
    Fs = [const.step(forced=theta) for _ in range(n)]  # F^(0) … F^(n-1)
    tails = [sum(Fs[j:]) for j in range(n)] + [0 * theta]  # iterate j moves by Σ_{s=j}^{n-1} F^(s)
    return (
        driven_F(checked, loss, 1.0, hyper, [theta + eps * t for t in tails])
        - driven_F(checked, loss, 1.0, hyper, [theta - eps * t for t in tails])
    ) / (2 * eps)
