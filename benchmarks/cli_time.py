"""Whole-process time of ``memcorr check`` for every bundled program, as a table.

Target (issue 3): at most 1 s per check as a whole process on a 2-core machine.

    python benchmarks/cli_time.py [--repeat 5]
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    args = ap.parse_args()
    exe = shutil.which("memcorr")
    base = [exe] if exe else [sys.executable, "-m", "memcorr.cli"]
    print(f"{'program':<20} {'median s':>9} {'max s':>7}  target 1 s")
    for path in sorted((ROOT / "derivations").glob("*.opt")):
        times = timed(base + ["check", str(path)], args.repeat)
        median = statistics.median(times)
        print(f"{path.stem:<20} {median:>9.3f} {max(times):>7.3f}  {'ok' if median <= 1 else 'SLOW'}")


if __name__ == "__main__":
    main()
