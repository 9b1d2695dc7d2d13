"""Shared fixtures: where the bundled and test programs live."""

import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"
BUNDLED = sorted((ROOT / "derivations").glob("*.opt"))
GOOD = sorted((PROGRAMS / "good").glob("*.opt"))
BAD = sorted((PROGRAMS / "bad").glob("*.opt"))


@pytest.fixture
def run_cli(capsys):
    """Run ``memcorr`` in-process; return (exit status, stdout, stderr)."""
    from memcorr.cli import main

    def run(*argv):
        status = main([str(a) for a in argv])
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


@functools.cache
def derived(path, **options):
    """``memcorr.derive`` once per program and options across the test session (derivations are
    immutable results; the tests only read them)."""
    import memcorr

    return memcorr.derive(path, **options)
