"""The grammar and the AST: precedence, layout, numbers, positions (dsl.md)."""

import pytest
import sympy as sp

import memcorr
from memcorr.algebra.atoms import THETA, G
from memcorr.dsl.ast import Assign, Chain, Neg, Pow
from memcorr.dsl.parse import parse

HEAD = "optimizer o\nstep h\n"


def F(body, extra=""):
    """F of the program whose update is ``theta = theta - h * (body)``."""
    return memcorr.load(HEAD + extra + f"theta = theta - h * ({body})\n").F


@pytest.mark.parametrize(
    "body, expected",
    [
        ("-g^2", -(G**2)),
        ("-2^2 * g", -4 * G),
        ("2^3^2 * g", 512 * G),  # right-associative
        ("2**3**2 * g", 512 * G),
        ("g^-1", 1 / G),
        ("g - 1 - 2", G - 3),  # left-associative
        ("g / 2 * 4", 2 * G),
        ("g * -3", -3 * G),
        ("+g", G),
        (".5 * g + 2.5E3 * g + 1e-3 * g", sp.Rational(2500501, 1000) * G),
        ("(g)", G),
    ],
)
def test_arithmetic_follows_the_spec(body, expected):
    assert sp.simplify(F(body) - expected) == 0


def test_unary_minus_binds_looser_than_power_in_the_tree():
    program = parse(HEAD + "x = -g^2\ntheta = theta - h * x\n")
    stmt = program.items[1]
    assert isinstance(stmt, Assign) and isinstance(stmt.expr, Neg)
    assert isinstance(stmt.expr.operand, Pow)


def test_layout_semicolons_continuations_and_comments():
    text = (
        '# leading comment\n\noptimizer o "say \\"hi\\""  # comment\nstep h; param b = 1\n'
        "x = (g +\n  theta)\ny = x *\n   2 ; z = y -\n 1\ntheta -= h * (z + 1)\n"
    )
    program = parse(text)
    assert program.description == 'say "hi"'
    model = memcorr.load(text)
    assert sp.simplify(model.F - 2 * (G + THETA)) == 0


def test_minus_equals_is_theta_minus():
    assert sp.simplify(memcorr.load(HEAD + "theta -= h * 3 * g\n").F - 3 * G) == 0


def test_nodes_carry_their_source_positions():
    program = parse(HEAD + "param beta = 0.9 in (0, 1)\nx = beta * g\ntheta = theta - h * x\n")
    param, assign = program.items[1], program.items[2]
    assert (param.span.line, param.span.column) == (3, 1)
    assert (param.default_span.line, param.default_span.column) == (3, 14)
    assert isinstance(assign.expr, Chain)
    assert (assign.expr.operands[1].span.line, assign.expr.operands[1].span.column) == (4, 12)


@pytest.mark.parametrize(
    "domain, value, inside",
    [
        ("in (0, 1)", 0.0, False),
        ("in [0, 1)", 0.0, True),
        ("in (0, 1]", 1.0, True),
        ("in [0, 1]", 1.0, True),
        ("> 0", 0.0, False),
        (">= 0", 0.0, True),
        ("< 1", 1.0, False),
        ("<= 1", 1.0, True),
        ("in (-1, 1)", -0.5, True),
    ],
)
def test_domains(domain, value, inside):
    program = parse(HEAD + f"param p {domain}\ntheta = theta - h * g\n")
    assert program.items[1].domain.contains(value) == inside


def test_domains_become_sympy_assumptions():
    model = memcorr.load(HEAD + "param a = 0.5 in (0, 1)\nparam b = 0 >= 0\nparam c = -1 < 0\ntheta = theta - h * g\n")
    assert model.params["a"].symbol.is_positive
    assert model.params["b"].symbol.is_nonnegative
    assert model.params["c"].symbol.is_negative


def test_small_parameters_are_marked():
    model = memcorr.load("adamw")
    assert model.params["eps"].small and not model.params["weight_decay"].small
