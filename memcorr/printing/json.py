"""The JSON record of a derivation (docs/python.md ``to_json``).

Input: ``Derivation``. Output: a JSON string with stable key order: ``name``,
``order``, ``regime``, ``target``, ``update`` and ``corrections`` (each formula as
``{"latex": …, "sympy": srepr}``), ``fields`` (the named fields the formulas use),
``states``, ``perturbation`` (its fields as formulas, strings, booleans and numbers),
``large_noise`` (random batches of a nonlinear program: the reading at large noise), ``potentials``,
``notes`` and ``confluent`` (finite regime: the map where two decay rates
coincide, ``{"condition", "update", "corrections", "states", "confluent"}``).
Named fields appear by name in the formulas; ``fields`` holds their definitions.
"""

from __future__ import annotations

import json

import sympy as sp
from sympy.printing.repr import ReprPrinter

from ..algebra.atoms import bound_indices
from .latex import latex


class _Repr(ReprPrinter):
    """``srepr`` with each of the program's symbols written as the program declared it. sympy takes
    ``Symbol('beta', positive=True)`` and ``Symbol('beta', real=True, positive=True)`` for equal, so its
    cache may hand back one where the other was built, while ``srepr`` writes the assumptions each
    instance was created with: the record would depend on what the process did before."""

    def __init__(self, declared):
        super().__init__()
        self._declared = {s: s for s in declared}

    def _print_Symbol(self, expr):
        return super()._print_Symbol(self._declared.get(expr, expr))


class _Formula:
    """``{"latex": …, "sympy": srepr}`` of an expression, or None."""

    def __init__(self, model):
        self.repr = _Repr([p.symbol for p in model.params.values()] + [model.h, model.n])

    def __call__(self, expr) -> dict | None:
        if expr is None:
            return None
        return {"latex": latex(expr), "sympy": self.srepr(expr)}

    def srepr(self, expr) -> str:
        return self.repr.doprint(_without_dummies(expr))


def _without_dummies(expr):
    """The bound step index of a sum as a plain symbol ``_s``: a ``Dummy``'s srepr holds a
    process-dependent index, and the record must be the same on every run."""
    dummies = bound_indices([expr])
    names = [d.name for d in dummies]
    # nested sums may each bind a `_v`: numbered then, so that they stay distinct
    label = {d: f"_{d.name}" if names.count(d.name) == 1 else f"_{d.name}{i}" for i, d in enumerate(dummies)}
    return expr.xreplace({d: sp.Symbol(label[d], **d.assumptions0) for d in dummies})


def record(d) -> dict:
    p, formula = d.perturbation, _Formula(d.model)
    return {
        "name": d.name,
        "description": d.model.description,
        "order": d.order,
        "regime": d.regime,
        "target": d.target,
        "batches": d.batches,
        "step": str(d.model.h),
        "parameters": {k: v.default for k, v in d.model.params.items()},
        "update": formula(d.update),
        "corrections": [formula(c) for c in d.corrections],
        **(_mean(d.expansion, formula) if d.batches == "random" else {}),
        "fields": {f.name: formula(v) for f, v in d.fields.items()},
        "states": {name: [formula(s) for s in series] for name, series in d.states.items()},
        "perturbation": {
            "potential": formula(p.potential),
            "form": p.form,
            "preconditioner": formula(p.preconditioner),
            "decoupled": formula(p.decoupled),
            "exact": p.exact,
            "remainder": formula(p.remainder),
            "remainder_order": p.remainder_order,
            "coefficient": formula(p.coefficient),
            "penalty": formula(p.penalty),
            "condition": p.condition,
            "verdict": p.verdict,
            "verdict_at_defaults": p.verdict_at_defaults,
            "coefficient_at_defaults": p.coefficient_at_defaults,
            "at_step": p.at_step,
            "coefficient_as_n_grows": p.coefficient_as_n_grows,
            "reason": p.reason,
            **(_noise(p, formula) if d.batches == "random" else {}),
        },
        **({"large_noise": _large_noise(d.large_noise, formula)} if d.large_noise is not None else {}),
        "potentials": [
            {
                "order": q.order,
                "potential": formula(q.potential),
                "non_gradient": formula(q.non_gradient),
                "exact": q.exact,
                "reason": q.reason,
            }
            for q in d.potentials
        ],
        "notes": list(d.notes),
        "confluent": [_confluent(cond, x, formula) for cond, x in d.expansion.confluent],
    }


def _mean(e, formula: _Formula) -> dict:
    """Random batches: the noise part of the first correction, and whether the mean is exact (linear
    programs) or its leading order in the noise (nonlinear ones)."""
    return {"noise_correction": {"latex": latex(e.noise), "sympy": formula.srepr(e.noise), "exact": e.noise_exact}}


def _noise(p, formula: _Formula) -> dict:
    """Random batches: ``G = G_full + G_noise``, each part and the verdict of the full-batch one."""
    return {
        "full": formula(p.potential - p.noise) if p.potential is not None else None,
        "noise": formula(p.noise),
        "noise_coefficient": formula(p.noise_coefficient),
        "verdict_full": p.verdict_full,
        "critical_batch": formula(p.critical_batch),
    }


def _large_noise(r, formula: _Formula) -> dict:
    """Random batches, nonlinear programs: the step at the means of its second-moment filters, the weight
    ``c(ρ)`` of its memory term (``ρ = σ²/g²``), where it changes sign and the critical batch size."""
    return {
        "update": formula(r.update),
        "correction": formula(r.correction),
        "preconditioner": formula(r.preconditioner),
        "weight": formula(r.weight),
        "c0": formula(r.c0),
        "c_inf": formula(r.c_inf),
        "ratio": formula(r.ratio),
        "ratio_at_defaults": r.ratio_at_defaults,
        "critical_batch": formula(r.critical_batch),
        "large_batches": r.large_batches,
        "small_batches": r.small_batches,
        "reason": r.reason,
        "between_limits": r.between_limits,
    }


def _confluent(cond, x, formula: _Formula) -> dict:
    """The finite-n map where two decay rates coincide, its own confluent forms nested."""
    return {
        "condition": formula(cond),
        "update": formula(x.update),
        "corrections": [formula(c) for c in x.corrections],
        "states": {name: [formula(s) for s in series] for name, series in x.states.items()},
        "confluent": [_confluent(c, y, formula) for c, y in x.confluent],
    }


def to_json(d) -> str:
    return json.dumps(record(d), indent=2, ensure_ascii=False) + "\n"
