"""The generated outputs in derivations/generated/ are current (regenerate: python scripts/golden.py).

The check runs the script in a fresh interpreter, as a user regenerating them would: what the files
must equal is what one process deriving the library from scratch writes.
"""

import subprocess
import sys

from conftest import ROOT


def test_golden_files_are_current():
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "golden.py"), "--check"], capture_output=True, text=True, timeout=1500
    )
    assert run.returncode == 0, f"{run.stdout}{run.stderr}\nregenerate with: python scripts/golden.py"
