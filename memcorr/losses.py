"""The loss protocol of docs/python.md and a few losses that implement it.

A loss is any object with ``value(x)``, ``grad(x)``, ``hvp(x, v)`` and
``dgrad(x, *vs)`` (``∇^{k+1} L(x)[v_1, …, v_k]``; ``dgrad(x) == grad(x)``).

- ``SympyLoss``: any smooth expression in a few variables, every derivative
  exact (sympy differentiates once, numpy evaluates); ``quadratic``,
  ``rosenbrock`` and ``nonconvex`` are built on it;
- ``LogisticRegression``: a generalized linear model with exact derivatives;
- ``from_torch`` / ``mlp``: a torch function through autograd (torch optional);
- ``from_numpy``: a NumPy value and gradient, higher derivatives by central
  differences of the gradient (approximate: say so when you use it).

Batch losses (random batches, docs/method.md §7): the protocol of the mean ``L = (1/m) Σ_b L_b``
plus ``batches`` (``m``) and ``batch(b)``, the loss ``L_b``. ``BatchLoss`` makes one from ``m``
losses; ``batch_quadratics`` (batch Hessians that differ, so that ``∇V ≠ 0``) and
``batch_nonconvex`` are built in. Their methods also take a stack of points, one per row (the
checks run many label sequences at once).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import sympy as sp


class Loss(Protocol):
    """The loss oracle of docs/python.md: what generated code and ``verify`` call."""

    def value(self, x) -> float: ...

    def grad(self, x) -> np.ndarray: ...

    def hvp(self, x, v) -> np.ndarray: ...

    def dgrad(self, x, *vs) -> np.ndarray: ...


class SympyLoss:
    """A loss given as a sympy expression in the variables ``xs``; derivatives are exact."""

    def __init__(self, expr, xs):
        self.expr, self.xs = sp.sympify(expr), list(xs)
        self._value = sp.lambdify([self.xs], self.expr, "numpy")
        self._tensors: dict = {}

    def _tensor(self, k: int):
        """The (k+1)-th derivative tensor as a numpy function of x (derived once per k)."""
        if k not in self._tensors:
            array = sp.derive_by_array(self.expr, self.xs)
            for _ in range(k):
                array = sp.derive_by_array(array, self.xs)
            f = sp.lambdify([self.xs], array.tolist(), "numpy")
            self._tensors[k] = lambda x: np.asarray(f(x), dtype=float)
        return self._tensors[k]

    def value(self, x):
        return float(self._value(np.asarray(x, dtype=float)))

    def grad(self, x):
        return self._tensor(0)(np.asarray(x, dtype=float))

    def hvp(self, x, v):
        return self.dgrad(x, v)

    def dgrad(self, x, *vs):
        t = self._tensor(len(vs))(np.asarray(x, dtype=float))
        for v in vs:
            t = t @ np.asarray(v, dtype=float)  # symmetric: contract from the last index
        return t


def quadratic(A=((3.0, 0.5, 0.0), (0.5, 2.0, 0.3), (0.0, 0.3, 1.0)), b=(1.0, -0.5, 0.2)):
    """``½ xᵀAx − bᵀx``: constant Hessian, all higher derivatives zero."""
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    xs = sp.symbols(f"x0:{len(b)}", real=True)
    x = sp.Matrix(xs)
    return SympyLoss((x.T * sp.Matrix(A) * x)[0] / 2 - (sp.Matrix(b).T * x)[0], xs)


def rosenbrock(dim: int = 3, a: float = 1.0, b: float = 10.0):
    """``Σ b (x_{i+1} − x_i²)² + (a − x_i)²`` (a milder b than the textbook 100)."""
    xs = sp.symbols(f"x0:{dim}", real=True)
    return SympyLoss(sum(b * (xs[i + 1] - xs[i] ** 2) ** 2 + (a - xs[i]) ** 2 for i in range(dim - 1)), xs)


def nonconvex():
    """A smooth nonconvex loss in three variables with a Hessian that varies everywhere."""
    x, y, z = xs = sp.symbols("x0:3", real=True)
    expr = (
        (x**2 + 2 * y**2 + 1.5 * z**2) / 2
        + 0.3 * sp.sin(2 * x) * y
        + 0.2 * x * y * z
        + 0.25 * sp.log(1 + z**2)
        - 0.4 * sp.cos(y + z)
    )
    return SympyLoss(expr, xs)


class LogisticRegression:
    """Mean logistic loss of labels ``y ∈ {±1}`` on features ``X``, plus ``½ l2 |w|²``."""

    def __init__(self, X, y, l2: float = 0.1):
        self.X, self.y, self.l2 = np.asarray(X, float), np.asarray(y, float), l2
        z = sp.Symbol("z", real=True)
        loss = sp.log(1 + sp.exp(-z))
        self._d = [sp.lambdify(z, sp.diff(loss, z, k), "numpy") for k in range(6)]

    def _margin(self, w):
        return self.y * (self.X @ np.asarray(w, float))

    def value(self, w):
        w = np.asarray(w, float)
        return float(np.mean(self._d[0](self._margin(w))) + self.l2 * w @ w / 2)

    def grad(self, w):
        return self.dgrad(w)

    def hvp(self, w, v):
        return self.dgrad(w, v)

    def dgrad(self, w, *vs):
        # d^k/dw^k of ℓ(y·Xw) contracted with v_1..v_k: y^(k+1) ℓ^(k+1)(m) Π (X v_i), back through Xᵀ
        k = len(vs)
        weights = self._d[k + 1](self._margin(w)) * self.y ** (k + 1)
        for v in vs:
            weights = weights * (self.X @ np.asarray(v, float))
        out = self.X.T @ weights / len(self.y)
        if k == 0:
            out = out + self.l2 * np.asarray(w, float)
        elif k == 1:
            out = out + self.l2 * np.asarray(vs[0], float)
        return out


def logistic(n: int = 40, dim: int = 3, seed: int = 0):
    """A small synthetic logistic regression."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    y = np.sign(X @ rng.normal(size=dim) + 0.5 * rng.normal(size=n))
    return LogisticRegression(X, y)


class TorchLoss:
    """A loss from a torch function ``f(x) -> scalar tensor``; derivatives by autograd (float64)."""

    def __init__(self, fn):
        import torch

        self.torch, self.fn = torch, fn

    def _x(self, x):
        return self.torch.tensor(np.asarray(x, float), dtype=self.torch.float64)

    def value(self, x):
        return float(self.fn(self._x(x)))

    def grad(self, x):
        return self.dgrad(x)

    def hvp(self, x, v):
        return self.dgrad(x, v)

    def dgrad(self, x, *vs):
        torch = self.torch
        x = self._x(x).requires_grad_(True)
        out = torch.autograd.grad(self.fn(x), x, create_graph=bool(vs))[0]
        for i, v in enumerate(vs):
            last = i == len(vs) - 1
            out = torch.autograd.grad(out @ self._x(v), x, create_graph=not last)[0]
        return out.detach().numpy()


def from_torch(fn) -> TorchLoss:
    return TorchLoss(fn)


def mlp(n: int = 32, d_in: int = 2, hidden: int = 4, seed: int = 0):
    """A one-hidden-layer tanh network on synthetic regression data; parameters as one flat vector.

    Returns ``(loss, x0)``. Needs torch (the ``torch`` extra)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d_in, generator=gen, dtype=torch.float64)
    Y = torch.sin(X.sum(1, keepdim=True))
    sizes = [(hidden, d_in), (hidden,), (1, hidden), (1,)]
    counts = [int(np.prod(s)) for s in sizes]

    def fn(w):
        parts, start = [], 0
        for size, count in zip(sizes, counts):
            parts.append(w[start : start + count].reshape(size))
            start += count
        W1, b1, W2, b2 = parts
        return ((torch.tanh(X @ W1.T + b1) @ W2.T + b2 - Y) ** 2).mean() / 2

    x0 = 0.5 * torch.randn(sum(counts), generator=gen, dtype=torch.float64).numpy()
    return TorchLoss(fn), x0


class NumpyLoss:
    """A loss from NumPy ``value`` and ``grad``; ``hvp`` and ``dgrad`` by central differences."""

    def __init__(self, value, grad, step: float = 1e-4):
        self._value, self._grad, self.step = value, grad, step

    def value(self, x):
        return float(self._value(np.asarray(x, float)))

    def grad(self, x):
        return np.asarray(self._grad(np.asarray(x, float)), float)

    def hvp(self, x, v):
        return self.dgrad(x, v)

    def dgrad(self, x, *vs):
        if not vs:
            return self.grad(x)
        v, rest = np.asarray(vs[0], float), vs[1:]
        e = self.step
        return (self.dgrad(x + e * v, *rest) - self.dgrad(x - e * v, *rest)) / (2 * e)


def from_numpy(value, grad, step: float = 1e-4) -> NumpyLoss:
    return NumpyLoss(value, grad, step)


class Quadratic:
    """``½ (x − c)ᵀ A (x − c) + Σ_i a_i cos x_i``, exact in NumPy (``a = 0``: a quadratic); every
    method also takes one point per row."""

    def __init__(self, A, c, a=None):
        self.A, self.c = np.asarray(A, float), np.asarray(c, float)
        self.a = np.zeros_like(self.c) if a is None else np.asarray(a, float)
        self.curved = bool(np.any(self.a))

    def value(self, x):
        d = np.asarray(x, float) - self.c
        return np.einsum("...i,ij,...j->...", d, self.A, d) / 2 + np.sum(self.a * np.cos(x), axis=-1)

    def grad(self, x):
        return self.dgrad(x)

    def hvp(self, x, v):
        return self.dgrad(x, v)

    def dgrad(self, x, *vs):
        x = np.asarray(x, float)
        k = len(vs)
        if k < 2:  # A may be one matrix, or one per row (a stack gathered along label sequences)
            w = x - self.c if k == 0 else np.asarray(vs[0], float)
            out = w @ self.A.T if self.A.ndim == 2 else np.einsum("...ij,...j->...i", self.A, w)
        else:
            out = 0.0
        if self.curved:  # d^(k+1)/dx^(k+1) cos x = cos(x + (k+1)π/2), coordinate by coordinate
            out = out + self.a * np.cos(x + (k + 1) * np.pi / 2) * np.prod([np.asarray(v, float) for v in vs], axis=0)
        if np.shape(out) == x.shape:
            return out
        return np.broadcast_to(out, np.broadcast_shapes(x.shape, self.c.shape)).copy()


class BatchLoss:
    """``L = (1/m) Σ_b L_b`` over ``m`` losses: the loss protocol of the mean, ``batches`` and ``batch(b)``."""

    def __init__(self, parts):
        self.parts = list(parts)
        self.batches = len(self.parts)
        if self.batches < 1:
            raise ValueError("a batch loss needs at least one batch (m >= 1)")
        # the derivatives of a mean of quadratics-with-cosines are one such loss's: m calls become one
        self._mean = _mean_quadratic(self.parts)

    def batch(self, b: int):
        return self.parts[b]

    def value(self, x):
        return float(np.mean([p.value(x) for p in self.parts]))

    def grad(self, x):
        return self._averaged("grad", x)

    def hvp(self, x, v):
        return self._averaged("hvp", x, v)

    def dgrad(self, x, *vs):
        return self._averaged("dgrad", x, *vs)

    def _averaged(self, method: str, *args):
        """The mean of the parts' ``method``; each part's own, so a loss without ``dgrad`` (first order) works."""
        if self._mean is not None:
            return getattr(self._mean, method)(*args)
        return np.mean([getattr(p, method)(*args) for p in self.parts], axis=0)


def _mean_quadratic(parts) -> Quadratic | None:
    """A ``Quadratic`` with the derivatives of the mean of ``parts`` (not its value: a constant apart),
    or None unless every part is a ``Quadratic`` with one matrix. ``Σ A_b (x − c_b) = Ā(x − c̄)`` with
    ``Ā c̄`` the mean of ``A_b c_b``; the cosines' amplitudes average."""
    if not all(isinstance(p, Quadratic) and p.A.ndim == 2 and p.A.shape == parts[0].A.shape for p in parts):
        return None  # inconsistent batches are said so by checked_batches
    if len(parts) == 1:
        return parts[0]
    A = np.mean([p.A for p in parts], axis=0)
    r = np.mean([p.A @ p.c for p in parts], axis=0)
    c = np.linalg.lstsq(A, r, rcond=None)[0]
    if not np.allclose(A @ c, r, rtol=1e-12, atol=1e-12):
        return None
    return Quadratic(A, c, np.mean([p.a for p in parts], axis=0))


def checked_batches(loss, x):
    """``loss`` as a batch loss, or a ValueError saying what is wrong: ``batches`` a whole number
    ``m ≥ 1``, every ``batch(b)`` a loss whose gradient at ``x`` has the shape of the mean's."""
    m = getattr(loss, "batches", None)
    if not hasattr(loss, "batch") or isinstance(m, bool) or not isinstance(m, (int, np.integer)):
        raise ValueError("random batches need a batch loss: `batches` (the number m) and `batch(b)` (docs/python.md)")
    if m < 1:
        raise ValueError(f"a batch loss needs at least one batch, not m = {m}")
    shape = np.shape(loss.grad(x))
    for b in range(m):
        if np.shape(loss.batch(b).grad(x)) != shape:
            raise ValueError(
                f"batch {b} of {m} is inconsistent: its gradient has shape "
                f"{np.shape(loss.batch(b).grad(x))}, the mean's {shape}"
            )
    return loss


def batch_quadratics(
    m: int = 8, dim: int = 2, seed: int = 0, cosine: float = 0.0, spread: float = 1.0, mirrored: bool = False
) -> BatchLoss:
    """``m`` quadratics ``½ (x − c_b)ᵀ A_b (x − c_b)`` with different curvatures and centres: their
    Hessians differ, so the gradient noise ``V`` changes with ``x`` (``∇V ≠ 0``); with ``cosine``, each
    batch adds ``Σ_i a_{b,i} cos x_i`` (``|a| ≈ cosine``), which makes it nonconvex. ``spread`` scales
    every batch's departure from the mean batch (curvature, centre, cosines): the noise is ``O(spread)``,
    small noise for the leading-order means of nonlinear programs. ``mirrored`` adds each batch's mirror
    image through the mean batch (``2m`` batches): the noise's odd moments then vanish to leading order,
    so a leading-order mean is off by ``O(spread⁴)`` instead of ``O(spread³)``."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(m):
        Q = rng.normal(size=(dim, dim))
        a = cosine * rng.uniform(0.5, 1.5, size=dim)  # drawn before the centre, as always: the same losses
        draws.append((Q @ Q.T / dim + 0.3 * np.eye(dim), rng.normal(size=dim), a))
    means = [np.mean(x, axis=0) for x in zip(*draws)]
    signs = (1, -1) if mirrored else (1,)
    return BatchLoss(
        [Quadratic(*(mu + s * spread * (x - mu) for x, mu in zip(d, means))) for s in signs for d in draws]
    )


def batch_nonconvex(m: int = 4, dim: int = 3, seed: int = 1) -> BatchLoss:
    """``m`` batches, each a quadratic plus cosines: Hessians that differ between batches and vary with
    ``x``, with regions of negative curvature."""
    return batch_quadratics(m, dim, seed, cosine=1.5)


def builtin(name: str):
    """A named built-in loss and its default starting point: ``(loss, x0)``."""
    makers = {
        "nonconvex": lambda: (nonconvex(), np.array([1.0, -0.8, 0.6])),
        "quadratic": lambda: (quadratic(), np.array([1.0, -1.0, 0.5])),
        "rosenbrock": lambda: (rosenbrock(), np.array([-0.5, 0.8, 0.3])),
        "logistic": lambda: (logistic(), np.array([0.5, -0.5, 0.25])),
        "mlp": mlp,
        "batch_quadratics": lambda: (batch_quadratics(), np.array([1.0, -0.5])),
        "batch_quadratics_small": lambda: (batch_quadratics(spread=0.2, mirrored=True), np.array([1.0, -0.5])),
        "batch_nonconvex": lambda: (batch_nonconvex(), np.array([1.0, -0.8, 0.6])),
    }
    if name not in makers:
        raise ValueError(f"unknown loss `{name}`: choose one of {', '.join(makers)}")
    return makers[name]()


LOSSES = ("nonconvex", "quadratic", "rosenbrock", "logistic", "mlp", "batch_quadratics", "batch_nonconvex")
BATCH_LOSSES = ("batch_quadratics", "batch_quadratics_small", "batch_nonconvex")
__all__ = [
    "SympyLoss",
    "LogisticRegression",
    "TorchLoss",
    "NumpyLoss",
    "quadratic",
    "rosenbrock",
    "nonconvex",
    "logistic",
    "mlp",
    "from_torch",
    "from_numpy",
    "Quadratic",
    "BatchLoss",
    "checked_batches",
    "batch_quadratics",
    "batch_nonconvex",
    "builtin",
    "LOSSES",
    "BATCH_LOSSES",
]
