"""The generated outputs in derivations/generated/ are current (regenerate: python scripts/golden.py)."""

import importlib.util

from conftest import ROOT


def test_golden_files_are_current():
    spec = importlib.util.spec_from_file_location("golden", ROOT / "scripts" / "golden.py")
    golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(golden)
    stale = golden.stale()
    assert not stale, f"stale golden files {[p.name for p in stale]}: run python scripts/golden.py"
