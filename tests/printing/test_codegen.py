"""The code generator both backends share (``memcorr.printing.codegen``): names are validated
identifiers, atoms become loss calls, sums over steps become loops — and the generated functions
are run and compared with the expressions they print."""

import numpy as np
import pytest
import sympy as sp

from memcorr.algebra.atoms import G, Hess
from memcorr.losses import builtin
from memcorr.printing.codegen import ProtocolPrinter, function_body, identifier


def test_identifiers_are_checked_and_moved_aside_from_keywords():
    assert identifier("beta1") == "beta1"
    assert identifier("lambda") == "lambda_"
    assert identifier("_private") == "_private_"
    with pytest.raises(ValueError):
        identifier("os.system('x')")


def run(lines: list[str], L, theta, **values):
    source = "import numpy\ndef f(theta, L, beta):\n" + "\n".join("    " + line for line in lines)
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # our own generated code, in a test
    return namespace["f"](theta, L, **values)


def test_a_hessian_term_is_a_hessian_vector_product():
    beta = sp.Symbol("beta", positive=True)
    printer = ProtocolPrinter({"beta": "beta"}, head="theta, L, beta")
    lines = function_body([beta * Hess(G) / (1 - beta) ** 2], printer)
    L, x0 = builtin("quadratic")
    got = run(lines, L, x0, beta=0.5)
    assert np.allclose(got, 0.5 * L.hvp(x0, L.grad(x0)) / 0.25)


def test_a_sum_over_steps_is_a_loop():
    beta, n = sp.Symbol("beta", positive=True), 4
    s = sp.Dummy("s", integer=True, nonnegative=True)
    printer = ProtocolPrinter({"beta": "beta"}, head="theta, L, beta")
    lines = function_body([sp.Sum(beta**s * G, (s, 0, n - 1))], printer)
    L, x0 = builtin("quadratic")
    assert np.allclose(run(lines, L, x0, beta=0.5), (1 + 0.5 + 0.25 + 0.125) * L.grad(x0))
