"""Derivations kept across processes: a derivation is a pure function of the program text, the
options and memcorr's own source, so a second ``derive`` of the same program (``memcorr verify``
after ``memcorr derive``, the test suite's workers) reads the first one's result from disk.

The key is a hash of the program text and file name, the options, and a fingerprint of the code
that derives: every module, template and grammar of the installed package, and the versions of
Python and sympy. An edit to memcorr is a new key, never a stale result. The folder is
``$MEMCORR_CACHE`` (``off`` turns the cache off), else ``$XDG_CACHE_HOME/memcorr``, else
``~/.cache/memcorr``. A folder that cannot be written, or an entry that cannot be read, is the same
as no cache: the derivation is computed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("memcorr")
PACKAGE = Path(__file__).resolve().parent
SOURCES = ("*.py", "*.tmpl", "*.lark")


def folder() -> Path | None:
    """Where entries live, or None when the cache is off."""
    setting = os.environ.get("MEMCORR_CACHE")
    if setting is not None:
        return None if setting.strip().lower() in ("", "0", "off", "no", "false") else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "memcorr"


@functools.cache
def fingerprint() -> str:
    """A hash of the code that derives: the package's files (the grammar too, wherever it is installed)
    and the versions of Python and sympy."""
    import sympy

    from .dsl.parse import grammar_path

    digest = hashlib.sha256(f"{platform.python_version()} sympy {sympy.__version__}".encode())
    files = {p for pattern in SOURCES for p in PACKAGE.rglob(pattern)} | {grammar_path()}
    for path in sorted(files):
        digest.update(str(path.relative_to(path.parent.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached(key: tuple, compute: Callable[[], T]) -> T:
    """``compute()``, or its result from an earlier process with the same ``key`` and code."""
    where = folder()
    if where is None:
        return compute()
    entry = where / (hashlib.sha256(repr((fingerprint(), key)).encode()).hexdigest() + ".pickle")
    try:
        with entry.open("rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        pass
    except Exception as err:  # a torn or foreign file: derive again and replace it
        log.debug("derivation cache: %s unreadable (%s)", entry, err)
    value = compute()
    _store(entry, value)
    return value


def _store(entry: Path, value) -> None:
    """Write through a temporary file renamed into place: a reader never sees half an entry."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        handle, part = tempfile.mkstemp(dir=entry.parent, suffix=".part")
    except OSError as err:  # a read-only home: no cache, same result
        log.debug("derivation cache: not stored (%s)", err)
        return
    try:
        with os.fdopen(handle, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(part, entry)
    except Exception as err:  # a full disk, an object pickle refuses: no cache, same result
        log.debug("derivation cache: not stored (%s)", err)
        Path(part).unlink(missing_ok=True)
