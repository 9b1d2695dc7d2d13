"""The grammar, the bundled programs and ``py.typed`` ship inside the wheel, not only in the source tree."""

import os
import subprocess
import sys
import zipfile

import pytest
from conftest import BUNDLED, ROOT


@pytest.mark.slow
def test_built_wheel_carries_grammar_and_library(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("memcorr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "memcorr/grammars/optimizer.lark" in names
    assert "memcorr/py.typed" in names  # type checkers read the package's annotations
    assert {f"memcorr/derivations/{p.name}" for p in BUNDLED} <= names
    assert {f"memcorr/docs/{page}.md" for page in ("language", "python", "method")} <= names

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    elsewhere = tmp_path / "elsewhere"  # away from the source tree
    elsewhere.mkdir()
    listing = subprocess.run(
        [sys.executable, "-m", "memcorr.cli", "list"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert {line.split()[0] for line in listing.stdout.splitlines()} == {p.stem for p in BUNDLED}
    checked = subprocess.run(
        [sys.executable, "-c", "import memcorr, sys; print(memcorr.__file__); print(memcorr.load('adamw').summary())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert checked.stdout.startswith(str(target))
    assert "adamw" in checked.stdout
