"""The true method with memory: the program's statements run on NumPy arrays straight from the
checked AST (not from the lowered model), so that the checks test the lowering as well as the
expansion.

Input: ``Checked``, a loss, the step size and the parameter values. Output: the iterates, one
``step`` at a time, and ``F = (θ − θ_new)/h`` of each step. A loss with ``at(n)`` is read step by
step (random batches: the loss of step ``n``'s batches, ``verify.batches``).
"""

from __future__ import annotations

import numpy as np

from ..dsl.ast import Visitor
from ..dsl.check import Checked, history_lag, sum_bound

_FUNCTIONS = {
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sign": np.sign,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "max": np.maximum,
    "min": np.minimum,
    "norm": np.linalg.norm,
    "dot": np.vdot,
    "sum": np.sum,
}


class Interpreter(Visitor):
    """The true method with memory: one call of ``step`` runs the program's statements once."""

    def __init__(self, checked: Checked, loss, h: float, params: dict):
        self.c, self.loss, self.h = checked, loss, h
        self.constants = {**params, checked.step: h}

    def start(self, theta0, n0: int = 0):
        """Begin at ``theta0`` with the program's initial states; the counter ``n`` reads ``n0 + steps``."""
        theta0 = np.asarray(theta0, float)
        self.n, self.n0 = 0, n0
        self.thetas, self.grads = [theta0], [self._at().grad(theta0)]
        env = self._env()
        self.states = {
            name: np.broadcast_to(self.eval(d.init, env), theta0.shape).astype(float)
            if d.init is not None
            else np.zeros_like(theta0)
            for name, d in self.c.states.items()
        }

    def _at(self):
        """The loss of the current step."""
        at = getattr(self.loss, "at", None)
        return at(self.n) if at is not None else self.loss

    @property
    def theta(self):
        return self.thetas[-1]

    def _env(self):
        return {**self.constants, "theta": self.thetas[-1], "g": self.grads[-1], "n": self.n0 + self.n}

    def step(self, forced=None):
        """One step; returns ``F = (θ − θ_new)/h``. ``forced`` replaces the new iterate."""
        env = {**self._env(), **self.states}
        theta_new = None
        for st in self.c.statements:
            value = self.eval(st.expr, env)
            if st.target == "theta":
                theta_new = value
            else:
                env[st.target] = value
        self.states = {name: env[name] for name in self.c.states}
        F = (self.theta - theta_new) / self.h
        nxt = theta_new if forced is None else np.asarray(forced, float)
        self.thetas.append(nxt)
        self.n += 1
        self.grads.append(self._at().grad(nxt))
        return F

    def peek(self):
        """``F`` at the current iterate, without moving."""
        saved = (self.n, list(self.thetas), list(self.grads), dict(self.states))
        F = self.step()
        self.n, self.thetas, self.grads, self.states = saved
        return F

    def eval(self, node, env, index=None):
        """The value of an expression node on arrays (``index``: the sum indices in scope)."""
        return self.visit(node, env, index or {})

    def visit_Num(self, node, env, index):
        return float(node.text)

    def visit_Name(self, node, env, index):
        if node.id in index:
            return float(index[node.id])
        if node.id == "loss":
            return self._at().value(env["theta"])
        return env[node.id]

    def visit_Neg(self, node, env, index):
        return -self.eval(node.operand, env, index)

    def visit_Chain(self, node, env, index):
        value = self.eval(node.operands[0], env, index)
        for op, operand in zip(node.ops, node.operands[1:]):
            rhs = self.eval(operand, env, index)
            value = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[op](value, rhs)
        return value

    def visit_Pow(self, node, env, index):
        return np.power(self.eval(node.base, env, index), self.eval(node.exponent, env, index))

    def visit_Call(self, node, env, index):
        args = [self.eval(a, env, index) for a in node.args]
        if node.func == "grad":
            return self._at().grad(args[0])
        if node.func == "loss":
            return self._at().value(args[0])
        return _FUNCTIONS[node.func](*args)

    def visit_History(self, node, env, index):
        var, lag = history_lag(node.index, frozenset(index))
        k = lag + (index[var] if var else 0)
        series = self.thetas if node.name == "theta" else self.grads
        return series[max(self.n - k, 0)]

    def visit_IndexedSum(self, node, env, index):
        lo = int(float(node.lo.text))
        to_n, end = sum_bound(node.hi)
        hi = self.n - end if to_n else end
        return sum((self.eval(node.body, env, {**index, node.index: k}) for k in range(lo, hi + 1)), 0.0)
