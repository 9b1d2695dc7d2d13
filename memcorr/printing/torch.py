"""The generated PyTorch module of docs/python.md (``NAME_torch.py``).

Input: ``Derivation``. Output: the source of a module (imports torch only) with
the five functions of the NumPy module on tensors — ``L`` replaced by a callable
``loss_fn(theta) -> scalar tensor`` — ``penalty(theta, loss_fn, h)`` returning a
differentiable ``h·G``, and ``class Memoryless(torch.optim.Optimizer)``. With random batches
``loss_fn`` (and ``Memoryless``'s closure) returns the losses of ``k ≥ 2`` micro-batches of the
batch, from which the gradient noise and its gradient are estimated without bias.

The formulas are printed by the shared generator (``codegen``), the same as the
NumPy module's; this backend names torch and supplies the loss protocol by
autograd: the gradient once per call (kept with its graph), then one
Hessian-vector product per distinct ``Hess`` argument by differentiating the
gradient again (``∇(∇L·v)``), never a full Hessian. A dict of tensors is read as
one vector (concatenated, so that reductions range over all of it and the
results are split back into the dict).
"""

from __future__ import annotations

from sympy.printing.numpy import _known_constants_numpy, _known_functions_numpy

from ..algebra.atoms import outer_atoms
from .codegen import CHECKS, ProtocolPrinter, fill, generate, penalty_body, template


class TorchCodePrinter(ProtocolPrinter):
    """sympy's NumPy printer with torch's names; numbers print as floats (torch's functions
    take tensors, not Python numbers)."""

    _module = "torch"
    backend = "torch"
    _kf = {k: f"torch.{v}" for k, v in _known_functions_numpy.items()}
    _kc = {k: f"torch.{v}" for k, v in _known_constants_numpy.items()}

    def _print(self, expr, **kwargs):
        if getattr(expr, "is_number", False) and not expr.is_Rational and not outer_atoms(expr):
            return repr(float(expr))
        return super()._print(expr, **kwargs)

    def _print_sign(self, expr):
        return f"torch.sign({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        """Nested ``torch.where``; the last branch is the catch-all (``True``)."""
        code = self._print(expr.args[-1].expr)
        for branch in reversed(expr.args[:-1]):
            code = f"torch.where({self._print(branch.cond)}, {self._print(branch.expr)}, {code})"
        return code

    def _print_Relational(self, expr):
        """A tensor either way: a step index compared may be a Python int (``torch.where`` needs a tensor)."""
        return f"torch.as_tensor(({self._print(expr.lhs)}) {expr.rel_op} ({self._print(expr.rhs)}))"

    def _print_Heaviside(self, expr):
        return f"((torch.sign({self._print(expr.args[0])}) + 1) / 2)"  # 1/2 at 0, as numpy's

    def _nested(self, func, args):
        """``torch.minimum``/``maximum`` want tensors: a number bound becomes ``clamp``."""
        bound = "max" if func.endswith("minimum") else "min"
        numbers = [a for a in args if a.is_number]
        fields = [a for a in args if not a.is_number]
        code = super()._nested(func, fields)
        if numbers:
            extreme = min(numbers) if bound == "max" else max(numbers)
            code = f"torch.clamp({code}, {bound}={self._print(extreme)})"
        return code


def module_source(d) -> str:
    """The text of the generated torch module for the derivation ``d``."""
    x = generate(d, TorchCodePrinter, grouped=True)
    finite = d.regime == "finite"
    penalty = penalty_body(x, f"_differentiable(h * _potential({x.call}), theta)", indent="        ")
    # n as a tensor: torch's functions of it (clamp, comparisons, where) take no Python ints
    step_n = '        n = torch.as_tensor(self._count.setdefault("step", 0))\n' if finite else ""
    count = '        self._count["step"] = int(n) + 1\n' if finite else ""
    n_check = x.n_check + ("    n = torch.as_tensor(n)\n" if finite else "")
    random = d.batches == "random"  # the loss is given split into micro-batches (docs/python.md)
    return fill(
        "torch_module.py.tmpl",
        x,
        checks=CHECKS,
        loss_protocol=template("torch_loss.py.tmpl") + (template("torch_noise.py.tmpl") if random else ""),
        at="_at_batch" if random else "_at",
        closure_loss="_closure_batch(loss, params)" if random else "_Loss(loss, params, False, averaged=True)",
        n_check=n_check,
        step_n=step_n,
        count=count,
        penalty=penalty,
    )
