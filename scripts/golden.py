"""Regenerate the golden files in derivations/generated/ (or check them with --check).

For every bundled program: NAME.txt (the stationary map, its modified flow and the
finite-n summaries) and
NAME_numpy.py (the generated stationary module). tests/test_golden.py fails when
these are stale.

    python scripts/golden.py            # rewrite
    python scripts/golden.py --check    # exit 1 and list what is stale
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import memcorr  # noqa: E402

OUT = ROOT / "derivations" / "generated"


def expected() -> dict[Path, str]:
    files = {}
    for path in sorted((ROOT / "derivations").glob("*.opt")):
        stationary = memcorr.derive(path)
        flow = memcorr.derive(path, target="flow").summary()
        try:
            finite = memcorr.derive(path, regime="finite").summary()
        except memcorr.DerivationError as err:
            finite = f"finite regime: not derived: {err}"
        files[OUT / f"{path.stem}.txt"] = f"{stationary.summary()}\n\n{flow}\n\n{finite}\n"
        files[OUT / f"{path.stem}_numpy.py"] = stationary.to_numpy()
    return files


def stale() -> list[Path]:
    want = expected()
    extra = [p for p in OUT.glob("*") if p not in want]
    return [p for p, text in want.items() if not p.exists() or p.read_text(encoding="utf-8") != text] + extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.check:
        paths = stale()
        for p in paths:
            print(f"stale: {p.relative_to(ROOT)}")
        sys.exit(1 if paths else 0)
    OUT.mkdir(parents=True, exist_ok=True)
    want = expected()
    for p in OUT.glob("*"):
        if p not in want:
            p.unlink()
    for p, text in want.items():
        p.write_text(text, encoding="utf-8")
    print(f"wrote {len(want)} files to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
