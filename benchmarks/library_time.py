"""The bundled library's cost, per program: derive and verify in both regimes, as a table.

What the test suite spends on each program (tests/verify/test_verify.py derives and verifies every bundled
program in both regimes), measured in one process with warm imports. Hyperparameters as the tests
take them when none are given: every rate in (0, 1) at 0.5 (just inside a narrower domain), every
``small`` one at 0.1, so that ``verify``'s horizon (ten memory lengths) stays short. A dash: the
regime refuses the program.

    python benchmarks/library_time.py [NAME ...]
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ["MEMCORR_CACHE"] = "off"  # time derivations, not reads of the derivation cache

import memcorr  # noqa: E402
from memcorr.losses import builtin  # noqa: E402
from memcorr.verify.checks import verify  # noqa: E402


def short_memory(d) -> dict:
    out = {}
    for name, p in d.model.params.items():
        if p.small:
            out[name] = 0.1
        elif p.domain is not None and 0 <= p.domain.lo and p.domain.hi == 1:
            out[name] = 0.5 if p.domain.contains(0.5) else p.domain.lo + 0.05  # RAdam's beta2 > 2/3
    return out


def timed(f):
    start = time.perf_counter()
    value = f()
    return value, time.perf_counter() - start


def row(path, loss, x0) -> str:
    cells = []
    for regime in ("stationary", "finite"):
        try:
            d, t_derive = timed(lambda r=regime: memcorr.derive(path, regime=r))
        except memcorr.DerivationError:
            cells += ["-", "-", "-"]
            continue
        report, t_verify = timed(lambda d=d: verify(d, loss, x0, short_memory(d)))
        cells += [f"{t_derive:.2f}", f"{t_verify:.2f}", "pass" if report.passed else "FAIL"]
    return f"{path.stem:<16}" + "".join(f"{c:>10}" for c in cells)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="bundled programs (default: all)")
    args = ap.parse_args()
    loss, x0 = builtin("nonconvex")
    paths = sorted((ROOT / "derivations").glob("*.opt"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names]
    head = ["derive s", "verify s", "", "finite s", "verify s", ""]
    print(f"{'program':<16}" + "".join(f"{h:>10}" for h in head))
    for path in paths:
        print(row(path, loss, x0), flush=True)


if __name__ == "__main__":
    main()
