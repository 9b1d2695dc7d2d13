"""The vector-field algebra of method.md §3, checked in one dimension against plain calculus."""

import random

import pytest
import sympy as sp

from memcorr.algebra.atoms import (
    LOSS,
    THETA,
    CoordSum,
    Dk,
    Dot,
    FieldSymbol,
    G,
    Grad,
    Hess,
    LossAt,
    Norm,
    directional,
    expand_points,
    real_diff,
)
from memcorr.printing.latex import latex
from memcorr.printing.text import text

x = sp.Symbol("x", real=True)
Lf = sp.Function("L", real=True)
beta = sp.Symbol("beta", positive=True)
U = FieldSymbol("u", real=True)


def one_d(expr):
    """Collapse the atoms to one coordinate: g = L'(θ), Hess(E) = L''(θ) E, D_k = L^(k+1) ΠE, …"""

    def rule(e):
        if isinstance(e, Hess):
            return sp.diff(Lf(x), x, 2) * one_d(e.args[0])
        if isinstance(e, Dk):
            return sp.diff(Lf(x), x, len(e.args) + 1) * sp.Mul(*[one_d(a) for a in e.args])
        if isinstance(e, Dot):
            return one_d(e.args[0]) * one_d(e.args[1])
        if isinstance(e, Norm):
            return sp.Abs(one_d(e.args[0]))
        if isinstance(e, CoordSum):
            return one_d(e.args[0])
        return None

    out = expr
    for atom in sorted(expr.atoms(Hess, Dk, Dot, Norm, CoordSum), key=sp.count_ops, reverse=True):
        if atom in out.atoms(Hess, Dk, Dot, Norm, CoordSum):
            out = out.xreplace({atom: rule(atom)})
    return out.xreplace({G: sp.diff(Lf(x), x), THETA: x, LOSS: Lf(x), U: sp.Symbol("u0")})


FIELDS = [
    G,
    THETA,
    G**2 * THETA,
    beta * G / (1 + sp.Abs(G)),
    Hess(G),
    Hess(G * THETA) * G,
    Dk(G, G),
    sp.sqrt(G**2 + beta),
    LOSS * G,
    Norm(G) * G,
    Dot(G, THETA),
    CoordSum(G**2),
    sp.exp(Hess(THETA)) + sp.tanh(G),
]


@pytest.mark.parametrize("field", FIELDS, ids=str)
def test_directional_derivative_is_the_derivative_in_one_dimension(field):
    lhs = one_d(directional(field, U))
    rhs = real_diff(one_d(field), x) * sp.Symbol("u0")  # plain calculus, abs' = sign
    assert equal_at_random_points(lhs, rhs)


def equal_at_random_points(a, b, trials=5):
    """Compare two one-dimensional expressions at random values of θ, L, L', L'', … and u."""
    rng = random.Random(1)
    derivs = a.atoms(sp.Derivative) | b.atoms(sp.Derivative)
    for _ in range(trials):
        first = {d: rng.uniform(-2, 2) for d in derivs}  # derivatives before x itself
        then = {
            Lf(x): rng.uniform(-2, 2),
            x: rng.uniform(-2, 2),
            sp.Symbol("u0"): rng.uniform(-2, 2),
            beta: rng.uniform(0.1, 0.9),
        }
        va, vb = (complex(e.xreplace(first).xreplace(then)) for e in (a, b))
        if abs(va - vb) > 1e-9 * (1 + abs(va)):
            return False
    return True


def test_rules_of_the_spec():
    assert directional(G, U) == Hess(U)
    assert directional(THETA, U) == U
    assert directional(LOSS, U) == Dot(G, U)
    assert sp.simplify(directional(Hess(G), U) - (Dk(U, G) + Hess(Hess(U)))) == 0
    assert sp.simplify(directional(Norm(G), U) - Dot(G, Hess(U)) / Norm(G)) == 0


def test_sign_derivative_is_zero_and_abs_derivative_is_sign_without_dirac_deltas():
    d = directional(sp.sign(G) + sp.Abs(G), U)
    assert not d.has(sp.DiracDelta)
    assert sp.simplify(d - sp.sign(G) * Hess(U)) == 0
    assert not directional(sp.Max(G, THETA), U).has(sp.DiracDelta)


def test_atoms_are_multilinear_with_scalar_factors_pulled_out():
    assert Hess(3 * beta * G + THETA) == 3 * beta * Hess(G) + Hess(THETA)
    assert Dk(G, THETA) == Dk(THETA, G)
    assert Dot(2 * G, beta * THETA) == 2 * beta * Dot(G, THETA)
    assert Hess(Norm(G) * G) == Norm(G) * Hess(G)  # a reduction is the same in every coordinate
    assert Hess(G * THETA) != THETA * Hess(G)  # a field is not
    assert Grad(THETA) == G and LossAt(THETA) == LOSS


def test_points_near_theta_expand_as_taylor_series():
    h = sp.Symbol("h", positive=True)
    series = expand_points(Grad(THETA + h * G), 3)
    assert sp.simplify(series - (G + h * Hess(G) + h**2 * Dk(G, G) / 2 + h**3 * Dk(G, G, G) / 6)) == 0
    v = sp.Symbol("u0")
    taylor = sum(sp.diff(Lf(x), x, k + 1) * (h * v) ** k / sp.factorial(k) for k in range(3))
    assert sp.simplify(one_d(expand_points(Grad(THETA + h * U), 2)) - taylor) == 0


def test_printing_text_and_latex():
    """The notation lives in the printers (memcorr/printing), not in the atoms."""
    assert text(Dk(G, THETA)) == "D_2(g, θ)"
    assert str(Hess(G)) == "Hess(g)"
    assert r"\nabla^2 L" in latex(Hess(G)) and r"\partial_j L" in latex(G)
    assert r"\nabla^{3} L" in latex(Dk(G, G))
    assert sp.pretty(Hess(G))


def test_latex_prints_vectors_inside_atoms_and_coordinate_j_outside():
    tex = latex(G * Hess(G) + Dot(G, Hess(G)))
    assert r"\partial_j L" in tex  # the coordinate outside
    assert r"\left(\nabla^2 L \left[\nabla L\right]\right)_j" in tex  # the field applied, coordinate j
    assert r"\left\langle \nabla L, \nabla^2 L \left[\nabla L\right] \right\rangle" in tex
