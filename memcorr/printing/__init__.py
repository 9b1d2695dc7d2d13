"""Stage 6, the outputs: a derivation -> text, LaTeX, JSON and the generated NumPy, PyTorch
and JAX modules (docs/python.md).

Input: a ``Derivation``. Output: strings (and, through ``load_module``, an imported module).

- ``text``: the terminal summary; ``latex``: formulas, the program and whole documents;
  ``json``: every formula as LaTeX and ``sympy.srepr``;
- ``codegen``: the generator the backends share; ``numpy``, ``torch`` and ``jax`` the backends.

``OUTPUTS`` is the one registry of formats: the command line's ``--emit``, ``Derivation.to_*``
and ``load_module`` all read it.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..cache import cached
from ..errors import DerivationError


@dataclass(frozen=True)
class Output:
    """One format: the file name it is written to (``{name}`` the optimizer's) and its emitter."""

    file: str
    write: Callable

    def emit(self, d, *args) -> str:
        """The text of ``d`` in this format. Like the derivation, a pure function of what derived it and
        memcorr's code: kept in the derivation cache beside it, so that the test suite's workers, and
        ``memcorr verify`` after ``memcorr derive``, generate each module once (a finite-regime module
        takes seconds of code generation)."""
        if not d.key:
            return self.write(d, *args)
        writer = f"{self.write.__module__}.{self.write.__qualname__}"  # the emitter too: a test may swap it
        return cached(("output", self.file, writer, args, *d.key), lambda: self.write(d, *args))


def _latex(d, standalone: bool = True) -> str:
    from .document import derivation_tex

    return derivation_tex(d, standalone)


def _json(d) -> str:
    from .json import to_json

    return to_json(d)


def _numpy(d) -> str:
    from .numpy import module_source

    return module_source(d)


def _torch(d) -> str:
    from .torch import module_source

    return module_source(d)


def _jax(d) -> str:
    from .jax import module_source

    return module_source(d)


OUTPUTS = {
    "latex": Output("{name}.tex", _latex),
    "numpy": Output("{name}_numpy.py", _numpy),
    "torch": Output("{name}_torch.py", _torch),
    "jax": Output("{name}_jax.py", _jax),
    "json": Output("{name}.json", _json),
}
BACKENDS = ("numpy", "torch", "jax")  # the outputs that are Python modules


def load_module(derivation, backend: str = "numpy") -> types.ModuleType:
    """Generate the module for ``backend`` ("numpy", "torch" or "jax"), write it to a temporary file and
    import it."""
    if backend not in BACKENDS:
        raise DerivationError(f"unknown backend `{backend}`: choose numpy, torch or jax")
    source = OUTPUTS[backend].emit(derivation)
    folder = Path(tempfile.mkdtemp(prefix="memcorr_"))
    path = folder / OUTPUTS[backend].file.format(name=derivation.name)
    path.write_text(source, encoding="utf-8")
    name = f"memcorr_generated_{derivation.name}_{backend}_{id(derivation)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file we just wrote
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
