"""memcorr: memoryless modified equations of optimizers with memory.

The pipeline, one module per stage: ``parse`` (text -> AST), ``check``
(semantics, dependency graph), ``lower`` (state-space model), ``calculus``
(vector-field algebra), ``expand`` (invariant manifold and finite-n form),
``perturb`` (loss perturbation), ``printing`` (LaTeX, NumPy, PyTorch),
``verify`` (numeric checks), ``cli`` (command line).
"""

from .errors import DerivationError, DSLError

__all__ = ["DSLError", "DerivationError", "load", "derive", "load_module"]
__version__ = "0.1.0"


def load(source_or_path):
    """Parse, check and lower a program given as text, a path, or a bundled name."""
    from .check import check
    from .library import read_source
    from .lower import lower
    from .parse import parse

    text, filename = read_source(source_or_path)
    return lower(check(parse(text, filename)))


def derive(
    source_or_path,
    order: int = 1,
    regime: str = "stationary",
    target: str = "map",
    params: dict[str, str] | None = None,
):
    """Derive the memoryless map of a program (see ``memcorr.derivation``)."""
    from .derivation import derive as _derive

    return _derive(source_or_path, order=order, regime=regime, target=target, params=params)


def load_module(derivation, backend: str = "numpy"):
    """The generated module of a derivation, imported."""
    from .derivation import load_module as _load_module

    return _load_module(derivation, backend)
