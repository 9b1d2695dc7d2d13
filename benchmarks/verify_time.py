"""Whole-process time of ``memcorr verify NAME`` at the program's defaults, in both regimes, as a table;
with ``--before REF`` the same command at the commit ``REF`` (a temporary git worktree) beside it.

The derivation is read from a warm cache in both columns (each column its own cache folder, filled by
a first untimed run), so the table times the check itself: the true method, the memoryless maps, the
warm start. Exit status 1 (a failed check) is timed like 0; the status is shown.

Target (issue "speed"): every bundled program at most 10 s in both regimes.

    python benchmarks/verify_time.py [--before REF] [NAME ...]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from before import checkout

ROOT = Path(__file__).resolve().parent.parent
RUN = "import sys; sys.path.insert(0, sys.argv.pop(1)); from memcorr.cli import main; sys.exit(main(sys.argv[1:]))"


def timed(root: str, cache: str, name: str, regime: str) -> tuple[float, int] | None:
    """Seconds and exit status of the second run; None where the regime refuses the program (exit 2)."""
    argv = [sys.executable, "-c", RUN, root, "verify", name, "--regime", regime]
    env = {**os.environ, "MEMCORR_CACHE": cache}
    subprocess.run(argv, capture_output=True, env=env)  # fill the derivation cache
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode == 2:
        return None
    if proc.returncode != 0 and proc.returncode != 1:
        raise SystemExit(f"{' '.join(argv[3:])} failed at {root}:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.returncode


def cell(result) -> str:
    if result is None:
        return f"{'-':>13}"
    seconds, status = result
    return f"{seconds:>8.1f} {'PASS' if status == 0 else 'FAIL':>4}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REF")
    ap.add_argument("names", nargs="*", help="bundled programs (default: all)")
    args = ap.parse_args()
    names = args.names or sorted(p.stem for p in (ROOT / "derivations").glob("*.opt"))
    caches = {"now": tempfile.mkdtemp(prefix="memcorr_cache_"), "before": tempfile.mkdtemp(prefix="memcorr_cache_")}
    with checkout(args.before) as before:
        head = f"{'program':<18} {'regime':<10} {'now s':>13}"
        print(head + (f" {'before ' + args.before[:10]:>18}" if before else ""))
        worst = 0.0
        for name in names:
            for regime in ("stationary", "finite"):
                now = timed(str(ROOT), caches["now"], name, regime)
                worst = max(worst, now[0] if now else 0.0)
                line = f"{name:<18} {regime:<10} {cell(now)}"
                if before:
                    line += f"     {cell(timed(before, caches['before'], name, regime))}"
                print(line, flush=True)
    print(f"slowest: {worst:.1f} s (target 10 s)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
