"""Stage 2, the model: checked program -> state-space model (docs/method.md §2).

Input: ``Checked``. Output: ``Model`` — the pre-step states with their initial values, the state
map ``s_{n+1} = Φ(s_n, θ_n)`` and ``F`` with ``θ_{n+1} = θ_n − h F``, per coordinate.

- ``types``: ``Parameter``, ``StateVar``, ``Model``;
- ``lower``: the statements run into sympy, history as lag states, velocity forms rescaled;
- ``decay``: the memory must forget (eigenvalues of the state Jacobian inside the unit circle);
- ``sampling``: the parameter values later stages read signs and test zeros at.
"""
