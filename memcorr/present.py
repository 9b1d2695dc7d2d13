"""Stage 5: results as papers print them (shared by every printer).

Input: the exact ``Expansion`` and the program's named temporaries (and, from the pipeline, the
perturbation's formulas). Output: ``Presented`` — equal expressions that are short:

- ``collect``: ``Hess`` terms with proportional coefficients merged into one ``Hess``
  (``c Hess(a) + cλ Hess(θ)`` is ``c Hess(a + λθ)``), then a common factor pulled out;
- ``NamedField``: a field the program named (``d = g + λθ``) or ``Ψ_0`` itself, kept as
  a symbol where that shortens the result (``algebra.named.unfold`` puts the definitions back);
- finite ``n``: gaps collected in the powers ``βⁿ`` (``finite_form``);
- underneath, the rewritings of ``algebra.simplify`` (``tidy``, ``shortest``, ``orient``).

Every transformation is exact; ``tests/test_present.py`` checks results against the long form
at random points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from .algebra.atoms import (
    THETA,
    Dot,
    FieldAtom,
    FieldSymbol,
    G,
    Hess,
    Noise,
    is_scalar,
    linear_terms,
    outer_atoms,
    simplify,
)
from .algebra.moments import NoiseVar
from .algebra.named import NamedField, affine_in_g, rename, unfold
from .algebra.simplify import factor, once_each, orient, shortest, simplify_arguments, tidy
from .model.sampling import default_values, drop_transients, orientation_samples
from .model.types import Model
from .potential.large_noise import RHO


# ------------------------------------------------------------ collecting
def merge_hessians(expr, update):
    """``Σ c_k Hess(E_k)`` with ``c_k / c_1`` constant becomes ``c_1 Hess(Σ (c_k/c_1) E_k)``, and an
    argument equal to ``Ψ_0`` (up to a constant) is written ``Ψ_0``."""
    psi0 = _psi0_field(update)
    hess_terms, rest = [], sp.S.Zero
    for term in sp.Add.make_args(sp.expand(expr, deep=False, mul=True, multinomial=False)):
        atoms = [f for f in sp.Mul.make_args(term) if isinstance(f, Hess)]
        if len(atoms) == 1:
            hess_terms.append((sp.cancel(term / atoms[0]), atoms[0].args[0]))
        else:
            rest += term
    groups: list[list] = []
    for coeff, arg in hess_terms:
        for group in groups:
            ratio = factor(sp.cancel(coeff / group[0][0]))
            if is_scalar(ratio):
                group.append((coeff, arg, ratio))
                break
        else:
            groups.append([(coeff, arg, sp.S.One)])
    out = rest
    for group in groups:
        lead = group[0][0]
        argument = sp.Add(*[r * a for _, a, r in group])
        out += factor(lead) * _hess_of(argument, psi0)
    return out


def _psi0_field(update):
    """``Ψ_0`` as a named field, or None when it is a single symbol times a constant (then ``g``
    reads better than a name)."""
    field_part = [f for c, f in linear_terms(update)]
    if len(field_part) == 1 and isinstance(field_part[0], FieldSymbol):
        return None
    return NamedField("Psi_0", update)


def _hess_of(argument, psi0):
    """``Hess(argument)``, written ``c Hess(Ψ_0)`` when the argument is ``c Ψ_0``."""
    if psi0 is not None:
        ratio = sp.cancel(argument / psi0.definition)
        if is_scalar(ratio):
            return ratio * Hess(psi0, evaluate=False)
    if len(sp.Add.make_args(argument)) > 1:
        return Hess(simplify_arguments(argument), evaluate=False)
    return Hess(argument)


def common_factor(expr, psi0=None):
    """Pull out the non-constant factor of a term with an atom when it divides every term
    (AdamW's and Adam-L2's ``c(g) (Hess(Ψ_0) + λΨ_0)``); a quotient equal to ``cΨ_0`` is named."""
    terms = sp.Add.make_args(expr)
    with_atom = [t for t in terms if outer_atoms(t)]
    if len(terms) < 2 or not with_atom:
        return expr
    lead = sp.Mul(*[f for f in sp.Mul.make_args(with_atom[0]) if not outer_atoms(f) and not is_scalar(f)])
    if lead == 1:
        return expr
    inner = sp.S.Zero
    for t in terms:
        q = factor(sp.cancel(t / lead)) if not outer_atoms(t) else t / lead
        if psi0 is not None and not outer_atoms(q):
            ratio = factor(sp.cancel(q / psi0.definition))
            q = ratio * psi0 if is_scalar(ratio) else q
        inner += q
    candidate = factor(lead) * inner
    return candidate if sp.count_ops(candidate) < sp.count_ops(expr) else expr


# ------------------------------------------------------------ named fields
def named_fields(temporaries: dict, at_fixed_point) -> list[NamedField]:
    """The program's temporaries that are worth a name: on the manifold (``at_fixed_point``
    evaluates them) they are affine in ``g`` with a constant slope and not just ``c g``."""
    out: list[NamedField] = []
    for name, expr in temporaries.items():
        value = sp.expand(at_fixed_point(expr))
        candidate = NamedField(name, value)
        if value.has(FieldAtom) or not affine_in_g(candidate) or not value.has(THETA):
            continue
        if any(simplify(value - f.definition) == 0 for f in out):
            continue
        out.append(candidate)
    return out


def present(expr, update, fields: list[NamedField], samples: list[dict]):
    """The short form of a per-coordinate result (a correction, a state, a potential)."""
    if expr == 0:
        return expr
    out = tidy(rename(simplify_arguments(expr), fields))
    terms = sp.Add.make_args(sp.expand(out, deep=False, mul=True, multinomial=False))
    plain = shortest(sp.Add(*[t for t in terms if not outer_atoms(t)]))
    out = merge_hessians(sp.Add(*[t for t in terms if outer_atoms(t)]), update)
    out = common_factor(sp.Add(*[_short_term(t) for t in sp.Add.make_args(out)]) + plain, _psi0_field(update))
    best = out if sp.count_ops(out) < sp.count_ops(expr) else expr
    return orient(best, samples)


def _short_term(term):
    """One term with its coefficient (the part outside the atoms) at its shortest."""
    atoms = [f for f in sp.Mul.make_args(term) if outer_atoms(f)]
    coeff = sp.Mul(*[f for f in sp.Mul.make_args(term) if not outer_atoms(f)])
    return shortest(coeff) * sp.Mul(*atoms)


# ------------------------------------------------------------ finite n
def finite_form(expr, n, samples: list[dict]):
    """A finite-n result as papers print it: common factors pulled out, each sum collected in the
    powers ``βⁿ`` with factored coefficients, gaps oriented (``(1 − βⁿ)(g + λθ)``, not
    ``g(1 − βⁿ) − λθ(βⁿ − 1)``). Loops over the steps (``Recurrence``) are left as they are."""
    if expr.has(sp.Tuple) or sp.count_ops(expr) > FINITE_OPS:
        return expr
    # collect applies its func to every factor of every term before the coefficients: the same few, many times
    factor_once = once_each(sp.factor)

    def by_powers(add):
        powers = sorted(_step_powers(add, n), key=sp.default_sort_key)
        collected = sp.collect(sp.expand(add), powers, func=factor_once)
        return collected if sp.count_ops(collected) < sp.count_ops(add) else add

    out = sp.factor_terms(orient(expr, samples)).replace(lambda e: e.is_Add and bool(_step_powers(e, n)), by_powers)
    return orient(min([expr, out], key=sp.count_ops), samples)


FINITE_OPS = 3000  # operations: RAdam's finite map (28,854) stays as derived


def _step_powers(expr, n) -> set:
    return {p for p in expr.atoms(sp.Pow) if p.exp.has(n)}


# ------------------------------------------------------------ a whole derivation
@dataclass
class Presented:
    """The short forms of a derivation's results, and the named fields they use."""

    update: sp.Expr
    corrections: list[sp.Expr]
    states: dict[str, list[sp.Expr]]
    fields: list[NamedField]


def present_expansion(expansion, model) -> Presented:
    """Every result of ``expansion`` in its short form; ``Ψ_0`` named where it recurs. The finite-n
    forms are collected in the powers ``βⁿ`` instead (``finite_form``): factoring them whole costs
    more than deriving them and reads worse."""

    samples = orientation_samples(model)
    if expansion.regime == "finite":

        def finite(e):
            return finite_form(e, model.n, samples)

        states = {k: [finite(s) for s in v] for k, v in expansion.states.items()}
        return Presented(finite(expansion.update), [finite(c) for c in expansion.corrections], states, [])
    S0 = {
        st.symbol: (model.h * expansion.states[st.name][0] if st.velocity else expansion.states[st.name][0])
        for st in model.states
    }

    def at_fixed_point(e):
        e = drop_transients(e.xreplace(S0).subs(model.h, 0), model.n, default_values(model.params))
        fields_in = {s for s in e.free_symbols if isinstance(s, FieldSymbol)}
        return e if fields_in <= {G, THETA} else sp.S.Zero

    fields = named_fields(model.temporaries, at_fixed_point)
    update = present(expansion.update, expansion.update, fields, samples)
    psi0 = update if update != expansion.update else expansion.update

    def short(e, r):
        # orders ≥ 2 stay as expanded (tidied per atom): shortening them costs more than deriving them
        return present(e, psi0, fields, samples) if r <= 1 else e

    corrections = [short(c, r) for r, c in enumerate(expansion.corrections, 1)]
    states = {k: [short(s, r) for r, s in enumerate(v)] for k, v in expansion.states.items()}
    return Presented(update, corrections, states, used_fields([update, *corrections, *sum(states.values(), [])]))


def used_fields(exprs) -> list[NamedField]:
    """The named fields in ``exprs`` and in their definitions, each after the ones it uses."""
    out: list[NamedField] = []

    def visit(e):
        for s in sorted(e.free_symbols, key=sp.default_sort_key):
            if isinstance(s, NamedField) and s not in out:
                visit(s.definition)
                out.append(s)

    for e in exprs:
        visit(e)
    return out


# ------------------------------------------------------------ the implied loss
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


def present_perturbation(p, presented: Presented, model: Model, check_step: int):
    """A ``potential.Perturbation`` with its formulas in short form: ``G = coefficient · penalty``
    collected, the preconditioner and decoupled part in the program's named fields, the remainder
    oriented; ``check_step``: the step ``n`` a finite-n coefficient is judged at."""
    if p.potential is None:
        return p
    if model.n in p.potential.free_symbols:  # finite n: only the coefficient is factored, the rest is long
        coefficient = sp.factor(p.coefficient)
        noise = sp.factor(p.noise_coefficient) * Noise()
        return replace(
            p,
            potential=sp.Mul(coefficient, p.penalty) + noise,
            noise=noise,
            coefficient=coefficient,
            at_step=check_step,
            coefficient_as_n_grows=_as_n_grows(coefficient, model),
        )
    samples = orientation_samples(model)
    coefficient = orient(shortest(p.coefficient), samples)
    penalty = present(p.penalty, presented.update, presented.fields, samples)

    def short(e):
        return present(e, presented.update, presented.fields, samples) if e is not None else e

    noise = orient(sp.factor(p.noise_coefficient), samples) * Noise()  # (1 − β)(1 + β), not 1 − β²
    # the remainder is only oriented, not re-shortened: it is what was left out, not a result to cite
    return replace(
        p,
        potential=(sp.Mul(coefficient, penalty) if coefficient != 1 else penalty) + noise,
        noise=noise,
        critical_batch=_oriented_critical(p.critical_batch, samples),
        coefficient=coefficient,
        penalty=penalty,
        preconditioner=short(p.preconditioner),
        decoupled=short(p.decoupled),
        remainder=orient(p.remainder, samples),
    )


def _oriented_critical(critical, samples):
    """``B* = c V / penalty`` with ``c`` factored and oriented."""
    if critical is None:
        return None
    c, rest = critical.as_independent(Noise)
    return orient(sp.factor(c), samples) * rest


def present_large_noise(reading, model: Model):
    """The large-noise reading (``potential.large_noise``) as papers print it: ``c₀`` and ``c_∞`` term by term
    (``c(ρ)`` between them is printed as ``(c₀ + c_∞ρ)/(1 + ρ)``; otherwise in partial fractions of ``ρ``),
    ``ρ*`` and ``B*`` with their sign inside, gaps ``1 − β``; ``√(g² + σ²)`` is one symbol while the
    correction is shortened."""
    if reading is None or reading.update is None:
        return reading
    samples = orientation_samples(model)
    root, s = sp.sqrt(G**2 + NoiseVar()), FieldSymbol("@s", positive=True)

    def short(e):
        return _sign_inside(orient(shortest(e), samples)) if e is not None else None

    def correction(e):
        masked = {root: s, NoiseVar(): s**2 - G**2}  # σ² through s: the denominators factor as s(ε + s)²
        shortened = present(e.xreplace(masked), reading.update.xreplace(masked), [], samples)
        return unfold(shortened).xreplace({s: root})  # Ψ̄_0 is not the derivation's Ψ_0: written out

    def limit(e):  # a sum of parts (c_∞: the momentum's memory less each pairing) stays a sum, each factored
        return sp.Add(*[orient(factor(t), samples) for t in sp.Add.make_args(e)]) if e is not None else None

    c0, c_inf = limit(reading.c0), limit(reading.c_inf)
    weight = reading.weight
    if weight is not None and not reading.between_limits:
        weight = limit(sp.apart(weight, RHO))  # term by term, as the limits
    return replace(
        reading,
        update=present(reading.update, reading.update, [], samples),
        correction=correction(reading.correction),
        preconditioner=short(reading.preconditioner),
        weight=weight,
        c0=c0,
        c_inf=c_inf,
        ratio=short(reading.ratio),
        critical_batch=short(reading.critical_batch),
    )


def _sign_inside(e):
    """``−(β₁ − β₂)·x`` as ``(β₂ − β₁)·x``: a result papers print without a leading minus."""
    coefficient, rest = e.as_coeff_Mul()
    if coefficient >= 0:
        return e
    parts = list(sp.Mul.make_args(rest))
    for i, f in enumerate(parts):
        if f.is_Add and any(t.could_extract_minus_sign() for t in f.args):  # a difference: β₁ − β₂, not β₁ + 1
            return -coefficient * sp.Mul(*parts[:i], sp.expand(-f), *parts[i + 1 :])
    return e


def present_potentials(potentials: list, model: Model) -> list:
    """Each ``G_r`` (``potential.OrderPotential``) collected over its inner products, and what is
    left over oriented."""
    samples = orientation_samples(model)
    return [
        replace(p, potential=_collected(p.potential, samples), non_gradient=orient(p.non_gradient, samples))
        for p in potentials
    ]
