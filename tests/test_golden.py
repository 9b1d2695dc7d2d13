"""The generated outputs in derivations/generated/ are current, program by program
(regenerate: python scripts/golden.py).

Each program is derived in a fresh interpreter, as a user deriving it would, through the session's
derivation cache (what another test derived with this code is read, not derived again; the hash-seed
test in test_cli_misuse.py derives in fresh processes with the cache off); a stale file fails with a
unified diff of what changed. Gradient descent and heavy ball run in the quick lane, the
rest with the slow checks.
"""

import subprocess
import sys

import pytest
from conftest import BUNDLED, ROOT

QUICK = {"gd", "heavy_ball"}
GOLDEN = ROOT / "scripts" / "golden.py"
GENERATED = ROOT / "derivations" / "generated"


@pytest.mark.parametrize(
    "name", [pytest.param(p.stem, marks=[] if p.stem in QUICK else [pytest.mark.slow]) for p in BUNDLED]
)
def test_golden_files_are_current(name):
    run = subprocess.run(
        [sys.executable, str(GOLDEN), "--check", "--cache", name], capture_output=True, text=True, timeout=1500
    )
    assert run.returncode == 0, f"{run.stdout}{run.stderr}\nregenerate with: python scripts/golden.py"


def test_every_generated_file_belongs_to_a_program():
    """No file left behind by a program that was renamed or removed."""
    names = {p.stem for p in BUNDLED}
    for path in GENERATED.rglob("*"):
        if path.is_file():
            stem = path.stem.removesuffix("_numpy").removesuffix("_torch").removesuffix("_jax")
            assert stem in names, f"{path.relative_to(ROOT)} belongs to no bundled program"
