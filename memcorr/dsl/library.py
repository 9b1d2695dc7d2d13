"""The bundled library of programs (``derivations/*.opt``) and source resolution.

Input: a program given as text, a path, or the name of a bundled program.
Output: ``(text, filename)``, or a ``DSLError`` saying what could not be read.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from ..errors import DSLError, Span
from .parse import decode


def library_dir() -> Path:
    """``derivations/``: inside the package when installed from a wheel, else the source tree."""
    here = Path(__file__).resolve().parent.parent  # the memcorr package
    for candidate in (here / "derivations", here.parent / "derivations"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the bundled derivations/ folder is missing from the installation")


def docs_dir() -> Path:
    """The reference pages (language, python, method): inside the package when installed from a
    wheel, else the source tree's ``docs/``."""
    here = Path(__file__).resolve().parent.parent  # the memcorr package
    for candidate in (here / "docs", here.parent / "docs"):
        if (candidate / "language.md").is_file():
            return candidate
    return here.parent / "docs"


def bundled() -> dict[str, Path]:
    """Bundled program name -> path, sorted by name."""
    return {p.stem: p for p in sorted(library_dir().glob("*.opt"))}


_HEADER = re.compile(r'^\s*optimizer\s+([A-Za-z_]\w*)(?:\s+"((?:\\"|[^"])*)")?', re.M)


def describe(path: Path) -> str:
    """The description string of a program's ``optimizer`` line."""
    match = _HEADER.search(path.read_text(encoding="utf-8"))
    return match.group(2) if match and match.group(2) else ""


def read_source(source_or_path) -> tuple[str, str]:
    """Program text and the file name errors should cite."""
    if isinstance(source_or_path, Path) or "\n" not in str(source_or_path):
        path = Path(source_or_path)
        if not path.exists():
            path = bundled().get(str(source_or_path), path)
        if not path.exists():
            names = sorted(bundled())
            close = difflib.get_close_matches(str(source_or_path), names, n=1)
            hint = f"did you mean `{close[0]}`?" if close else "bundled programs: " + ", ".join(names)
            raise DSLError(
                f"no file or bundled program named `{source_or_path}`",
                Span(1, 1),
                hint=hint,
                filename=str(source_or_path),
            )
        if not path.is_file():
            raise DSLError(
                f"{path} is not a regular file",
                Span(1, 1),
                hint="give an .opt file (a folder, a pipe or a device is not read)",
                filename=str(path),
            )
        try:
            data = path.read_bytes()
        except OSError as err:
            raise DSLError(f"cannot read {path}: {err.strerror}", Span(1, 1), filename=str(path)) from None
        try:
            return decode(data), str(path)
        except DSLError as err:
            raise err.located("", str(path)) from None
    return str(source_or_path), "<string>"
