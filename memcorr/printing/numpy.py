"""The generated NumPy module of docs/python.md (``NAME_numpy.py``).

Input: ``Derivation``. Output: the source of a standalone module (imports
numpy only) with ``HYPER``, ``update``, ``correction``, ``memoryless``,
``initial_state`` and ``penalty``; in the finite regime every function also
takes ``n=``. The formulas are printed by the shared generator (``codegen``);
this backend names numpy and wraps them in the public functions.
"""

from __future__ import annotations

from .codegen import CHECKS, ProtocolPrinter, fill, generate, penalty_body, template


class NumpyCodePrinter(ProtocolPrinter):
    _module = "numpy"

    def _noise_helpers(self) -> None:
        """The gradient noise's helpers (random batches), defined once in the module."""
        self.helpers.setdefault("noise", ("_noise", template("numpy_noise.py.tmpl").rstrip()))

    def _print_Noise(self, expr):
        self._noise_helpers()
        return "_noise(theta, L)"

    def _print_NoiseGrad(self, expr):
        self._noise_helpers()
        return "_noise_grad(theta, L)"

    def _moment(self, kind, expr):
        self._noise_helpers()
        return f"_moment({kind!r}, theta, L{''.join(', ' + self._field(a) for a in expr.args)})"


def module_source(d) -> str:
    """The text of the generated module for the derivation ``d``.

    ``theta``, ``L`` and ``h`` are positional-only, so hyperparameters may take those names;
    ``order`` and ``n`` are the module's own keywords."""
    x = generate(d, NumpyCodePrinter)
    penalty = penalty_body(x, f"float(_potential({x.call}))")
    return fill("numpy_module.py.tmpl", x, checks=CHECKS, penalty=penalty)
