"""The seed paper's Fig. 1 at small scale: real AdamW against memcorr's memoryless maps on digits.

The l-infinity distance along full-batch training between the real ``torch.optim.AdamW`` (from its
zero state), and bias-corrected soft-sign Lion (``lion.py``, a small reference implementation of
``lion_softsign_bc.opt``), and (i) the order-0 memoryless map, (ii) the generated order-1
``Memoryless`` optimizer, both in the finite regime, for h ∈ {1e-4, 3e-4} with h·λ = 1e-3. Then
AdamW's ε sweep (1e-6 … 1e-1) at h = 3e-4: the ratio of the corrected to the uncorrected distance
at the end. The correction holds away from the kinks of |g|: coordinates whose gradient passes near
0 make 1/(|g| + ε) steep, and for small ε the expansion in h stops applying there (the ratio rises
towards 1 and beyond).

    python examples/trajectory.py [--quick] [--plot FILE.png]
"""

from __future__ import annotations

from pathlib import Path

import torch
from digits import arguments, generated, problem, pyplot, save, trajectory
from lion import SoftSignLion

HS = (1e-4, 3e-4)
EPSILONS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
LION = str(Path(__file__).with_name("lion_softsign_bc.opt"))


def adamw(h: float, eps: float):
    """The program, the real optimizer and its hyperparameters (h·λ = 1e-3)."""
    hyper = dict(beta1=0.9, beta2=0.999, eps=eps, weight_decay=1e-3 / h)
    make = lambda ps: torch.optim.AdamW(ps, lr=h, betas=(0.9, 0.999), eps=eps, weight_decay=1e-3 / h)  # noqa: E731
    return "adamw", make, hyper


def lion(h: float, eps: float):
    hyper = dict(beta1=0.9, beta2=0.99, eps=eps, wd=1e-3 / h)
    return LION, lambda ps: SoftSignLion(ps, lr=h, **hyper), hyper


def distances(case, h: float, eps: float, steps: int, quick: bool, every: int) -> dict[str, list[float]]:
    name, make, hyper = case(h, eps)
    module = generated(name)
    model, X, y = problem(quick)
    true = trajectory(model, X, y, make, steps, every)
    out = {}
    for order, label in ((0, "order 0"), (1, "order 1")):
        mine = trajectory(model, X, y, lambda ps, r=order: module.Memoryless(ps, lr=h, order=r, **hyper), steps, every)
        out[label] = [float((a - b).abs().max()) for a, b in zip(true, mine)]
    return out


def main(argv=None) -> dict:
    args = arguments(__doc__, argv)
    steps, every = (40, 10) if args.quick else (1000, 50)
    along = {h: distances(adamw, h, 1e-2, steps, args.quick, every) for h in HS}
    along_lion = {h: distances(lion, h, 1e-2, steps, args.quick, every) for h in HS}
    epsilons = (1e-5, 1e-2, 1e-1) if args.quick else EPSILONS
    sweep = {eps: distances(adamw, HS[-1], eps, steps // 2, args.quick, steps // 2) for eps in epsilons}
    for label, runs in (("AdamW", along), ("soft-sign Lion", along_lion)):
        print(f"along training (eps = 1e-2): max |theta_{label} - theta_memoryless|".replace(" Lion", "_Lion"))
        print(f"{'h':>8} {'step':>6} {'order 0':>11} {'order 1':>11}")
        for h, d in runs.items():
            for k, (a, b) in enumerate(zip(d["order 0"], d["order 1"])):
                print(f"{h:8.0e} {k * every:6d} {a:11.3e} {b:11.3e}")
    print(f"\neps sweep at h = {HS[-1]:.0e}, after {steps // 2} steps")
    print(f"{'eps':>8} {'order 0':>11} {'order 1':>11} {'ratio':>8}")
    for eps, d in sweep.items():
        a, b = d["order 0"][-1], d["order 1"][-1]
        print(f"{eps:8.0e} {a:11.3e} {b:11.3e} {b / a:8.3f}")
    if args.plot:
        plot({"AdamW": along, "soft-sign Lion": along_lion}, sweep, every, args.plot)
    return {"along": along, "lion": along_lion, "sweep": sweep}


def plot(along: dict, sweep: dict, every: int, path: str) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for (label, runs), color in zip(along.items(), ("C0", "C3")):
        for h, d in runs.items():
            steps = [k * every for k in range(len(d["order 0"]))]
            style = dict(color=color, lw=1.0 if h == HS[0] else 2.0)
            left.semilogy(steps[1:], d["order 0"][1:], "--", **style, label=f"{label} order 0, h = {h:.0e}")
            left.semilogy(steps[1:], d["order 1"][1:], "-", **style, label=f"{label} order 1, h = {h:.0e}")
    left.set_xlabel("step")
    left.set_ylabel("max |θ_true − θ_memoryless|")
    left.legend(fontsize=6)
    eps = list(sweep)
    right.loglog(eps, [sweep[e]["order 0"][-1] for e in eps], "o--", label="order 0")
    right.loglog(eps, [sweep[e]["order 1"][-1] for e in eps], "o-", label="order 1")
    right.set_xlabel("ε")
    right.set_ylabel("distance at the end")
    right.legend(fontsize=7)
    save(fig, path)


if __name__ == "__main__":
    main()
