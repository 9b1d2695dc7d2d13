"""Shared pieces of the examples: scikit-learn's bundled digits, a GELU MLP in float64, training loops.

Input: the size (``quick`` for CI) and a seed. Output: the problem (model, inputs, labels), loss
closures in the two conventions memcorr's generated torch code takes, and parameter trajectories.
Nothing here is derived by hand: every memoryless optimizer and penalty comes from memcorr.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from sklearn.datasets import load_digits

import memcorr

torch.set_default_dtype(torch.float64)


def problem(quick: bool, seed: int = 0):
    """The 8x8 digits (no download), standardized, and an MLP 64 → width → 10 with GELU."""
    X, y = load_digits(return_X_y=True)
    samples, width = (120, 12) if quick else (400, 24)
    X = (X[:samples] - X[:samples].mean(0)) / (X[:samples].std(0) + 1.0)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.GELU(), torch.nn.Linear(width, 10))
    return model, torch.tensor(X), torch.tensor(y[:samples])


def loss_of(model, X, y):
    """The full-batch cross-entropy as a closure of the model (for ``Memoryless.step``)."""
    return lambda: torch.nn.functional.cross_entropy(model(X), y)


def functional_loss(model, X, y):
    """The same loss as a function of a parameter dict (for ``penalty``)."""
    return lambda params: torch.nn.functional.cross_entropy(torch.func.functional_call(model, params, (X,)), y)


def generated(name: str, regime: str = "finite", order: int = 1):
    """memcorr's generated torch module for a bundled program."""
    return memcorr.load_module(memcorr.derive(name, regime=regime, order=order), backend="torch")


def flat(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def trajectory(model0, X, y, make_optimizer, steps: int, every: int = 1, penalty=None) -> list[torch.Tensor]:
    """Train a copy of ``model0`` for ``steps``; the flattened parameters every ``every`` steps.

    A ``torch.optim`` optimizer gets ``backward`` on the loss (plus ``penalty(params, loss_fn, n)``
    at step ``n`` when given); a memcorr ``Memoryless`` gets the closure it differentiates itself."""
    model = copy.deepcopy(model0)
    optimizer = make_optimizer(model.parameters())
    closure, loss_fn = loss_of(model, X, y), functional_loss(model, X, y)
    out = [flat(model)]
    for step in range(1, steps + 1):
        if type(optimizer).__name__ == "Memoryless":
            optimizer.step(closure)
        else:
            optimizer.zero_grad()
            loss = closure()
            if penalty is not None:
                loss = loss + penalty(dict(model.named_parameters()), loss_fn, step - 1)
            loss.backward()
            optimizer.step()
        if step % every == 0:
            out.append(flat(model))
    return out


def slope(hs, errors) -> float:
    """The fitted order: the slope of log(error) against log(h)."""
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


def arguments(doc: str, argv=None) -> argparse.Namespace:
    """Every example's command line: ``--quick`` (the CI size) and ``--plot FILE.png``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tiny size that runs in seconds (CI)")
    ap.add_argument("--plot", help="write the figure to this PNG file")
    return ap.parse_args(argv)


def pyplot():
    """matplotlib's pyplot on its file backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
