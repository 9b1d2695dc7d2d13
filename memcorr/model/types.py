"""The state-space model: what lowering builds and every later stage reads.

``Parameter`` (a declared parameter with its symbol, default and domain), ``StateVar`` (one
pre-step state with its update) and ``Model`` (the states, ``F`` and the checked program).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..algebra.atoms import FieldSymbol
from ..dsl.ast import Domain
from ..dsl.check import Checked
from ..errors import DSLWarning, Span


@dataclass(frozen=True)
class Parameter:
    name: str
    symbol: sp.Symbol
    default: float | None
    domain: Domain | None
    small: bool


@dataclass(frozen=True)
class StateVar:
    """One pre-step state. ``update`` is its component of Φ.

    ``origin`` says where it came from: ``"state"`` (declared), ``"lag"`` (a past
    iterate or gradient), ``"sum"`` (a history sum) or ``"difference"`` (``(θ − θ[n−k])/h``
    of a two-step form). ``velocity`` marks a state rescaled by ``1/h``: the symbol then
    stands for ``v/h``.
    """

    name: str
    symbol: FieldSymbol
    init: sp.Expr
    update: sp.Expr
    origin: str
    span: Span
    velocity: bool = False


@dataclass(frozen=True)
class Model:
    name: str
    description: str
    h: sp.Symbol
    n: sp.Symbol
    params: dict[str, Parameter]
    states: tuple[StateVar, ...]
    F: sp.Expr
    checked: Checked = field(repr=False)
    warnings: tuple[DSLWarning, ...] = ()
    temporaries: dict[str, sp.Expr] = field(default_factory=dict)  # named in the program, pre-step states
    fixed: dict[str, float] = field(default_factory=dict)  # parameters fixed to numbers: the true method reads them

    @property
    def symbols(self) -> list[FieldSymbol]:
        return [s.symbol for s in self.states]

    @property
    def Phi(self) -> list[sp.Expr]:
        return [s.update for s in self.states]

    def summary(self) -> str:
        params = ", ".join(f"{p.name}={p.default:g}" if p.default is not None else p.name for p in self.params.values())
        states = ", ".join(s.name for s in self.states) or "none"
        return f"{self.name}: step {self.h}, params [{params}], states [{states}]"

    def show(self) -> str:
        """The model as text: states with initial value and update, then F."""
        lines = [
            f"optimizer {self.name}" + (f"  — {self.description}" if self.description else ""),
            f"  step size  {self.h}",
        ]
        for p in self.params.values():
            extra = [f"= {p.default:g}"] if p.default is not None else []
            extra += [str(p.domain)] if p.domain else []
            extra += ["small"] if p.small else []
            lines.append(f"  param      {p.name} {' '.join(extra)}")
        lines.append("  states     s_{n+1} = Φ(s_n, θ_n)   [initial value]")
        for s in self.states:
            note = f"  ({s.origin})" if s.origin != "state" else ""
            if s.velocity:
                note = f"  (velocity form: stands for {s.name}/{self.h})"
            if s.origin == "difference":
                note = f"  (stands for (theta - {s.name[1:]})/{self.h})"
            lines.append(f"    {s.name} ← {sp.sstr(s.update)}   [{sp.sstr(s.init)}]{note}")
        lines.append(f"  update     θ_{{n+1}} = θ_n − {self.h}·F,  F = {sp.sstr(self.F)}")
        return "\n".join(lines)
