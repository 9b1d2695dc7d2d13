"""The check of docs/method.md §7: random batches, the mean over label sequences.

Input: a ``Derivation`` with ``batches="random"``, a batch loss whose methods take one point per
row (``losses.batch_quadratics``, ``losses.batch_nonconvex``), a start point and hyperparameters.
Output: ``BatchReport`` — for step sizes ``h, h/2, …`` the norm of the mean difference at a fixed
horizon between the true method and the per-realization memoryless map (memory of the iterates
removed, batch labels kept) corrected by ``E M``, by its full-batch part only, and not at all, with
standard errors and fitted orders.

Every label sequence runs at once (a row each). The memoryless map at step ``n`` is
``Ψ_0^(n)(θ) = F^(n)(θ, …, θ)``: the program run along the sequence's labels with every iterate at
``θ``, from its initial state, over the last ``window`` steps (the memory forgets the rest). Both
forms start from the program's initial state at step 0: the stationary correction then differs from
the finite-n one only over the first memory length, an ``O(h²)`` offset of the mean that keeps the
order (and a constant that grows with the memory: fit at small ``h``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from ..algebra.evaluate import evaluate
from ..losses import Quadratic, checked_batches
from ..printing import load_module
from .checks import Report, _decay_rate, _default_h, driven_F, hyperparameters
from .interpreter import Interpreter

FROZEN_H = 1e-8  # the step size of the frozen runs: Ψ_0 is F at h → 0 (its O(h) part is in M)
VARIANTS = ("E M", "full-batch part", "none")


class Labelled:
    """A batch loss along label sequences: row ``s`` of a stack of points sees batch ``labels[s, n]`` at step ``n``.

    Each step's loss is built once and shared by the frozen runs; only the last ``keep`` steps are kept
    (the frozen runs reach back ``window`` steps)."""

    def __init__(self, loss, labels, keep: int, offset: int = 0, cache: dict | None = None):
        self.loss, self.labels, self.keep, self.offset = loss, labels, keep, offset
        self.parts = [loss.batch(b) for b in range(loss.batches)]
        self.cache = {} if cache is None else cache  # step -> its loss

    def from_step(self, start: int) -> Labelled:
        return Labelled(self.loss, self.labels, self.keep, self.offset + start, self.cache)

    def at(self, n: int):
        step = self.offset + n
        if step not in self.cache:
            for old in [s for s in self.cache if s < step - self.keep]:
                del self.cache[old]
            labels = self.labels[:, step]
            if all(isinstance(p, Quadratic) for p in self.parts):  # gathered once: no masks per call
                self.cache[step] = Quadratic(*(np.stack([getattr(p, k) for p in self.parts])[labels] for k in "Aca"))
            else:
                self.cache[step] = _Rows(self.parts, labels)
        return self.cache[step]


class _Rows:
    """The gradient of one step: each row through its own batch (a program reading ``loss`` is not
    derived with random batches, so the gradient is all the true method asks for)."""

    def __init__(self, parts, labels):
        self.parts, self.labels = parts, labels

    def grad(self, x):
        out = np.empty_like(x)
        for b, part in enumerate(self.parts):
            rows = self.labels == b
            if rows.any():
                out[rows] = part.grad(x[rows])
        return out


@dataclass
class BatchReport:
    name: str
    hs: list[float]
    sequences: int
    steps: list[int]
    errors: dict[str, list[float]] = field(default_factory=dict)  # ‖mean difference‖ at the horizon
    stderr: dict[str, list[float]] = field(default_factory=dict)

    REQUIRED = 1.75  # the order of E M's mean difference (2 − 0.25, as for the full-batch checks)

    def orders(self) -> dict[str, float]:
        """Fitted over the three smallest h, where the order is approached."""
        return {k: Report.fitted(self.hs, v) for k, v in self.errors.items()}

    @property
    def passed(self) -> bool:
        return all(math.isfinite(x) for v in self.errors.values() for x in v) and (
            self.orders()["E M"] >= self.REQUIRED
        )

    def table(self) -> str:
        lines = [
            f"{self.name}: random batches, {self.sequences} label sequences, mean difference at the horizon "
            f"(± standard error)",
            f"{'h':>10} {'steps':>6} " + " ".join(f"{v:>24}" for v in VARIANTS),
        ]
        for i, h in enumerate(self.hs):
            cells = [f"{self.errors[v][i]:.3e} ± {self.stderr[v][i]:.1e}" for v in VARIANTS]
            lines.append(f"{h:>10.3e} {self.steps[i]:>6} " + " ".join(f"{c:>24}" for c in cells))
        o = self.orders()
        lines.append("fitted order   " + ", ".join(f"{v}: {o[v]:.2f}" for v in VARIANTS))
        if o["full-batch part"] >= self.REQUIRED:
            lines.append(
                "note: the full-batch part alone shows no first-order error at these h: over this horizon the "
                "noise term's O(h) drift is still below the start's O(h²) transient (raise --steps to see it)"
            )
        lines.append(
            f"required: E M order >= {self.REQUIRED:.2f} (the full-batch part alone falls to 1 where ∇V ≠ 0)  ->  "
            + ("PASS" if self.passed else "FAIL")
        )
        return "\n".join(lines)


def verify_batches(
    derivation,
    loss,
    x0,
    params: dict | None = None,
    h0: float | None = None,
    steps: int = 40,
    halvings: int = 3,
    sequences: int = 5000,
    seed: int = 0,
) -> BatchReport:
    """The check of docs/method.md §7 at ``h0, h0/2, …`` over the horizon ``T = steps · h0``."""
    if derivation.batches != "random":
        raise ValueError("this check is for a derivation with batches='random'")
    model = derivation.model
    hyper, program = hyperparameters(model, params)
    x0 = np.asarray(x0, float)
    checked_batches(loss, x0)
    module = load_module(derivation)
    rho = _decay_rate(model, hyper)
    if derivation.regime == "stationary":
        _settles(model.name, rho, steps)
    window = int(math.ceil(math.log(1e-7) / math.log(rho))) + len(model.states) if rho > 0 else len(model.states) + 1
    if h0 is None:
        h0 = _default_h(module, loss, x0, hyper, steps, derivation.regime == "finite")
        if not derivation.expansion.noise_exact:
            # a mean to leading order in the noise is off by O(σ⁴) per step, O(σ⁴ h T) at the horizon T: halved
            # h halves T, and the O(h²) part still shows (AdamW at β = (0.5, 0.8), ε = 0.1: 0.75 → 2.21)
            h0 /= 2
    hs = [h0 / 2**k for k in range(halvings + 1)]
    counts = [steps * 2**k for k in range(halvings + 1)]
    labels = np.random.default_rng(seed).integers(loss.batches, size=(sequences, counts[-1] + 1))
    values = {p.symbol: hyper[p.name] for p in model.params.values()}
    noise = derivation.expansion.noise.subs(values)
    report = BatchReport(model.name, hs, sequences, counts, {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS})
    k = len(VARIANTS)  # the variants run together: k copies of every sequence, one block of rows each
    along = Labelled(loss, np.tile(labels, (k, 1)), keep=window + 2)
    start = np.tile(x0, (k * sequences, 1))

    finite = derivation.regime == "finite"

    at_step = functools.lru_cache(maxsize=None)(lambda n: noise.subs(model.n, n))
    with_mean, full_only = slice(0, 2 * sequences), slice(sequences, 2 * sequences)  # blocks 0 and 1; 2 has none

    def correction(theta, n):
        out = np.zeros_like(theta)
        out[with_mean] = module.correction(theta[with_mean], loss, **({"n": n} if finite else {}), **hyper)
        out[full_only] -= evaluate(at_step(n if finite else 0), loss, theta[full_only], {})
        return out

    for h, n_steps in zip(hs, counts):
        true = Interpreter(model.checked, along, h, program)
        true.start(start)
        for _ in range(n_steps):
            true.step()
        end = _memoryless(model.checked, along, program, start, h, range(n_steps), window, correction)
        for i, variant in enumerate(VARIANTS):
            diff = (true.theta - end)[i * sequences : (i + 1) * sequences]
            report.errors[variant].append(float(np.linalg.norm(diff.mean(axis=0))))
            report.stderr[variant].append(float(np.linalg.norm(diff.std(axis=0) / math.sqrt(sequences))))
    return report


SETTLE = 4  # memory lengths the horizon must hold in the stationary regime


def _settles(name: str, rho: float, steps: int) -> None:
    """A ValueError where the memory is too long for ``steps``: the stationary correction holds once the
    start is forgotten; before, the mean difference keeps the start's ``O(h)`` transient, whatever ``h``."""
    memory = 1 / max(1 - rho, 1e-12)
    if steps < math.ceil(SETTLE * memory - 1e-9):  # 1/(1 − 0.9) is 10.000000000000002
        raise ValueError(
            f"{name} remembers about {memory:.0f} steps at these parameters (its state map's slowest rate is "
            f"{rho:.6g}), and the stationary correction holds only once the start is forgotten: the check's "
            f"{steps} steps at the largest h would measure the start's transient. Check it at parameters with a "
            f"shorter memory (--param), or with --steps {math.ceil(SETTLE * memory)} or more"
        )


def _memoryless(checked, along: Labelled, hyper, theta, h, steps, window, correction):
    """The per-realization memoryless map over ``steps`` from ``theta``: ``θ ← θ − h(Ψ_0^(n)(θ) + h c(θ, n))``."""
    for n in steps:
        theta = theta - h * (_frozen_F(checked, along, hyper, theta, n, window) + h * correction(theta, n))
    return theta


def _frozen_F(checked, along: Labelled, hyper, theta, n: int, window: int):
    """``Ψ_0^(n)(θ)`` of each row: the program along its labels with every iterate at ``θ``."""
    first = max(0, n - window)
    return driven_F(checked, along.from_step(first), FROZEN_H, hyper, [theta] * (n - first + 1), n0=first)
