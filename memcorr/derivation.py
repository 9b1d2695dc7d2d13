"""The Python entry point of docs/python.md: ``derive(...)`` -> ``Derivation``.

Input: program text, a path or a bundled name, and the options of docs/python.md.
Output: a ``Derivation`` holding every intermediate result (the checked
program ``d.model.checked``, the lowered model ``d.model``, the exact expansion
``d.expansion``, the perturbation ``d.perturbation``, the short forms
``d.presented``) and the emitters of generated code.

The driver, in order: ``load`` (parse, check, lower) → ``expand`` (→ ``modified_flow``
for ``target="flow"``) → ``perturb.find`` → ``present``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import sys
import tempfile
import types
from dataclasses import dataclass, field, replace
from pathlib import Path

import sympy as sp
import sympy.core.random as sympy_random

from .calculus import Dot
from .errors import DerivationError
from .expand import Expansion, expand, modified_flow
from .lower import Model, default_values, orientation_samples, per_group, with_values
from .perturb import Perturbation, find
from .potentials import OrderPotential, higher_potentials
from .present import NamedField, Presented, orient, present, present_expansion, shortest
from .recurrence import Recurrence

log = logging.getLogger("memcorr")  # stage by stage at INFO: the command line shows it on a terminal
REGIMES = ("stationary", "finite")
TARGETS = ("map", "flow")
MAX_ORDER = 6  # docs/language.md, Limits
FINITE_CHECK_STEP = 30  # the step n at which a finite-n perturbation is checked and judged at the defaults


@dataclass(repr=False)
class Derivation:
    """Every stage's result: ``update``/``corrections``/``states`` are the short forms (they may
    use the named ``fields``); ``expansion`` holds the exact long forms they equal."""

    model: Model
    expansion: Expansion
    target: str
    perturbation: Perturbation
    presented: Presented
    potentials: list[OrderPotential] = field(default_factory=list)  # G_r for r ≥ 2, or why none

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def update(self) -> sp.Expr:
        """Ψ_0: the memoryless update, per coordinate."""
        return self.presented.update

    @property
    def corrections(self) -> list[sp.Expr]:
        """[Ψ_1, …, Ψ_order]: the coefficients of h, h², … in the memoryless map (the flow's Ψ̃_r
        for ``target="flow"``)."""
        return self.presented.corrections

    @property
    def correction(self) -> sp.Expr:
        """Ψ_1: the first-order memory correction."""
        return self.presented.corrections[0]

    @property
    def states(self) -> dict[str, list[sp.Expr]]:
        """{state: [S_0, S_1, …]} on the invariant manifold (finite regime: [S^(n)])."""
        return self.presented.states

    @property
    def fields(self) -> dict[NamedField, sp.Expr]:
        """The named fields the short forms use, with their definitions (``Psi_0``: the update)."""
        return {f: f.definition for f in self.presented.fields}

    @property
    def order(self) -> int:
        return self.expansion.order

    @property
    def regime(self) -> str:
        return self.expansion.regime

    @property
    def notes(self) -> list[str]:
        return self.expansion.notes

    @functools.cached_property
    def grouped(self) -> tuple[Expansion, tuple[str, ...]]:
        """The expansion with the hyperparameters that set no decay rate (weight decay, ε) as
        per-coordinate fields (``lower.per_group``), and their names: the map ``Memoryless`` runs
        over parameter groups that give those hyperparameters different values. Computed when asked."""
        model, names = per_group(self.model)
        if not names:
            return self.expansion, ()
        with _seeded():
            x = expand(model, self.order, self.regime)
            return (modified_flow(x) if self.target == "flow" else x), names

    def __repr__(self) -> str:
        return (
            f"<Derivation {self.name}: {self.regime} regime, order {self.order}, target {self.target}; "
            f"verdict {self.perturbation.verdict} — d.summary() prints it all>"
        )

    def summary(self) -> str:
        """A readable account for the terminal."""
        from .printing.text import summary

        return summary(self)

    def to_json(self) -> str:
        """The JSON record of docs/python.md: every formula as LaTeX and as ``sympy.srepr``."""
        from .printing.json import to_json

        return to_json(self)

    def to_latex(self, standalone: bool = False) -> str:
        """An ``align`` block in paper notation: the program, the memoryless map, the states, the
        implied loss and its verdict; ``standalone``: a document that compiles with ``pdflatex``."""
        from .printing.latex import derivation_tex

        return derivation_tex(self, standalone)

    def _repr_latex_(self) -> str:
        """Jupyter renders a derivation as its update, corrections and potential."""
        from .printing.latex import formula_rows

        return "$\\begin{aligned}" + " \\\\ ".join(formula_rows(self)) + "\\end{aligned}$"

    def to_numpy(self) -> str:
        """The generated NumPy module (docs/python.md), as source text."""
        from .printing.numpy import module_source

        return module_source(self)

    def to_torch(self) -> str:
        """The generated PyTorch module (docs/python.md), as source text."""
        from .printing.torch import module_source

        return module_source(self)


def derive(
    source_or_path,
    order: int = 1,
    regime: str = "stationary",
    target: str = "map",
    params: dict[str, str] | None = None,
) -> Derivation:
    """Parse, check, lower and expand a program (docs/python.md); ``params`` fixes parameters to numbers
    (given as text, read exactly: ``{"beta2": "0.95"}``).

    sympy factors multivariate polynomials at random evaluation points (Wang's algorithm, from
    its own unseeded generator): how long a factorization takes, and which of the equal forms it
    returns, changed from one process to the next (RMSprop's derivation took 15 s or did not end).
    The generator is seeded for the derivation and given back its state after."""
    with _seeded():
        return _derive(source_or_path, order, regime, target, params)


@contextlib.contextmanager
def _seeded():
    """sympy's random generators seeded for a derivation, their state given back after."""
    generators = (sympy_random.rng, sympy_random._assumptions_rng)
    states = [r.getstate() for r in generators]
    sympy_random.seed(0)
    try:
        yield
    finally:
        for r, state in zip(generators, states):
            r.setstate(state)


def _derive(source_or_path, order, regime, target, params) -> Derivation:
    from . import load

    if regime not in REGIMES:
        raise DerivationError(f"unknown regime `{regime}`: choose one of {', '.join(REGIMES)}")
    if target not in TARGETS:
        raise DerivationError(f"unknown target `{target}`: choose one of {', '.join(TARGETS)}")
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
        raise DerivationError(
            f"the order must be a whole number from 1 to {MAX_ORDER}, not {order!r} (the number of terms grows "
            f"like the rooted trees: heavy ball's order {MAX_ORDER} has 48)"
        )
    model = load(source_or_path)
    if params:
        model = with_values(model, params)
    log.info("%s: expanding to order %d, %s regime", model.name, order, regime)
    expansion = expand(model, order, regime)
    if target == "flow":
        if expansion.update.has(Recurrence):
            raise DerivationError(
                "the modified flow differentiates the map, and this finite-n map is a loop over the "
                "past steps with no closed form; use --target map (or the stationary regime)"
            )
        log.info("the modified flow")
        expansion = modified_flow(expansion)
    log.info("short forms")
    presented = present_expansion(expansion, model)
    log.info("the implied loss")
    checks = {model.n: FINITE_CHECK_STEP} if regime == "finite" else {}
    perturbation = find(expansion.update, expansion.corrections[0], model.params, checks, presented.fields)
    potentials = higher_potentials(expansion.corrections, perturbation.preconditioner)
    samples = orientation_samples(model)
    potentials = [
        replace(p, potential=_collected(p.potential, samples), non_gradient=orient(p.non_gradient, samples))
        for p in potentials
    ]
    short = _presented_perturbation(perturbation, presented, model)
    return Derivation(model, expansion, target, short, presented, potentials)


def _as_n_grows(coefficient, model: Model) -> float | None:
    """The coefficient at the defaults as ``n → ∞`` (None where it has no finite limit)."""
    at_defaults = coefficient.xreplace(default_values(model.params))
    try:
        value = sp.limit(at_defaults, model.n, sp.oo)
    except (NotImplementedError, ValueError, TypeError):  # sympy's limit fails on min(3, n): settle numerically
        far, farther = (at_defaults.xreplace({model.n: k}) for k in (10**8, 10**9))
        value = farther if far.is_number and abs(far - farther) <= 1e-12 * (1 + abs(far)) else sp.nan
    return float(value) if value.is_number and value.is_finite else None


def _collected(potential, samples):
    """``Σ c_i ⟨a_i, b_i⟩`` with the coefficients factored and oriented (``1 − β``, not ``β − 1``)."""
    if potential is None:
        return None
    terms = sp.collect(sp.expand(potential), [a for a in potential.atoms(Dot)], evaluate=False)
    return sp.Add(*[orient(sp.factor(c), samples) * a for a, c in terms.items()])


def _presented_perturbation(p: Perturbation, presented: Presented, model: Model) -> Perturbation:
    """The perturbation's formulas in short form: ``G = coefficient · penalty`` collected, the
    preconditioner and decoupled part in the program's named fields, the remainder oriented."""
    if p.potential is None:
        return p
    if model.n in p.potential.free_symbols:  # finite n: only the coefficient is factored, the rest is long
        coefficient = sp.factor(p.coefficient)
        return replace(
            p,
            potential=sp.Mul(coefficient, p.penalty),
            coefficient=coefficient,
            at_step=FINITE_CHECK_STEP,
            coefficient_as_n_grows=_as_n_grows(coefficient, model),
        )
    samples = orientation_samples(model)
    coefficient = orient(shortest(p.coefficient), samples)
    penalty = present(p.penalty, presented.update, presented.fields, samples)

    def short(e):
        return present(e, presented.update, presented.fields, samples) if e is not None else e

    # the remainder is only oriented, not re-shortened: it is what was left out, not a result to cite
    return replace(
        p,
        potential=sp.Mul(coefficient, penalty) if coefficient != 1 else penalty,
        coefficient=coefficient,
        penalty=penalty,
        preconditioner=short(p.preconditioner),
        decoupled=short(p.decoupled),
        remainder=orient(p.remainder, samples),
    )


def load_module(derivation: Derivation, backend: str = "numpy") -> types.ModuleType:
    """Generate the module for ``backend`` ("numpy" or "torch"), write it to a temporary file and
    import it."""
    emitters = {"numpy": derivation.to_numpy, "torch": derivation.to_torch}
    if backend not in emitters:
        raise DerivationError(f"unknown backend `{backend}`: choose numpy or torch")
    source = emitters[backend]()
    folder = Path(tempfile.mkdtemp(prefix="memcorr_"))
    path = folder / f"{derivation.name}_{backend}.py"
    path.write_text(source, encoding="utf-8")
    name = f"memcorr_generated_{derivation.name}_{backend}_{id(derivation)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file we just wrote
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
