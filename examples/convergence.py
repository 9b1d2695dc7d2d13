"""Order of convergence on the digits MLP: real torch.optim against memcorr's generated Memoryless.

Over a fixed horizon T, with h halved three times, the l-infinity distance between the parameters
of the real optimizer (from its zero state) and of the generated finite-regime ``Memoryless`` of
order 0 and 1; and, for SGD, orders 0 to 2 of the stationary regime with torch's momentum buffer
started on the invariant manifold. Theory (docs/method.md §1, §2): the order-r map's step differs from
the true one by O(h^(r+2)), and T/h such errors leave a distance O(h^(r+1)) at the horizon.

    python examples/convergence.py [--quick] [--plot FILE.png]
"""

from __future__ import annotations

import copy

import torch
from digits import arguments, flat, functional_loss, generated, loss_of, problem, pyplot, save, slope, trajectory

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


def from_the_manifold(quick: bool) -> tuple[list[float], dict[int, list[float]]]:
    """Orders 0, 1, 2 (the stationary regime; the finite one is first order): torch's SGD starts
    with its momentum buffer on the invariant manifold, memcorr's order-2 ``initial_state``."""
    module = generated("sgd_momentum", regime="stationary", order=2)
    model, X, y = problem(quick)
    momentum, steps0, h0 = (0.5, 20, 0.004) if quick else (0.9, 200, 0.002)
    hs = [h0 / 2**k for k in range(4)]
    errors: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for h in hs:
        steps = round(steps0 * h0 / h)
        real = copy.deepcopy(model)
        sgd = torch.optim.SGD(real.parameters(), lr=h, momentum=momentum)
        params = dict(real.named_parameters())
        manifold = module.initial_state(params, functional_loss(real, X, y), h, order=2, momentum=momentum)["buf"]
        for name, p in params.items():
            sgd.state[p]["momentum_buffer"] = manifold[name].clone()
        closure = loss_of(real, X, y)
        for _ in range(steps):
            sgd.zero_grad()
            closure().backward()
            sgd.step()
        for order in errors:
            mine = trajectory(
                model, X, y, lambda ps, h=h, r=order: module.Memoryless(ps, lr=h, order=r, momentum=momentum), steps
            )[-1]
            errors[order].append(float((flat(real) - mine).abs().max()))
    return hs, errors


def main(argv=None) -> dict:
    args = arguments(__doc__, argv)
    names = ["sgd_momentum"] if args.quick else list(CASES)
    results = {name: distances(name, args.quick) for name in names}
    results["sgd_momentum (manifold start)"] = from_the_manifold(args.quick)
    slopes = {}
    print(f"{'program':30} {'h':>10} {'order 0':>12} {'order 1':>12} {'order 2':>12}")
    for name, (hs, errors) in results.items():
        for i, h in enumerate(hs):
            print(f"{name:30} {h:10.5f} " + " ".join(f"{errors[r][i]:12.3e}" for r in errors))
        slopes[name] = {order: slope(hs, e) for order, e in errors.items()}
        fitted = ", ".join(f"order {r} {v:.2f}" for r, v in slopes[name].items())
        print(f"{name:30} fitted slopes: {fitted}")
    if args.plot:
        plot(results, args.plot)
    return slopes


def plot(results, path: str) -> None:
    plt = pyplot()
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
    save(fig, path)


if __name__ == "__main__":
    main()
