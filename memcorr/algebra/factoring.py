"""sympy's factorization of multivariate integer polynomials, computed by FLINT when python-flint is
installed: the same factors in the same order (each primitive, its leading coefficient in lex order
positive, sorted as sympy sorts them), from a C library instead of sympy's pure-Python Wang algorithm.

Every ``factor`` of a coefficient with several symbols ends in ``dmp_zz_factor``; in Adam's order-2 map it was
two thirds of the derivation. Without python-flint nothing changes; with it (≥ 0.7, for ``fmpz_mpoly``)
tests/algebra/test_factoring.py compares the two.
"""

from __future__ import annotations

from sympy.polys import factortools
from sympy.polys.densebasic import dmp_from_dict, dmp_to_dict

try:
    import flint
except ImportError:  # pragma: no cover - without python-flint sympy factors on its own
    INSTALLED = False
else:
    INSTALLED = True

_sympy_zz_factor = factortools.dmp_zz_factor


def dmp_zz_factor(f, u, K):
    """``(content, [(factor, multiplicity), …])`` of the dense polynomial ``f`` in ``u + 1`` variables
    over the integers, as ``sympy.polys.factortools.dmp_zz_factor`` returns it."""
    if not u:  # one variable: sympy's own path (it already uses FLINT where sympy is built on it)
        return _sympy_zz_factor(f, u, K)
    terms = dmp_to_dict(f, u, K)
    if not terms:
        return K.zero, []
    ring = flint.fmpz_mpoly_ctx.get(tuple(f"x{i}" for i in range(u + 1)), "lex")
    content, factors = ring.from_dict({m: int(c) for m, c in terms.items()}).factor()
    dense = [(dmp_from_dict({m: K(int(c)) for m, c in q.to_dict().items()}, u, K), k) for q, k in factors]
    return K(int(content)), factortools._sort_factors(dense)


if INSTALLED:
    factortools.dmp_zz_factor = dmp_zz_factor
