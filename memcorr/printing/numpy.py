"""The generated NumPy module of docs/python.md (``NAME_numpy.py``).

Input: ``Derivation``. Output: the source of a standalone module (imports
numpy only) with ``HYPER``, ``update``, ``correction``, ``memoryless``,
``initial_state`` and ``penalty``; in the finite regime every function also
takes ``n=``. The formulas are printed by the shared generator (``codegen``);
this backend names numpy and wraps them in the public functions.
"""

from __future__ import annotations

from .codegen import CHECKS, ProtocolPrinter, generate


class NumpyCodePrinter(ProtocolPrinter):
    _module = "numpy"


def module_source(d) -> str:
    """The text of the generated module for the derivation ``d``.

    ``theta``, ``L`` and ``h`` are positional-only, so hyperparameters may take those names;
    ``order`` and ``n`` are the module's own keywords."""
    x = generate(d, NumpyCodePrinter)
    penalty = (
        f"    return float(_potential({x.call}))"
        if x.has_potential
        else f"    raise ValueError({x.reason!r})  # the program has no potential: said, not guessed"
    )
    return f'''{x.docstring}
import numpy

{x.constants}

{CHECKS}

{x.definitions}


def update(theta, L, /{x.sig_n}, **hyper):
    """Ψ_0(θ): the memoryless update."""
{x.n_check}    p = _checked(hyper)
    return _psi0({x.call})


def correction(theta, L, /, order=1{x.sig_n}, **hyper):
    """Ψ_order(θ): the coefficient of h^order in the memoryless map."""
{x.n_check}    _order(order)
    p = _checked(hyper)
    return _PSI[order]({x.call})


def memoryless(theta, L, h, /, order=1{x.sig_n}, **hyper):
    """Ψ_0 + h Ψ_1 + … + h^order Ψ_order: the step is θ ← θ − h·memoryless(θ, L, h)."""
{x.n_check}    _order(order)
    p = _checked(hyper)
    return sum(h**r * _PSI[r]({x.call}) for r in range(order + 1))


def initial_state(theta, L, h, /, order=1{x.sig_n}, **hyper):
    """The state S(θ) = S_0 + h S_1 + … on the invariant manifold, one array per state."""
{x.n_check}    _order(order)
    p = _checked(hyper)
    if not STATES:
        return {{}}
    terms = [_STATES[r]({x.call}) for r in range(min(order, len(_STATES) - 1) + 1)]
    return {{name: sum(h**r * t[i] for r, t in enumerate(terms)) for i, name in enumerate(STATES)}}


def penalty(theta, L, /{x.sig_n}, **hyper):
    """G(θ): the memory acts, to first order, like training on L + h G ({x.penalty_note})."""
{x.n_check}    p = _checked(hyper)
{penalty}
'''
