"""Shared fixtures: where the bundled and test programs live."""

import functools
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

# One thread per process, set before numpy, torch or jax loads: the suite runs a worker per core, and
# on these small arrays a second thread per worker only contends (the digits MLP example: 18 s → 11 s).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"
BUNDLED = sorted((ROOT / "derivations").glob("*.opt"))
GOOD = sorted((PROGRAMS / "good").glob("*.opt"))
BAD = sorted((PROGRAMS / "bad").glob("*.opt"))
# the bundled programs linear in the gradients: exact E M under random batches, the tree recursion
LINEAR = [
    "gd",
    "heavy_ball",
    "heavy_ball_sum",
    "nesterov",
    "nesterov_velocity",
    "qhm",
    "aggmo",
    "sgd_momentum",
    "sgd_nesterov",
]

# programs outside a regime (issue "the finite regime for every program" widens the finite one)
NOT_STATIONARY = {"decaying_step"}  # n outside decaying powers: finite only


# programs whose stationary derivation takes ten seconds or more: checked with the slow lane, so that
# `pytest -m "not slow"` stays a quick lane that still touches every stage
HEAVY = {"rmsprop", "lion_softsign", "radam", "ademamix", "adan", "adabelief", "lamb"}


def lanes(paths):
    """``paths`` as test parameters, the heavy programs marked slow."""
    return [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in HEAVY else []) for p in paths]


def pytest_configure(config):
    """One derivation cache for the session, shared by the workers (they start after this and inherit the
    environment) and begun empty: what the suite derives, it derives once, with the code under test."""
    if getattr(config.option, "dist", "no") == "load":  # -n alone: an idle worker takes the other's tests
        config.option.dist = "worksteal"
    if not hasattr(config, "workerinput"):
        config.memcorr_cache = tempfile.mkdtemp(prefix="memcorr-test-cache-")
        os.environ["MEMCORR_CACHE"] = config.memcorr_cache


def pytest_collection_modifyitems(items):
    """The slow checks first, the rest in their order: with several workers (``-n``) the last minutes
    are then short tests that the workers share, not one long check that keeps one worker busy alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_unconfigure(config):
    if hasattr(config, "memcorr_cache"):
        shutil.rmtree(config.memcorr_cache, ignore_errors=True)


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


def short_memory(d) -> dict:
    """Hyperparameters with short memory (so that h can be small against every time scale)."""
    rng = random.Random(d.name)
    values = {}
    for name, p in d.model.params.items():
        dom = p.domain
        if p.small:
            values[name] = 0.1
        elif dom is not None and dom.lo == 0 and dom.hi == 1:
            values[name] = rng.uniform(0.3, 0.7)
        else:
            values[name] = p.default if p.default is not None else 0.5
    return values


PDFLATEX = shutil.which("pdflatex")  # .ci/run installs it


def compile_tex(source: str, folder) -> str:
    """Compile ``source`` (it must succeed) and return the log."""
    (folder / "doc.tex").write_text(source, encoding="utf-8")
    run = subprocess.run(
        [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = (folder / "doc.log").read_text(encoding="latin-1") if (folder / "doc.log").exists() else run.stdout
    assert run.returncode == 0, log[-3000:]
    assert (folder / "doc.pdf").stat().st_size > 1000
    packages = {line.split("{")[1].rstrip("}") for line in source.splitlines() if line.startswith("\\usepackage")}
    assert packages <= {"amsmath,amssymb,bm"}, packages
    return log
