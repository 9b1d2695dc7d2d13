"""The whole test suite's time, per test file, as a table; with ``--before REF`` the same suite at the
commit ``REF`` (a temporary git worktree) in the column beside it, run after this one in the same
invocation.

Each run is the README's test command (``pytest -q -n auto``) with every test's duration recorded; a
file's figure is the sum of its tests' durations (set-up included) over the workers, so the column
sums to about the wall time times the number of workers. The last rows are the wall time and the
counts. Target (issue "speed"): the whole ``.ci/run`` within 10 minutes on 2 cores.

    python benchmarks/suite_time.py [--before REF] [--workers auto] [--top 25]
"""

import argparse
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from before import checkout

ROOT = Path(__file__).resolve().parent.parent
DURATION = re.compile(r"^\s*([0-9.]+)s (?:setup|call|teardown)\s+(\S+?)::")
SUMMARY = re.compile(r"(\d+) passed|(\d+) failed|(\d+) skipped")


def run_suite(root: str, workers: str):
    """Seconds per test file, the wall time and pytest's last line."""
    command = [sys.executable, "-m", "pytest", "-q", "-n", workers, "--durations=0", "--durations-min=0"]
    start = time.perf_counter()
    proc = subprocess.run([*command, "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - start
    per_file: dict[str, float] = defaultdict(float)
    for line in proc.stdout.splitlines():
        m = DURATION.match(line)
        if m:
            per_file[m.group(2)] += float(m.group(1))
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    return per_file, wall, last


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REF")
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--top", type=int, default=25, help="the files with the largest totals")
    args = ap.parse_args()
    now = run_suite(str(ROOT), args.workers)
    with checkout(args.before) as folder:
        before = run_suite(folder, args.workers) if folder else None

    def row(label, value, old=None):
        print(f"{label:<48} {value:>8.0f}" + (f" {old:>9.0f}" if old is not None else ""))

    files = sorted(set(now[0]) | set(before[0] if before else ()), key=lambda f: -max(now[0][f], 0))
    print(f"{'test file':<48} {'now s':>8}" + (f" {'before s':>9}" if before else ""))
    for f in files[: args.top]:
        row(f, now[0][f], before[0][f] if before else None)
    row("sum over the workers", sum(now[0].values()), sum(before[0].values()) if before else None)
    row("wall time", now[1], before[1] if before else None)
    print(f"now:    {now[2]}")
    if before:
        print(f"before: {before[2]}  ({args.before})")


if __name__ == "__main__":
    main()
