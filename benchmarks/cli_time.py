"""Whole-process time of ``memcorr check`` and ``memcorr derive --emit numpy`` (order 1)
for every bundled program, as a table.

Targets: check at most 1 s (issue 3); derive a median of at most 3 s (issue 4), on a
2-core machine.

    python benchmarks/cli_time.py [--repeat 5]
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
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
    out = tempfile.mkdtemp(prefix="memcorr_bench_")
    print(f"{'program':<20} {'check median s':>15} {'max s':>7} {'derive median s':>16} {'max s':>7}")
    worst = {"check": 0.0, "derive": 0.0}
    for path in sorted((ROOT / "derivations").glob("*.opt")):
        check = timed(base + ["check", str(path)], args.repeat)
        derive = timed(base + ["derive", str(path), "--emit", "numpy", "-o", out], args.repeat)
        worst["check"] = max(worst["check"], statistics.median(check))
        worst["derive"] = max(worst["derive"], statistics.median(derive))
        print(f"{path.stem:<20} {statistics.median(check):>15.3f} {max(check):>7.3f} "
              f"{statistics.median(derive):>16.3f} {max(derive):>7.3f}")
    print(f"slowest median: check {worst['check']:.3f} s (target 1 s), "
          f"derive {worst['derive']:.3f} s (target 3 s)")


if __name__ == "__main__":
    main()
