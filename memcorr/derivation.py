"""The Python entry point of api.md: ``derive(...)`` -> ``Derivation``.

Input: program text, a path or a bundled name, and the options of api.md.
Output: a ``Derivation`` holding every intermediate result (the checked
program, the lowered model, the expansion) and the emitters of generated code.
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from .errors import DerivationError
from .expand import Expansion, expand
from .lower import Model

REGIMES = ("stationary", "finite")
TARGETS = ("map",)


@dataclass
class Derivation:
    model: Model
    expansion: Expansion
    target: str = "map"

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def update(self) -> sp.Expr:
        """Ψ_0: the memoryless update, per coordinate."""
        return self.expansion.update

    @property
    def corrections(self) -> list[sp.Expr]:
        """[Ψ_1, …, Ψ_order]: the coefficients of h, h², … in the memoryless map."""
        return self.expansion.corrections

    @property
    def correction(self) -> sp.Expr:
        """Ψ_1: the first-order memory correction."""
        return self.expansion.corrections[0]

    @property
    def states(self) -> dict[str, list[sp.Expr]]:
        """{state: [S_0, S_1, …]} on the invariant manifold (finite regime: [S^(n)])."""
        return self.expansion.states

    @property
    def order(self) -> int:
        return self.expansion.order

    @property
    def regime(self) -> str:
        return self.expansion.regime

    @property
    def notes(self) -> list[str]:
        return self.expansion.notes

    def summary(self) -> str:
        """A readable account for the terminal."""
        from .printing.text import summary
        return summary(self)

    def to_numpy(self) -> str:
        from .printing.numpy import module_source
        return module_source(self)


def derive(source_or_path, order: int = 1, regime: str = "stationary", target: str = "map") -> Derivation:
    """Parse, check, lower and expand a program (api.md)."""
    from . import load
    if regime not in REGIMES:
        raise DerivationError(f"unknown regime `{regime}`: choose one of {', '.join(REGIMES)}")
    if target not in TARGETS:
        raise DerivationError(f"unknown target `{target}`: this version derives the map "
                              "(the modified flow is not implemented yet)")
    if not isinstance(order, int) or order < 1:
        raise DerivationError(f"the order must be a whole number >= 1, not {order!r}")
    model = load(source_or_path)
    return Derivation(model, expand(model, order, regime), target)


def load_module(derivation: Derivation, backend: str = "numpy"):
    """Generate the module for ``backend``, write it to a temporary file and import it."""
    if backend != "numpy":
        raise DerivationError(f"unknown backend `{backend}`: this version generates numpy")
    source = derivation.to_numpy()
    folder = Path(tempfile.mkdtemp(prefix="memcorr_"))
    path = folder / f"{derivation.name}_numpy.py"
    path.write_text(source, encoding="utf-8")
    name = f"memcorr_generated_{derivation.name}_{id(derivation)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
