"""The mathematics the stages compute with (no stage of its own, printing nothing).

Input and output: sympy expressions for coordinate ``j`` of a vector field (docs/method.md §3).

- ``atoms``: ``g``, ``θ``, ``Hess``, ``D_k``, gradients and losses at points, reductions, and
  their derivative rules;
- ``series``: truncated power series in the step size, the container of the expansion;
- ``trees``: fields as one coefficient per elementary differential (rooted tree), for programs
  linear in the gradients;
- ``simplify``: exact rewritings that shorten (``tidy``, ``shortest``, ``orient``);
- ``named``: fields the program named, kept as symbols in short forms;
- ``moments``: the batch moments of random batches (variance, covariance against the Hessian, …);
- ``evaluate``: numbers for an expression on a loss — the check behind symbolic claims;
- ``factoring``: sympy's multivariate integer factorization done by FLINT (python-flint), same results.
"""

from . import factoring  # noqa: F401  (FLINT factors multivariate polynomials where python-flint is present)
