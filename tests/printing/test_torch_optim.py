"""The bundled programs that mirror ``torch.optim`` against the real classes (issue "The library").

The truth is ``torch.optim`` itself, not a copy of its formula: the class is driven, in float64,
along a history built backwards on the generated memoryless map (method.md §6, the residual),
from its own zero state; after the history its step at the last iterate is ``F_true``, and
``|F_true − Ψ|`` must shrink like ``h²`` for the corrected map and only like ``h`` without the
correction. The histories are long enough for bias corrections and schedules to have settled
(short-memory hyperparameters: every transient below 1e-20), so the stationary map applies.
"""

import numpy as np
import pytest
from conftest import ROOT

import memcorr
from memcorr.losses import builtin
from memcorr.verify.checks import Report, _backward

torch = pytest.importorskip("torch")

LOSS, X0 = builtin("nonconvex")
HS = [0.01 / 2**k for k in range(4)]
# the slowest transient, 0.5^80 ~ 1e-24, is gone; the backward history (an ascent) stays near X0
STEPS = 80
SHORT = dict(beta1=0.3, beta2=0.5, eps=0.1, weight_decay=0.05)
MIRRORS = {  # program: (torch class, hyperparameters with short memory, fixed arguments)
    "sgd_momentum": ("SGD", dict(momentum=0.5, dampening=0.2, weight_decay=0.05), {}),
    "sgd_nesterov": ("SGD", dict(momentum=0.5, weight_decay=0.05), dict(nesterov=True)),
    "adam": ("Adam", SHORT, {}),
    "adamw": ("AdamW", SHORT, {}),
    "nadam": ("NAdam", dict(SHORT, momentum_decay=50.0), {}),  # 0.96^(50 t): the schedule settles
    "adamax": ("Adamax", SHORT, {}),
    "rmsprop": ("RMSprop", dict(alpha=0.5, eps=0.1, weight_decay=0.05, momentum=0.5), {}),
    "adadelta": ("Adadelta", dict(rho=0.5, eps=1.0, weight_decay=0.05), {}),  # h << eps/|g|^2
    "radam": ("RAdam", dict(SHORT, beta2=0.7), {}),  # rho_inf = 5.67 > 5: rectified from step 10 on
}
# torch takes another branch where an argument is at its default (RMSprop without momentum)
DEFAULT_BRANCHES = {"rmsprop-no-momentum": ("rmsprop", dict(MIRRORS["rmsprop"][1], momentum=0.0))}


def torch_arguments(hyper: dict) -> dict:
    """The program's hyperparameters as the class's arguments (``beta1``, ``beta2`` → ``betas``)."""
    out = {k: v for k, v in hyper.items() if k not in ("beta1", "beta2")}
    if "beta1" in hyper:
        out["betas"] = (hyper["beta1"], hyper["beta2"])
    return out


def torch_F(cls, arguments: dict, history: list, h: float) -> np.ndarray:
    """The class driven along ``history`` from its zero state: its step at the last iterate, over h."""
    p = torch.tensor(history[0], dtype=torch.float64, requires_grad=True)
    optimizer = getattr(torch.optim, cls)([p], lr=h, **arguments)
    for theta in history:
        with torch.no_grad():
            p.copy_(torch.from_numpy(theta))
        p.grad = torch.from_numpy(LOSS.grad(theta))
        optimizer.step()
    return (history[-1] - p.detach().numpy()) / h


def test_every_torch_mirror_is_bundled():
    assert set(MIRRORS) <= {p.stem for p in (ROOT / "derivations").glob("*.opt")}


@pytest.mark.slow
@pytest.mark.parametrize("name", [*MIRRORS, *DEFAULT_BRANCHES])
def test_the_real_torch_class_follows_the_corrected_map_to_second_order(name):
    if name in DEFAULT_BRANCHES:
        name, hyper = DEFAULT_BRANCHES[name]
        cls, _, fixed = MIRRORS[name]
    else:
        cls, hyper, fixed = MIRRORS[name]
    d = memcorr.derive(name)
    assert set(hyper) <= set(d.model.params)
    module = memcorr.load_module(d)
    residuals: dict = {"corrected": [], "uncorrected": []}
    for h in HS:
        history = _backward(module, LOSS, X0, h, 1, STEPS, hyper, 3)
        F = torch_F(cls, torch_arguments(hyper) | fixed, history, h)
        for label, r in (("corrected", 1), ("uncorrected", 0)):
            residuals[label].append(np.linalg.norm(F - module.memoryless(history[-1], LOSS, h, order=r, **hyper)))
    corrected, uncorrected = (Report.fitted(HS, residuals[k]) for k in ("corrected", "uncorrected"))
    assert corrected >= 1.75, residuals
    assert uncorrected < 1.3, residuals
