"""LaTeX of per-coordinate expressions (coordinate ``j``, paper notation).

Input: sympy expressions in the atoms of ``calculus``. Output: LaTeX strings.
The atoms print themselves (their ``_latex`` methods); this printer adds the
names: ``beta1`` -> ``\\beta_{1}`` (sympy's own convention), ``h`` as given.
"""

from __future__ import annotations

from sympy.printing.latex import LatexPrinter


class MemcorrLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer with the field atoms' notation."""

    def __init__(self, settings=None):
        super().__init__({"mul_symbol": None, **(settings or {})})


def latex(expr) -> str:
    return MemcorrLatexPrinter().doprint(expr)
