"""The terminal summary of a derivation.

Input: ``Derivation``. Output: text — the program, Ψ_0, the corrections, the
states on the manifold and any notes, in sympy's plain notation.
"""
from __future__ import annotations

import sympy as sp


def summary(d) -> str:
    m = d.model
    h = m.h
    lines = [f"{m.name}: {m.description}" if m.description else m.name,
             f"regime {d.regime}, order {d.order}:  θ_{{n+1}} = θ_n − {h}·(Ψ_0 + {h} Ψ_1 + …)"
             + ("   (n: the step counter)" if d.regime == "finite" else ""),
             "",
             f"  Ψ_0 = {sp.sstr(d.update)}"]
    for r, c in enumerate(d.corrections, start=1):
        lines.append(f"  Ψ_{r} = {sp.sstr(c)}")
    if d.states:
        lines.append("")
        lines.append("  states on the manifold" if d.regime == "stationary" else "  states, memoryless")
        for name, series in d.states.items():
            for r, s in enumerate(series):
                label = f"S_{r}" if d.regime == "stationary" else "S^(n)"
                lines.append(f"    {name}: {label} = {sp.sstr(s)}")
    for note in d.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
