"""The numeric checks' own cost, as a table: the calls the slowest tests make (a derivation that checks its
potential at random points, a random-batch trajectory check, a finite-regime verify, the presentation of
RMSprop), each in a process with warm imports and the derivation cache off; with ``--before REF`` the same
calls at the commit ``REF`` (a temporary git worktree) in the column beside it, run after this one.

    python benchmarks/checks_time.py [--before REF]
"""

import argparse
import subprocess
import sys
from pathlib import Path

from before import checkout

ROOT = Path(__file__).resolve().parent.parent

# run in a fresh interpreter with the tree to time first on sys.path; prints "name<TAB>seconds" per call
RUN = r"""
import os, sys, time
root = sys.argv[1]
sys.path[:0] = [root, root + "/tests"]
os.environ["MEMCORR_CACHE"] = "off"
import numpy as np
import memcorr
from memcorr.losses import batch_quadratics
from memcorr.verify.batches import verify_batches
from memcorr.verify.checks import verify
from verify.test_verify import LOSS, PARAMS, X0

memcorr.derive("gd")  # the imports, warm


def timed(name, call):
    start = time.perf_counter()
    call()
    print(f"{name}\t{time.perf_counter() - start:.1f}", flush=True)


timed("derive rmsprop (stationary)", lambda: memcorr.derive("rmsprop"))
timed("derive lion_softsign --regime finite", lambda: memcorr.derive("lion_softsign", regime="finite"))
d = memcorr.derive("adamw", batches="random")
hyper = {"beta1": 0.5, "beta2": 0.8, "eps": 0.1, "weight_decay": 0.05}
loss = batch_quadratics(spread=0.3, mirrored=True)
x0 = np.array([2.0, -1.0])
timed("verify --batches random adamw, 600 sequences",
      lambda: verify_batches(d, loss, x0, hyper, h0=0.01, steps=40, sequences=600))
d = memcorr.derive("adadelta", regime="finite")
timed("verify adadelta --regime finite, 4 halvings",
      lambda: verify(d, LOSS, X0, PARAMS.get("adadelta", {}), halvings=4))
"""


def column(root: str) -> dict[str, str]:
    done = subprocess.run([sys.executable, "-c", RUN, root], capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr[-2000:])
    return dict(line.split("\t") for line in done.stdout.splitlines() if "\t" in line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", help="a commit to time beside this tree")
    args = ap.parse_args()
    now = column(str(ROOT))
    with checkout(args.before) as folder:
        before = column(folder) if folder else {}
    width = max(map(len, now))
    print(f"{'call':<{width}}  {'now s':>8}  {'before s':>9}")
    for name, seconds in now.items():
        print(f"{name:<{width}}  {seconds:>8}  {before.get(name, '-'):>9}")


if __name__ == "__main__":
    main()
