"""``Memoryless`` over parameter groups: one map over all parameters, one closure call per step.

Groups with equal settings are the same optimizer as one group; per-group weight decay is checked
against ``torch.optim.AdamW`` run with the same groups (the truth is the real class, driven along a
history built backwards on the generated per-group map: residual order 2 corrected, 1 without).
"""

import warnings

import numpy as np
import pytest
from conftest import derived

import memcorr
from memcorr.losses import builtin
from memcorr.verify.checks import Report

torch = pytest.importorskip("torch")

LOSS, X0 = builtin("nonconvex")


def problem():
    torch.manual_seed(0)
    X, Y = torch.randn(24, 4, dtype=torch.float64), torch.randn(24, 1, dtype=torch.float64)
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
    return model, X, Y


def split(params, groups: int, **settings):
    ps = list(params)
    cuts = {1: [0, 4], 2: [0, 2, 4], 3: [0, 1, 3, 4]}[groups]
    return [{"params": ps[a:b], **settings} for a, b in zip(cuts, cuts[1:])]


def run(name: str, groups: int, steps: int = 4, regime: str = "stationary", **hyper):
    module = memcorr.load_module(derived(name, regime=regime), "torch")
    model, X, Y = problem()
    calls = []

    def closure():
        calls.append(1)
        return torch.mean((model(X) - Y) ** 2)

    optimizer = module.Memoryless(split(model.parameters(), groups), lr=1e-3, **hyper)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the range warning has its own test
        for _ in range(steps):
            optimizer.step(closure)
    return torch.cat([q.detach().reshape(-1) for q in model.parameters()]), len(calls), model, X, Y, module


@pytest.mark.parametrize("name, regime", [("adamw", "stationary"), ("heavy_ball", "stationary"), ("adam", "finite")])
def test_groups_with_equal_settings_are_one_group(name, regime):
    one, calls, *_ = run(name, 1, regime=regime)
    assert calls == 4  # one closure call per step
    for groups in (2, 3):
        many, calls, *_ = run(name, groups, regime=regime)
        assert calls == 4
        assert float((one - many).abs().max()) <= 1e-12


def test_memoryless_is_the_functional_map_on_the_whole_parameter_dict():
    module = memcorr.load_module(derived("adamw"), "torch")
    model, X, Y = problem()
    params = {k: v.detach().clone() for k, v in model.named_parameters()}

    def loss_fn(theta):
        return torch.mean((torch.func.functional_call(model, theta, (X,)) - Y) ** 2)

    expected = module.memoryless(params, loss_fn, 1e-3, order=1, eps=0.1)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = module.Memoryless(split(model.parameters(), 3), lr=1e-3, eps=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        optimizer.step(lambda: torch.mean((model(X) - Y) ** 2))
    for k, v in model.named_parameters():
        assert torch.allclose((before[k] - v.detach()) / 1e-3, expected[k], rtol=1e-10, atol=1e-12)


def test_per_group_lr_and_rates_are_refused_with_the_reason():
    module = memcorr.load_module(derived("adamw"), "torch")
    model, *_ = problem()
    ps = list(model.parameters())
    with pytest.raises(ValueError, match="same lr .*one step size"):
        module.Memoryless([{"params": ps[:2], "lr": 0.1}, {"params": ps[2:]}], lr=1e-3)
    with pytest.raises(ValueError, match="beta1.*decays.*eps, weight_decay"):
        module.Memoryless([{"params": ps[:2], "beta1": 0.5}, {"params": ps[2:]}], lr=1e-3)
    assert module.PER_GROUP == ("eps", "weight_decay")


def test_a_closure_that_calls_backward_gets_the_contract():
    module = memcorr.load_module(derived("heavy_ball"), "torch")
    model, X, Y = problem()
    optimizer = module.Memoryless(model.parameters(), lr=1e-3)

    def closure():
        loss = torch.mean((model(X) - Y) ** 2)
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="closure called backward"):
        optimizer.step(closure)
    with pytest.raises(TypeError, match="autograd graph"):
        optimizer.step(lambda: torch.mean((model(X) - Y) ** 2).detach())


def test_a_step_outside_the_expansion_warns_once():
    module = memcorr.load_module(derived("adamw"), "torch")
    model, X, Y = problem()
    optimizer = module.Memoryless(model.parameters(), lr=1e-2, eps=1e-8)  # lr·|∇²L|/(|g| + ε) is not small
    with pytest.warns(RuntimeWarning, match="outside the range") as caught:
        for _ in range(3):
            optimizer.step(lambda: torch.mean((model(X) - Y) ** 2))
    assert len([w for w in caught if "outside the range" in str(w.message)]) == 1
    quiet = module.Memoryless(model.parameters(), lr=1e-5, beta2=0.9, eps=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        quiet.step(lambda: torch.mean((model(X) - Y) ** 2))


# ---------------------------------------------------------------- against torch.optim.AdamW
SHORT = dict(beta1=0.3, beta2=0.5, eps=0.1)
DECAYS = (0.05, 0.4)  # coordinates [0, 1] in one group, [2] in the other
HS = [0.01 / 2**k for k in range(4)]
STEPS = 80  # 0.5^80: the zero state is forgotten, the stationary map applies


class TorchView:
    """The NumPy loss in the protocol the generated torch functions call (tensors in and out)."""

    def value(self, x):
        return torch.tensor(LOSS.value(x.detach().numpy()))

    def grad(self, x):
        return torch.from_numpy(LOSS.grad(x.detach().numpy()))

    def hvp(self, x, v):
        return self.dgrad(x, v)

    def dgrad(self, x, *vs):
        return torch.from_numpy(LOSS.dgrad(x.detach().numpy(), *[v.detach().numpy() for v in vs]))


def grouped_map(module, theta: np.ndarray, h: float, order: int) -> np.ndarray:
    """Ψ_0 + hΨ_1 with weight decay per coordinate, through the module's per-group functions."""
    x = torch.tensor(theta)
    p = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in (module.HYPER | SHORT).items()}
    p["weight_decay"] = torch.tensor([DECAYS[0], DECAYS[0], DECAYS[1]], dtype=torch.float64)
    p["eps"] = torch.full((3,), SHORT["eps"], dtype=torch.float64)
    args = [p[k] for k in module.HYPER]
    return sum(h**r * module._GPSI[r](x, TorchView(), *args) for r in range(order + 1)).numpy()


def backward_history(module, h):
    history = [np.asarray(X0, float)]
    for _ in range(STEPS):
        prev = history[-1]
        for _ in range(3):  # θ_{k−1} − hΨ(θ_{k−1}) = θ_k, by fixed-point sweeps
            prev = history[-1] + h * grouped_map(module, prev, h, 1)
        history.append(prev)
    return history[::-1]


def adamw_F(history, h):
    a = torch.tensor(history[0][:2], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(history[0][2:], dtype=torch.float64, requires_grad=True)
    groups = [{"params": [a], "weight_decay": DECAYS[0]}, {"params": [b], "weight_decay": DECAYS[1]}]
    optimizer = torch.optim.AdamW(groups, lr=h, betas=(SHORT["beta1"], SHORT["beta2"]), eps=SHORT["eps"])
    for theta in history:
        with torch.no_grad():
            a.copy_(torch.from_numpy(theta[:2]))
            b.copy_(torch.from_numpy(theta[2:]))
        grad = torch.from_numpy(LOSS.grad(theta))
        a.grad, b.grad = grad[:2].clone(), grad[2:].clone()
        optimizer.step()
    return (history[-1] - torch.cat([a.detach(), b.detach()]).numpy()) / h


def test_per_group_weight_decay_follows_torch_adamw_with_the_same_groups():
    module = memcorr.load_module(derived("adamw"), "torch")
    residuals: dict = {"corrected": [], "uncorrected": []}
    for h in HS:
        history = backward_history(module, h)
        F = adamw_F(history, h)
        for label, r in (("corrected", 1), ("uncorrected", 0)):
            residuals[label].append(np.linalg.norm(F - grouped_map(module, history[-1], h, r)))
    corrected, uncorrected = (Report.fitted(HS, residuals[k]) for k in ("corrected", "uncorrected"))
    assert corrected >= 1.75, residuals
    assert uncorrected < 1.3, residuals


@pytest.mark.slow
def test_the_scalar_derivation_fed_per_group_decays_falls_short():
    """Why the per-group map is derived apart: the scalar derivation pulls λ out of ∇²L[λθ], so fed a
    λ per coordinate it is wrong at first order (fitted order about 1)."""
    module = memcorr.load_module(derived("adamw"), "torch")
    scalar = type("Scalar", (), {"HYPER": module.HYPER, "_GPSI": module._PSI})
    residuals = []
    for h in HS:
        history = backward_history(scalar, h)
        residuals.append(np.linalg.norm(adamw_F(history, h) - grouped_map(scalar, history[-1], h, 1)))
    assert Report.fitted(HS, residuals) < 1.3, residuals
