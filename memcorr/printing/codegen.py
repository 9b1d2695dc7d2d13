"""The code generator the NumPy and torch backends share.

Input: ``Derivation``. Output: the function definitions of a generated module —
``_psi0``, ``_psi1``, …, ``_states0``, …, ``_potential`` — each a positional
function of ``(theta, L[, n], *hyperparameters)`` whose body calls the loss
protocol of docs/python.md (``L.grad``, ``L.value``, ``L.hvp``, ``L.dgrad``), and the
pieces every module has (docstring, ``HYPER``, argument checks).

Each formula becomes one function body: the atoms turn into protocol calls, one
call per distinct atom, innermost first; common subexpressions are computed
once (``sympy.cse``). A backend (``numpy.py``, ``torch.py``) is a printer
subclass naming its array library, plus the public functions around these
definitions. Names in the generated code are validated identifiers: user text
is never evaluated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import keyword
import string
from dataclasses import dataclass
from pathlib import Path

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ..algebra.atoms import LOSS, THETA, FieldSymbol, G, bound_indices, is_scalar, outer_atoms
from ..algebra.named import unfold
from ..errors import DerivationError
from ..expand.recurrence import Recurrence
from .latex import latex

RESERVED = {
    "numpy",
    "torch",
    "jax",
    "optax",
    "sum",
    "range",
    "theta",
    "L",
    "g",
    "h",
    "n",
    "order",
    "hyper",
    "p",
    "loss_value",
    "HYPER",
    "ORDER",
    "REGIME",
    "STATES",
}
# keyword arguments of the generated functions and keys of a torch parameter group
OWN_KEYWORDS = ("order", "n", "lr", "params")


def identifier(name: str) -> str:
    """A Python name for a program name: checked, and moved aside from keywords and our own."""
    if not name.isidentifier():
        raise ValueError(f"{name!r} is not an identifier")
    return f"{name}_" if keyword.iskeyword(name) or name in RESERVED or name.startswith("_") else name


class ProtocolPrinter(NumPyPrinter):
    """Array code for per-coordinate fields; atoms become loss-protocol calls on ``theta``.

    ``_module`` names the array library (sympy's NumPy printer prefixes its functions with it),
    ``backend`` the output, for messages."""

    backend = "numpy"

    def __init__(self, names: dict, head: str = ""):
        super().__init__({"fully_qualified_modules": True})
        self.names = names
        self.head = head  # the arguments every generated function takes
        self.helpers: dict = {}  # Recurrence -> (its function's name, its definition)

    def _print_Symbol(self, expr):
        return self.names.get(expr, expr.name)

    _print_FieldSymbol = _print_Symbol
    _print_LossValue = _print_Symbol
    _print_Dummy = _print_Symbol

    def zeros(self) -> str:
        return f"{self._module}.zeros_like(theta)"

    def _field(self, expr):
        """An atom's argument as an array: a constant field (like ``Hess(1)``) is broadcast."""
        code = self._print(expr)
        return f"({code} + {self.zeros()})" if is_scalar(expr) else code

    def _print_Hess(self, expr):
        return f"L.hvp(theta, {self._field(expr.args[0])})"

    def _print_Dk(self, expr):
        return f"L.dgrad(theta, {', '.join(self._field(a) for a in expr.args)})"

    def _print_Norm(self, expr):
        return f"{self._module}.linalg.norm({self._field(expr.args[0])})"

    def _print_Dot(self, expr):
        return f"{self._module}.sum({self._field(expr.args[0])} * {self._field(expr.args[1])})"

    def _print_CoordSum(self, expr):
        return f"{self._module}.sum({self._field(expr.args[0])})"

    def _print_Sum(self, expr):
        """A sum over past steps. An elementwise summand is evaluated for all steps at once
        (the step index as a column against the coordinates); one with reductions or loss
        calls loops. The zero start keeps an empty sum (n = 0) array-shaped."""
        term, var, lo, hi = outermost_range(expr)
        v, body = self._print(var), self._print(term)
        lo, hi = self._print(lo), self._print(hi)
        moving = any(a.has(var) or b.has(var) for s in term.atoms(sp.Sum) for _, a, b in s.limits)
        if outer_atoms(term) or moving:
            # a Hessian per step, or an inner sum whose range moves with the step: a loop
            return f"sum(({body} for {v} in range({lo}, {hi} + 1)), {self.zeros()})"
        steps = f"{self._module}.arange({lo}, {hi} + 1)"
        if is_scalar(term):  # the same in every coordinate: one value per step
            return f"{self._module}.sum((lambda {v}: {body} + 0 * {v})({steps}), axis=0)"
        steps += ".reshape((-1,) + (1,) * theta.ndim)"
        return f"{self._module}.sum((lambda {v}: {body} + {self.zeros()})({steps}), axis=0)"

    def _print_Recurrence(self, expr):
        """A call of a function that runs the loop (``helper``)."""
        return self.helper(expr, "_loop", lambda name: self._loop_definition(expr, name))

    def helper(self, expr, prefix: str, define) -> str:
        """A call of the function that computes ``expr`` (a loop, or a sum over steps), defined once (see
        ``helpers``) by ``define(name)``; the name is taken before the body is printed, so that a helper
        inside it gets the next one. The fields it reads (the gradient, temporaries of the caller) are passed
        in."""
        if expr not in self.helpers:
            name = f"{prefix}{len(self.helpers)}"
            self.helpers[expr] = (name, "")
            self.helpers[expr] = (name, define(name))
        args = "".join(f", {self._print(x)}" for x in inputs(expr))
        return f"{self.helpers[expr][0]}({self.head}{args})"

    @contextlib.contextmanager
    def renamed(self, local: dict):
        """Printing a helper's body: its inputs and variables under ``local`` names (the caller's temporaries
        must not meet the helper's own)."""
        saved, self.names = self.names, {**self.names, **local}
        try:
            yield
        finally:
            self.names = saved

    def _loop_definition(self, expr, name: str) -> str:
        """``def name(head, inputs)``: the loop's start, step and result as nested functions."""
        out, names, inits, steps, t, n = expr.parts
        known = inputs(expr)
        local = {x: f"_i{i}" for i, x in enumerate(known)} | {x: f"_r{i}" for i, x in enumerate(names)} | {t: "_t"}
        with self.renamed(local):
            state = ", ".join(local[x] for x in names) + ("," if len(names) == 1 else "")
            init = function_body(inits, self, as_tuple=True, known=known, tag="l")
            # a step is run n times per call: the states, arrays from the start on, are not broadcast again
            step = function_body(steps, self, as_tuple=True, known=known, tag="l", arrays=names)
            result = function_body([out], self, known=known, tag="l")
        lines = [f"def {name}({self.head}{''.join(f', {local[x]}' for x in known)}):"]
        lines += nested("_start", "", init) + nested("_step", f"_t, {state}", step)
        lines += nested("_result", f"_t, {state}", result)
        return "\n".join(lines + self._run_loop(state, self._print(n)))

    def _run_loop(self, state: str, n: str) -> list[str]:
        """The lines that run a loop's ``_start``, ``_step`` ``n`` times, and ``_result``."""
        return [
            f"    {state} = _start()",
            f"    for _t in range({n}):",
            f"        {state} = _step(_t, {state})",
            f"    return _result({n}, {state})",
        ]

    def _print_Noise(self, expr):
        return "L.noise(theta)"

    def _print_NoiseGrad(self, expr):
        return "L.noise_grad(theta)"

    # the batch moments of a nonlinear program under random batches (docs/method.md §7): torch and
    # jax estimate them from the batch's micro-batches (``_BatchLoss``)
    def _moment(self, kind, expr):
        return f"L.{kind}(theta{''.join(', ' + self._field(a) for a in expr.args)})"

    def _print_NoiseVar(self, expr):
        return self._moment("variance", expr)

    def _print_CovHess(self, expr):
        return self._moment("cov_hess", expr)

    def _print_BatchHess(self, expr):
        return self._moment("batch_hess", expr)

    def _print_XiBatchHess(self, expr):
        return self._moment("xi_batch_hess", expr)

    def _print_Min(self, expr):
        return self._nested(f"{self._module}.minimum", expr.args)

    def _print_Max(self, expr):
        return self._nested(f"{self._module}.maximum", expr.args)

    def _nested(self, func, args):
        code = self._print(args[0])
        for a in args[1:]:
            code = f"{func}({code}, {self._print(a)})"
        return code

    def _print_Heaviside(self, expr):
        return f"{self._module}.heaviside({self._print(expr.args[0])}, 0.5)"


def nested(name: str, signature: str, body: list[str]) -> list[str]:
    """The lines of a function defined inside a generated helper."""
    return [f"    def {name}({signature}):"] + ["        " + line for line in body]


def outermost_range(expr: sp.Sum) -> tuple:
    """``(summand, variable, lower, upper)`` of a sum's outermost range; the summand keeps the inner ranges
    (sympy merges nested sums into one ``Sum``, the last range outermost)."""
    *inner, (var, lo, hi) = expr.limits
    return (sp.Sum(expr.function, *inner) if inner else expr.function), var, lo, hi


def inputs(expr) -> list:
    """The fields a loop (or a sum over steps) reads from outside it (the gradient, the loss, temporaries)."""
    fields = [x for x in expr.free_symbols if isinstance(x, FieldSymbol) and x != THETA]
    return sorted(fields, key=sp.default_sort_key)


def _outside(atom) -> list:
    """The arguments of ``atom`` evaluated before it: a loop's body is evaluated in the loop."""
    return atom.parts[2] if isinstance(atom, Recurrence) else list(atom.args)


def _rebuilt(atom, replace):
    """``atom`` with ``replace`` applied to the arguments evaluated before it."""
    if isinstance(atom, Recurrence):
        out, names, inits, steps, t, n = atom.parts
        return Recurrence(out, sp.Tuple(*names), sp.Tuple(*[replace(i) for i in inits]), sp.Tuple(*steps), t, n)
    return atom.func(*[replace(arg) for arg in atom.args])


def _innermost_first(exprs) -> list:
    """Every atom of ``exprs`` (arguments included), innermost first."""
    order: list = []

    def visit(e):
        for atom in sorted(outer_atoms(e), key=sp.default_sort_key):  # stable across runs
            for arg in _outside(atom):
                visit(arg)
            if atom not in order:
                order.append(atom)

    for e in exprs:
        visit(e)
    return order


def function_body(
    exprs: list, printer: ProtocolPrinter, as_tuple=False, scalar=False, known=(), tag="", arrays=()
) -> list[str]:
    """Statements computing ``exprs``; the last line returns them (as a tuple if asked), as arrays
    shaped like ``theta`` unless ``scalar``. In a loop's body: ``known``, the fields the caller
    passes (the gradient, its temporaries); ``tag``, which keeps the body's temporaries apart;
    ``arrays``, the loop's states (arrays from its start on: what reads one needs no broadcast)."""
    shaped = [not scalar and not any(e.has(x) for x in arrays) for e in exprs]
    # sums over steps are loops: computed first, whole, so that no subexpression of a summand
    # (which may hold the loop variable) is moved out of its loop
    # (a sum inside another, reading its step, stays inside it)
    outermost = {e for x in exprs for e in x.atoms(sp.Sum) if not any(isinstance(s, sp.Dummy) for s in e.free_symbols)}
    sums = sorted(outermost, key=sp.default_sort_key)
    sum_temps = {e: FieldSymbol(f"_s{tag}{i}") for i, e in enumerate(sums)}
    exprs = [x.xreplace(sum_temps) for x in exprs]
    atoms = _innermost_first(exprs)
    # temporaries are fields: a linear atom must not pull them out of its argument as scalars
    temps = {a: FieldSymbol(f"_a{tag}{i}") for i, a in enumerate(atoms)}

    def replace(e):  # atoms -> temporaries, innermost first
        return e.xreplace({a: temps[a] for a in outer_atoms(e)}) if outer_atoms(e) else e

    definitions = [_rebuilt(a, replace) for a in atoms]
    outputs = [replace(e) for e in exprs]
    # a loop's own variables stay in it: no common subexpression holding them is moved out
    bound = {x for a in atoms if isinstance(a, Recurrence) for x in [*a.parts[1], a.parts[4]]}
    subs, reduced = sp.cse(
        definitions + outputs, symbols=sp.numbered_symbols(f"_x{tag}", cls=FieldSymbol), order="none", ignore=bound
    )
    assignments = list(subs) + list(zip(temps.values(), reduced[: len(atoms)]))
    everything = [e for _, e in assignments] + reduced[len(atoms) :] + sums
    lines = []
    if any(e.has(G) for e in everything) and G not in known:
        lines.append("g = L.grad(theta)")
    if any(e.has(LOSS) for e in everything) and LOSS not in known:
        lines.append("loss_value = L.value(theta)")
    lines += [f"{temp} = {printer.doprint(e)}" for e, temp in sum_temps.items()]
    for sym, e in _dependency_order(assignments):
        lines.append(f"{sym} = {printer.doprint(e)}")
    shape = f" + {printer.zeros()}"
    results = [f"{printer.doprint(e)}{shape if s else ''}" for e, s in zip(reduced[len(atoms) :], shaped)]
    lines.append("return " + ", ".join(results) + ("," if as_tuple and len(results) == 1 else ""))
    return lines


def _grouped_definitions(x, per_group: tuple[str, ...], head: str, printer, order: int) -> list[str]:
    """``_gpsi0``, … and ``_GPSI``: the map with ``per_group`` hyperparameters per coordinate (they
    arrive as arrays of the coordinates' values); the same functions as ``_PSI`` when there are none."""
    names = ", ".join(repr(k) for k in per_group)
    constant = f"PER_GROUP = ({names}{',' if len(per_group) == 1 else ''})"
    if not per_group:
        return [constant, "_GPSI = _PSI"]
    known, defs = set(printer.helpers), []
    for r in range(order + 1):
        body = _branches(x, f"_psi{r}", printer)
        defs.append(f"def _gpsi{r}({head}):\n" + "\n".join("    " + line for line in body))
    defs = [definition for loop, (_, definition) in printer.helpers.items() if loop not in known] + defs
    return [constant, *defs, f"_GPSI = [{', '.join(f'_gpsi{r}' for r in range(order + 1))}]"]


def _formulas(x) -> dict:
    """{function name: the expressions it returns} for an expansion."""
    out = {"_psi0": [x.update]} | {f"_psi{r}": [c] for r, c in enumerate(x.corrections, 1)}
    series = list(x.states.values())
    for r in range(max((len(s) for s in series), default=0)):
        out[f"_states{r}"] = [s[r] for s in series]
    return out


def _every_formula(x) -> list:
    """The formulas of ``x`` and of its confluent forms."""
    return [*_formulas(x).values(), *[e for _, special in x.confluent for e in _every_formula(special)]]


def _branches(x, fname: str, printer) -> list[str]:
    """The body of ``fname``: where two decay rates coincide (``x.confluent``), the limit form
    first, under an ``if`` on the parameters; then the generic form."""
    lines = []
    for cond, special in x.confluent:
        lines.append(f"if {printer.doprint(cond.lhs)} == {printer.doprint(cond.rhs)}:")
        lines += ["    " + line for line in _branches(special, fname, printer)]
    return lines + function_body(_formulas(x)[fname], printer, as_tuple=fname.startswith("_states"))


def _dependency_order(assignments):
    pending = list(assignments)
    done: set = set()
    defined = {sym for sym, _ in assignments}
    ordered = []
    while pending:
        for i, (sym, e) in enumerate(pending):
            if (e.free_symbols & defined) <= done:
                ordered.append(pending.pop(i))
                done.add(sym)
                break
        else:
            raise ValueError("cyclic assignments in generated code")
    return ordered


@dataclass
class Generated:
    """What a backend wraps: the private definitions and the text of the calls into them.

    ``call`` passes ``theta, L[, n]`` and the hyperparameters from a dict ``p``; ``sig_n`` is the
    finite regime's ``n`` argument (``", n=None"`` or ``""``); ``n_check`` the lines that insist on it."""

    definitions: str
    call: str
    sig_n: str
    n_check: str
    constants: str
    docstring: str
    penalty_note: str
    has_potential: bool
    reason: str


def generate(d, printer_class, grouped: bool = False) -> Generated:
    """The definitions of every formula of ``d`` printed by ``printer_class``; code is generated from
    the exact long forms (``d.expansion``), which the short ones equal. ``grouped``: also the map
    with the per-group hyperparameters as per-coordinate values (``_gpsi0``, …, ``d.grouped``)."""
    m = d.model
    clash = sorted(set(OWN_KEYWORDS) & set(m.params))
    if clash:
        raise DerivationError(
            f"a parameter named `{clash[0]}` clashes with the `{clash[0]}` argument of the generated code; rename it"
        )
    finite = d.regime == "finite"
    names = {THETA: "theta", G: "g", LOSS: "loss_value", m.h: "h", m.n: "n"}
    names.update({p.symbol: identifier(p.name) for p in m.params.values()})
    x = d.expansion
    potential = d.perturbation.potential
    penalty = [unfold(potential)] if potential is not None else []
    # the step index of a sum: a leading underscore, which identifier() never leaves on a user name
    for dummy in bound_indices([e for exprs in [*_every_formula(x), penalty] for e in exprs]):
        names.setdefault(dummy, f"_k{len(names)}")
    group_x, per_group = d.grouped if grouped else (x, ())
    names.update({FieldSymbol(k, real=True): identifier(k) for k in per_group})
    for dummy in bound_indices([e for exprs in _every_formula(group_x) for e in exprs]):
        names.setdefault(dummy, f"_k{len(names)}")
    n_arg = ", n" if finite else ""
    params = ", ".join(names[p.symbol] for p in m.params.values())
    head = f"theta, L{n_arg}" + (f", {params}" if params else "")
    printer = printer_class(names, head)

    bodies = {fname: _branches(x, fname, printer) for fname in _formulas(x)}
    state_functions = [k for k in bodies if k.startswith("_states")]
    if penalty:  # after the Ψ_r, before the states
        bodies = (
            {k: v for k, v in bodies.items() if k.startswith("_psi")}
            | {"_potential": function_body(penalty, printer, scalar=True)}
            | {k: v for k, v in bodies.items() if k.startswith("_states")}
        )
    defs = [f"def {fname}({head}):\n" + "\n".join("    " + line for line in body) for fname, body in bodies.items()]
    defs = [definition for _, definition in printer.helpers.values()] + defs
    defs.append(f"_PSI = [{', '.join(f'_psi{r}' for r in range(d.order + 1))}]")
    defs.append(f"_STATES = [{', '.join(state_functions)}]")
    if grouped:
        defs += _grouped_definitions(group_x, per_group, head, printer, d.order)

    state_names = ", ".join(repr(s) for s in x.states)
    constants = (
        f"HYPER = {{{', '.join(f'{p.name!r}: {p.default!r}' for p in m.params.values())}}}\n"
        f"REGIME = {d.regime!r}\nORDER = {d.order}\nSTATES = ({state_names}{',' if len(x.states) == 1 else ''})\n"
    )
    p = d.perturbation
    return Generated(
        definitions="\n\n\n".join(defs),
        call=f"theta, L{n_arg}" + "".join(f", p[{q.name!r}]" for q in m.params.values()),
        sig_n=", n=None" if finite else "",
        n_check='    if n is None:\n        raise TypeError("the finite-n form needs the step counter n=")\n'
        if finite
        else "",
        constants=constants,
        docstring=_docstring(d),
        penalty_note=_penalty_note(d),
        has_potential=p.potential is not None,
        reason=p.reason or "",
    )


TEMPLATES = Path(__file__).resolve().parent / "templates"  # the generated modules' fixed code


def template(name: str) -> str:
    """A fixed part of the generated modules, as written in ``templates/``."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


def fill(name: str, x: Generated, **parts: str) -> str:
    """The template ``name`` with its ``$``-placeholders filled from the generated pieces ``x`` and ``parts``."""
    fields = {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}
    return string.Template(template(name)).substitute({**fields, **parts})


CHECKS = template("checks.py.tmpl")


def penalty_body(x: Generated, value: str, indent: str = "    ") -> str:
    """The body of a module's ``penalty``: ``value`` (the backend's expression of ``_potential``)
    returned, or, where the derivation found no potential, the reason raised."""
    if x.has_potential:
        return f"{indent}return {value}"
    return f"{indent}raise ValueError({x.reason!r})  # the program has no potential: said, not guessed"


def _penalty_note(d) -> str:
    p = d.perturbation
    if p.potential is None:
        return "no potential was found"
    return f"{p.form} form, " + ("exact" if p.exact else f"leading order, remainder {p.remainder_order}")


def _docstring(d) -> str:
    m = d.model
    source = "\n".join("    " + line for line in m.checked.program.source.strip().splitlines())
    formulas = [f"    \\Psi_0 = {latex(d.update)}"]
    formulas += [f"    \\Psi_{r} = {latex(c)}" for r, c in enumerate(d.corrections, 1)]
    formulas += [f"    {latex(f)} = {latex(v)}" for f, v in d.fields.items()]
    if d.perturbation.potential is not None:
        formulas.append(f"    G = {latex(d.perturbation.potential)}")
    text = (
        f"{m.name}: the memoryless map to order {d.order} ({d.regime} regime), generated by memcorr.\n\n"
        f"theta_{{n+1}} = theta_n - {m.h} * (Psi_0 + {m.h} Psi_1 + ...), per coordinate j.\n\n"
        f"Source program:\n\n{source}\n\nFormulas (LaTeX):\n\n" + "\n".join(formulas)
    )
    for note in d.notes:
        text += f"\n\nNote: {note}"
    return 'r"""' + text.replace('"""', "'''") + '\n"""'
