"""Derivations kept across processes: a derivation is a pure function of the program text, the
options and memcorr's own source, so a second ``derive`` of the same program (``memcorr verify``
after ``memcorr derive``, the test suite's workers) reads the first one's result from disk.

The key is a hash of the program text and file name, the options, and a fingerprint of the code
that derives: every module, template and grammar of the installed package, and the versions of
Python and sympy. An edit to memcorr is a new key, never a stale result. The folder is
``$MEMCORR_CACHE`` (``off`` turns the cache off), else ``$XDG_CACHE_HOME/memcorr``, else
``~/.cache/memcorr``. A folder that cannot be written, or an entry that cannot be read, is the same
as no cache: the derivation is computed. Processes that need the same entry at once take turns (a
``flock`` on a lock file beside it), so the test suite's workers derive a program once between them.
"""

from __future__ import annotations

import contextlib
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

    digest = hashlib.sha256(f"{platform.python_version()} sympy {sympy.__version__}".encode())
    # the grammar sits in the package when installed from a wheel, beside it in the source tree
    files = {p for pattern in SOURCES for p in PACKAGE.rglob(pattern)} | set(PACKAGE.parent.glob("grammars/*.lark"))
    for path in sorted(files):
        digest.update(str(path.relative_to(path.parent.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached(key: tuple, compute: Callable[[], T]) -> T:
    """``compute()``, or its result from an earlier process with the same ``key`` and code. Processes
    that need the same entry at once (the test suite's workers) take turns: one derives, the others
    wait for it and read its entry."""
    where = folder()
    if where is None:
        return compute()
    entry = entry_path(where, key)
    found = _load(entry)
    if found:
        return found[0]
    with _turn(entry):
        found = _load(entry)  # written while this process waited
        if found:
            return found[0]
        value = compute()
        _store(entry, value)
    return value


def entry_path(where: Path, key: tuple) -> Path:
    """The file of the entry of ``key`` in the folder ``where``."""
    return where / (hashlib.sha256(repr((fingerprint(), key)).encode()).hexdigest() + ".pickle")


def _load(entry: Path) -> tuple:
    """``(value,)`` from the entry, or ``()`` where there is none or it cannot be read."""
    try:
        with entry.open("rb") as f:
            return (pickle.load(f),)
    except FileNotFoundError:
        pass
    except Exception as err:  # a torn or foreign file: derive again and replace it
        log.debug("derivation cache: %s unreadable (%s)", entry, err)
    return ()


@contextlib.contextmanager
def _turn(entry: Path):
    """An exclusive lock beside the entry for as long as it is derived (released by the system if the
    process dies); no lock where the folder cannot be written or the system has no ``fcntl``."""
    try:
        import fcntl

        entry.parent.mkdir(parents=True, exist_ok=True)
        handle = open(entry.with_suffix(".lock"), "a")  # held across the yield, closed below
    except (ImportError, OSError) as err:
        log.debug("derivation cache: no lock (%s)", err)
        yield
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as err:  # a file system without locks: derive without one
            log.debug("derivation cache: no lock (%s)", err)
        yield
    finally:
        handle.close()  # closing releases the lock


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
