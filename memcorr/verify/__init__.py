"""Stage 7, the numbers: a derivation against the true method with memory (docs/method.md §6).

Input: a ``Derivation``, a loss (``memcorr.losses``), a start point and hyperparameters.
Output: ``Report`` — trajectory errors and consistency residuals at step sizes ``h, h/2, …``
with fitted orders, for the corrected map and the uncorrected one.

- ``interpreter``: the program run on arrays straight from its AST (the true method);
- ``checks``: the warm start, the errors, the fitted orders, the report;
- ``plot``: the errors against ``h`` on log axes.
"""

from .checks import Report, verify
from .interpreter import Interpreter

__all__ = ["Interpreter", "Report", "verify"]
