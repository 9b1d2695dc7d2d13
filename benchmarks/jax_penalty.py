"""The generated JAX ``penalty``'s gradient against a hand-written JAX double backward, both jitted, on
an MLP with more than 100k parameters (a pytree of six leaves).

Heavy ball's implied loss is ``L + hG`` with ``G = β/(2(1−β)²) ‖∇L‖²`` (memcorr derives it). The
hand-written gradient is ``jax.grad`` of ``h·c·‖jax.grad(loss)(p)‖²``; the generated one is ``jax.grad``
of ``heavy_ball_jax.penalty(p, loss, h)``. Each is compiled once (its compile time printed), then timed
by the median over interleaved repeats; the gradients are compared. Target: generated ≤ 1.1×.

    python benchmarks/jax_penalty.py [--repeat 30] [--hidden 320] [--batch 2048]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import memcorr  # noqa: E402

BETA, H = 0.9, 0.01


def problem(hidden: int, batch: int):
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    sizes = [(64, hidden), (hidden, hidden), (hidden, 10)]
    params = {}
    for i, (a, b) in enumerate(sizes):
        params[f"w{i}"] = jax.random.normal(keys[i], (a, b)) / jnp.sqrt(a)
        params[f"b{i}"] = jnp.zeros(b)
    X, Y = jax.random.normal(keys[3], (batch, 64)), jax.random.normal(keys[4], (batch, 10))

    def loss(p):
        z = jnp.tanh(X @ p["w0"] + p["b0"])
        z = jnp.tanh(z @ p["w1"] + p["b1"])
        return jnp.mean((z @ p["w2"] + p["b2"] - Y) ** 2)

    return params, loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=320)
    ap.add_argument("--batch", type=int, default=2048)
    args = ap.parse_args()
    module = memcorr.load_module(memcorr.derive("heavy_ball"), backend="jax")
    params, loss = problem(args.hidden, args.batch)
    size = sum(v.size for v in jax.tree_util.tree_leaves(params))
    c = H * BETA / (2 * (1 - BETA) ** 2)

    def hand_written(p):
        return c * sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(jax.grad(loss)(p)))

    functions = {
        "hand-written": jax.jit(jax.grad(hand_written)),
        "generated": jax.jit(jax.grad(lambda p: module.penalty(p, loss, H, beta=BETA))),
    }
    compile_s, grads = {}, {}
    for name, f in functions.items():
        start = time.perf_counter()
        grads[name] = jax.block_until_ready(f(params))
        compile_s[name] = time.perf_counter() - start
    times = {name: [] for name in functions}
    for _ in range(args.repeat):
        for name, f in functions.items():
            start = time.perf_counter()
            jax.block_until_ready(f(params))
            times[name].append(time.perf_counter() - start)
    print(f"heavy ball penalty gradient h∇G, MLP with {size} parameters, batch {args.batch} (float32, jitted)")
    print(f"{'':<14} {'first call s':>13} {'median s':>10}")
    for name in functions:
        print(f"{name:<14} {compile_s[name]:>13.3f} {statistics.median(times[name]):>10.4f}")
    ratio = statistics.median(times["generated"]) / statistics.median(times["hand-written"])
    leaves = zip(jax.tree_util.tree_leaves(grads["hand-written"]), jax.tree_util.tree_leaves(grads["generated"]))
    scale = max(float(jnp.abs(a).max()) for a in jax.tree_util.tree_leaves(grads["hand-written"]))
    difference = max(float(jnp.abs(a - b).max()) for a, b in leaves) / scale
    print(f"generated / hand-written: {ratio:.3f} (target <= 1.1)")
    print(f"largest gradient difference, relative: {difference:.1e}")


if __name__ == "__main__":
    main()
