"""Whole-process time of ``memcorr check`` and ``memcorr derive --emit latex,numpy,torch,json``
(order 1) for every bundled program, as a table; with ``--before REF``, the same derive run
from the commit ``REF`` (a temporary git worktree) in a column beside it (``--before-emit``:
the formats that commit knows, numpy by default).

Targets: check at most 1 s; derive (map, perturbation, summary and the four files) a median
of at most 3 s per program, on a 2-core machine.

    python benchmarks/cli_time.py [--repeat 5] [--before REF [--before-emit numpy]]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from before import checkout

ROOT = Path(__file__).resolve().parent.parent
RUN = "import sys; sys.path.insert(0, sys.argv.pop(1)); from memcorr.cli import main; sys.exit(main(sys.argv[1:]))"


def timed(argv, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr}")
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before", metavar="REF", help="also time derive at this git commit")
    ap.add_argument("--emit", default="latex,numpy,torch,json")
    ap.add_argument("--before-emit", default="numpy", help="the formats emitted at REF")
    args = ap.parse_args()
    with checkout(args.before) as folder:
        run(args, [sys.executable, "-c", RUN, str(ROOT)], [sys.executable, "-c", RUN, folder] if folder else None)


def run(args, now, before):
    out = tempfile.mkdtemp(prefix="memcorr_bench_")
    head = f"{'program':<20} {'check median s':>15} {'derive median s':>16} {'max s':>7}"
    print(head + (f" {'before ' + args.before[:10]:>18}" if before else ""))
    worst = {"check": 0.0, "derive": 0.0}
    for path in sorted((ROOT / "derivations").glob("*.opt")):
        check = timed(now + ["check", str(path)], args.repeat)
        derive = timed(now + ["derive", str(path), "--emit", args.emit, "-o", out], args.repeat)
        worst["check"] = max(worst["check"], statistics.median(check))
        worst["derive"] = max(worst["derive"], statistics.median(derive))
        line = (
            f"{path.stem:<20} {statistics.median(check):>15.3f} {statistics.median(derive):>16.3f} {max(derive):>7.3f}"
        )
        if before:
            old = timed(before + ["derive", str(path), "--emit", args.before_emit, "-o", out], args.repeat)
            line += f" {statistics.median(old):>18.3f}"
        print(line, flush=True)
    print(f"slowest median: check {worst['check']:.3f} s (target 1 s), derive {worst['derive']:.3f} s (target 3 s)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    os.environ["MEMCORR_CACHE"] = "off"  # time derivations, not reads of the derivation cache
    main()
