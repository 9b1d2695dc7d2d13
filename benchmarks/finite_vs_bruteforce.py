"""The generated finite-n correction against a brute-force one, at n = 500, as a table.

Brute force (docs/method.md §1 by definition): run the true method (the AST
interpreter) with every iterate equal to θ to get F^(s)(θ,…,θ), then one JVP
through n unrolled steps — the true method driven along
θ_{n−k} = θ + ε Σ_{s=n−k}^{n−1} F^(s), differentiated in ε at 0 by a central
difference — which is M^(n)(θ). Target: closed forms at least 100× faster. The
relative difference of the two values is printed too (the central difference's own error,
O(ε²) at ε = 1e-6, included), and the form: ``closed`` (no sum over steps), ``sums``
(vectorized sums over steps) or ``loops`` (memcorr/expand/recurrence.py: a loop over the steps,
vectorized over the coordinates, with a Hessian-vector product per step where the states read
the gradient: O(n) like the brute force, reported as measured).

The bundled library, the outside programs of the general construction (states fed by states,
nonlinear recursions, the velocity form, lags in a system, reductions of states), and two
programs at coinciding decay rates. With ``--before``, the loop forms are also timed as the
nested sums over steps they replaced (``finite._general``), at small n: those cost O(n²) to
O(n³) per call.

    python benchmarks/finite_vs_bruteforce.py [--n 500]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ["MEMCORR_CACHE"] = "off"  # time derivations, not reads of the derivation cache

import memcorr  # noqa: E402
from memcorr.losses import builtin  # noqa: E402
from memcorr.verify.checks import brute_force_correction  # noqa: E402

PARAMS = {
    "adam": dict(beta2=0.99, eps=0.1),
    "adamw": dict(beta2=0.99, eps=0.1),
    "nadamw": dict(beta2=0.99, eps=0.1),
    "ademamix": dict(beta2=0.99, beta3=0.995, eps=0.1),
    "rmsprop": dict(eps=0.1),
    "lion_softsign": dict(eps=0.5),
    "adabelief": dict(beta2=0.99, eps=0.1),
    "rmsprop_momentum": dict(eps=0.1),
}
OUTSIDE = [
    "nested_ema",
    "rmsprop_momentum",
    "adan_like",
    "geometric_weights",
    "velocity_heavy_ball",
    "reduction_upstream",
]
# decay rates that coincide: the generated code takes the derivation with the rates identified
CONFLUENT = {
    "ademamix (beta3 = beta2)": ("ademamix", dict(PARAMS["ademamix"], beta3=0.99)),
    "adabelief (beta2 = beta1)": ("adabelief", dict(PARAMS["adabelief"], beta2=0.9)),
}


def form(source: str) -> str:
    """How the generated correction evaluates its sums over past steps."""
    body = source[source.index("def _psi1") : source.index("\ndef ", source.index("def _psi1") + 1)]
    return "loops" if "_loop" in body or " for _k" in body else "sums" if "numpy.arange" in body else "closed"


def timed(f, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        value = f()
        best = min(best, time.perf_counter() - start)
    return value, best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--before", action="store_true", help="also time the nested sums the loops replaced")
    args = ap.parse_args()
    loss, x0 = builtin("nonconvex")
    if args.before:
        before_and_after(loss, x0)
    print(f"{'program':<26} {'form':>6} {'generated s':>12} {'brute force s':>14} {'speed-up':>9} {'rel. diff':>10}")
    outside = [ROOT / "tests" / "programs" / "good" / f"{name}.opt" for name in OUTSIDE]
    rows = [(p.stem, p, PARAMS.get(p.stem, {})) for p in sorted((ROOT / "derivations").glob("*.opt")) + outside]
    rows += [(label, name, hyper) for label, (name, hyper) in CONFLUENT.items()]
    for label, program, params in rows:
        try:
            d = memcorr.derive(program, regime="finite")
        except memcorr.DerivationError:
            continue
        module = memcorr.load_module(d)
        hyper = {**{p.name: p.default for p in d.model.params.values()}, **params}
        fast, t_fast = timed(lambda m=module, k=hyper: m.correction(x0, loss, n=args.n, **k), 20)
        slow, t_slow = timed(lambda d=d, k=hyper: brute_force_correction(d, loss, x0, args.n, k, eps=1e-6), 1)
        diff = np.linalg.norm(fast - slow) / max(np.linalg.norm(slow), 1e-300)
        # a velocity-form state carries h: the brute force, run at h = 1, is not its M^(n)
        shown = "n/a" if any(s.velocity for s in d.model.states) else f"{diff:.1e}"
        row = f"{t_fast:>12.2e} {t_slow:>14.2e} {t_slow / t_fast:>8.0f}x {shown:>10}"
        print(f"{label:<26} {form(d.to_numpy()):>6} {row}", flush=True)


def before_and_after(loss, x0, ns=(10, 20, 40)):
    """Seconds per correction call: nested sums over steps (before) against loops (after)."""
    from memcorr import finite

    print(f"{'program':<26} {'n':>4} {'nested sums s':>14} {'loops s':>10} {'max rel. diff':>14}")
    for name in ("rmsprop_momentum", "reduction_upstream"):
        path = ROOT / "tests" / "programs" / "good" / f"{name}.opt"
        after = memcorr.derive(path, regime="finite")
        general, finite._general_or_loops = finite._general_or_loops, finite._general
        try:
            before = memcorr.derive(path, regime="finite")
        finally:
            finite._general_or_loops = general
        modules = [memcorr.load_module(d) for d in (before, after)]
        hyper = {**{p.name: p.default for p in after.model.params.values()}, **PARAMS.get(name, {})}
        for n in ns:
            (old, t_old), (new, t_new) = [
                timed(lambda m=m, n=n, k=hyper: m.correction(x0, loss, n=n, **k), 1) for m in modules
            ]
            diff = np.max(np.abs(old - new)) / max(np.max(np.abs(old)), 1e-300)
            print(f"{name:<26} {n:>4} {t_old:>14.2e} {t_new:>10.2e} {diff:>14.1e}", flush=True)
    print()


if __name__ == "__main__":
    main()
