"""The seed paper's Fig. 1 at small scale: real AdamW against memcorr's memoryless maps on digits.

The l-infinity distance along full-batch training between the real ``torch.optim.AdamW`` (from its
zero state) and (i) the order-0 memoryless map, (ii) the generated order-1 ``Memoryless`` optimizer,
both in the finite regime, for h ∈ {1e-4, 3e-4} with h·λ = 1e-3. Then an ε sweep (1e-6 … 1e-1) at
h = 3e-4: the ratio of the corrected to the uncorrected distance at the end. The correction holds
away from the kinks of |g|: coordinates whose gradient passes near 0 make 1/(|g| + ε) steep, and for
small ε the expansion in h stops applying there (the ratio rises towards 1 and beyond).

    python examples/trajectory.py [--quick] [--plot FILE.png]
"""

from __future__ import annotations

import argparse

import torch
from digits import generated, problem, trajectory

HS = (1e-4, 3e-4)
EPSILONS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def distances(h: float, eps: float, steps: int, quick: bool, every: int) -> dict[str, list[float]]:
    module = generated("adamw")
    model, X, y = problem(quick)
    hyper = dict(beta1=0.9, beta2=0.999, eps=eps, weight_decay=1e-3 / h)
    true = trajectory(
        model,
        X,
        y,
        lambda ps: torch.optim.AdamW(ps, lr=h, betas=(0.9, 0.999), eps=eps, weight_decay=1e-3 / h),
        steps,
        every,
    )
    out = {}
    for order, label in ((0, "order 0"), (1, "order 1")):
        mine = trajectory(model, X, y, lambda ps, r=order: module.Memoryless(ps, lr=h, order=r, **hyper), steps, every)
        out[label] = [float((a - b).abs().max()) for a, b in zip(true, mine)]
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tiny size that runs in seconds (CI)")
    ap.add_argument("--plot", help="write the two panels to this PNG file")
    args = ap.parse_args(argv)
    steps, every = (60, 10) if args.quick else (1000, 50)
    along = {h: distances(h, 1e-2, steps, args.quick, every) for h in HS}
    epsilons = (1e-5, 1e-2, 1e-1) if args.quick else EPSILONS
    sweep = {eps: distances(HS[-1], eps, steps // 2, args.quick, steps // 2) for eps in epsilons}
    print("along training (eps = 1e-2): max |theta_AdamW - theta_memoryless|")
    print(f"{'h':>8} {'step':>6} {'order 0':>11} {'order 1':>11}")
    for h, d in along.items():
        for k, (a, b) in enumerate(zip(d["order 0"], d["order 1"])):
            print(f"{h:8.0e} {k * every:6d} {a:11.3e} {b:11.3e}")
    print(f"\neps sweep at h = {HS[-1]:.0e}, after {steps // 2} steps")
    print(f"{'eps':>8} {'order 0':>11} {'order 1':>11} {'ratio':>8}")
    for eps, d in sweep.items():
        a, b = d["order 0"][-1], d["order 1"][-1]
        print(f"{eps:8.0e} {a:11.3e} {b:11.3e} {b / a:8.3f}")
    if args.plot:
        plot(along, sweep, every, args.plot)
    return {"along": along, "sweep": sweep}


def plot(along: dict, sweep: dict, every: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for h, d in along.items():
        steps = [k * every for k in range(len(d["order 0"]))]
        left.semilogy(steps[1:], d["order 0"][1:], "--", label=f"order 0, h = {h:.0e}")
        left.semilogy(steps[1:], d["order 1"][1:], "-", label=f"order 1, h = {h:.0e}")
    left.set_xlabel("step")
    left.set_ylabel("max |θ_AdamW − θ_memoryless|")
    left.legend(fontsize=7)
    eps = list(sweep)
    right.loglog(eps, [sweep[e]["order 0"][-1] for e in eps], "o--", label="order 0")
    right.loglog(eps, [sweep[e]["order 1"][-1] for e in eps], "o-", label="order 1")
    right.set_xlabel("ε")
    right.set_ylabel("distance at the end")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
