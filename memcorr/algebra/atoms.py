"""The per-coordinate vector-field algebra of docs/method.md §3.

Input: sympy expressions for coordinate ``j`` of a vector field, built from the
field symbols ``theta`` and ``g`` (``FieldSymbol``), parameters, and the atoms
below. Output: their directional derivative ``D[E][u]`` (``directional``), their
``h``-derivatives (each atom's ``_eval_derivative``) and the Taylor expansion of
gradients and losses at points near ``theta`` (``expand_points``).

Atoms (their notation lives in the printers of ``memcorr.printing``):

- ``Hess(E)``            ``(∇²L · E)_j``
- ``Dk(E1, …, Ek)``      ``(∇^{k+1} L [E1, …, Ek])_j``, k >= 2, symmetric
- ``Grad(x)``            ``∂_j L(x)`` at a point ``x`` other than theta
- ``LossAt(x)``          ``L(x)``, a scalar
- ``LOSS``               ``L(θ)``, a scalar
- ``Norm(E)``, ``Dot(E1, E2)``, ``CoordSum(E) = Σ_i E_i``: scalar reductions
- ``Noise()``            ``V = E_b ‖∇L_b − ∇L‖²``, the gradient noise of random batches (§7), a scalar
- ``NoiseGrad()``        ``∂_j V``; ``E_b[∇²L_b ∇L_b] = ∇²L ∇L + ½ ∇V`` (§7)

``Hess`` and ``Dk`` are multilinear and ``Dot``/``CoordSum`` linear: factors that
are the same in every coordinate (parameters, ``h``, reductions) are pulled out
on construction, so equal fields print equal.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.sorting import default_sort_key

from ..errors import DerivationError


class FieldSymbol(sp.Symbol):
    """A per-coordinate quantity: ``theta``, ``g``, a state, or a direction placeholder.

    In LaTeX it is coordinate ``j`` (``\\partial_j L``) on its own and the whole vector
    (``\\nabla L``) inside an atom's argument, where the atom acts on the vector field."""


THETA = FieldSymbol("theta", real=True)
G = FieldSymbol("g", real=True)


class LossValue(sp.Symbol):
    """The loss at the current iterate, ``L(θ)`` (a scalar)."""

    def __new__(cls):
        return sp.Symbol.__new__(cls, "loss", real=True)

    def __getnewargs_ex__(self):  # pickling (the derivation cache): Symbol's would pass the name back
        return (), {}


LOSS = LossValue()


def is_scalar(expr) -> bool:
    """True if ``expr`` has the same value in every coordinate."""
    if isinstance(expr, (ScalarAtom, LossValue)):
        return True
    if isinstance(expr, (FieldSymbol, FieldAtom)):
        return False
    return all(is_scalar(a) for a in expr.args)


def sum_by_key(pairs) -> dict:
    """``{key: Σ values}`` from ``(key, value)`` pairs, each sum built once: adding sympy terms one at a
    time rebuilds the whole sum at every step (quadratic in its length; Adam's order-3 map spent 86 % of
    its time there)."""
    parts: dict = {}
    for key, value in pairs:
        parts.setdefault(key, []).append(value)
    return {key: sp.Add(*values) for key, values in parts.items()}


def distribute(expr) -> list[sp.Expr]:
    """The terms of ``expr`` with products distributed over sums, denominators left alone."""
    terms: list[sp.Expr] = []
    for term in sp.Add.make_args(expr):
        factors = sp.Mul.make_args(term)
        sums = [distribute(f) for f in factors if f.is_Add]
        rest = sp.Mul(*[f for f in factors if not f.is_Add])
        combos: list[list[sp.Expr]] = [[]]
        for parts in sums:
            combos = [c + [p] for c in combos for p in parts]
        terms.extend(rest * sp.Mul(*c) for c in combos)
    return terms


def linear_terms(expr) -> list[tuple[sp.Expr, sp.Expr]]:
    """``expr`` as ``Σ c_i E_i`` with scalar coefficients ``c_i`` and field parts ``E_i``."""
    terms = []
    for term in distribute(expr):
        factors = sp.Mul.make_args(term)
        scalar = [f for f in factors if is_scalar(f)]
        field = [f for f in factors if not is_scalar(f)]
        terms.append((sp.Mul(*scalar), sp.Mul(*field)))
    return terms


def _rebuilt(cls, args):
    return cls(*args, evaluate=False)


class _Atom(sp.Function):
    """An atom that unpickles as it was pickled: short forms keep sums inside atoms that evaluation
    would split (the derivation cache stores them)."""

    def __reduce_ex__(self, protocol):
        return _rebuilt, (type(self), self.args)


class FieldAtom(_Atom):
    """A per-coordinate atom that depends on the loss."""

    is_real = True


class ScalarAtom(_Atom):
    """A coordinate-independent reduction."""

    is_real = True


def _multilinear(cls, args):
    """Pull scalar factors and sums out of every argument; None if already canonical."""
    if any(a == 0 for a in args):
        return sp.S.Zero
    # factor_terms would pull b^n out of a sum over steps as b^n * Σ b^(-s): overflow for large n
    split = [linear_terms(a if a.has(sp.Sum) else sp.factor_terms(a)) for a in args]
    if all(len(s) == 1 and s[0][0] == 1 for s in split):
        fields = [s[0][1] for s in split]
        if cls.symmetric:
            fields = sorted(fields, key=default_sort_key)
        return None if fields == list(args) else cls(*fields)
    return sp.Add(*[sp.Mul(*[c for c, _ in combo]) * cls(*[f for _, f in combo]) for combo in _product(split)])


def _product(lists):
    out = [[]]
    for items in lists:
        out = [prev + [item] for prev in out for item in items]
    return out


class _Linear:
    """An atom linear in its one argument: constants pulled out, derivatives taken inside."""

    nargs = 1
    symmetric = False

    @classmethod
    def eval(cls, e):
        return _multilinear(cls, (e,))

    def _eval_derivative(self, s):
        return self.func(sp.diff(self.args[0], s))


class Hess(_Linear, FieldAtom):
    """``(∇²L · E)_j``: the Hessian applied to the vector field ``E``."""

    def directional(self, u):
        return Dk(u, self.args[0]) + Hess(directional(self.args[0], u))


class Dk(FieldAtom):
    """``(∇^{k+1} L [E_1, …, E_k])_j`` for k >= 2 (``Dk(E)`` is ``Hess(E)``)."""

    symmetric = True

    @classmethod
    def eval(cls, *args):
        if len(args) == 1:
            return Hess(args[0])
        return _multilinear(cls, args)

    def _eval_derivative(self, s):
        a = self.args
        return sp.Add(*[Dk(*a[:i], sp.diff(a[i], s), *a[i + 1 :]) for i in range(len(a))])

    def directional(self, u):
        a = self.args
        return Dk(u, *a) + sp.Add(*[Dk(*a[:i], directional(a[i], u), *a[i + 1 :]) for i in range(len(a))])


class _AtPoint:
    """An atom of the loss at a point ``x``: at the current iterate it is ``at_theta``."""

    nargs = 1
    at_theta: sp.Expr

    @classmethod
    def eval(cls, x):
        return cls.at_theta if x == THETA else None


class Grad(_AtPoint, FieldAtom):
    """``∂_j L(x)``: the gradient at a point ``x`` (``Grad(theta)`` is ``g``)."""

    at_theta = G


class LossAt(_AtPoint, ScalarAtom):
    """``L(x)``: the loss at a point ``x`` (``LossAt(theta)`` is ``L``)."""

    at_theta = LOSS


class Norm(ScalarAtom):
    """``‖E‖``: the Euclidean norm over all coordinates."""

    nargs = 1

    @classmethod
    def eval(cls, e):
        terms = linear_terms(sp.factor_terms(e))
        if len(terms) != 1 or (terms[0][0] == 1 and terms[0][1] == e):
            return None
        return sp.Abs(terms[0][0]) * Norm(terms[0][1])

    def _eval_derivative(self, s):
        e = self.args[0]
        return Dot(e, sp.diff(e, s)) / self

    def directional(self, u):
        e = self.args[0]
        return Dot(e, directional(e, u)) / self


class Dot(ScalarAtom):
    """``Σ_i (E1)_i (E2)_i``."""

    nargs = 2
    symmetric = True

    @classmethod
    def eval(cls, a, b):
        return _multilinear(cls, (a, b))

    def _eval_derivative(self, s):
        a, b = self.args
        return Dot(sp.diff(a, s), b) + Dot(a, sp.diff(b, s))

    def directional(self, u):
        a, b = self.args
        return Dot(directional(a, u), b) + Dot(a, directional(b, u))


class CoordSum(_Linear, ScalarAtom):
    """``Σ_i E_i``: the sum over coordinates."""

    def directional(self, u):
        return CoordSum(directional(self.args[0], u))


class Noise(ScalarAtom):
    """``V(θ) = E_b ‖∇L_b(θ) − ∇L(θ)‖²``: the trace of the gradient covariance over the batches."""

    nargs = 0

    def directional(self, u):
        return Dot(NoiseGrad(), u)


class NoiseGrad(FieldAtom):
    """``∂_j V``: the same-batch moment ``E_b[∇²L_b ∇L_b] − ∇²L ∇L`` is ``½ ∇V``."""

    nargs = 0

    def directional(self, u):
        raise DerivationError(
            "the derivative of the noise's gradient ∇V is not in the calculus: random batches are derived at "
            "first order (use --order 1)"
        )


def outer_atoms(expr) -> set:
    """The atoms of ``expr`` not nested inside another atom."""
    if isinstance(expr, (FieldAtom, ScalarAtom)):
        return {expr}
    found = set()
    for a in expr.args:
        found |= outer_atoms(a)
    return found


class _Abs(sp.Function):
    """``|x|`` while differentiating: ``|x|' = sign(x)`` for every real argument."""

    def fdiff(self, argindex=1):
        return _Sign(self.args[0])


class _Sign(sp.Function):
    """``sign(x)`` while differentiating: ``sign' = 0`` away from 0."""

    def fdiff(self, argindex=1):
        return sp.S.Zero


def simplify(expr):
    """The shortest of a few cheap rewritings of ``expr`` (cancelled, common factors pulled out,
    powers combined).

    Used instead of ``sympy.simplify``, which imports ``sympy.physics.units`` on its first
    call: a third of a second, a quarter of a whole ``memcorr derive``. The memcorr results
    (rational functions of parameters, powers and atoms) need nothing more; zero tests read
    ``simplify(a - b) == 0`` as before."""
    expr = sp.sympify(expr)
    if expr.is_Atom:
        return expr
    cancelled = sp.cancel(expr)
    forms = [expr, cancelled, sp.factor_terms(expr), sp.factor_terms(cancelled), sp.powsimp(expr), sp.together(expr)]
    return min(forms, key=lambda e: (sp.count_ops(e), len(str(e))))


def _drop_deltas(expr):
    return expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)


def real_diff(expr, x):
    """``d expr / dx`` for real arguments (sympy's own rules ask to know they are real):
    ``abs' = sign``, ``sign' = 0``, and the Dirac deltas of max/min dropped."""
    masked = expr.replace(sp.Abs, _Abs).replace(sp.sign, _Sign)
    return _drop_deltas(sp.diff(masked, x).replace(_Abs, sp.Abs).replace(_Sign, sp.sign))


def directional(expr, u):
    """``D[expr][u]``: the derivative of the field ``expr`` at theta in the direction ``u``.

    ``theta`` moves with ``u``, ``g`` with ``Hess(u)``, the loss with ``Dot(g, u)``; other
    field symbols (states, placeholders) are held fixed. ``sign' = 0``, ``abs' = sign``.
    """
    expr = sp.sympify(expr)
    atoms = outer_atoms(expr)
    dummies = {a: sp.Dummy(real=True) for a in atoms}
    flat = expr.xreplace(dummies)
    result = real_diff(flat, THETA) * u + real_diff(flat, G) * Hess(u)
    if flat.has(LOSS):
        result += real_diff(flat, LOSS) * Dot(G, u)
    back = {d: a for a, d in dummies.items()}
    for atom, d in dummies.items():
        if isinstance(atom, (Grad, LossAt)):
            raise ValueError("expand gradients at other points (expand_points) before differentiating")
        result += real_diff(flat, d) * atom.directional(u)
    return result.xreplace(back)


def expand_points(expr, order: int):
    """Replace ``Grad(theta + δ)`` and ``LossAt(theta + δ)`` by their Taylor series in ``δ``.

    ``δ`` must vanish with the step size; terms up to ``δ^order`` are kept, which is
    exact to ``O(h^order)``.
    """

    def taylor(atom):
        delta = sp.expand(atom.args[0] - THETA)
        derivs = [G] + [Dk(*([delta] * m)) for m in range(1, order + 1)]
        if isinstance(atom, Grad):
            return sum(d / sp.factorial(m) for m, d in enumerate(derivs))
        return LOSS + sum(Dot(delta, d) / sp.factorial(m + 1) for m, d in enumerate(derivs[:order]))

    return expr.replace(lambda e: isinstance(e, (Grad, LossAt)), taylor)


def gradient(scalar):
    """``∂_j`` of a scalar built from ``CoordSum``, ``Norm``, ``Dot``, the loss and constants (docs/method.md §3):
    ``∂_j CoordSum(E) = Hess(∂E/∂g) + ∂E/∂θ`` for ``E`` of ``g`` and ``θ``, ``∂_j loss = g``, the chain
    rule through ``Norm(E) = CoordSum(E²)^½`` and ``Dot(A, B) = CoordSum(A B)``."""
    scalar = sp.sympify(scalar)
    atoms = outer_atoms(scalar)
    dummies = {a: sp.Dummy(real=True) for a in atoms}
    flat = scalar.xreplace(dummies)
    result = real_diff(flat, LOSS) * G if flat.has(LOSS) else sp.S.Zero
    for atom, d in dummies.items():
        result += real_diff(flat, d).xreplace({v: k for k, v in dummies.items()}) * _reduction_gradient(atom)
    return result


def _reduction_gradient(atom):
    """``∇`` of a reduction: ``∇Σ_i E_i = (DE)ᵀ 1``, ``∇⟨A, B⟩ = (DA)ᵀB + (DB)ᵀA``, ``∇‖E‖ = (DE)ᵀE/‖E‖``."""
    if isinstance(atom, CoordSum):
        return vjp(atom.args[0], sp.S.One)
    if isinstance(atom, Norm):
        return vjp(atom.args[0], atom.args[0]) / atom
    if isinstance(atom, Dot):
        a, b = atom.args
        return vjp(a, b) + vjp(b, a)
    if isinstance(atom, Noise):
        return NoiseGrad()
    raise ValueError(f"cannot take the gradient of {atom}")


def vjp(expr, v):
    """``(D expr)ᵀ v``: the transposed derivative of the field ``expr`` at θ applied to the field ``v``.

    ``θ`` contributes ``v``, ``g`` contributes ``∇²L v`` (symmetric), ``Hess(X)`` contributes
    ``∇³L[w, X] + (DX)ᵀ∇²L w`` with ``w = ∂expr/∂Hess ⊙ v`` (the third derivative is symmetric),
    ``D_k`` likewise, and a scalar atom ``s`` contributes ``∇s · Σ_i w_i``."""
    expr = sp.sympify(expr)
    atoms = outer_atoms(expr)
    dummies = {a: sp.Dummy(real=True) for a in atoms}
    flat = expr.xreplace(dummies)
    back = {d: a for a, d in dummies.items()}

    def weight(x):
        return (real_diff(flat, x) * v).xreplace(back)

    result = weight(THETA) + Hess(weight(G))
    if flat.has(LOSS):
        result += G * CoordSum(weight(LOSS))
    for atom, d in dummies.items():
        w = weight(d)
        if w == 0:
            continue
        if isinstance(atom, (Hess, Dk)):
            args = atom.args
            result += Dk(w, *args)
            result += sp.Add(*[vjp(a, Dk(*args[:i], w, *args[i + 1 :])) for i, a in enumerate(args)])
        elif isinstance(atom, (CoordSum, Dot, Norm, Noise)):
            result += _reduction_gradient(atom) * CoordSum(w)
        else:
            raise ValueError(f"cannot differentiate {atom} back (a gradient or loss at another point)")
    return result


def bound_indices(exprs) -> list[sp.Dummy]:
    """The step indices bound by the sums in ``exprs``, in an order that does not depend on how
    the Dummies were created (their creation order follows hash-seeded set iteration): by each
    sum's text with every index masked, so that generated names are the same on every run."""
    sums = {s for e in exprs for s in sp.preorder_traversal(e) if isinstance(s, sp.Sum)}

    def masked(s):
        return str(s.xreplace({d: sp.Symbol("_") for d in s.atoms(sp.Dummy)}))

    order: list = []
    for s in sorted(sums, key=masked):
        order += [v for v, *_ in s.limits if isinstance(v, sp.Dummy) and v not in order]
    rest = {d for e in exprs for d in e.atoms(sp.Dummy)} - set(order)
    return order + sorted(rest, key=lambda d: d.name)
