"""Stage 6b: results as papers print them (shared by every printer).

Input: exact per-coordinate expressions (``Ψ_r``, ``S_r``, ``G``) and the
program's named temporaries. Output: equal expressions that are short —

- ``tidy``: a sum over the atoms, each coefficient factored (used while expanding too);
- ``simplify_arguments``: the arguments of functions and atoms at their shortest
  (``sign(β g + (1 − β) g)`` is ``sign(g)``, ``ε + ρd² + (1 − ρ)d²`` is ``ε + d²``);
- ``collect``: ``Hess`` terms with proportional coefficients merged into one ``Hess``
  (``c Hess(a) + cλ Hess(θ)`` is ``c Hess(a + λθ)``), then a common factor pulled out;
- ``NamedField``: a field the program named (``d = g + λθ``) or ``Ψ_0`` itself, kept as
  a symbol where that shortens the result; ``unfold`` puts the definitions back;
- ``orient``: parameter gaps written as papers do, ``β/(1 − β)^3`` not ``−β/(β − 1)^3``.

Every transformation is exact; ``tests/test_present.py`` checks each result
against the long form at random points.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .calculus import THETA, FieldAtom, FieldSymbol, G, Hess, distribute, is_scalar, linear_terms, outer_atoms, simplify


class NamedField(FieldSymbol):
    """A per-coordinate quantity with a name and a definition (``d = g + λθ``)."""

    def __new__(cls, name: str, definition):
        # uncached, and equal only with the same definition: sympy caches symbols by name, and two
        # programs' Ψ_0 must not share one object
        obj = FieldSymbol.__xnew__(cls, name, real=True)
        obj.definition = sp.sympify(definition)
        return obj

    def __getnewargs__(self):
        return (self.name, self.definition)

    def _hashable_content(self):
        return super()._hashable_content() + (self.definition,)


def unfold(expr):
    """``expr`` with every named field replaced by its definition (atoms re-evaluated)."""
    while True:
        named = {s: s.definition for s in expr.free_symbols if isinstance(s, NamedField)}
        if not named:
            return expr
        expr = expr.xreplace(named)


# ------------------------------------------------------------ factoring
def radicands(expr):
    """Factor under every root, so that ``sqrt(beta g^2 + (1 - beta) g^2)`` becomes ``|g|``."""
    return expr.replace(
        lambda e: e.is_Pow and e.exp.is_Rational and not e.exp.is_integer, lambda e: sp.Pow(sp.factor(e.base), e.exp)
    )


def tidy(expr):
    """A readable form: a sum over the atoms (and their products), each coefficient factored;
    the part without atoms stays a sum of fields with factored scalar coefficients."""
    groups: dict = {}
    for term in distribute(radicands(expr)):
        atoms = sp.Mul(*sorted(outer_atoms(term), key=sp.default_sort_key))
        groups[atoms] = groups.get(atoms, 0) + term / atoms
    plain = groups.pop(sp.S.One, sp.S.Zero)
    fields: dict = {}
    for coeff, fld in linear_terms(plain):
        fields[fld] = fields.get(fld, 0) + coeff
    return sp.Add(*[factor(c) * f for f, c in fields.items()]) + sp.Add(*[factor(c) * k for k, c in groups.items()])


def factor(coefficient):
    """Factor a coefficient, keeping whichever form is shorter.

    ``|x|`` becomes a positive symbol ``a`` and ``x^(2k)`` becomes ``a^(2k)`` first, so that
    ``g^2/|g|`` cancels (sympy rewrites ``|g|^2`` back to ``g^2`` for real ``g``)."""
    masked, back = _mask_abs(coefficient)
    factored = sp.factor(masked)
    if sp.count_ops(factored) > sp.count_ops(masked):
        return coefficient
    return _unmask(factored, back)


def _mask_abs(expr):
    """``|x| -> a`` (a positive field) and ``x^(2k) -> a^(2k)`` for the field symbols ``x``."""
    back = {}
    fields = sorted(
        {a.args[0] for a in expr.atoms(sp.Abs, sp.sign) if isinstance(a.args[0], FieldSymbol)}, key=sp.default_sort_key
    )
    for i, field_ in enumerate(fields):
        a = FieldSymbol(f"@abs{i}", positive=True)  # a field: atoms must not pull it out as a scalar
        back[a] = sp.Abs(field_)
        expr = expr.xreplace({sp.sign(field_): field_ / a})
        expr = expr.replace(
            lambda e, f=field_: e.is_Pow and e.base == f and e.exp.is_integer,
            lambda e, f=field_, a=a: a**e.exp if e.exp.is_even else f * a ** (e.exp - 1),
        ).xreplace({sp.Abs(field_): a})
    return expr, back


def _unmask(expr, back):
    """Undo ``_mask_abs``: ``a -> |x|``, and ``x/|x|`` read as ``sign(x)`` again."""
    return signs(expr.xreplace(back))


def signs(expr):
    """``x/|x|`` written ``sign(x)`` for every field ``x`` (inside atoms too)."""
    for a in expr.atoms(sp.Abs):
        if isinstance(a.args[0], FieldSymbol):
            expr = expr.subs(a.args[0] / a, sp.sign(a.args[0]))
    return expr


def shortest(expr):
    """The shortest of a few exact rewritings of an expression without atoms."""
    masked, back = _mask_abs(expr)
    candidates = [masked, sp.factor(masked), sp.cancel(masked)]
    for s in sorted(masked.free_symbols, key=sp.default_sort_key):
        # partial fractions in a field (AdamW's coefficient in |g|): rational and small only, apart is costly
        if not isinstance(s, FieldSymbol) or sp.count_ops(masked) > 150 or not masked.is_rational_function(s):
            continue
        try:
            candidates.append(sp.apart(sp.together(masked), s))
        except (sp.PolynomialError, NotImplementedError):
            pass
    return min([expr] + [_unmask(c, back) for c in candidates], key=sp.count_ops)


def orient(expr, samples: list[dict]):
    """Write every parameter-only sum that is negative at all ``samples`` with its sign outside:
    ``-β/(β − 1)^3`` reads ``β/(1 − β)^3`` and ``-g(βⁿ − 1)`` reads ``g(1 − βⁿ)``, as in papers."""

    def negative(base) -> bool:
        if not base.is_Add or not base.free_symbols or not base.free_symbols <= set(samples[0]):
            return False
        return all(bool(base.subs(values) < 0) for values in samples)

    expr = expr.replace(
        lambda e: e.is_Pow and e.exp.is_integer and negative(e.base),
        lambda e: (-1) ** e.exp * sp.Pow(-e.base, e.exp),
    )

    def negative_gap(f) -> bool:  # βⁿ − 1, not β₁ − β₂ (whose sign is the result: anti-regularizing)
        return negative(f) and any(t.is_number for t in f.args)

    return expr.replace(
        lambda e: e.is_Mul and any(negative_gap(f) for f in e.args),
        lambda e: sp.Mul(*[-f if negative_gap(f) else f for f in e.args]) * (-1) ** sum(map(negative_gap, e.args)),
    )


# ------------------------------------------------------------ arguments
def _is_application(e) -> bool:
    return (isinstance(e, sp.Function) and not isinstance(e, (sp.Sum, sp.Piecewise)) and bool(e.args)) or (
        e.is_Pow and e.exp.is_Rational and not e.exp.is_integer
    )


def simplify_arguments(expr):
    """Every function's and atom's arguments at their shortest exact form."""

    def short(arg):
        if not isinstance(arg, sp.Expr) or not arg.free_symbols or arg.is_Symbol:
            return arg
        options = [arg, sp.expand(arg), factor(arg)]
        return min(options, key=sp.count_ops)

    def rebuild(e):
        if e.is_Pow:
            return sp.Pow(short(e.base), e.exp)
        return e.func(*[short(a) for a in e.args])

    return expr.replace(_is_application, rebuild)


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


def affine_in_g(f) -> bool:
    """``f = a g + b(θ)`` with a constant ``a ≠ 0``."""
    a = sp.diff(f.definition, G)
    return a != 0 and is_scalar(a) and not outer_atoms(a) and not sp.expand(f.definition - a * G).has(G)


def rename(expr, fields: list[NamedField]):
    """Write ``expr`` in a named field ``d = a g + b(θ)`` (``g = (d − b)/a``) where that is shorter."""
    for f in filter(affine_in_g, fields):
        a = sp.diff(f.definition, G)
        g_of_d = (f - (f.definition - a * G)) / a
        candidate = simplify_arguments(expr.xreplace({G: g_of_d}))
        candidate = sp.Add(*[shortest(t) if not outer_atoms(t) else t for t in sp.Add.make_args(candidate)])
        if sp.count_ops(candidate) < sp.count_ops(expr):
            expr = candidate
    return expr


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

    def by_powers(add):
        powers = sorted(_step_powers(add, n), key=sp.default_sort_key)
        collected = sp.collect(sp.expand(add), powers, func=sp.factor)
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
    from .lower import default_values, drop_transients, orientation_samples

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
