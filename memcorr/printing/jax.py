"""The generated JAX module of docs/python.md (``NAME_jax.py``).

Input: ``Derivation``. Output: the source of a module (imports jax only; optax when its optimizer is
built) with the five functions of the NumPy module on arrays and pytrees — ``L`` replaced by a
function ``loss_fn(theta) -> scalar`` written with ``jax.numpy`` — and ``optimizer(learning_rate)``,
the memoryless map as an optax transformation. Every function can be ``jax.jit``-ed.

The formulas are printed by the shared generator (``codegen``), the same as the NumPy module's; this
backend names ``jax.numpy`` and supplies the loss protocol by jax: the gradient by reverse mode once
per call, Hessian-vector products forward-over-reverse (``jax.jvp`` of ``jax.grad``), never a full
Hessian. Sums over past steps and loops (``Recurrence``) run as ``jax.lax.fori_loop``, so that the
step counter ``n`` may be a traced value (the optax state's count) as well as a number. A pytree of
parameters is read as one vector (``ravel_pytree``): elementwise per leaf, reductions over all leaves.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import JaxPrinter

from ..algebra.atoms import is_scalar
from .codegen import (
    CHECKS,
    ProtocolPrinter,
    fill,
    function_body,
    generate,
    inputs,
    nested,
    outermost_range,
    penalty_body,
    template,
)


class JaxCodePrinter(ProtocolPrinter, JaxPrinter):
    """sympy's JAX printer (``jax.numpy`` names, its ``And``/``Or``) with the loss protocol's atoms."""

    backend = "jax"

    def _print_Sum(self, expr):
        """A sum over past steps as a ``fori_loop`` accumulating the summand: its bounds may be traced. An
        outermost sum is a function of its own (defined once, see ``helpers``) whose summand is reduced to
        common subexpressions: jax traces the summand at every call, and the finite regime's repeat the
        same roots tens of times; a sum inside another reads the outer step and stays inline."""
        term, var, lo, hi = outermost_range(expr)
        start = f"{self._module}.zeros((), theta.dtype)" if is_scalar(term) else self.zeros()
        v, bounds = self._print(var), f"{self._print(lo)}, {self._print(hi)} + 1"
        if any(isinstance(s, sp.Dummy) for s in expr.free_symbols):
            return f"jax.lax.fori_loop({bounds}, lambda {v}, _acc: _acc + {self._print(term)}, {start})"
        return self.helper(expr, "_sum", lambda name: self._sum_definition(name, term, v, bounds, start, inputs(expr)))

    def _sum_definition(self, name: str, term, v: str, bounds: str, start: str, known: list) -> str:
        """``def name(head, inputs)``: the summand as a function of the step, and the loop over it."""
        local = {x: f"_i{i}" for i, x in enumerate(known)}
        with self.renamed(local):
            body = function_body([term], self, scalar=is_scalar(term), known=known, tag="s")
        lines = [f"def {name}({self.head}{''.join(f', {local[x]}' for x in known)}):", *nested("_summand", v, body)]
        lines.append(f"    return jax.lax.fori_loop({bounds}, lambda {v}, _acc: _acc + _summand({v}), {start})")
        return "\n".join(lines)

    def _run_loop(self, state: str, n: str) -> list[str]:
        """The loop as a ``fori_loop`` over the state tuple: ``n`` may be traced."""
        return [
            f"    _state = jax.lax.fori_loop(0, {n}, lambda _t, _s: _step(_t, *_s), _start())",
            f"    return _result({n}, *_state)",
        ]


def module_source(d) -> str:
    """The text of the generated JAX module for the derivation ``d``."""
    x = generate(d, JaxCodePrinter)
    penalty = penalty_body(x, f"jax.numpy.asarray(h * _potential({x.call}), theta.dtype)")
    random = d.batches == "random"  # the loss is given split into micro-batches (docs/python.md)
    return fill(
        "jax_module.py.tmpl",
        x,
        checks=CHECKS,
        loss_protocol=template("jax_loss.py.tmpl") + (template("jax_noise.py.tmpl") if random else ""),
        at="_at_batch" if random else "_at",
        penalty=penalty,
    )
