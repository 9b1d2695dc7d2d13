"""Numbers for per-coordinate expressions: the check behind every symbolic claim.

Input: an expression in the atoms of ``atoms`` (fields ``g``, ``θ``, named
fields, ``Hess``, ``D_k``, reductions, sums over steps), a loss with the protocol
of docs/python.md, a point ``θ`` and values for the parameters. Output: the field as an
array (or a reduction as a float). Used where symbolic zero-testing gives up
(``potential.zero``) and by the tests that check short forms against long ones.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from .atoms import LOSS, THETA, CoordSum, Dk, Dot, G, Grad, Hess, LossAt, Noise, NoiseGrad, Norm, is_scalar, outer_atoms
from .moments import MOMENTS, BatchHess, CovHess, NoiseVar

# numpy's printer turns Max into amax over a stacked tuple, which fails for a scalar beside an array
ELEMENTWISE = {"emax": lambda *a: functools.reduce(np.maximum, a), "emin": lambda *a: functools.reduce(np.minimum, a)}
_EMAX, _EMIN = sp.Function("emax"), sp.Function("emin")


def evaluate(expr, loss, theta, values: dict):
    """``expr`` at ``theta`` with ``values`` for its parameters (sympy symbols -> numbers)."""
    theta = np.asarray(theta, dtype=float)
    return _Evaluator(loss, theta, values).field(unrolled(sp.sympify(expr), values))


def unrolled(expr, values: dict):
    """Sums over steps whose bounds are numbers at ``values`` written out term by term: an atom
    inside a sum (``Σ_s c_s ∇²L[E_s]``) is then a field at each step ``s``, not one with ``s`` free."""
    bounds = {s for total in expr.atoms(sp.Sum) for limit in total.limits for b in limit[1:] for s in b.free_symbols}
    return _unrolled(expr, tuple(sorted(((s, values[s]) for s in bounds if s in values), key=str)))


@functools.lru_cache(maxsize=256)
def _unrolled(expr, bounds: tuple):
    """``unrolled`` at the values of the symbols in the bounds (the random points of a check share them)."""
    values = dict(bounds)

    def numeric(limits):
        return all(sp.sympify(b).xreplace(values).is_number for _, lo, hi in limits for b in (lo, hi))

    def unroll(total):
        (i, lo, hi), *rest = total.limits
        lo, hi = (int(sp.sympify(b).xreplace(values)) for b in (lo, hi))
        body = sp.Sum(total.function, *rest) if rest else total.function
        return sp.Add(*[body.xreplace({i: k}) for k in range(lo, hi + 1)])

    while True:
        found = [e for e in expr.atoms(sp.Sum) if numeric(e.limits)]
        if not found:
            return expr
        expr = expr.xreplace({e: unroll(e) for e in found})


@functools.lru_cache(maxsize=4096)
def _compiled(expr):
    """``expr`` as a NumPy function of its inputs, each ``("atom", atom)`` or ``("symbol", s)``: compiled once,
    since a check evaluates the same expression at many points (every step of a trajectory)."""
    atoms = sorted(outer_atoms(expr), key=sp.default_sort_key)
    dummies = {a: sp.Dummy(real=True) for a in atoms}
    flat = expr.xreplace(dummies).replace(sp.Max, _EMAX).replace(sp.Min, _EMIN)
    symbols = sorted(flat.free_symbols, key=sp.default_sort_key)
    by_dummy = {d: a for a, d in dummies.items()}
    inputs = tuple(("atom", by_dummy[s]) if s in by_dummy else ("symbol", s) for s in symbols)
    # arguments with plain names: a Dummy among them makes lambdify rename each one by a pass over the expression
    plain = [sp.Symbol(f"_x{i}", **s.assumptions0) for i, s in enumerate(symbols)]
    return inputs, sp.lambdify(plain, flat.xreplace(dict(zip(symbols, plain))), [ELEMENTWISE, "numpy"])


class _Evaluator:
    def __init__(self, loss, theta, values):
        self.loss, self.theta = loss, theta
        self.leaves = {**values, THETA: theta, G: loss.grad(theta), LOSS: loss.value(theta)}

    def field(self, expr):
        from .named import NamedField  # named fields evaluate through their definitions

        inputs, function = _compiled(expr)
        args = []
        for kind, x in inputs:
            if kind == "atom":
                args.append(self.atom(x))
            elif x in self.leaves:
                args.append(self.leaves[x])
            elif isinstance(x, NamedField):
                args.append(self.field(x.definition))
            else:
                raise ValueError(f"no value for {x}")
        value = function(*args)
        return value + np.zeros_like(self.theta) if np.ndim(value) == 0 and not is_scalar(expr) else value

    def vector(self, expr):
        return np.asarray(self.field(expr), dtype=float) + np.zeros_like(self.theta)

    def atom(self, atom):
        a = atom.args
        if isinstance(atom, Hess):
            return self.loss.hvp(self.theta, self.vector(a[0]))
        if isinstance(atom, Dk):
            return self.loss.dgrad(self.theta, *[self.vector(x) for x in a])
        if isinstance(atom, Norm):
            return float(np.linalg.norm(self.vector(a[0])))
        if isinstance(atom, Dot):
            return float(np.vdot(self.vector(a[0]), self.vector(a[1])))
        if isinstance(atom, CoordSum):
            return float(np.sum(self.vector(a[0])))
        if isinstance(atom, Grad):
            return self.loss.grad(self.vector(a[0]))
        if isinstance(atom, LossAt):
            return self.loss.value(self.vector(a[0]))
        if isinstance(atom, Noise):
            return noise(self.loss, self.theta)
        if isinstance(atom, NoiseGrad):
            return noise_gradient(self.loss, self.theta)
        if isinstance(atom, MOMENTS):
            return moment(atom, self.loss, self.theta, *[self.vector(x) for x in a])
        raise ValueError(f"cannot evaluate {atom}")


def _batches(loss):
    if not hasattr(loss, "batch"):
        raise ValueError("the gradient noise V needs a batch loss (`batches` and `batch(b)`, docs/python.md)")
    return [loss.batch(b) for b in range(loss.batches)]


def noise(loss, theta) -> float:
    """``V(θ) = E_b ‖∇L_b(θ) − ∇L(θ)‖²`` over the batches of ``loss``."""
    g = loss.grad(theta)
    return float(np.mean([np.sum((part.grad(theta) - g) ** 2) for part in _batches(loss)]))


def noise_gradient(loss, theta):
    """``∇V = 2 (E_b[∇²L_b ∇L_b] − ∇²L ∇L)``: one Hessian-vector product per batch."""
    same = np.mean([part.hvp(theta, part.grad(theta)) for part in _batches(loss)], axis=0)
    return 2 * (same - loss.hvp(theta, loss.grad(theta)))


def moment(atom, loss, theta, field=None):
    """A batch moment of ``algebra.moments`` at ``theta`` (``field``: its argument), averaged over the batches."""
    g, parts = loss.grad(theta), _batches(loss)
    xis = [part.grad(theta) - g for part in parts]
    if isinstance(atom, NoiseVar):
        terms = [xi**2 for xi in xis]
    elif isinstance(atom, CovHess):
        terms = [xi * loss.hvp(theta, xi * field) for xi in xis]
    elif isinstance(atom, BatchHess):
        terms = [part.hvp(theta, xi * field) for part, xi in zip(parts, xis)]
    else:
        terms = [xi * part.hvp(theta, field) for part, xi in zip(parts, xis)]
    return np.mean(terms, axis=0)
