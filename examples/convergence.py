"""Order of convergence on the digits MLP: real torch.optim against memcorr's generated Memoryless.

Over a fixed horizon T, with h halved three times, the l-infinity distance between the parameters
of the real optimizer (from its zero state) and of the generated finite-regime ``Memoryless`` of
order 0 and 1. Theory (method.md §1): the order-r map's step differs from the true one by O(h^(r+2)),
and T/h such errors leave a distance O(h^(r+1)) at the horizon: slope 1 for order 0, 2 for order 1.

    python examples/convergence.py [--quick] [--plot FILE.png]
"""

from __future__ import annotations

import argparse

import torch
from digits import generated, problem, slope, trajectory

# The distances settle at their slopes once the horizon holds many memory times (1/(1 - beta)
# steps) at the largest h: at beta = 0.9, 40 steps give slopes 0.7 and 1.4, 400 steps 1.0 and 2.0.
# --quick runs momentum 0.5 (memory of 2 steps) to stay within seconds.
CASES = {  # program: (the real optimizer, memcorr's hyperparameters, steps at the largest h)
    "sgd_momentum": (lambda ps, h: torch.optim.SGD(ps, lr=h, momentum=0.9), dict(momentum=0.9), 400),
    "adam": (
        lambda ps, h: torch.optim.Adam(ps, lr=h, betas=(0.9, 0.99), eps=0.1),
        dict(beta1=0.9, beta2=0.99, eps=0.1),
        400,
    ),
}
QUICK = {"sgd_momentum": (lambda ps, h: torch.optim.SGD(ps, lr=h, momentum=0.5), dict(momentum=0.5), 40)}


def distances(name: str, quick: bool) -> tuple[list[float], dict[int, list[float]]]:
    make_true, hyper, steps0 = (QUICK if quick else CASES)[name]
    module = generated(name)
    model, X, y = problem(quick)
    h0 = 0.002
    horizon = steps0 * h0
    hs = [h0 / 2**k for k in range(4)]
    errors: dict[int, list[float]] = {0: [], 1: []}
    for h in hs:
        steps = round(horizon / h)
        true = trajectory(model, X, y, lambda ps, h=h: make_true(ps, h), steps)[-1]
        for order in errors:
            mine = trajectory(
                model, X, y, lambda ps, h=h, order=order: module.Memoryless(ps, lr=h, order=order, **hyper), steps
            )[-1]
            errors[order].append(float((true - mine).abs().max()))
    return hs, errors


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tiny size that runs in seconds (CI)")
    ap.add_argument("--plot", help="write the log-log plot to this PNG file")
    args = ap.parse_args(argv)
    names = ["sgd_momentum"] if args.quick else list(CASES)
    results = {name: distances(name, args.quick) for name in names}
    slopes = {}
    print(f"{'program':14} {'h':>10} {'order 0':>12} {'order 1':>12}")
    for name, (hs, errors) in results.items():
        for i, h in enumerate(hs):
            print(f"{name:14} {h:10.5f} {errors[0][i]:12.3e} {errors[1][i]:12.3e}")
        slopes[name] = {order: slope(hs, e) for order, e in errors.items()}
        print(f"{name:14} fitted slopes: order 0 {slopes[name][0]:.2f}, order 1 {slopes[name][1]:.2f}")
    if args.plot:
        plot(results, args.plot)
    return slopes


def plot(results, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, (hs, errors) in results.items():
        for order, e in errors.items():
            ax.loglog(hs, e, "o-", label=f"{name}, Memoryless order {order}")
    h0 = results[next(iter(results))][0]
    for p, style in ((1, ":"), (2, "--"), (3, "-.")):
        ax.loglog(h0, [1e-2 * (h / h0[0]) ** p for h in h0], "k" + style, lw=0.8, label=f"slope {p}")
    ax.set_xlabel("step size h")
    ax.set_ylabel("max |θ_true − θ_memoryless| at the horizon")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
