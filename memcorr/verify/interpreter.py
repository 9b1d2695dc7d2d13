"""The true method with memory: the program's statements run on NumPy arrays straight from the
checked AST (not from the lowered model), so that the checks test the lowering as well as the
expansion.

Input: ``Checked``, a loss, the step size and the parameter values. Output: the iterates, one
``step`` at a time, and ``F = (θ − θ_new)/h`` of each step. A loss with ``at(n)`` is read step by
step (random batches: the loss of step ``n``'s batches, ``verify.batches``).

Each statement is turned once into nested Python closures over its AST (``_Compiler``), so a step
is a call per node with no dispatch on the node's type: the checks run hundreds of thousands of
steps.
"""

from __future__ import annotations

import numpy as np

from ..dsl import ast
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
_OPERATORS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


class Interpreter:
    """The true method with memory: one call of ``step`` runs the program's statements once."""

    def __init__(self, checked: Checked, loss, h: float, params: dict):
        self.c, self.loss, self.h = checked, loss, h
        self.constants = {**params, checked.step: h}
        compiler = _Compiler(self)
        self._statements = [(st.target, compiler.compile(st.expr)) for st in checked.statements]
        self._inits = {name: compiler.compile(d.init) for name, d in checked.states.items() if d.init is not None}

    def start(self, theta0, n0: int = 0):
        """Begin at ``theta0`` with the program's initial states; the counter ``n`` reads ``n0 + steps``."""
        theta0 = np.asarray(theta0, float)
        self.n, self.n0 = 0, n0
        self.thetas, self.grads = [theta0], [self._at().grad(theta0)]
        env = self._env()
        self.states = {
            name: np.broadcast_to(self._inits[name](env, {}), theta0.shape).astype(float)
            if name in self._inits
            else np.zeros_like(theta0)
            for name in self.c.states
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
        for target, run in self._statements:
            value = run(env, {})
            if target == "theta":
                theta_new = value
            else:
                env[target] = value
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


class _Compiler(ast.Visitor):
    """An expression node as a function ``(env, index) -> array``, built once: ``scope`` holds the
    sum indices bound around the node (their values are in ``index`` when it runs); the iterates,
    gradients and loss are read from ``run`` when it runs."""

    def __init__(self, run: Interpreter):
        self.run = run

    def compile(self, node, scope: frozenset = frozenset()):
        return self.visit(node, scope)

    def visit_Num(self, node, scope):
        value = float(node.text)
        return lambda env, index: value

    def visit_Name(self, node, scope):
        name, run = node.id, self.run
        if name in scope:
            return lambda env, index: float(index[name])
        if name == "loss":
            return lambda env, index: run._at().value(env["theta"])
        return lambda env, index: env[name]

    def visit_Neg(self, node, scope):
        operand = self.compile(node.operand, scope)
        return lambda env, index: -operand(env, index)

    def visit_Chain(self, node, scope):
        first = self.compile(node.operands[0], scope)
        rest = [(_OPERATORS[op], self.compile(o, scope)) for op, o in zip(node.ops, node.operands[1:])]

        def chain(env, index):
            value = first(env, index)
            for op, operand in rest:
                value = op(value, operand(env, index))
            return value

        return chain

    def visit_Pow(self, node, scope):
        base, exponent = self.compile(node.base, scope), self.compile(node.exponent, scope)
        return lambda env, index: np.power(base(env, index), exponent(env, index))

    def visit_Call(self, node, scope):
        args, run = [self.compile(a, scope) for a in node.args], self.run
        if node.func == "grad":
            return lambda env, index: run._at().grad(args[0](env, index))
        if node.func == "loss":
            return lambda env, index: run._at().value(args[0](env, index))
        func = _FUNCTIONS[node.func]
        return lambda env, index: func(*[a(env, index) for a in args])

    def visit_History(self, node, scope):
        var, lag = history_lag(node.index, scope)
        run, is_theta = self.run, node.name == "theta"

        def history(env, index):
            k = lag + (index[var] if var else 0)
            return (run.thetas if is_theta else run.grads)[max(run.n - k, 0)]

        return history

    def visit_IndexedSum(self, node, scope):
        lo, (to_n, end), run = int(float(node.lo.text)), sum_bound(node.hi), self.run
        body, name = self.compile(node.body, scope | {node.index}), node.index

        def summed(env, index):
            hi = run.n - end if to_n else end
            return sum((body(env, {**index, name: k}) for k in range(lo, hi + 1)), 0.0)

        return summed
