"""LaTeX in paper notation for formulas (``layout`` breaks long ones, ``document`` sets the
program and the whole derivation).

Input: sympy expressions in the atoms of ``algebra.atoms``. Output: LaTeX strings. Notation: coordinate ``j``
(``\\partial_j L``, ``\\theta_j``), whole vectors inside the atoms' arguments
(``\\nabla^2 L[\\Psi_0]``, ``\\|\\nabla L\\|_1``), Greek letters and subscripts for
parameter names (``beta1`` → ``\\beta_1``), ``eps`` → ``\\varepsilon``, weight decay
(``wd``, ``weight_decay``) → ``\\lambda``, the step ``lr`` → ``\\eta`` — each only
where no other name of the program already prints so. All notation is here: the
printer's ``_print_<Atom>`` methods, the names, the recursion of a loop over the steps.
"""

from __future__ import annotations

import functools
import re

import sympy as sp
from sympy.printing.latex import LatexPrinter

from ..algebra.atoms import Dot, FieldSymbol, G
from ..expand.recurrence import Recurrence
from .layout import WIDTH, broken
from .text import paper_powers

ALIASES = {
    "eps": r"\varepsilon",
    "epsilon": r"\varepsilon",
    "wd": r"\lambda",
    "weight_decay": r"\lambda",
    "lam": r"\lambda",
    "lr": r"\eta",
}


def symbol_tex(name: str) -> str:
    """The paper name of a program name, without regard to the rest of the program."""
    if name in ALIASES:
        return ALIASES[name]
    tex = LatexPrinter()._print_Symbol(sp.Symbol(name))
    # a word that is not a Greek letter is upright, as a name and not a product of letters
    return re.sub(r"^([A-Za-z]{2,})(?=_|$)", r"\\mathrm{\1}", tex)


def paper_names(names) -> dict[str, str]:
    """Paper names for the program's names: an alias gives way when two names would print alike."""
    plain = {name: LatexPrinter()._print_Symbol(sp.Symbol(name)) for name in names}
    taken = {tex for tex in plain.values()}
    out = {}
    for name in names:
        tex = symbol_tex(name)
        out[name] = tex if tex == plain[name] or tex not in taken else r"\mathrm{" + name.replace("_", r"\_") + "}"
        taken.add(out[name])
    return out


class MemcorrLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer with the program's paper names."""

    def __init__(self, names: dict[str, str] | None = None):
        # a thin space between factors: "\\partial_j L \\eta" would read as one symbol L\\eta
        super().__init__({"mul_symbol": r"\,"})
        self.names = names or {}

    def doprint(self, expr):
        return super().doprint(paper_powers(expr))

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        # ⟨a, b⟩ is its own bracket; sympy reads the class name Dot as sympy.vector's dot product
        return not isinstance(expr, Dot) and super()._needs_mul_brackets(expr, first, last)

    def _print_Pow(self, expr, exp=None):
        if isinstance(expr.base, FieldSymbol) and expr.base == G and expr.exp.is_positive and expr.exp != sp.S.Half:
            return rf"\left({self._print(expr.base)}\right)^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _print_Symbol(self, expr, style="plain"):
        if expr.name in self.names:
            return self.names[expr.name]
        if expr.name in ALIASES or re.fullmatch(r"[A-Za-z]{2,}", expr.name):
            return symbol_tex(expr.name)
        return super()._print_Symbol(expr, style)

    # ---------------------------------------------------------------- the atoms' notation
    # A field prints as coordinate j (∂_j L) on its own and as the whole vector (∇L) inside an
    # atom's argument, where the atom acts on the vector field.
    _inside_atom = 0

    def _arg(self, expr) -> str:
        """An atom's argument: a vector field, so its symbols print as whole vectors."""
        self._inside_atom += 1
        try:
            return self._print(expr)
        finally:
            self._inside_atom -= 1

    def _coordinate(self, tex: str) -> str:
        return tex if self._inside_atom else rf"\left({tex}\right)_j"

    @staticmethod
    def _power(tex: str, exp) -> str:
        """``tex`` raised to ``exp`` (sympy's printer passes powers of functions this way)."""
        return rf"\left({tex}\right)^{{{exp}}}" if exp else tex

    def _print_FieldSymbol(self, expr):
        name, whole = expr.name, self._inside_atom > 0
        if name == "theta":
            return r"\theta" if whole else r"\theta_j"
        if name == "g":
            return r"\nabla L" if whole else r"\partial_j L"
        if "[" in name:  # a lag state "theta[n-1]"
            base, lag = name[:-1].split("[")
            return rf"{self._print(FieldSymbol(base))}^{{({lag})}}"
        tex = self._print_Symbol(sp.Symbol(name))
        return tex if whole else f"{{{tex}}}_{{j}}"  # braces: a name with a subscript (beta_1) takes j too

    def _print_LossValue(self, expr):
        return "L"

    def _print_Noise(self, expr, exp=None):
        """The gradient noise ``V``; the document defines it (``E_b‖∇L_b − ∇L‖²``)."""
        return f"V^{{{exp}}}" if exp else "V"

    def _print_NoiseGrad(self, expr, exp=None):
        tex = r"\nabla V" if self._inside_atom else r"\partial_j V"
        return self._power(tex, exp)

    def _print_NoiseVar(self, expr, exp=None):
        """``σ²_j = E_b ξ_{b,j}²``; the document defines ``ξ_b = ∇L_b − ∇L``."""
        tex = r"\sigma^2" if self._inside_atom else r"\sigma^2_j"
        return rf"\left({tex}\right)^{{{exp}}}" if exp else tex

    def _noise_times(self, field) -> str:
        """``ξ_b ⊙ E`` (``ξ_b`` alone for ``E = 1``)."""
        return r"\xi_b" if field == 1 else rf"\xi_b \odot {self._arg(field)}"

    def _print_CovHess(self, expr, exp=None):
        inner = rf"\xi_b \odot \nabla^2 L\left[{self._noise_times(expr.args[0])}\right]"
        return self._power(self._coordinate(rf"\mathbb{{E}}_b\left[{inner}\right]"), exp)

    def _print_BatchHess(self, expr, exp=None):
        inner = rf"\nabla^2 L_b\left[{self._noise_times(expr.args[0])}\right]"
        return self._power(self._coordinate(rf"\mathbb{{E}}_b\left[{inner}\right]"), exp)

    def _print_XiBatchHess(self, expr, exp=None):
        inner = rf"\xi_b \odot \nabla^2 L_b\left[{self._arg(expr.args[0])}\right]"
        return self._power(self._coordinate(rf"\mathbb{{E}}_b\left[{inner}\right]"), exp)

    def _print_Hess(self, expr, exp=None):
        return self._power(self._coordinate(rf"\nabla^2 L \left[{self._arg(expr.args[0])}\right]"), exp)

    def _print_Dk(self, expr, exp=None):
        inner = ", ".join(self._arg(a) for a in expr.args)
        return self._power(self._coordinate(rf"\nabla^{{{len(expr.args) + 1}}} L\left[{inner}\right]"), exp)

    def _print_Grad(self, expr, exp=None):
        point = self._arg(expr.args[0])
        gradient = r"\nabla L" if self._inside_atom else r"\partial_j L"
        return self._power(rf"{gradient}\left({point}\right)", exp)

    def _print_LossAt(self, expr, exp=None):
        return self._power(rf"L\left({self._arg(expr.args[0])}\right)", exp)

    def _print_Norm(self, expr, exp=None):
        tex = rf"\left\lVert {self._arg(expr.args[0])} \right\rVert"
        return f"{tex}^{{{exp}}}" if exp else tex  # ‖E‖², not (‖E‖)²

    def _print_Dot(self, expr, exp=None):
        a, b = (self._arg(x) for x in expr.args)
        return self._power(rf"\left\langle {a}, {b} \right\rangle", exp)

    def _print_Recurrence(self, expr, exp=None):
        """One row per update, as a paper defines a recursion: the result at ``t = n``, then the
        updates for ``t = 0 … n − 1``, then the start; long right-hand sides broken over rows."""
        out, names, inits, steps, t, n = expr.parts
        tp, np_ = self._print(t), self._print(n)

        def lines(e):
            return r" \\ & \qquad ".join(broken(e, self, width=WIDTH - 20))  # right of `lhs = ` and `x ←`

        rows = [rf"\Big[{lines(out)}\Big]_{{{tp} = {np_}}}", rf"\text{{after, for }} {tp} = 0, \dots, {np_} - 1:"]
        rows += [rf"\quad {self._arg(x)} \leftarrow {lines(s)}," for x, s in zip(names, steps)]
        # the start: plain values on one row, a start that is itself a loop on rows of its own
        plain = [(x, i) for x, i in zip(names, inits) if not i.has(Recurrence)]
        rows.append(r"\text{from } " + r",\ ".join(rf"{self._arg(x)} = {self._print(i)}" for x, i in plain))
        rows += [rf"\quad {self._arg(x)} = {self._print(i)}" for x, i in zip(names, inits) if i.has(Recurrence)]
        tex = r"\begin{aligned}[t] & " + r" \\ & ".join(rows) + r"\end{aligned}"
        return rf"\left({tex}\right)^{{{exp}}}" if exp else tex

    def _print_CoordSum(self, expr, exp=None):
        """``‖E‖₁`` for ``Σ|E|``, ``‖E‖²`` for ``ΣE²``, ``⟨A, B⟩`` for ``Σ A B``, else ``Σ_i (E)_i``."""
        e = expr.args[0]
        factors = sp.Mul.make_args(e)
        if isinstance(e, sp.Abs) and isinstance(e.args[0], FieldSymbol):
            tex = rf"\left\lVert {self._arg(e.args[0])} \right\rVert_1"
        elif e.is_Pow and e.exp == 2 and isinstance(e.base, FieldSymbol):
            return rf"\left\lVert {self._arg(e.base)} \right\rVert^{{{2 * (exp or 1)}}}"
        elif len(factors) == 2 and all(isinstance(f, FieldSymbol) for f in factors):
            first, second = sorted(factors, key=lambda f: f == G)  # the gradient second: ⟨θ, ∇L⟩
            tex = rf"\left\langle {self._arg(first)}, {self._arg(second)} \right\rangle"
        else:
            tex = rf"\sum_i \left({self._arg(e)}\right)_i"
        return self._power(tex, exp)


def latex(expr, names: dict[str, str] | None = None) -> str:
    return _latex(expr, tuple(sorted((names or {}).items())))


@functools.lru_cache(maxsize=256)  # each generated module's docstring and the JSON record print the same formulas
def _latex(expr, names: tuple) -> str:
    return MemcorrLatexPrinter(dict(names)).doprint(expr)
