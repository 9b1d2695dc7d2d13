"""The generated PyTorch module (api.md), run: against the NumPy module, through autograd, and as an
optimizer against the real ``torch.optim.SGD``.

- every bundled program and the outside set: ``memoryless``, ``correction``, ``initial_state`` and
  ``penalty`` equal the NumPy module's to 1e-9 relative (float64);
- the autograd gradient of ``penalty`` is ``h∇G``, and ``Ψ_1 = P ⊙ ∇G + remainder`` with the
  perturbation's own ``P`` and remainder (zero where it says exact);
- a dict of tensors gives the numbers of the flat vector;
- ``Memoryless`` tracks ``torch.optim.SGD(momentum)`` from its zero state to O(h²) on a tanh MLP.
"""

import copy

import numpy as np
import pytest
from conftest import BUNDLED, GOOD, HEAVY, NOT_STATIONARY, ROOT, derived, short_memory

import memcorr
from memcorr.algebra.evaluate import evaluate
from memcorr.losses import from_torch

torch = pytest.importorskip("torch")
torch.set_default_dtype(torch.float64)

FINITE_N = 7


def loss_fn(w):
    """Smooth and nonconvex, every coordinate coupled."""
    return (
        torch.sum(torch.log(torch.cosh(w - 0.3)))
        + 0.5 * torch.sum(w[:-1] * w[1:]) ** 2
        + 0.2 * torch.sum(torch.sin(3 * w))
    )


LOSS = from_torch(loss_fn)
THETA = np.array([0.4, -0.8, 1.1, 0.25])


def bundled(name):
    return ROOT / "derivations" / f"{name}.opt"


def cases():
    for path in BUNDLED + GOOD:
        for regime in ("stationary", "finite"):
            skip = regime == "stationary" and path.stem in NOT_STATIONARY
            if not skip:
                marks = [pytest.mark.slow] if regime == "finite" or path.stem in HEAVY else []
                yield pytest.param(path, regime, id=f"{path.stem}-{regime}", marks=marks)


def modules(path, regime):
    d = derived(path, regime=regime)
    return d, memcorr.load_module(d), memcorr.load_module(d, backend="torch")


def array(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)


def close(a, b, rtol=1e-9):
    a, b = array(a), array(b)
    return np.allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.max(np.abs(a), initial=0.0)))


@pytest.mark.parametrize("path, regime", list(cases()))
def test_torch_module_equals_numpy_module(path, regime):
    d, numpy_module, torch_module = modules(path, regime)
    hyper = short_memory(d) | ({"n": FINITE_N} if regime == "finite" else {})
    theta = torch.tensor(THETA)
    for order in (0, 1):
        assert close(
            numpy_module.memoryless(THETA, LOSS, 0.01, order=order, **hyper),
            torch_module.memoryless(theta, loss_fn, 0.01, order=order, **hyper),
        )
    assert close(numpy_module.correction(THETA, LOSS, **hyper), torch_module.correction(theta, loss_fn, **hyper))
    expected = numpy_module.initial_state(THETA, LOSS, 0.01, **hyper)
    for name, value in torch_module.initial_state(theta, loss_fn, 0.01, **hyper).items():
        assert close(expected[name], value), name
    if d.perturbation.potential is None:
        with pytest.raises(ValueError, match="no potential"):
            torch_module.penalty(theta, loss_fn, 0.01, **hyper)
        return
    h = 0.01
    assert close(h * numpy_module.penalty(THETA, LOSS, **hyper), torch_module.penalty(theta, loss_fn, h, **hyper))


@pytest.mark.parametrize("path, regime", list(cases()))
def test_penalty_gradient_is_h_grad_G_and_gives_the_correction(path, regime):
    """``∂(hG)/∂θ`` by autograd, divided by ``h``, with the perturbation's ``P`` and remainder:
    ``Ψ_1 = P ⊙ ∇G + remainder`` — the form the perturbation states, checked by numbers."""
    d, numpy_module, torch_module = modules(path, regime)
    p = d.perturbation
    if p.potential is None:
        pytest.skip(f"{d.name} has no potential: {p.reason}")
    hyper = short_memory(d)
    kw = {"n": FINITE_N} if regime == "finite" else {}
    theta = torch.tensor(THETA, requires_grad=True)
    h = 0.01
    (grad_G,) = torch.autograd.grad(torch_module.penalty(theta, loss_fn, h, **hyper, **kw), theta)
    grad_G = grad_G.numpy() / h
    values = {d.model.params[k].symbol: v for k, v in hyper.items()} | ({d.model.n: FINITE_N} if kw else {})
    P = evaluate(p.preconditioner, LOSS, THETA, values)
    remainder = 0.0 if p.exact else evaluate(p.remainder, LOSS, THETA, values)
    psi1 = numpy_module.correction(THETA, LOSS, **hyper, **kw)
    assert close(psi1, P * grad_G + remainder, rtol=1e-7)
    if not p.exact:  # the remainder is what the potential leaves out: not zero here
        assert not close(psi1, P * grad_G, rtol=1e-7)


def dict_loss(params):
    w = torch.cat([params["weight"].reshape(-1), params["bias"]])
    return loss_fn(w)


@pytest.mark.parametrize("name", ["adamw", "heavy_ball", "lion_softsign"])
def test_dict_of_tensors_reads_as_one_vector(name):
    d, _, torch_module = modules(bundled(name), "stationary")
    params = {"weight": torch.tensor(THETA[:2].reshape(1, 2)), "bias": torch.tensor(THETA[2:])}
    flat = torch.tensor(THETA)
    for function in ("update", "correction"):
        as_dict = getattr(torch_module, function)(params, dict_loss)
        assert set(as_dict) == {"weight", "bias"} and as_dict["weight"].shape == (1, 2)
        joined = torch.cat([as_dict["weight"].reshape(-1), as_dict["bias"]])
        assert close(joined, getattr(torch_module, function)(flat, loss_fn)), function
    if d.perturbation.potential is not None:
        assert close(torch_module.penalty(params, dict_loss, 0.1), torch_module.penalty(flat, loss_fn, 0.1))


def test_penalty_trains_a_model_through_backward():
    """``(loss + penalty).backward()`` with ``dict(model.named_parameters())``: the gradient is
    ``∇L + h∇G``, the second term checked against central differences of the penalty."""
    torch_module = memcorr.load_module(derived(bundled("heavy_ball")), "torch")
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    X = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    Y = torch.sin(X[:, :1])

    def loss_of(params):
        return torch.mean((torch.func.functional_call(model, params, (X,)) - Y) ** 2)

    params = dict(model.named_parameters())
    h = 0.05
    penalty = torch_module.penalty(params, loss_of, h)
    penalty.backward()
    weight = params["0.weight"]
    base = {k: v.detach() for k, v in params.items()}
    step = 1e-6
    e = torch.zeros_like(weight)
    e[0, 0] = 1
    bumped = [
        torch_module.penalty(base | {"0.weight": base["0.weight"] + s * e}, loss_of, h).item() for s in (step, -step)
    ]
    assert weight.grad[0, 0].item() == pytest.approx((bumped[0] - bumped[1]) / (2 * step), rel=1e-5)


# ------------------------------------------------------------------ the optimizer
def mlp_problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(32, 3, generator=g)
    Y = torch.sin(X.sum(1, keepdim=True))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    return model, X, Y


def trained(model0, X, Y, make_optimizer, steps):
    model = copy.deepcopy(model0)
    optimizer = make_optimizer(model.parameters())

    def closure():
        return torch.mean((model(X) - Y) ** 2)

    for _ in range(steps):
        if isinstance(optimizer, torch.optim.SGD):
            optimizer.zero_grad()
            closure().backward()
            optimizer.step()
        else:
            optimizer.step(closure)
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.mark.slow
def test_memoryless_optimizer_tracks_torch_sgd_momentum_to_second_order():
    """Over the horizon T = 0.2, h halved three times, from SGD's zero momentum buffer: the finite-n
    Memoryless of order 1 stays O(h²) from ``torch.optim.SGD(momentum=0.5)``, order 0 only O(h)."""
    torch_module = memcorr.load_module(derived(bundled("heavy_ball"), regime="finite"), "torch")
    model, X, Y = mlp_problem()
    hs = [0.02, 0.01, 0.005, 0.0025]
    slopes = {}
    for order in (0, 1):
        errors = []
        for h in hs:
            steps = round(0.2 / h)
            true = trained(model, X, Y, lambda ps, h=h: torch.optim.SGD(ps, lr=h, momentum=0.5), steps)
            mine = trained(
                model,
                X,
                Y,
                lambda ps, h=h, order=order: torch_module.Memoryless(ps, lr=h, order=order, beta=0.5),
                steps,
            )
            errors.append(float((true - mine).abs().max()))
        slopes[order] = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert slopes[1] >= 1.75, slopes
    assert slopes[0] < 1.3, slopes


def test_memoryless_state_dict_resumes_exactly():
    torch_module = memcorr.load_module(derived(bundled("adamw"), regime="finite"), "torch")
    model, X, Y = mlp_problem()

    def make(ps):
        return torch_module.Memoryless(ps, lr=1e-3, beta2=0.9)

    straight = trained(model, X, Y, make, 6)
    first = copy.deepcopy(model)
    optimizer = make(first.parameters())
    for _ in range(3):
        optimizer.step(lambda: torch.mean((first(X) - Y) ** 2))
    saved = copy.deepcopy(optimizer.state_dict())
    second = copy.deepcopy(first)
    resumed = make(second.parameters())
    resumed.load_state_dict(saved)
    assert resumed.state_dict()["state"][0]["step"] == 3
    for _ in range(3):
        resumed.step(lambda: torch.mean((second(X) - Y) ** 2))
    assert torch.equal(straight, torch.cat([p.detach().reshape(-1) for p in second.parameters()]))


def test_memoryless_needs_a_closure_and_known_hyperparameters():
    torch_module = memcorr.load_module(derived(bundled("heavy_ball")), "torch")
    w = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(TypeError, match="closure"):
        torch_module.Memoryless([w], lr=0.1).step(None)
    with pytest.raises(TypeError, match="unknown hyperparameters"):
        torch_module.Memoryless([w], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="order"):
        torch_module.Memoryless([w], lr=0.1, order=2)


def test_unknown_backend_is_a_derivation_error():
    with pytest.raises(memcorr.DerivationError, match="backend"):
        memcorr.load_module(derived(BUNDLED[0]), backend="tensorflow")


@pytest.mark.parametrize("name", ["heavy_ball", "adabelief"])
def test_higher_orders_agree_with_numpy(name):
    """Orders 2 and 3: ∇³L and ∇⁴L by differentiating the gradient along each direction in turn."""
    d = memcorr.derive(bundled(name), order=3)
    numpy_module, torch_module = memcorr.load_module(d), memcorr.load_module(d, backend="torch")
    hyper = short_memory(d)
    for order in (2, 3):
        assert close(
            numpy_module.memoryless(THETA, LOSS, 0.01, order=order, **hyper),
            torch_module.memoryless(torch.tensor(THETA), loss_fn, 0.01, order=order, **hyper),
        )
        assert close(
            numpy_module.correction(THETA, LOSS, order=order, **hyper),
            torch_module.correction(torch.tensor(THETA), loss_fn, order=order, **hyper),
        )
    state = torch_module.initial_state(torch.tensor(THETA), loss_fn, 0.01, order=3, **hyper)
    expected = numpy_module.initial_state(THETA, LOSS, 0.01, order=3, **hyper)
    assert all(close(expected[k], v) for k, v in state.items())


def test_a_loss_autograd_cannot_use_is_refused_with_a_sentence():
    torch_module = memcorr.load_module(derived(bundled("heavy_ball")), "torch")
    theta = torch.tensor(THETA)
    with pytest.raises(TypeError, match="must return a scalar tensor"):
        torch_module.update(theta, lambda w: w**2)
    with pytest.raises(TypeError, match="not differentiable"):
        torch_module.update(theta, lambda w: torch.tensor(float(np.sum(w.detach().numpy() ** 2))))
    with pytest.raises(TypeError, match="must return a scalar tensor"):
        torch_module.penalty(theta, lambda w: float(torch.sum(w.detach())), 0.1)
