"""The driver: ``derive(...)`` calls the stages in order and keeps what each returns.

1. ``dsl``        read, parse and check the program               -> ``Checked``
2. ``model``      lower it to a state-space model (decay checked)   -> ``Model``
3. ``expand``     the memoryless map (its modified flow, its mean over random batches) -> ``Expansion``
4. ``potential``  the implied loss and its verdict                  -> ``Perturbation``
5. ``present``    the short forms of both                           -> ``Presented``, ``Derivation``

One step runs out of turn: the map's short forms (5) are made before the loss (4), which is
integrated in the variable they name (AdamW's ``d = g + λθ``). ``Derivation`` keeps every intermediate result
(``d.model.checked``, ``d.model``, ``d.expansion``, ``d.perturbation``, ``d.presented``);
``printing`` and ``verify`` take it from there (``d.to_latex()``, ``memcorr.load_module(d)``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass, field, replace

import sympy as sp
import sympy.core.random as sympy_random

from .algebra.named import NamedField
from .cache import cached
from .dsl.library import read_source
from .errors import DerivationError
from .expand import expand
from .expand.batches import BATCHES, expected, plan
from .expand.concentrated import concentrated_expansion
from .expand.expansion import Expansion
from .expand.flow import modified_flow
from .model import load
from .model.lower import per_group, with_values
from .model.types import Model
from .potential.first import Perturbation, find
from .potential.higher import OrderPotential, higher_potentials
from .potential.large_noise import LargeNoise, read_large_noise
from .potential.noise import with_noise
from .present import Presented, present_expansion, present_large_noise, present_perturbation, present_potentials
from .printing import OUTPUTS

log = logging.getLogger("memcorr")  # stage by stage at INFO: the command line shows it on a terminal
REGIMES = ("stationary", "finite")
TARGETS = ("map", "flow")
MAX_ORDER = 10  # docs/language.md, Limits
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
    # random batches, nonlinear programs: the step at the means of its second-moment filters, the weight
    # of its memory term as a function of σ²/g², and the critical batch size (None: not asked, or linear)
    large_noise: LargeNoise | None = None
    key: tuple = field(default=(), repr=False, compare=False)  # what derived it (the derivation cache's key)

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
    def batches(self) -> str:
        """``"full"`` or ``"random"`` (docs/method.md §7: the corrections are means over the labels)."""
        return self.expansion.batches

    @property
    def notes(self) -> list[str]:
        return self.expansion.notes

    @functools.cached_property
    def grouped(self) -> tuple[Expansion, tuple[str, ...]]:
        """The expansion with the hyperparameters that set no decay rate (weight decay, ε) as
        per-coordinate fields (``model.lower.per_group``), and their names: the map ``Memoryless`` runs
        over parameter groups that give those hyperparameters different values. Computed when asked."""
        model, names = per_group(self.model)
        if not names:
            return self.expansion, ()

        def compute():
            with _seeded():
                x = expand(model, self.order, self.regime)
                return (modified_flow(x) if self.target == "flow" else x), names

        # a second derivation of the program, as costly as the first: kept beside it
        return cached(("per group", *self.key), compute) if self.key else compute()

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
        return OUTPUTS["json"].emit(self)

    def to_latex(self, standalone: bool = False) -> str:
        """An ``align`` block in paper notation: the program, the memoryless map, the states, the
        implied loss and its verdict; ``standalone``: a document that compiles with ``pdflatex``."""
        return OUTPUTS["latex"].emit(self, standalone)

    def _repr_latex_(self) -> str:
        """Jupyter renders a derivation as its update, corrections and potential."""
        from .printing.document import formula_rows

        return "$\\begin{aligned}" + " \\\\ ".join(formula_rows(self)) + "\\end{aligned}$"

    def to_numpy(self) -> str:
        """The generated NumPy module (docs/python.md), as source text."""
        return OUTPUTS["numpy"].emit(self)

    def to_torch(self) -> str:
        """The generated PyTorch module (docs/python.md), as source text."""
        return OUTPUTS["torch"].emit(self)

    def to_jax(self) -> str:
        """The generated JAX module (docs/python.md), with its optax transformation, as source text."""
        return OUTPUTS["jax"].emit(self)


def derive(
    source_or_path,
    order: int = 1,
    regime: str = "stationary",
    target: str = "map",
    params: dict[str, str] | None = None,
    batches: str = "full",
) -> Derivation:
    """Parse, check, lower and expand a program (docs/python.md); ``params`` fixes parameters to numbers
    (given as text, read exactly: ``{"beta2": "0.95"}``).

    sympy factors multivariate polynomials at random evaluation points (Wang's algorithm, from
    its own unseeded generator): how long a factorization takes, and which of the equal forms it
    returns, changed from one process to the next (RMSprop's derivation took 15 s or did not end).
    The generator is seeded for the derivation and given back its state after.

    A derivation done before, in any process, with the same program text, options and memcorr
    source, is read from the derivation cache (``memcorr.cache``) instead."""
    text, filename = read_source(source_or_path)
    values = sorted((k, type(v).__name__, repr(v)) for k, v in (params or {}).items())
    key = (text, filename, order, regime, target, values, batches)

    def compute():
        with _seeded():
            return replace(_derive(source_or_path, order, regime, target, params, batches), key=key)

    return cached(key, compute)


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


def _derive(source_or_path, order, regime, target, params, batches) -> Derivation:
    _check_options(order, regime, target, batches)
    # 1-2. the language and the model
    model = load(source_or_path)
    if params:
        model = with_values(model, params)
    mean = plan(model, regime, order, target) if batches == "random" else None  # refused before any work
    # 3. the memoryless map
    log.info("%s: expanding to order %d, %s regime", model.name, order, regime)
    expansion = expand(model, order, regime)
    if target == "flow":
        log.info("the modified flow")
        expansion = modified_flow(expansion)
    if mean is not None:
        log.info("the mean over random batches")
        expansion = expected(expansion, mean, target, model)
    # 5, first half: the map's short forms, and the fields they name (the loss is read in them)
    log.info("short forms")
    presented = present_expansion(expansion, model)
    # 4. the implied loss, at first order and beyond
    log.info("the implied loss")
    checks = {model.n: FINITE_CHECK_STEP} if regime == "finite" else {}
    full = expansion.corrections[0] - expansion.noise
    perturbation = find(expansion.update, full, model.params, checks, presented.fields)
    potentials = higher_potentials(expansion.corrections, perturbation.preconditioner)
    # 5. the loss's short forms
    perturbation = with_noise(perturbation, expansion.noise, model.params, checks)
    short = present_perturbation(perturbation, presented, model, FINITE_CHECK_STEP)
    large = present_large_noise(_large_noise(model), model) if mean is not None and mean.weights is None else None
    return Derivation(model, expansion, target, short, presented, present_potentials(potentials, model), large)


def _large_noise(model: Model) -> LargeNoise:
    """The large-noise reading of a nonlinear program under random batches, or why it does not apply."""
    log.info("the large-noise reading")
    try:
        e, parts = concentrated_expansion(model)
    except DerivationError as err:
        return LargeNoise(reason=str(err))
    return read_large_noise(e.update, parts, model.params)


def _check_options(order, regime: str, target: str, batches: str) -> None:
    if batches not in BATCHES:
        raise DerivationError(f"unknown batches `{batches}`: choose one of {', '.join(BATCHES)}")
    if regime not in REGIMES:
        raise DerivationError(f"unknown regime `{regime}`: choose one of {', '.join(REGIMES)}")
    if target not in TARGETS:
        raise DerivationError(f"unknown target `{target}`: choose one of {', '.join(TARGETS)}")
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
        raise DerivationError(
            f"the order must be a whole number from 1 to {MAX_ORDER}, not {order!r} (the number of terms grows "
            f"like the rooted trees: heavy ball's order {MAX_ORDER} has 1842)"
        )
