"""AST -> checked program (the second step of stage 1).

Input: ``ast.Program`` (from ``parse``). Output: ``Checked`` — the declarations sorted by kind,
the statements, the warnings, and the read/write dependency graph of one step
(networkx). Every rule of docs/language.md "What bad input gets" that needs no algebra is
enforced here with a positioned ``DSLError``; the two that do (the form of the
``theta`` update and decaying memory) are checked on the lowered model in
``model/`` (stage 2).

The graph has a node ``("stmt", i)`` per statement and ``("state", s)`` for the
value a state carries into the step; an edge runs from where a value is written
to where it is read, and from a state's last write to ``("state", s)`` (the
next step). A state reaches ``theta`` iff a path leads to the ``theta`` update.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import networkx as nx

from ..errors import DSLError, DSLWarning, Span
from .ast import (
    Assign,
    Call,
    Chain,
    History,
    IndexedSum,
    Name,
    Node,
    Num,
    ParamDecl,
    Program,
    StateDecl,
    StepDecl,
    children,
    walk,
)

RESERVED = {
    "theta": "the current iterate",
    "g": "the gradient of the loss at the current iterate",
    "n": "the step counter",
    "loss": "the loss at the current iterate",
}
FUNCTIONS = {
    "sqrt": 1,
    "abs": 1,
    "sign": 1,
    "exp": 1,
    "log": 1,
    "tanh": 1,
    "max": 2,
    "min": 2,
    "grad": 1,
    "loss": 1,
    "norm": 1,
    "dot": 2,
    "sum": 1,
}
KEYWORDS = {"optimizer", "step", "param", "state", "in", "small"}
MAX_NAME = 64  # an optimizer's name names files: NAME_numpy.py must fit every file system
MAX_STATES = 12  # declared states: the expansion's work grows steeply with chained states (docs/language.md)
MAX_LAG = 50  # deepest history reference, theta[n - 50]: each step back is a state


@dataclass
class Checked:
    program: Program
    step: str
    params: dict[str, ParamDecl]
    states: dict[str, StateDecl]
    statements: tuple[Assign, ...]
    theta_index: int
    graph: nx.DiGraph
    warnings: list[DSLWarning] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.program.name

    def reaches_theta(self, state: str) -> bool:
        """Whether a state's value can influence the update of theta (a path in the graph)."""
        return nx.has_path(self.graph, ("state", state), ("stmt", self.theta_index))


def history_lag(index: Node, sum_indices: frozenset[str]) -> tuple[str | None, int]:
    """``n - k - c`` -> (``k`` or None, c): the lag of a history index, or a DSLError."""

    def error(message):
        return DSLError(
            message, index.span, hint="write `theta[n - 1]`, `g[n - 2]` or, inside `sum(k = …)`, `theta[n - k]`"
        )

    terms: list[tuple[str, Node]] = [("+", index)]
    while any(isinstance(t, Chain) and t.ops[0] in "+-" for _, t in terms):
        expanded = []
        for sign, t in terms:
            if isinstance(t, Chain) and t.ops[0] in "+-":
                for op, operand in zip(("+",) + t.ops, t.operands):
                    expanded.append(("+" if op == sign else "-", operand))
            else:
                expanded.append((sign, t))
        terms = expanded
    has_n, var, const = False, None, 0
    for sign, t in terms:
        if isinstance(t, Name) and t.id == "n" and sign == "+" and not has_n:
            has_n = True
        elif isinstance(t, Name) and t.id in sum_indices and sign == "-" and var is None:
            var = t.id
        elif isinstance(t, Num) and float(t.text).is_integer():
            const += int(float(t.text)) * (1 if sign == "+" else -1)
        else:
            raise error("a history index must be `n - K`, K a whole number or a sum index")
    if not has_n:
        raise error("a history index counts back from the current step `n`")
    if const > 0:
        raise DSLError(
            f"`[n + {const}]` refers to the future",
            index.span,
            hint="only the current and past iterates are known: `theta[n - k]`, k >= 0",
        )
    if -const > MAX_LAG:
        raise DSLError(
            f"the history reaches back {-const} steps; the limit is {MAX_LAG}",
            index.span,
            hint="a long memory is an average: `state m = 0; m = beta * m + (1 - beta) * g`",
        )
    return var, -const


def sum_bound(hi: Node) -> tuple[bool, int]:
    """The upper bound of a sum over steps: ``n - d`` -> ``(True, d)``, a whole number ``v`` ->
    ``(False, v)``; anything else is a DSLError."""
    if isinstance(hi, Num) and float(hi.text).is_integer():
        return False, int(float(hi.text))
    if isinstance(hi, Name) and hi.id == "n":
        return True, 0
    if (
        isinstance(hi, Chain)
        and hi.ops == ("-",)
        and isinstance(hi.operands[0], Name)
        and hi.operands[0].id == "n"
        and isinstance(hi.operands[1], Num)
        and float(hi.operands[1].text).is_integer()
    ):
        return True, int(float(hi.operands[1].text))
    raise DSLError(
        "a sum ends at `n`, at `n - d` or at a whole number",
        hi.span,
        hint="`sum(k = 0 .. n, EXPR)` runs over the whole history",
    )


class _Checker:
    def __init__(self, program: Program):
        self.program = program
        self.step: StepDecl | None = None
        self.params: dict[str, ParamDecl] = {}
        self.states: dict[str, StateDecl] = {}
        self.statements: list[Assign] = []
        self.warnings: list[DSLWarning] = []
        self.graph = nx.DiGraph()

    @property
    def step_name(self) -> str:
        assert self.step is not None, "declarations() has required a step"
        return self.step.name

    # -------------------------------------------------------------- declarations
    def declarations(self) -> None:
        name = self.program.optimizer.name
        if len(name) > MAX_NAME:
            raise DSLError(
                f"the optimizer's name is {len(name)} characters long; the limit is {MAX_NAME}",
                self.program.optimizer.span,
                hint="the name names the emitted files (NAME_numpy.py, …): keep it short",
            )
        declared: dict[str, Node] = {}
        for item in self.program.items:
            if isinstance(item, Assign):
                self.statements.append(item)
                continue
            assert isinstance(item, (StepDecl, ParamDecl, StateDecl))
            name = item.name
            if self.statements:
                raise DSLError(
                    "declarations come before the first statement",
                    item.span,
                    hint=f"move this line above line {self.statements[0].span.line}",
                )
            self.check_new_name(name, item.span, declared)
            declared[name] = item
            if isinstance(item, StepDecl):
                if self.step is not None:
                    raise DSLError(
                        "a second `step`: a program has exactly one step size",
                        item.span,
                        hint=f"the step size is `{self.step.name}` (line {self.step.span.line})",
                    )
                self.step = item
            elif isinstance(item, ParamDecl):
                self.check_param(item)
                self.params[name] = item
            else:
                if len(self.states) == MAX_STATES:
                    raise DSLError(
                        f"more than {MAX_STATES} states",
                        item.span,
                        hint=f"memcorr derives programs of up to {MAX_STATES} states (each chained state "
                        "multiplies the expansion's work); fold states into temporaries where you can",
                    )
                self.states[name] = item
        if self.step is None:
            raise DSLError(
                "no `step` declaration: the step size is the expansion parameter",
                self.program.optimizer.span,
                hint="add a line `step h` (or `step lr`)",
            )
        for state in self.states.values():
            if state.init is not None:
                self.check_expr(
                    state.init,
                    allowed=self.constants() | {"theta", "g", "loss"},
                    context="a state's initial value may use theta, g, loss and parameters",
                )

    def check_new_name(self, name: str, span: Span, declared: dict[str, Node]) -> None:
        if name in RESERVED:
            raise DSLError(f"`{name}` is reserved ({RESERVED[name]})", span, hint="choose another name")
        if name in FUNCTIONS or name in KEYWORDS:
            raise DSLError(f"`{name}` is a built-in name", span, hint="choose another name")
        if name in declared:
            raise DSLError(
                f"`{name}` is declared twice", span, hint=f"first declared on line {declared[name].span.line}"
            )

    def check_param(self, p: ParamDecl) -> None:
        dom = p.domain
        if dom is not None and not dom.lo < dom.hi:
            raise DSLError(f"the domain {dom} of `{p.name}` is empty", p.span)
        if p.default is not None and dom is not None and not dom.contains(p.default):
            raise DSLError(
                f"the default {p.default:g} of `{p.name}` is outside its domain {dom}",
                p.default_span or p.span,
                hint="change the default or the domain",
            )

    def constants(self) -> set[str]:
        return set(self.params) | {self.step_name}

    # ------------------------------------------------------------------ names
    def unknown(self, name: str, span: Span, known: set[str]) -> DSLError:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"did you mean `{close[0]}`?" if close else "declare it with `param` or `state`, or assign it first"
        return DSLError(f"unknown name `{name}`", span, hint=hint)

    def check_expr(
        self,
        expr: Node,
        allowed: set[str],
        context: str | None = None,
        later: dict[str, int] | None = None,
        sum_indices: frozenset[str] = frozenset(),
    ) -> set[str]:
        """Validate names, calls, history and sums in ``expr``; return the names it reads."""
        reads: set[str] = set()
        stack: list[tuple[Node, frozenset[str]]] = [(expr, sum_indices)]
        while stack:
            node, indices = stack.pop()
            if isinstance(node, Name):
                self.check_name(node, allowed | indices, context, later)
                if node.id not in indices:
                    reads.add(node.id)
            elif isinstance(node, Call):
                self.check_call(node, allowed)
            elif isinstance(node, History):
                self.check_history(node, indices, context)
                reads.add(node.name)
                continue
            elif isinstance(node, IndexedSum):
                self.check_sum(node, allowed, indices)
                stack.append((node.body, indices | {node.index}))
                continue
            stack.extend((c, indices) for c in children(node))
        return reads

    def check_name(self, node: Name, allowed: set[str], context: str | None, later: dict[str, int] | None) -> None:
        name = node.id
        if name in allowed:
            return
        if later and name in later:
            raise DSLError(
                f"`{name}` is used before it is defined",
                node.span,
                hint=f"it is assigned on line {later[name]}; declare it as a `state` to read last step's value",
            )
        if context and (name in self.known_names() or name in RESERVED):
            raise DSLError(f"`{name}` cannot appear here", node.span, hint=context)
        if name in FUNCTIONS:
            raise DSLError(f"`{name}` is a function", node.span, hint=f"call it: `{name}(…)`")
        raise self.unknown(name, node.span, allowed | set(FUNCTIONS))

    def known_names(self) -> set[str]:
        return self.constants() | set(self.states) | {s.target for s in self.statements}

    def check_call(self, node: Call, allowed: set[str]) -> None:
        if node.func not in FUNCTIONS:
            hint = None
            if node.func == "g":
                hint = "the gradient at another point is `grad(x)`"
            elif node.func in allowed:
                hint = f"`{node.func}` is a value, not a function"
            else:
                close = difflib.get_close_matches(node.func, sorted(FUNCTIONS), n=1)
                hint = f"did you mean `{close[0]}`?" if close else "functions: " + ", ".join(sorted(FUNCTIONS))
            raise DSLError(f"unknown function `{node.func}`", node.span, hint=hint)
        arity = FUNCTIONS[node.func]
        if len(node.args) != arity:
            raise DSLError(
                f"`{node.func}` takes {arity} argument{'s' if arity > 1 else ''}, not {len(node.args)}",
                node.span,
                hint="`sum(x)` adds coordinates; a sum over steps is `sum(k = 0 .. n, EXPR)`"
                if node.func == "sum"
                else None,
            )

    def check_history(self, node: History, indices: frozenset[str], context: str | None) -> None:
        if context:
            raise DSLError("the history cannot appear here", node.span, hint=context)
        if node.name not in ("theta", "g"):
            raise DSLError(
                f"`{node.name}[…]`: only `theta` and `g` have a history",
                node.span,
                hint="keep past values of other quantities in a `state`",
            )
        history_lag(node.index, indices)

    def check_sum(self, node: IndexedSum, allowed: set[str], indices: frozenset[str]) -> None:
        if node.index in allowed or node.index in RESERVED or node.index in indices:
            raise DSLError(
                f"the sum index `{node.index}` hides another name", node.span, hint="use a fresh name such as `k`"
            )
        if not (isinstance(node.lo, Num) and float(node.lo.text).is_integer()):
            raise DSLError("a sum starts at a whole number", node.lo.span, hint="`sum(k = 0 .. n, EXPR)`")
        to_n, end = sum_bound(node.hi)
        if not to_n and end > MAX_LAG:
            raise DSLError(
                f"a sum with literal bounds is unrolled; it may reach back {MAX_LAG} steps",
                node.hi.span,
                hint="sum to `n` with geometric weights for a long memory",
            )

    # -------------------------------------------------------------- statements
    def statements_and_graph(self) -> int:
        g = self.graph
        for s in self.states:
            g.add_node(("state", s))
        written: dict[str, int] = {}  # name -> last statement that assigned it
        assigned_at: dict[str, int] = {}  # first assignment line of every target
        for st in self.statements:
            assigned_at.setdefault(st.target, st.span.line)
        theta_at: int | None = None
        for i, st in enumerate(self.statements):
            g.add_node(("stmt", i))
            self.check_target(st, theta_at)
            later = {
                t: line for t, line in assigned_at.items() if t not in written and t not in self.states and t != "theta"
            }
            allowed = self.constants() | set(self.states) | set(written) | {"g", "n", "loss"}
            if theta_at is None:
                allowed.add("theta")
            elif self.reads_theta(st.expr):
                raise self.read_after_update(st.expr, theta_at)
            for name in self.check_expr(st.expr, allowed, later=later) | self.history_reads(st.expr):
                if name in written:
                    g.add_edge(("stmt", written[name]), ("stmt", i))
                elif name in self.states:
                    g.add_edge(("state", name), ("stmt", i))
            written[st.target] = i
            if st.target == "theta":
                theta_at = i
        if theta_at is None:
            raise DSLError(
                "`theta` is never updated",
                self.program.optimizer.span,
                hint="add the update, e.g. `theta = theta - h * v`",
            )
        for s in self.states:
            if s in written:
                g.add_edge(("stmt", written[s]), ("state", s))
        return theta_at

    def history_reads(self, expr: Node) -> set[str]:
        return {node.name for node in walk(expr) if isinstance(node, History)}

    def reads_theta(self, expr: Node) -> bool:
        return any(isinstance(n, Name) and n.id == "theta" for n in walk(expr))

    def read_after_update(self, expr: Node, theta_at: int) -> DSLError:
        node = next(n for n in walk(expr) if isinstance(n, Name) and n.id == "theta")
        line = self.statements[theta_at].span.line
        return DSLError(
            "`theta` is read after its update",
            node.span,
            hint=f"theta is updated on line {line}; move this statement above it",
        )

    def check_target(self, st: Assign, theta_at: int | None) -> None:
        name = st.target
        if name in ("g", "n", "loss"):
            raise DSLError(
                f"cannot assign `{name}`: it is {RESERVED[name]}",
                st.target_span,
                hint="choose another name for a temporary",
            )
        if name == self.step_name or name in self.params:
            raise DSLError(
                f"cannot assign `{name}`: it is a {'step size' if name == self.step_name else 'parameter'}",
                st.target_span,
                hint="parameters are constant; keep changing values in a `state`",
            )
        if name in FUNCTIONS or name in KEYWORDS:
            raise DSLError(f"cannot assign `{name}`: it is a built-in name", st.target_span)
        if name == "theta" and theta_at is not None:
            raise DSLError(
                "`theta` is updated twice",
                st.target_span,
                hint=f"the first update is on line {self.statements[theta_at].span.line}; combine them into one",
            )

    # ----------------------------------------------------------------- warnings
    def unused_warnings(self, theta_at: int) -> None:
        sink = ("stmt", theta_at)
        for name, decl in self.states.items():
            if not nx.has_path(self.graph, ("state", name), sink):
                self.warnings.append(
                    DSLWarning(
                        f"state `{name}` never influences `theta`", decl.span, hint="remove it, or use it in the update"
                    )
                )
        for i, st in enumerate(self.statements):
            if st.target not in self.states and i != theta_at and not nx.has_path(self.graph, ("stmt", i), sink):
                self.warnings.append(
                    DSLWarning(f"`{st.target}` is computed but never influences `theta`", st.target_span)
                )


def check(program: Program) -> Checked:
    """Validate a parsed program; raise ``DSLError`` located in the program's file."""
    try:
        c = _Checker(program)
        c.declarations()
        theta_at = c.statements_and_graph()
        c.unused_warnings(theta_at)
    except DSLError as err:
        raise err.located(program.source, program.filename) from None
    warnings = [w.located(program.source, program.filename) for w in c.warnings]
    return Checked(program, c.step_name, c.params, c.states, tuple(c.statements), theta_at, c.graph, warnings)
