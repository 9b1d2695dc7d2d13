"""The generated finite-n correction against a brute-force one, at n = 500, as a table.

Brute force (method.md §1 by definition): run the true method (the AST
interpreter) with every iterate equal to θ to get F^(s)(θ,…,θ), then one JVP
through n unrolled steps — the true method driven along
θ_{n−k} = θ + ε Σ_{s=n−k}^{n−1} F^(s), differentiated in ε at 0 by a central
difference — which is M^(n)(θ). Target: closed forms at least 100× faster. The
relative difference of the two values is printed too (the central difference's own error,
O(ε²) at ε = 1e-6, included), and the form: ``closed``
(no sum over steps), ``sums`` (vectorized sums over steps) or ``loops`` (a Python
loop over steps, a Hessian-vector product per step: O(n) HVPs, reported as measured).

The bundled library and the outside programs of the general construction
(states fed by states, nonlinear recursions, the velocity form, lags in a system), and two
programs at coinciding decay rates. Left out: ``reduction_upstream`` (a state fed by
``norm`` of another: its correction nests sums three deep, O(n³) per call; 30 s at n = 40).

    python benchmarks/finite_vs_bruteforce.py [--n 500]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import memcorr  # noqa: E402
from memcorr.losses import builtin  # noqa: E402
from memcorr.verify import brute_force_correction  # noqa: E402

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
OUTSIDE = ["nested_ema", "rmsprop_momentum", "adan_like", "geometric_weights", "velocity_heavy_ball"]
# decay rates that coincide: the generated code takes the derivation with the rates identified
CONFLUENT = {
    "ademamix (beta3 = beta2)": ("ademamix", dict(PARAMS["ademamix"], beta3=0.99)),
    "adabelief (beta2 = beta1)": ("adabelief", dict(PARAMS["adabelief"], beta2=0.9)),
}


def form(source: str) -> str:
    """How the generated correction evaluates its sums over past steps."""
    body = source[source.index("def _psi1") : source.index("\ndef ", source.index("def _psi1") + 1)]
    return "loops" if " for _k" in body else "sums" if "numpy.arange" in body else "closed"


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
    args = ap.parse_args()
    loss, x0 = builtin("nonconvex")
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


if __name__ == "__main__":
    main()
