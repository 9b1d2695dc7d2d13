"""memcorr: memoryless modified equations of optimizers with memory.

The pipeline, one subpackage per stage, in order (``pipeline.derive`` calls them):

1. ``dsl``        program text -> checked program (parse, check; the bundled library)
2. ``model``      checked program -> state-space model (lower, decay check)
3. ``expand``     model -> memoryless map: stationary or finite regime, modified flow
4. ``potential``  map -> implied loss ``L + hG`` and its verdict, at first order and beyond
5. ``present``    exact results -> the short forms papers print
6. ``printing``   derivation -> text, LaTeX, JSON, NumPy and PyTorch modules
7. ``verify``     derivation -> numbers: the map against the true method with memory

``algebra`` holds the mathematics the stages compute with (atoms, series, simplification);
``errors``, ``losses`` and ``cache`` (derivations and their outputs kept across processes) are shared by
all; ``cli`` is the command line.
"""

from .errors import DerivationError, DSLError

__all__ = ["DSLError", "DerivationError", "load", "derive", "load_module"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``load`` (``memcorr.model``), ``derive`` (``memcorr.pipeline``) and ``load_module``
    (``memcorr.printing``), imported when first used: ``import memcorr`` and ``memcorr --help`` stay free of
    sympy, ``memcorr check`` of the stages after the model."""
    if name == "load":
        from .model import load

        return load
    if name == "derive":
        from .pipeline import derive

        return derive
    if name == "load_module":
        from .printing import load_module

        return load_module
    raise AttributeError(f"module 'memcorr' has no attribute {name!r}")
