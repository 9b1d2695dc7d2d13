"""Random batches on the digits MLP: the two parts of momentum's implied loss, and how the noise part
scales with the batch size.

``torch.optim.SGD(momentum=0.9)`` is trained on batches of 32 examples drawn at random. At checkpoints
along the run, memcorr's random-batch derivation of ``sgd_momentum`` gives ``G = G_full + G_noise``
(docs/method.md §7): ``G_full = β/(2(1−β)²) ‖∇L‖²`` on the whole data set (the generated full-batch
``penalty``) and ``G_noise = β/(2(1−β)(1+β)) V_B``, ``V_B`` the gradient noise of batches of ``B``
examples, estimated by the generated random-batch ``penalty`` from per-example losses (averaged over
draws). The prediction ``V_B = V_1/B`` shows as ``B·G_noise`` independent of ``B``.

    python examples/batches.py [--quick] [--plot FILE.png]
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from digits import arguments, functional_loss, problem, pyplot, save

import memcorr

H, MOMENTUM, TRAIN_BATCH, SIZES = 0.05, 0.9, 32, (8, 32, 128)
QUICK_SIZES = (8, 32)  # --quick (the test): the largest batch is three quarters of the cost, and two sizes show 1/B


def per_example(model, X, y, indices):
    """The losses of the examples ``indices``, as a function of a parameter dict."""
    return lambda params: torch.nn.functional.cross_entropy(
        torch.func.functional_call(model, params, (X[indices],)), y[indices], reduction="none"
    )


def along_training(quick: bool) -> list[dict]:
    model0, X, y = problem(quick)
    full = memcorr.load_module(memcorr.derive("sgd_momentum"), backend="torch")
    noisy = memcorr.load_module(memcorr.derive("sgd_momentum", batches="random"), backend="torch")
    steps, draws = (40, 60) if quick else (400, 100)
    model = copy.deepcopy(model0)
    optimizer = torch.optim.SGD(model.parameters(), lr=H, momentum=MOMENTUM)
    gen = torch.Generator().manual_seed(1)
    rows = []
    for step in range(steps + 1):
        if step % (steps // 4) == 0:
            rows.append(checkpoint(model, X, y, full, noisy, draws, gen, step, QUICK_SIZES if quick else SIZES))
        indices = torch.randint(len(y), (TRAIN_BATCH,), generator=gen)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X[indices]), y[indices]).backward()
        optimizer.step()
    return rows


def checkpoint(model, X, y, full, noisy, draws, gen, step, sizes) -> dict:
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    g_full = float(full.penalty(params, functional_loss(model, X, y), 1.0, momentum=MOMENTUM).detach())
    row = {"step": step, "G_full": g_full}
    for B in sizes:
        estimates = []
        for _ in range(draws):
            indices = torch.randint(len(y), (B,), generator=gen)
            # the whole G on one batch minus its full-batch part on that batch: the noise part c·V̂_B
            loss_fn = per_example(model, X, y, indices)
            whole = float(noisy.penalty(params, loss_fn, 1.0, momentum=MOMENTUM).detach())
            mean = float(full.penalty(params, lambda p, f=loss_fn: f(p).mean(), 1.0, momentum=MOMENTUM).detach())
            estimates.append(whole - mean)
        row[B] = float(np.mean(estimates))
    return row


def main(argv=None) -> list[dict]:
    args = arguments(__doc__, argv)
    rows = along_training(args.quick)
    sizes = [B for B in SIZES if B in rows[0]]  # the sizes along_training measured
    print(f"{'step':>5} {'G_full':>10} " + " ".join(f"{'G_noise B=' + str(B):>15} {'B*G_noise':>10}" for B in sizes))
    for r in rows:
        cells = " ".join(f"{r[B]:>15.4g} {B * r[B]:>10.4g}" for B in sizes)
        print(f"{r['step']:>5} {r['G_full']:>10.4g} {cells}")
    if args.plot:
        plot(rows, args.plot)
    return rows


def plot(rows: list[dict], path: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["G_full"] for r in rows], "k-o", label="G_full")
    for B in (B for B in SIZES if B in rows[0]):
        ax.plot(steps, [r[B] for r in rows], "o--", label=f"G_noise, B = {B}")
    ax.set_yscale("log")
    ax.set_xlabel("step of SGD(momentum = 0.9), batches of 32")
    ax.set_ylabel("parts of G (the implied loss is L + hG)")
    ax.legend(fontsize=7)
    save(fig, path)


if __name__ == "__main__":
    main()
