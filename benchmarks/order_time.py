"""Whole-process derivation time by order, with the number of terms of each ``Ψ_r``, as a table.

For heavy ball, Adam (its stationary map is Adam's without bias correction: the corrections
decay), AdaBelief and AdamW, ``memcorr derive NAME --order R`` for R = 1, 2, … until one run
takes longer than the limit (60 s). With ``--before REF`` the same runs at the commit ``REF``
(a temporary git worktree), side by side.

Two columns per commit: ``derive`` is the whole command (map, perturbation, potentials, summary);
``map`` is the map alone (parse, check, lower and the manifold recursion, also a whole process),
so that commits that compute different things downstream still compare like with like.

Targets (the speed issue): heavy ball order 8 ≤ 20 s and ≤ 1 GB (order 10 reported), Adam order 4
≤ 30 s, AdamW order 3 ≤ 5 s. A commit that caps the order below R shows ``> limit`` for its derive.
Heavy ball's term counts are the rooted trees with r + 1 nodes: 1, 1, 2, 4, 9, 20, 48, 115, 286.

    python benchmarks/order_time.py [--before REF] [--limit 60] [--max-order 8] [NAME ...]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from before import checkout

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ["heavy_ball", "adam", "adabelief", "adamw"]
# terms: the distinct products of atoms (a coefficient polynomial in the parameters is one term)
RUN = {
    "derive": (
        "import sys; sys.path.insert(0, sys.argv[1]); import memcorr\n"
        "try: from memcorr.algebra.atoms import linear_terms\n"
        "except ImportError: from memcorr.calculus import linear_terms  # a checkout from before the subpackages\n"
        "import resource\n"
        "d = memcorr.derive(sys.argv[2], order=int(sys.argv[3])); d.summary(); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "
        "' '.join(str(len({f for _, f in linear_terms(c)})) for c in d.expansion.corrections))"
    ),
    "map": (
        "import sys; sys.path.insert(0, sys.argv[1]); import memcorr; from memcorr.expand import expand; "
        "expand(memcorr.load(sys.argv[2]), int(sys.argv[3]))"
    ),
}


def timed(root: str, name: str, order: int, limit: float, what: str = "derive"):
    """Seconds and (``derive``) the peak memory in MB and the term counts of Ψ_1 … Ψ_order; None past
    the limit or past the order the commit allows."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", RUN[what], root, name, str(order)], capture_output=True, text=True, timeout=limit
        )
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0 and "the order must be a whole number" in proc.stderr:
        return None
    if proc.returncode != 0:
        raise SystemExit(f"{name} --order {order} failed at {root}:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.stdout.split()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REF")
    ap.add_argument("--limit", type=float, default=60.0)
    ap.add_argument("--max-order", type=int, default=8)
    ap.add_argument("names", nargs="*", default=PROGRAMS, help=f"programs (default: {' '.join(PROGRAMS)})")
    args = ap.parse_args()
    with checkout(args.before) as before:
        table(args, before)


def table(args, before):
    limit = f"> {int(args.limit)}"
    now = f"{'derive s':>9} {'MB':>5} {'map s':>7}"
    header = f"{'program':<12} {'order':>5} {now} {'before: derive':>15} {'MB':>5} {'map':>7}"
    print(f"{header}  terms of Ψ_1 … Ψ_R")
    for name in args.names:
        now_done = old_done = False
        for order in range(1, args.max_order + 1):
            now = None if now_done else timed(str(ROOT), name, order, args.limit)
            old = timed(before, name, order, args.limit) if before and not old_done else None
            now_done, old_done = now is None, old is None
            if now_done and (old_done or not before):
                print(f"{name:<12} {order:>5} {limit:>9}")
                break
            now_map = timed(str(ROOT), name, order, args.limit, "map") if now else None
            old_map = timed(before, name, order, args.limit, "map") if old else None
            cells = _cells(now, now_map, limit)
            if before:
                cells += _cells(old, old_map, limit)
            widths = [9, 5, 7, 15, 5, 7][: len(cells)]
            row = " ".join(f"{c:>{w}}" for c, w in zip(cells, widths))
            print(f"{name:<12} {order:>5} {row}  {' '.join(now[1][1:]) if now else ''}", flush=True)


def _cells(derive, map_, limit: str) -> list[str]:
    """Seconds and MB of the whole derive, seconds of the map alone."""
    if derive is None:
        return [limit, "", f"{map_[0]:.2f}" if map_ else limit]
    return [f"{derive[0]:.2f}", derive[1][0], f"{map_[0]:.2f}" if map_ else limit]


if __name__ == "__main__":
    os.environ["MEMCORR_CACHE"] = "off"  # time derivations, not reads of the derivation cache
    main()
