"""The generated PyTorch module of docs/python.md (``NAME_torch.py``).

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
    x = generate(d, TorchCodePrinter, grouped=True)
    finite = d.regime == "finite"
    penalty = (
        f"    return _differentiable(h * _potential({x.call}), theta)"
        if x.has_potential
        else f"    raise ValueError({x.reason!r})  # the program has no potential: said, not guessed"
    )
    # n as a tensor: torch's functions of it (clamp, comparisons, where) take no Python ints
    step_n = '        n = torch.as_tensor(self._count.setdefault("step", 0))\n' if finite else ""
    count = '        self._count["step"] = int(n) + 1\n' if finite else ""
    n_check = x.n_check + ("    n = torch.as_tensor(n)\n" if finite else "")
    return f'''{x.docstring}
import warnings

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
    """θ ← θ − lr·(Ψ_0 + lr Ψ_1 + … + lr^order Ψ_order), all parameters of all groups one vector θ.

    ``step(closure)``: the closure re-evaluates the model and returns the loss without calling
    ``backward``; it is called once per step, and the optimizer differentiates it itself (gradients and
    Hessian-vector products over every group). Groups share ``lr`` and ``order`` (the expansion has one
    step size) and the hyperparameters that set a decay rate; those in ``PER_GROUP`` (weight decay, ε)
    may differ from group to group and act on their group's coordinates. The finite regime counts the
    steps from 0 in the state of the first parameter, so ``state_dict`` resumes a run exactly."""

    def __init__(self, params, lr, order=1, **hyper):
        _order(order)
        if not lr > 0:
            raise ValueError(f"lr must be positive, not {{lr!r}}")
        self._warned = False
        super().__init__(params, {{"lr": lr, "order": order, **_checked(hyper)}})

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group, first = self.param_groups[-1], self.param_groups[0]
        _checked({{k: group[k] for k in HYPER}})
        shared = ["lr", "order", *[k for k in HYPER if k not in PER_GROUP]]
        for k in shared:
            if group[k] != first[k]:
                why = (
                    "the expansion is in powers of one step size"
                    if k in ("lr", "order")
                    else f"`{{k}}` sets how fast the memory decays, which the derivation takes as one number"
                )
                raise ValueError(
                    f"every parameter group must have the same {{k}} ({{first[k]!r}} and {{group[k]!r}}): {{why}}; "
                    f"hyperparameters that may differ per group: {{', '.join(PER_GROUP) or 'none'}}"
                )

    @property
    def _count(self):
        first = next(q for group in self.param_groups for q in group["params"])
        return self.state[first]

    def _hyper(self, params, like):
        """The hyperparameters as ``_GPSI`` takes them: one number each, or per coordinate (the value of
        each coordinate's group) for those in ``PER_GROUP``."""
        first = self.param_groups[0]
        p = _tensors({{k: first[k] for k in HYPER}}, like)
        for k in PER_GROUP:
            p[k] = torch.cat(
                [
                    torch.full((q.numel(),), float(group[k]), dtype=like.dtype, device=like.device)
                    for group in self.param_groups
                    for q in group["params"]
                    if q.requires_grad
                ]
            )
        return p

    @torch.no_grad()
    def step(self, closure):
        if closure is None:
            raise TypeError("Memoryless.step needs a closure that returns the loss (without calling backward)")
        params = [q for group in self.param_groups for q in group["params"] if q.requires_grad]
        if not params:
            return None
        lr, order = self.param_groups[0]["lr"], self.param_groups[0]["order"]
{step_n}        with torch.enable_grad():
            loss = closure()
            if not (isinstance(loss, torch.Tensor) and loss.requires_grad):
                raise TypeError(
                    "the closure must return the loss as a tensor in the autograd graph of the parameters "
                    "(computed from them, not detached, and without calling backward)"
                )
            try:
                L = _Loss(loss, params, False)
                theta = torch.cat([q.detach().reshape(-1) for q in params])
                p = self._hyper(params, theta)
                terms = [lr**r * _GPSI[r]({x.call}).detach() for r in range(order + 1)]
            except RuntimeError as err:
                if "second time" not in str(err):
                    raise
                raise RuntimeError(
                    "the closure called backward(): Memoryless differentiates the loss itself (the gradient, "
                    "then Hessian-vector products through the same graph), so the closure must only compute "
                    "and return the loss"
                ) from None
        self._check_range(terms)
        direction = sum(terms)
        offset = 0
        for q in params:
            q.sub_(lr * direction[offset : offset + q.numel()].view_as(q))
            offset += q.numel()
{count}        return loss

    def _check_range(self, terms):
        """The expansion holds while each correction is small against the term before it (for Adam,
        lr·|∇²L|/(|g| + ε) ≪ 1); warn once when a step leaves that range."""
        if self._warned or len(terms) < 2:
            return
        ratio = max(float(terms[r].norm() / terms[r - 1].norm().clamp_min(1e-300)) for r in range(1, len(terms)))
        if ratio > 0.5:
            self._warned = True
            warnings.warn(
                f"Memoryless: a correction term is {{ratio:.2g}} times the term before it at lr = "
                f"{{self.param_groups[0]['lr']:g}}: the step is outside the range where the expansion holds "
                "(the correction should be small against the map); lower lr, or raise eps for adaptive methods",
                RuntimeWarning,
                stacklevel=4,  # the caller of step(), past torch.no_grad's wrapper
            )
'''
