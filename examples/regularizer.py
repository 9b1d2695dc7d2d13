"""The sign of memory's implicit regularizer along AdamW training on the digits MLP.

Along the real ``torch.optim.AdamW`` trajectory, memcorr's generated torch ``penalty`` (h·G, the
implied loss perturbation of docs/method.md §4) and ``‖∇L‖₁`` at checkpoints, for β2 ∈ {0.8, 0.9, 0.95,
0.99, 0.999} at β1 = 0.9. memcorr's G for AdamW is (β1 − β2)/((1 − β1)(1 − β2)) · (‖∇L‖₁ + decay
terms): the sign flips where β2 crosses β1. Lion's soft-sign G (evaluated at its defaults on the same
iterates) stays non-negative.

    python examples/regularizer.py [--quick] [--plot FILE.png]
"""

from __future__ import annotations

import torch
from digits import arguments, functional_loss, generated, problem, pyplot, save, trajectory

BETA1, BETA2S = 0.9, (0.8, 0.9, 0.95, 0.99, 0.999)
H, DECAY = 1e-3, 1.0  # h·λ = 1e-3


def along_training(quick: bool) -> dict:
    model, X, y = problem(quick)
    adamw, lion = generated("adamw", regime="stationary"), generated("lion_softsign", regime="stationary")
    steps = 60 if quick else 600
    out = {}
    for beta2 in BETA2S:
        hyper = dict(beta1=BETA1, beta2=beta2, eps=1e-8, weight_decay=DECAY)
        path = trajectory(
            model,
            X,
            y,
            lambda ps, b=beta2: torch.optim.AdamW(ps, lr=H, betas=(BETA1, b), eps=1e-8, weight_decay=DECAY),
            steps,
            every=steps // 6,
        )
        rows = []
        for flat in path:
            params = _unflatten(model, flat)
            loss_fn = functional_loss(model, X, y)
            grad = torch.autograd.grad(loss_fn(params), list(params.values()))
            rows.append(
                (
                    float(adamw.penalty(params, loss_fn, H, **hyper).detach()) / H,
                    float(sum(g.abs().sum() for g in grad)),
                    float(lion.penalty(params, loss_fn, H).detach()) / H,
                )
            )
        out[beta2] = rows
    return out


def _unflatten(model, flat: torch.Tensor) -> dict:
    params, i = {}, 0
    for name, p in model.named_parameters():
        params[name] = flat[i : i + p.numel()].view_as(p).clone().requires_grad_(True)
        i += p.numel()
    return params


def main(argv=None) -> dict:
    args = arguments(__doc__, argv)
    results = along_training(args.quick)
    print(f"{'beta2':>6} {'checkpoint':>10} {'G (AdamW)':>12} {'||grad L||_1':>13} {'G (Lion soft)':>14}")
    for beta2, rows in results.items():
        for k, (g_adamw, l1, g_lion) in enumerate(rows):
            print(f"{beta2:6} {k:10d} {g_adamw:12.4g} {l1:13.4g} {g_lion:14.4g}")
    if args.plot:
        plot(results, args.plot)
    return results


def plot(results: dict, path: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for beta2, rows in results.items():
        ax.plot([r[0] for r in rows], "o-", label=f"AdamW, β2 = {beta2}")
    ax.plot([r[2] for r in results[BETA2S[0]]], "k--", label="Lion (soft sign), defaults")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("checkpoint along AdamW training")
    ax.set_ylabel("G (the implied loss is L + hG)")
    ax.legend(fontsize=7)
    save(fig, path)


if __name__ == "__main__":
    main()
