"""The generated PyTorch module of api.md (``NAME_torch.py``).

Input: ``Derivation``. Output: the source of a module (imports torch only) with
the five functions of the NumPy module on tensors — ``L`` replaced by a callable
``loss_fn(theta) -> scalar tensor`` — ``penalty(theta, loss_fn, h)`` returning a
differentiable ``h·G``, and ``class Memoryless(torch.optim.Optimizer)``.

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

from ..calculus import outer_atoms
from .codegen import CHECKS, ProtocolPrinter, generate


class TorchCodePrinter(ProtocolPrinter):
    """sympy's NumPy printer with torch's names; numbers print as floats (torch's functions
    take tensors, not Python numbers)."""

    _module = "torch"
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


LOSS_PROTOCOL = '''def _split(like):
    """The map from one vector back to a dict of tensors shaped like ``like``."""
    names = list(like)
    shapes = [like[k].shape for k in names]
    sizes = [like[k].numel() for k in names]
    return lambda x: {k: part.view(s) for k, part, s in zip(names, torch.split(x, sizes), shapes)}


class _Loss:
    """The loss protocol at one point by autograd: ``value`` and ``grad`` computed once, ``dgrad``
    (``hvp``) by differentiating the gradient along each direction in turn. ``leaves`` are the
    tensors the loss was computed from; every result is a vector over all of them."""

    def __init__(self, value, leaves, create_graph):
        self._value, self._leaves, self._create_graph = value, leaves, create_graph
        self._grad = self._differentiate([value], None, True)

    def _differentiate(self, outputs, directions, create_graph):
        parts = torch.autograd.grad(
            outputs, self._leaves, directions, create_graph=create_graph, retain_graph=True, materialize_grads=True
        )
        return torch.cat([part.reshape(-1) for part in parts])

    def value(self, theta):
        return self._value

    def grad(self, theta):
        return self._grad

    def hvp(self, theta, v):
        return self.dgrad(theta, v)

    def dgrad(self, theta, *vs):
        # the directions are constants (detached): differentiating ∇²L v_1 again must not
        # differentiate v_1 too. A potential G holds no Hessians, so penalty's gradient is whole.
        d = self._grad
        for i, v in enumerate(vs):
            d = self._differentiate([d], [v.detach()], self._create_graph or i < len(vs) - 1)
        return d


def _at(theta, loss_fn, create_graph=False):
    """``theta`` as one vector (differentiable back to the caller's tensors), the map back to its
    kind, and the loss protocol there. A dict's own tensors are differentiated: the loss sees them
    as given, and only the results are joined into one vector."""
    if isinstance(theta, torch.Tensor):
        leaf = theta if theta.requires_grad else theta.detach().requires_grad_()
        return leaf, lambda x: x, _Loss(loss_fn(leaf), [leaf], create_graph)
    leaves = {k: v if v.requires_grad else v.detach().requires_grad_() for k, v in theta.items()}
    flat = torch.cat([v.reshape(-1) for v in leaves.values()])
    return flat, _split(leaves), _Loss(loss_fn(leaves), list(leaves.values()), create_graph)


def _differentiable(value, theta):
    """``value`` as a scalar tensor in the graph of ``theta``: a constant potential still
    differentiates (to zero)."""
    if isinstance(value, torch.Tensor) and value.requires_grad:
        return value
    return torch.as_tensor(value, dtype=theta.dtype, device=theta.device) + 0 * theta.sum()


def _tensors(hyper, like):
    p = _checked(hyper)
    return {k: torch.as_tensor(v, dtype=like.dtype, device=like.device) for k, v in p.items()}
'''


def module_source(d) -> str:
    """The text of the generated torch module for the derivation ``d``."""
    x = generate(d, TorchCodePrinter)
    finite = d.regime == "finite"
    penalty = (
        f"    return _differentiable(h * _potential({x.call}), theta)"
        if x.has_potential
        else f"    raise ValueError({x.reason!r})  # the program has no potential: said, not guessed"
    )
    # n as a tensor: torch's functions of it (clamp, comparisons, where) take no Python ints
    group_n = (
        '            state = self.state[params[0]]\n            n = torch.as_tensor(state.setdefault("step", 0))\n'
        if finite
        else ""
    )
    count = '            state["step"] = int(n) + 1\n' if finite else ""
    n_check = x.n_check + ("    n = torch.as_tensor(n)\n" if finite else "")
    return f'''{x.docstring}
import torch

{x.constants}

{CHECKS}

{LOSS_PROTOCOL}

{x.definitions}


def update(theta, loss_fn, /{x.sig_n}, **hyper):
    """Ψ_0(θ): the memoryless update (the kind of ``theta``: a tensor or a dict of tensors)."""
{n_check}    with torch.enable_grad():
        theta, back, L = _at(theta, loss_fn)
        p = _tensors(hyper, theta)
        return back(_psi0({x.call}).detach())


def correction(theta, loss_fn, /, order=1{x.sig_n}, **hyper):
    """Ψ_order(θ): the coefficient of h^order in the memoryless map."""
{n_check}    _order(order)
    with torch.enable_grad():
        theta, back, L = _at(theta, loss_fn)
        p = _tensors(hyper, theta)
        return back(_PSI[order]({x.call}).detach())


def memoryless(theta, loss_fn, h, /, order=1{x.sig_n}, **hyper):
    """Ψ_0 + h Ψ_1 + … + h^order Ψ_order: the step is θ ← θ − h·memoryless(θ, loss_fn, h)."""
{n_check}    _order(order)
    with torch.enable_grad():
        theta, back, L = _at(theta, loss_fn)
        p = _tensors(hyper, theta)
        return back(sum(h**r * _PSI[r]({x.call}) for r in range(order + 1)).detach())


def initial_state(theta, loss_fn, h, /, order=1{x.sig_n}, **hyper):
    """The state S(θ) = S_0 + h S_1 + … on the invariant manifold, one value per state."""
{n_check}    _order(order)
    if not STATES:
        return {{}}
    with torch.enable_grad():
        theta, back, L = _at(theta, loss_fn)
        p = _tensors(hyper, theta)
        terms = [_STATES[r]({x.call}) for r in range(min(order, len(_STATES) - 1) + 1)]
        return {{name: back(sum(h**r * t[i] for r, t in enumerate(terms)).detach()) for i, name in enumerate(STATES)}}


def penalty(theta, loss_fn, h, /{x.sig_n}, **hyper):
    """h·G(θ), differentiable: training on ``loss + penalty`` is, to first order, what the memory does
    ({x.penalty_note})."""
{n_check}    with torch.enable_grad():
        theta, back, L = _at(theta, loss_fn, create_graph=True)
        p = _tensors(hyper, theta)
{penalty.replace("    ", "        ", 1)}


class Memoryless(torch.optim.Optimizer):
    """θ ← θ − lr·(Ψ_0 + lr Ψ_1 + … + lr^order Ψ_order), each parameter group one vector θ.

    ``step(closure)``: the closure re-evaluates the model and returns the loss without calling
    ``backward``; the optimizer differentiates it itself. The finite regime counts each group's
    steps from 0 in the state of its first parameter, so ``state_dict`` resumes a run exactly."""

    def __init__(self, params, lr, order=1, **hyper):
        _order(order)
        if not lr > 0:
            raise ValueError(f"lr must be positive, not {{lr!r}}")
        super().__init__(params, {{"lr": lr, "order": order, **_checked(hyper)}})

    @torch.no_grad()
    def step(self, closure):
        if closure is None:
            raise TypeError("Memoryless.step needs a closure that returns the loss (without calling backward)")
        loss = None
        for group in self.param_groups:
            params = [q for q in group["params"] if q.requires_grad]
            if not params:
                continue
{group_n}            with torch.enable_grad():
                loss = closure()
                L = _Loss(loss, params, False)
                theta = torch.cat([q.detach().reshape(-1) for q in params])
                p = _tensors({{k: group[k] for k in HYPER}}, theta)
                lr = group["lr"]
                direction = sum(lr**r * _PSI[r]({x.call}) for r in range(group["order"] + 1)).detach()
            offset = 0
            for q in params:
                q.sub_(lr * direction[offset : offset + q.numel()].view_as(q))
                offset += q.numel()
{count}        return loss
'''
