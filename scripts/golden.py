"""Regenerate the bundled library's committed outputs in derivations/generated/ (or check them).

For every bundled program at order 1:
- NAME.txt: the terminal summaries of the stationary map, its modified flow and the finite regime;
- stationary/ and finite/ (where the program allows): NAME.tex, NAME_numpy.py, NAME_torch.py,
  NAME.json, exactly what `memcorr derive NAME [--regime finite] --emit latex,numpy,torch,json -o DIR`
  writes;
- order2/NAME.json for the programs of ORDER2 (the catalogue prints their short order-2 terms).

tests/test_golden.py fails when any is stale.

    python scripts/golden.py            # rewrite
    python scripts/golden.py --check    # exit 1 and list what is stale
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import memcorr  # noqa: E402
from memcorr.cli import EMITTERS  # noqa: E402

OUT = ROOT / "derivations" / "generated"
# order 2 in seconds: the programs whose memory is linear in the gradient, and the sign-based ones
ORDER2 = {"aggmo", "gd", "heavy_ball", "heavy_ball_sum", "lion", "lion_softsign", "nesterov", "nesterov_velocity"}
ORDER2 |= {"qhm", "sgd_momentum", "sgd_nesterov", "signum"}


def emitted(d, folder: Path) -> dict[Path, str]:
    return {folder / pattern.format(name=d.name): emit(d) for pattern, emit in EMITTERS.values()}


def expected() -> dict[Path, str]:
    files = {}
    for path in sorted((ROOT / "derivations").glob("*.opt")):
        stationary = memcorr.derive(path)
        flow = memcorr.derive(path, target="flow").summary()
        files |= emitted(stationary, OUT / "stationary")
        try:
            finite = memcorr.derive(path, regime="finite")
            files |= emitted(finite, OUT / "finite")
            finite_text = finite.summary()
        except memcorr.DerivationError as err:
            finite_text = f"finite regime: not derived: {err}"
        if path.stem in ORDER2:
            files[OUT / "order2" / f"{path.stem}.json"] = memcorr.derive(path, order=2).to_json()
        files[OUT / f"{path.stem}.txt"] = f"{stationary.summary()}\n\n{flow}\n\n{finite_text}\n"
    return files


def stale() -> list[Path]:
    want = expected()
    extra = [p for p in OUT.rglob("*") if p.is_file() and p not in want]
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
    want = expected()
    for p in OUT.rglob("*"):
        if p.is_file() and p not in want:
            p.unlink()
    for p, text in want.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    print(f"wrote {len(want)} files to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
