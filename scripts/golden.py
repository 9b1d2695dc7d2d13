"""Regenerate the bundled library's committed outputs in derivations/generated/ (or check them).

For every bundled program at order 1:
- NAME.txt: the terminal summaries of the stationary map, its modified flow and the finite regime;
- stationary/ and finite/ (where the program allows): NAME.tex, NAME_numpy.py, NAME_torch.py,
  NAME.json, exactly what `memcorr derive NAME [--regime finite] --emit latex,numpy,torch,json -o DIR`
  writes;
- order2/NAME.json for the programs of ORDER2 (the catalogue prints their short order-2 terms);
- random/NAME.json: the stationary map with random batches, where the program derives so (NAME.txt
  says why where it does not).

Each program is derived in a fresh interpreter, as a user deriving it would: what its files must
equal does not depend on what was derived before it in the same process. tests/test_golden.py
checks each program on its own and shows a unified diff of what is stale; it passes ``--cache``, so
that a derivation another test of the session already made (with the same code: the cache keys hold
memcorr's fingerprint) is read, not made again — a history-dependent result would then fail the
check, as it should.

    python scripts/golden.py                    # rewrite everything (two programs at a time)
    python scripts/golden.py --check            # exit 1 and list what is stale
    python scripts/golden.py --check heavy_ball # one program, with the diff
    python scripts/golden.py --check --cache heavy_ball  # the same, reading $MEMCORR_CACHE
"""

import argparse
import concurrent.futures
import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# a fresh derivation, never one read from the derivation cache (made in a process with another history),
# unless --cache asks for the caller's cache (the test suite's, begun empty for the session)
CACHE = "--cache" in sys.argv
if not CACHE:
    os.environ["MEMCORR_CACHE"] = "off"

import memcorr  # noqa: E402
from memcorr.printing import OUTPUTS  # noqa: E402

OUT = ROOT / "derivations" / "generated"
PROGRAMS = sorted((ROOT / "derivations").glob("*.opt"))
# order 2 in seconds: the programs whose memory is linear in the gradient, and the sign-based ones
ORDER2 = {"aggmo", "gd", "heavy_ball", "heavy_ball_sum", "lion", "lion_softsign", "nesterov", "nesterov_velocity"}
ORDER2 |= {"qhm", "sgd_momentum", "sgd_nesterov", "signum"}


def emitted(d, folder: Path) -> dict[Path, str]:
    return {folder / out.file.format(name=d.name): out.emit(d) for out in OUTPUTS.values()}


def expected_for(path: Path) -> dict[Path, str]:
    """The committed files of one program, derived in this process."""
    stationary = memcorr.derive(path)
    flow = memcorr.derive(path, target="flow").summary()
    files = emitted(stationary, OUT / "stationary")
    try:
        finite = memcorr.derive(path, regime="finite")
        files |= emitted(finite, OUT / "finite")
        finite_text = finite.summary()
    except memcorr.DerivationError as err:
        finite_text = f"finite regime: not derived: {err}"
    if path.stem in ORDER2:
        files[OUT / "order2" / f"{path.stem}.json"] = memcorr.derive(path, order=2).to_json()
    try:
        random = memcorr.derive(path, batches="random")
        files[OUT / "random" / f"{path.stem}.json"] = random.to_json()
        random_text = random.summary()
    except memcorr.DerivationError as err:
        random_text = f"not derived with random batches — {err}"
    files[OUT / f"{path.stem}.txt"] = f"{stationary.summary()}\n\n{flow}\n\n{finite_text}\n\n{random_text}\n"
    return files


def fresh(name: str) -> dict[Path, str]:
    """``expected_for`` the program ``name``, in a fresh interpreter (which inherits the cache setting)."""
    run = subprocess.run(
        [sys.executable, __file__, "--print", *(["--cache"] if CACHE else []), name],
        capture_output=True,
        text=True,
        check=True,
        timeout=1500,
    )
    return {ROOT / p: text for p, text in json.loads(run.stdout).items()}


def stale_diff(want: dict[Path, str]) -> str:
    """A unified diff of every file of ``want`` that differs from what is committed."""
    out = []
    for p, text in want.items():
        have = p.read_text(encoding="utf-8") if p.exists() else ""
        if have != text:
            name = str(p.relative_to(ROOT))
            out += difflib.unified_diff(have.splitlines(True), text.splitlines(True), name, f"{name} (derived now)")
    return "".join(out)


def everything() -> dict[Path, str]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        parts = pool.map(fresh, [p.stem for p in PROGRAMS])
    return {p: text for part in parts for p, text in part.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if anything is stale, and show the diff")
    ap.add_argument("--cache", action="store_true", help="read and fill the derivation cache $MEMCORR_CACHE")
    ap.add_argument("--print", action="store_true", help=argparse.SUPPRESS)  # one program's files as JSON
    ap.add_argument("program", nargs="?", help="one bundled program (default: all)")
    args = ap.parse_args()
    if args.print:
        files = expected_for(ROOT / "derivations" / f"{args.program}.opt")
        print(json.dumps({str(p.relative_to(ROOT)): text for p, text in files.items()}))
        return
    want = fresh(args.program) if args.program else everything()
    if args.check:
        orphans = [] if args.program else [p for p in OUT.rglob("*") if p.is_file() and p not in want]
        report = stale_diff(want) + "".join(f"not derived from any program: {p.relative_to(ROOT)}\n" for p in orphans)
        print(report, end="")
        sys.exit(1 if report else 0)
    if not args.program:
        for p in OUT.rglob("*"):
            if p.is_file() and p not in want:
                p.unlink()
    for p, text in want.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    print(f"wrote {len(want)} files to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
