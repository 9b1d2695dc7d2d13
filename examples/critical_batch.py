"""AdamW's memory on the digits MLP, batch size by batch size: which coordinates it regularizes, measured
on torch.optim.AdamW and predicted by memcorr's reading at large noise (docs/method.md §7).

``torch.optim.AdamW`` (β = (0.9, 0.99), ε = 1e-8, no weight decay, lr 1e-4) is trained on batches of
``B`` examples drawn at random. Once its memory has settled, at every step of a window, its step
``F_true`` is compared with the memoryless step ``F_memoryless``: ``m`` and ``v`` rebuilt from the same
batches' gradients, all taken at the current iterate. The mean of ``(F_true − F_memoryless)/h`` over the
window is the memory term ``E M``. memcorr's ``d.large_noise.correction`` (``Ψ̄_1``) predicts it; its batch
moments are taken over fresh batches of the same size at the window's middle.

A coordinate ``j`` is regularized where the memory term descends ``Φ = Σ √(g² + σ²)``, whose gradient is
``u = ∇²L(P g)``: ``M_j u_j > 0``. The table gives the fraction of the coordinates so regularized,
weighted by ``u_j²``: by the one-coordinate weight (``c(σ_j²/g_j²) > 0``), by ``Ψ̄_1`` and as measured;
how often ``Ψ̄_1`` and the measurement agree on the sign (coordinates where the measured mean is three
standard errors from 0); ``⟨u, M⟩`` measured and predicted; and the cosine between the two vectors.

    python examples/critical_batch.py [--quick] [--plot FILE.png]
"""

from __future__ import annotations

import copy

import numpy as np
import sympy as sp
import torch
from digits import arguments, problem, pyplot, save

import memcorr
from memcorr.algebra.evaluate import evaluate
from memcorr.losses import BatchLoss, from_torch
from memcorr.potential.large_noise import RHO

BETAS, EPS, LR = (0.9, 0.99), 1e-8, 1e-4
SIZES, QUICK_SIZES = (1, 4, 16, 64, 256), (1, 64)


class _Sampled(BatchLoss):
    """The data set's loss, with the batch moments taken over sampled batches of one size."""

    def __init__(self, full, parts):
        super().__init__(parts)
        self.full = full

    def value(self, x):
        return self.full.value(x)

    def grad(self, x):
        return self.full.grad(x)

    def hvp(self, x, v):
        return self.full.hvp(x, v)


def reading():
    """memcorr's reading at the run's parameters: ``Ψ̄_1``, the parameter values, the weight ``c(ρ)`` as a
    NumPy function and ``ρ*``."""
    r = memcorr.derive("adamw", batches="random").large_noise
    symbols = {s.name: s for s in r.correction.free_symbols | r.weight.free_symbols}
    values = {symbols["beta1"]: BETAS[0], symbols["beta2"]: BETAS[1], symbols["eps"]: EPS}
    values[symbols["weight_decay"]] = 0.0
    weight = sp.lambdify(RHO, r.weight.subs(values), "numpy")
    return r.correction.subs(values), values, weight, float(r.ratio.subs(values))


def measure(B: int, quick: bool, read, seed: int = 0) -> dict:
    model, X, y = problem(quick)
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def loss(theta, idx):
        params = dict(zip(names, (t.reshape(s) for t, s in zip(torch.split(theta, sizes), shapes))))
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, params, (X[idx],)), y[idx])

    batch_grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))
    settle, window, memory = (450, 30, 400) if quick else (900, 60, 600)
    trained = copy.deepcopy(model)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    lags = torch.arange(memory)
    w1, w2 = ((1 - b) * b**lags for b in BETAS)
    w1, w2 = w1 / w1.sum(), w2 / w2.sum()  # the memory cut at `memory` steps
    history, terms, middle = [], [], None
    for step in range(settle + window):
        idx = torch.randint(len(y), (B,), generator=gen)
        history = [idx, *history][:memory]
        theta = torch.cat([p.detach().reshape(-1) for p in trained.parameters()])
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(trained(X[idx]), y[idx]).backward()
        optimizer.step()
        if step >= settle:
            F_true = (theta - torch.cat([p.detach().reshape(-1) for p in trained.parameters()])) / LR
            G = batch_grads(theta, torch.stack(history))
            F_memoryless = (w1[:, None] * G).sum(0) / (((w2[:, None] * G * G).sum(0)).sqrt() + EPS)
            terms.append(((F_true - F_memoryless) / LR).numpy())
            if step == settle + window // 2:
                middle = theta.numpy()
    M, M_se = np.mean(terms, axis=0), np.std(terms, axis=0) / np.sqrt(len(terms))
    draws = 100 if quick else 150
    return compare(M, M_se, middle, lambda idx: lambda w: loss(w, idx), len(y), B, gen, draws, read)


def compare(M, M_se, theta, loss_on, n: int, B: int, gen, draws: int, read) -> dict:
    """The measured memory term ``M`` against ``Ψ̄_1`` at ``theta`` (module docstring)."""
    correction, values, weight, _ = read
    full = from_torch(loss_on(torch.arange(n)))
    parts = [from_torch(loss_on(torch.randint(n, (B,), generator=gen))) for _ in range(draws)]
    with np.errstate(all="ignore"):  # coordinates whose gradient is 0 in every batch (constant pixels): 0/0
        predicted = np.nan_to_num(np.asarray(evaluate(correction, _Sampled(full, parts), theta, values), dtype=float))
        g = full.grad(theta)
        variance = np.mean([(p.grad(theta) - g) ** 2 for p in parts], axis=0)
        live = g * g + variance > 0
        P = np.where(live, 1 / np.sqrt(np.where(live, g * g + variance, 1.0)), 0.0)
        rho = np.where(live, variance / np.maximum(g * g, 1e-300), 0.0)
        c = weight(np.minimum(rho, 1e12))
    u = full.hvp(theta, P * g)
    w = u * u
    sure = live & (np.abs(M * u) > 3 * np.abs(M_se * u))
    return {
        "B": B,
        "median rho": float(np.median(rho[live])),
        "reg (c)": float(np.sum(w[live] * (c[live] > 0)) / np.sum(w[live])),
        "reg (predicted)": float(np.sum(w[sure] * (predicted[sure] * u[sure] > 0)) / np.sum(w[sure])),
        "reg (measured)": float(np.sum(w[sure] * (M[sure] * u[sure] > 0)) / np.sum(w[sure])),
        "sign agrees": float(np.mean(np.sign(M[sure] * u[sure]) == np.sign(predicted[sure] * u[sure]))),
        "<u,M> measured": float(u @ M),
        "<u,M> predicted": float(u @ predicted),
        "cosine": float(M @ predicted / (np.linalg.norm(M) * np.linalg.norm(predicted))),
    }


COLUMNS = ("median rho", "reg (c)", "reg (predicted)", "reg (measured)", "sign agrees")
COLUMNS += ("<u,M> measured", "<u,M> predicted", "cosine")


def main(argv=None) -> list[dict]:
    args = arguments(__doc__, argv)
    read = reading()
    rows = [measure(B, args.quick, read) for B in (QUICK_SIZES if args.quick else SIZES)]
    print(f"rho* = {read[3]:.4g} at beta = {BETAS}: the one-coordinate weight c changes sign there")
    print(f"{'B':>4} " + " ".join(f"{c:>15}" for c in COLUMNS))
    for r in rows:
        print(f"{r['B']:>4} " + " ".join(f"{r[c]:>15.4g}" for c in COLUMNS))
    if args.plot:
        plot(rows, args.plot)
    return rows


def plot(rows: list[dict], path: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    Bs = [r["B"] for r in rows]
    ax.plot(Bs, [r["reg (measured)"] for r in rows], "k-o", label="measured (torch.optim.AdamW)")
    ax.plot(Bs, [r["reg (predicted)"] for r in rows], "C0--s", label="memcorr: the correction at large noise")
    ax.plot(Bs, [r["reg (c)"] for r in rows], "C1:^", label="memcorr: one-coordinate weight c(σ²/g²) > 0")
    ax.set_xscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("coordinates AdamW's memory regularizes (weighted)")
    ax.legend(fontsize=7)
    save(fig, path)


if __name__ == "__main__":
    main()
