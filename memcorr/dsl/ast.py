"""The program's abstract syntax tree, and one way to walk it.

Input: nothing (the node types). Output: the frozen dataclasses ``parse`` builds (each with its
source span), ``children``/``walk`` over an expression, and ``Visitor``: a method
``visit_<NodeType>`` per node type, so that each reader of the tree (the checker, the lowering,
the interpreter of ``verify``, the LaTeX of the program) says what it does per node in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Span


@dataclass(frozen=True)
class Node:
    span: Span


@dataclass(frozen=True)
class Num(Node):
    text: str

    @property
    def value(self) -> float:
        return float(self.text)


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True)
class Chain(Node):
    """``operands[0] ops[0] operands[1] ops[1] …`` for one precedence level (+ - or * /)."""

    ops: tuple[str, ...]
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Pow(Node):
    base: Node
    exponent: Node


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class History(Node):
    """``theta[index]`` or ``g[index]``: a past iterate or gradient."""

    name: str
    index: Node


@dataclass(frozen=True)
class IndexedSum(Node):
    """``sum(index = lo .. hi, body)``."""

    index: str
    lo: Node
    hi: Node
    body: Node


@dataclass(frozen=True)
class Domain:
    lo: float
    hi: float
    lo_closed: bool
    hi_closed: bool

    def contains(self, x: float) -> bool:
        above = x >= self.lo if self.lo_closed else x > self.lo
        below = x <= self.hi if self.hi_closed else x < self.hi
        return above and below

    def __str__(self) -> str:
        if self.hi == float("inf"):
            return f"{'>=' if self.lo_closed else '>'} {self.lo:g}"
        if self.lo == float("-inf"):
            return f"{'<=' if self.hi_closed else '<'} {self.hi:g}"
        return f"in {'[' if self.lo_closed else '('}{self.lo:g}, {self.hi:g}{']' if self.hi_closed else ')'}"


@dataclass(frozen=True)
class OptimizerDecl(Node):
    name: str
    description: str


@dataclass(frozen=True)
class StepDecl(Node):
    name: str


@dataclass(frozen=True)
class ParamDecl(Node):
    name: str
    default: float | None
    default_span: Span | None
    domain: Domain | None
    small: bool


@dataclass(frozen=True)
class StateDecl(Node):
    name: str
    init: Node | None


@dataclass(frozen=True)
class Assign(Node):
    """``target = expr``; ``target -= expr`` is stored as ``target = target - expr``."""

    target: str
    target_span: Span
    expr: Node


@dataclass(frozen=True)
class Program:
    optimizer: OptimizerDecl
    items: tuple[Node, ...]
    source: str
    filename: str

    @property
    def name(self) -> str:
        return self.optimizer.name

    @property
    def description(self) -> str:
        return self.optimizer.description


# ------------------------------------------------------------------ walking
def children(node: Node) -> tuple[Node, ...]:
    """The sub-expressions of an expression node."""
    if isinstance(node, Neg):
        return (node.operand,)
    if isinstance(node, Chain):
        return node.operands
    if isinstance(node, Pow):
        return (node.base, node.exponent)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, History):
        return (node.index,)
    if isinstance(node, IndexedSum):
        return (node.lo, node.hi, node.body)
    return ()


def walk(node: Node):
    """Every node of an expression, parents first (iterative: trees may be deep)."""
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


class Visitor:
    """``visit(node, *args)`` calls ``self.visit_<type of node>(node, *args)``."""

    def visit(self, node: Node, *args):
        return getattr(self, f"visit_{type(node).__name__}")(node, *args)
