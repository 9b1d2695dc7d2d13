"""Random batches beside full batches: ``memcorr derive NAME`` and ``memcorr derive NAME --batches random``
(stationary, order 1) for every bundled program, whole-process times side by side with their ratio, or
why the program is not derived with random batches; then ``memcorr verify heavy_ball --batches random``.
With ``--before REF`` the random-batch derive at the commit ``REF`` (a temporary git worktree) beside it;
names restrict the table to those programs.

Targets (issue 23): random batches within 2× of full batch; the random-batch check under a minute, on
a 2-core machine.

    python benchmarks/batches_time.py [--repeat 3] [--regime stationary|finite] [--before REF] [NAME ...]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from before import checkout

ROOT = Path(__file__).resolve().parent.parent
RUN = "import sys; sys.path.insert(0, sys.argv.pop(1)); from memcorr.cli import main; sys.exit(main(sys.argv[1:]))"


def timed(argv, repeat) -> tuple[float, subprocess.CompletedProcess]:
    times, proc = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), proc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--regime", default="stationary", choices=("stationary", "finite"))
    ap.add_argument("--before", metavar="REF", help="also time the random-batch derive at this git commit")
    ap.add_argument("names", nargs="*", help="bundled programs (default: all)")
    args = ap.parse_args()
    with checkout(args.before) as folder:
        table(args, [sys.executable, "-c", RUN, str(ROOT)], [sys.executable, "-c", RUN, folder] if folder else None)


def table(args, cli, before):
    head = f"{'program':<20} {'full s':>8} {'random s':>9} {'ratio':>6}"
    head += f" {'before: random s':>17}" if before else ""
    print(f"{head}  ({args.regime} regime, median of {args.repeat})")
    worst = 0.0
    paths = sorted((ROOT / "derivations").glob("*.opt"))
    for path in [p for p in paths if p.stem in args.names] if args.names else paths:
        base = cli + ["derive", str(path), "--regime", args.regime]
        full, proc = timed(base, args.repeat)
        if proc.returncode != 0:
            print(f"{path.stem:<20} {'—':>8}  full batch not derived in this regime")
            continue
        random, proc = timed(base + ["--batches", "random"], args.repeat)
        if proc.returncode != 0:
            why = proc.stderr.strip().splitlines()[-1].split("random batches: ", 1)[-1][:70]
            print(f"{path.stem:<20} {full:>8.2f} {'—':>9} {'':>6}  refused: {why}")
            continue
        worst = max(worst, random / full)
        line = f"{path.stem:<20} {full:>8.2f} {random:>9.2f} {random / full:>6.2f}"
        if before:
            old, proc = timed(before + base[len(cli) :] + ["--batches", "random"], args.repeat)
            line += f" {old:>17.2f}" if proc.returncode == 0 else f" {'refused':>17}"
        print(line, flush=True)
    print(f"largest ratio {worst:.2f} (target ≤ 2)")
    start = time.perf_counter()
    proc = subprocess.run(cli + ["verify", "heavy_ball", "--batches", "random"], capture_output=True, text=True)
    print(f"memcorr verify heavy_ball --batches random: {time.perf_counter() - start:.1f} s (target < 60 s)")
    print(proc.stdout.strip().splitlines()[-2] if proc.stdout else proc.stderr.strip())


if __name__ == "__main__":
    os.environ["MEMCORR_CACHE"] = "off"  # time derivations, not reads of the derivation cache
    main()
