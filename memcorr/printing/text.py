"""The terminal summary of a derivation.

Input: ``Derivation``. Output: text — Ψ_0, the corrections, the named fields they
use, the states on the manifold, the implied loss ``L̃ = L + hG`` with its form,
verdict, condition and value at the defaults, a one-line legend and any notes.
Notation: Greek letters and subscripts for parameter names (``beta1`` → ``β₁``,
``eps`` → ``ε``), ``|g|``, ``Hess(E)`` for ``(∇²L·E)_j``, ``‖g‖₁``, ``‖g‖²`` and
``⟨θ, g⟩`` for the reductions over all coordinates, ``Σ_{s=0}^{n - 1}``, ``min(n, 3)`` and
recursions in the finite regime — all as ``_print_<Atom>`` methods of ``TextPrinter``.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.str import StrPrinter

from ..algebra.atoms import G
from ..algebra.simplify import once_each

GREEK = {
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "eps": "ε",
    "zeta": "ζ",
    "eta": "η",
    "theta": "θ",
    "kappa": "κ",
    "lambda": "λ",
    "lam": "λ",
    "mu": "μ",
    "nu": "ν",
    "xi": "ξ",
    "rho": "ρ",
    "sigma": "σ",
    "tau": "τ",
    "phi": "φ",
    "chi": "χ",
    "psi": "ψ",
    "omega": "ω",
    "Psi": "Ψ",
}
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
LEGEND = (
    "notation: per coordinate j, g = ∂_j L, θ = θ_j, Hess(E) = (∇²L·E)_j, D_k(E₁, …) = (∇^{k+1}L[E₁, …])_j; "
    "‖g‖₁, ‖g‖², ⟨θ, g⟩ and L range over all coordinates"
)
NOISE_LEGEND = "random batches: V = E_b‖∇L_b − ∇L‖², the gradient noise, ∇V its gradient (coordinate j)"


def readable_name(name: str) -> str:
    """``beta1`` → ``β₁``, ``eps`` → ``ε``, ``Psi_0`` → ``Ψ₀``; other names unchanged."""
    m = re.fullmatch(r"([A-Za-z]+)_?(\d*)", name)
    if not m or m.group(1) not in GREEK:
        return name
    return GREEK[m.group(1)] + m.group(2).translate(SUBSCRIPTS)


def paper_powers(expr):
    """Powers of one base with symbolic exponents merged, as papers write them: ``β·βⁿ`` is
    ``β^{n+1}`` and ``1 − β·βⁿ`` is ``1 − β^{n+1}`` (the finite regime). Only for printing: the
    value is the same, and expressions without such powers are left as they are."""
    if not isinstance(expr, sp.Basic) or not any(not p.exp.is_number for p in expr.atoms(sp.Pow)):
        return expr
    # sympy's deep powsimp simplifies each subtree again at every level above it (exponential in the
    # depth: minutes on RAdam's finite regime); bottom up, once per distinct subtree, is linear
    merged = once_each(
        lambda e: sp.powsimp(e.func(*map(merged, e.args)) if e.args and not e.is_Atom else e, combine="exp", deep=False)
    )
    return merged(expr)


class TextPrinter(StrPrinter):
    """sympy's str printer with readable names and the reductions in norm notation."""

    def doprint(self, expr):
        return super().doprint(paper_powers(expr))

    def _print_Symbol(self, expr):
        return "L" if expr.name == "loss" else readable_name(expr.name)

    _print_FieldSymbol = _print_NamedField = _print_LossValue = _print_Symbol

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Hess(self, expr):
        return f"Hess({self._print(expr.args[0])})"

    def _print_Noise(self, expr):
        return "V"

    def _print_NoiseGrad(self, expr):
        return "∇V"

    def _print_NoiseVar(self, expr):
        return "σ²"

    def _noise_times(self, field) -> str:
        return "ξ_b" if field == 1 else f"ξ_b ⊙ {self._print(field)}"

    def _print_CovHess(self, expr):
        return f"E_b[ξ_b ⊙ Hess({self._noise_times(expr.args[0])})]"

    def _print_BatchHess(self, expr):
        return f"E_b[Hess_b({self._noise_times(expr.args[0])})]"

    def _print_XiBatchHess(self, expr):
        return f"E_b[ξ_b ⊙ Hess_b({self._print(expr.args[0])})]"

    def _print_Norm(self, expr):
        return f"‖{self._print(expr.args[0])}‖"

    def _print_Dot(self, expr):
        return f"⟨{self._print(expr.args[0])}, {self._print(expr.args[1])}⟩"

    def _print_CoordSum(self, expr):
        e = expr.args[0]
        if isinstance(e, sp.Abs) and e.args[0].is_Symbol:
            return f"‖{self._print(e.args[0])}‖₁"
        if e.is_Pow and e.exp == 2 and e.base.is_Symbol:
            return f"‖{self._print(e.base)}‖²"
        factors = sp.Mul.make_args(e)
        if len(factors) == 2 and all(f.is_Symbol for f in factors):
            first, second = sorted(factors, key=lambda f: f == G)
            return f"⟨{self._print(first)}, {self._print(second)}⟩"
        return f"Σ({self._print(e)})"

    def _print_Dk(self, expr):
        return f"D_{len(expr.args)}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Recurrence(self, expr):
        """``[out]_{t=n}`` after the updates for ``t = 0, …, n − 1`` from the start, in one line."""
        out, names, inits, steps, t, n = expr.parts
        rule = ", ".join(f"{self._print(x)} ← {self._print(s)}" for x, s in zip(names, steps))
        start = ", ".join(f"{self._print(x)} = {self._print(i)}" for x, i in zip(names, inits))
        t_, n_ = self._print(t), self._print(n)
        return f"[{self._print(out)}]_{{{t_}={n_}}} after, for {t_} = 0, …, {n_} − 1: {rule}; from {start}"

    def _print_Dummy(self, expr):
        return readable_name(expr.name)  # a bound index (``s`` of a sum, ``t`` of a loop), no underscore

    def _print_Sum(self, expr):
        (index, lo, hi), *outer = expr.limits
        body = expr.function if not outer else sp.Sum(expr.function, *outer)
        return f"Σ_{{{self._print(index)}={self._print(lo)}}}^{{{self._print(hi)}}} ({self._print(body)})"

    def _print_Piecewise(self, expr):
        cases = [
            f"{self._print(e)} otherwise" if c == sp.true else f"{self._print(e)} if {self._print(c)}"
            for e, c in expr.args
        ]
        return "{" + "; ".join(cases) + "}"

    def _print_Min(self, expr):
        """``min(n, 3)``, ``max(…)``: lower case, the numbers last, as papers write a saturating count."""
        args = ", ".join(self._print(a) for a in sorted(expr.args, key=lambda a: a.is_number))
        return f"{type(expr).__name__.lower()}({args})"

    _print_Max = _print_Min

    def _print_Relational(self, expr):
        op = {"<=": "≤", ">=": "≥", "!=": "≠", "==": "="}.get(expr.rel_op, expr.rel_op)
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"


def text(expr) -> str:
    return TextPrinter().doprint(expr)


def summary(d) -> str:
    m = d.model
    h = m.h
    head = "Ψ̃" if d.target == "flow" else "Ψ"
    shape = "θ' = −(Ψ̃₀ + {h} Ψ̃₁ + …)" if d.target == "flow" else "θ_{{n+1}} = θ_n − {h}·(Ψ₀ + {h} Ψ₁ + …)"
    lines = [
        f"{m.name}: {m.description}" if m.description else m.name,
        f"regime {d.regime}, order {d.order}, target {d.target}:  "
        + shape.format(h=h)
        + ("   (n: the step counter)" if d.regime == "finite" else ""),
        "",
        f"  {head}₀ = {text(d.update)}",
    ]
    for r, c in enumerate(d.corrections, start=1):
        lines.append(f"  {head}{str(r).translate(SUBSCRIPTS)} = {text(c)}")
    if d.fields:
        lines.append("  where " + ",  ".join(f"{text(f)} = {text(v)}" for f, v in d.fields.items()))
    if d.states:
        lines.append("")
        lines.append("  states on the manifold" if d.regime == "stationary" else "  states, memoryless")
        for name, series in d.states.items():
            for r, s in enumerate(series):
                label = f"S{str(r).translate(SUBSCRIPTS)}" if d.regime == "stationary" else "S^(n)"
                lines.append(f"    {readable_name(name)}: {label} = {text(s)}")
    lines += [""] + perturbation_lines(d) + large_noise_lines(d) + higher_lines(d, head)
    lines += ["", "  " + LEGEND] + (["  " + NOISE_LEGEND] if d.batches == "random" else [])
    lines += [f"  note: {note}" for note in d.notes]
    return "\n".join(lines)


def perturbation_lines(d) -> list[str]:
    """``L̃``, the form, the verdict with its condition and the value at the defaults."""
    p, h = d.perturbation, d.model.h
    if p.potential is None:
        return [f"  implied loss: none found ({p.reason})", f"  verdict: {p.verdict}"]
    form = f"{p.form} form, P = {text(p.preconditioner)}"
    if p.form == "preconditioned" and p.decoupled != 0:
        form += f", decoupled R = {text(p.decoupled)}"
    order = re.sub(r"[A-Za-z_]\w*", lambda w: readable_name(w.group()), p.remainder_order)
    lines = [
        f"  implied loss: L̃ = L + {h}·G,  G = {text(p.potential)}",
        f"    ({form}; " + ("exact)" if p.exact else f"leading order: Ψ₁ = P·∇G + remainder, of order {order})"),
    ]
    if not p.exact:
        lines.append(f"    remainder = {text(p.remainder)}")
    if p.noise != 0:
        lines.append(f"    full batch: {text(p.potential - p.noise)}  ({p.verdict_full});  noise: {text(p.noise)}")
    verdict = f"  verdict: {p.verdict}"
    if p.verdict == "depends" and p.condition:
        verdict += f" — regularizing where {text(p.relation)}"
    elif p.reason:
        verdict += f" — {p.reason}"
    if p.coefficient_at_defaults is not None:
        where = f" and n = {p.at_step}" if p.at_step is not None else ""
        verdict += f";  at the defaults{where}: {p.verdict_at_defaults} (coefficient {p.coefficient_at_defaults:.4g})"
        if p.coefficient_as_n_grows is not None:
            verdict += f"; as n → ∞: coefficient {p.coefficient_as_n_grows:.4g}"
    if p.critical_batch is not None:
        side = "above" if p.verdict_full == "regularizing" else "below"
        verdict += f";  with batches of B examples (V = V₁/B) G changes sign at B* = {text(p.critical_batch)}"
        verdict += f" (V at B = 1): regularizing {side} it"
    return lines + [verdict]


def large_noise_lines(d) -> list[str]:
    """Random batches, nonlinear programs: the step at the means of its second-moment filters, the
    weight of its memory term in ``ρ = σ²/g²`` and where its sign changes with the batch size."""
    r = d.large_noise
    if r is None:
        return []
    if r.update is None or r.weight is None:
        return [f"  at large noise: no reading — {r.reason}"]
    lines = [
        "  at large noise (the step at the means of its second-moment filters):",
        f"    Ψ̄₀ = {text(r.update)}",
        f"    Ψ̄₁ = {text(r.correction)}",
        f"    in one coordinate (covariance locally constant) its memory term is P·c(ρ)·Hess(P·g),  "
        f"P = {text(r.preconditioner)},  ρ = σ²/g²,  "
        + (
            f"c(ρ) = (c₀ + c_∞·ρ)/(1 + ρ),  c₀ = {text(r.c0)},  c_∞ = {text(r.c_inf)}"
            if r.between_limits
            else f"c(ρ) = {text(r.weight)}"
        ),
    ]
    if r.ratio is None:
        return lines + [f"    c keeps its sign at the defaults: {r.large_batches} at every noise level"]
    ratio, critical = ("−c₀/c_∞", "σ₁²/(ρ*·g²)") if r.between_limits else (text(r.ratio), text(r.critical_batch))
    return lines + [
        f"    c changes sign at ρ* = {ratio} ({r.ratio_at_defaults:.4g} at the defaults): at the defaults "
        f"{r.large_batches} where ρ < ρ*, {r.small_batches} where ρ > ρ*",
        f"    with batches of B examples (σ² = σ₁²/B, σ₁² that of one example): {r.small_batches} below "
        f"B* = {critical}, {r.large_batches} above",
    ]


def higher_lines(d, head: str) -> list[str]:
    """One line per order r ≥ 2: ``G_r`` with ``Ψ_r = P·∇G_r``; where ``Ψ_r`` is no gradient field,
    the part ``G_r`` explains and the non-gradient part ``N_r``; or why it was not tried."""
    out = []
    for p in d.potentials:
        r = str(p.order).translate(SUBSCRIPTS)
        reason = p.reason.replace("Ψ_", head).replace(str(p.order), r, 1)
        if p.exact:
            out.append(f"  order {p.order}: G{r} = {text(p.potential)}   ({head}{r} = P·∇G{r})")
        elif p.potential is not None:
            out.append(f"  order {p.order}: {reason}: {head}{r} = P·(∇G{r} + N{r}) with")
            out.append(f"    G{r} = {text(p.potential)}")
            out.append(f"    N{r} = {text(p.non_gradient)}   (non-gradient part)")
        else:
            out.append(f"  order {p.order}: no potential — {reason}")
    return out
