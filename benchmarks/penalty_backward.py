"""The generated torch ``penalty`` against a hand-written one, on an MLP with more than 100k parameters.

Heavy ball's implied loss is ``L + hG`` with ``G = β/(2(1−β)²) ‖∇L‖²`` (memcorr derives it). The
hand-written penalty is the usual double-backward code: ``autograd.grad(loss, params,
create_graph=True)``, the squared norm, ``backward``. The generated one is
``heavy_ball_torch.penalty(dict(model.named_parameters()), loss_fn, h)``. Both are timed the same
way — build the penalty, then one backward pass — median over interleaved repeats, side by side;
the gradients they leave are compared. Target: generated ≤ 1.1× hand-written.

Beside them, the random-batch penalty (``--batches random``): the same batch split into ``--micro K``
micro-batches, ``loss_fn`` returning their ``K`` losses, and ``G`` with its noise part ``c V̂`` estimated
from the split — ``K`` gradients with their graphs, then the double backward through all of them.

    python benchmarks/penalty_backward.py [--repeat 30] [--hidden 320] [--batch 2048] [--micro 8]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import memcorr  # noqa: E402

BETA, H = 0.9, 0.01


def problem(hidden: int, batch: int):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden), torch.nn.Tanh()
    )
    model.append(torch.nn.Linear(hidden, 10))
    X, Y = torch.randn(batch, 64), torch.randn(batch, 10)
    return model, X, Y


def hand_written(model, X, Y):
    params = list(model.parameters())
    loss = torch.mean((model(X) - Y) ** 2)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    penalty = H * BETA / (2 * (1 - BETA) ** 2) * sum(g.pow(2).sum() for g in grads)
    return penalty


def generated(module, model, X, Y):
    def loss_fn(params):
        return torch.mean((torch.func.functional_call(model, params, (X,)) - Y) ** 2)

    return module.penalty(dict(model.named_parameters()), loss_fn, H, beta=BETA)


def random_batches(module, model, X, Y, micro: int):
    def loss_fn(params):
        out = (torch.func.functional_call(model, params, (X,)) - Y) ** 2
        return out.reshape(micro, -1).mean(1)  # the K micro-batch losses of the batch

    return module.penalty(dict(model.named_parameters()), loss_fn, H, beta=BETA)


def timed(builds: dict, model, repeat):
    """Median seconds to build each penalty and to run its backward pass, the runs interleaved (so
    that the machine's drift falls on both alike); the gradient each leaves."""
    times = {name: ([], []) for name in builds}
    grads = {}
    for _ in range(repeat):
        for name, build in builds.items():
            model.zero_grad()
            start = time.perf_counter()
            penalty = build()
            middle = time.perf_counter()
            penalty.backward()
            end = time.perf_counter()
            times[name][0].append(middle - start)
            times[name][1].append(end - middle)
            grads[name] = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    return {name: (statistics.median(b), statistics.median(w), grads[name]) for name, (b, w) in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=320)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--micro", type=int, default=8, help="micro-batches of the random-batch penalty")
    args = ap.parse_args()
    torch.set_num_threads(2)
    module = memcorr.load_module(memcorr.derive("heavy_ball"), backend="torch")
    model, X, Y = problem(args.hidden, args.batch)
    size = sum(p.numel() for p in model.parameters())
    noisy = memcorr.load_module(memcorr.derive("heavy_ball", batches="random"), backend="torch")
    builds = {
        "hand-written": lambda: hand_written(model, X, Y),
        "generated": lambda: generated(module, model, X, Y),
        f"random, K={args.micro}": lambda: random_batches(noisy, model, X, Y, args.micro),
    }
    results = timed(builds, model, args.repeat)
    hand, mine = results["hand-written"], results["generated"]
    difference = float((hand[2] - mine[2]).abs().max() / hand[2].abs().max())
    print(f"heavy ball penalty hG, MLP with {size} parameters, batch {args.batch} (float32, {args.repeat} repeats)")
    print(f"{'median':<16} {'build s':>9} {'backward s':>11} {'total s':>9}")
    for name, (build, backward, _) in results.items():
        print(f"{name:<16} {build:>9.4f} {backward:>11.4f} {build + backward:>9.4f}")
    ratio = (mine[0] + mine[1]) / (hand[0] + hand[1])
    print(f"generated / hand-written: total {ratio:.3f}, backward {mine[1] / hand[1]:.3f} (target <= 1.1)")
    print(f"largest gradient difference, relative: {difference:.2e}")
    noise = results[f"random, K={args.micro}"]
    print(f"random batches / full batch (generated): total {(noise[0] + noise[1]) / (mine[0] + mine[1]):.2f}")


if __name__ == "__main__":
    main()
