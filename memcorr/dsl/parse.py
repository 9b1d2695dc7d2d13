"""Source text -> AST (the first step of stage 1).

Input: the text of an ``.opt`` program (docs/language.md). Output: ``Program``, a tree of
small frozen dataclasses that carry their source spans. The grammar lives in
``grammars/optimizer.lark``; this module only turns lark's parse tree into the
AST and lark's exceptions into ``DSLError`` (file, line, column, caret, hint).
"""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path

from lark import Lark, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ..errors import DSLError, Span
from .ast import (
    Assign,
    Call,
    Chain,
    Domain,
    History,
    IndexedSum,
    Name,
    Neg,
    Num,
    OptimizerDecl,
    ParamDecl,
    Pow,
    Program,
    StateDecl,
    StepDecl,
)

MAX_BYTES = 256 * 1024  # .opt programs are a screenful; a larger file is a mistake
MAX_DEPTH = 200  # deepest expression tree accepted (parentheses alone add no depth)


# ------------------------------------------------------------------ lark → AST
def _span(meta_or_token) -> Span:
    line, col = meta_or_token.line, meta_or_token.column
    end_line, end_col = meta_or_token.end_line, meta_or_token.end_column
    return Span(line, col, max(1, end_col - col) if end_line == line else 1)


MAX_MAGNITUDE = 300  # literals lie within 1e-300 .. 1e300 (or are 0): every one is a finite double
# the grammar's NUMBER (and `1.`, which a `--param` value may be): whole digits, fraction, exponent
_LITERAL = re.compile(r"(?=\.?\d)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")


def literal(text: str, span: Span) -> str:
    """``text`` if it is a decimal number of magnitude within 10^±MAX_MAGNITUDE, read from its digits
    (``1e99999999`` is never built as a number), else a DSLError."""
    match = _LITERAL.fullmatch(text)
    if match is None:
        raise DSLError("not a number", span, hint="write a decimal number, e.g. 0.95 or 1e-3")
    whole, frac, exp = match.groups(default="")
    digits = (whole + frac).lstrip("0")
    if not digits:
        return text  # zero
    if len(exp or "") > 6:  # more exponent digits than any double needs
        return _out_of_range(text, span)
    # the decimal exponent of the leading digit: 123.4 -> 2, 0.00123 -> -3
    lead = len(whole.lstrip("0")) - 1 if whole.lstrip("0") else -(len(frac) - len(frac.lstrip("0")) + 1)
    if abs(lead + int(exp or 0)) > MAX_MAGNITUDE:
        return _out_of_range(text, span)
    return text


def _out_of_range(text: str, span: Span):
    raise DSLError(
        f"the number {text[:20]}{'…' if len(text) > 20 else ''} is out of range",
        span,
        hint=f"numbers lie between 1e-{MAX_MAGNITUDE} and 1e{MAX_MAGNITUDE} in magnitude (or are 0)",
    )


def _signed(tree: Tree) -> float:
    number = tree.children[-1]
    return float("".join(str(t) for t in tree.children[:-1]) + literal(str(number), _span(number)))


def _domain(tree: Tree) -> Domain:
    if tree.data == "interval":
        open_b, lo, hi, close_b = tree.children
        return Domain(_signed(lo), _signed(hi), str(open_b.children[0]) == "[", str(close_b.children[0]) == "]")
    op, bound = str(tree.children[0].children[0]), _signed(tree.children[1])
    if op.startswith(">"):
        return Domain(bound, float("inf"), op == ">=", False)
    return Domain(float("-inf"), bound, False, op == "<=")


@v_args(meta=True)
class ToAST(Transformer):
    """Builds the AST bottom-up; every node keeps the span lark recorded."""

    def number(self, meta, children):
        return Num(_span(meta), literal(str(children[0]), _span(meta)))

    def name(self, meta, children):
        return Name(_span(meta), str(children[0]))

    def neg(self, meta, children):
        return Neg(_span(meta), children[0])

    def chain(self, meta, children):
        return Chain(_span(meta), tuple(str(t) for t in children[1::2]), tuple(children[0::2]))

    def pow(self, meta, children):
        return Pow(_span(meta), children[0], children[2])

    def call(self, meta, children):
        return Call(_span(children[0]), str(children[0]), tuple(children[1:]))

    def indexed_sum(self, meta, children):
        func, index, lo, hi, body = children
        if str(func) != "sum":
            raise DSLError(
                f"`{func}(NAME = …)` is not a function call; only `sum` takes an index",
                _span(func),
                hint="write `sum(k = 0 .. n, EXPR)` for a sum over the history",
            )
        return IndexedSum(_span(meta), str(index), lo, hi, body)

    def history(self, meta, children):
        return History(_span(meta), str(children[0]), children[1])

    def optimizer(self, meta, children):
        desc = str(children[1])[1:-1].replace('\\"', '"') if len(children) > 1 else ""
        return OptimizerDecl(_span(meta), str(children[0]), desc)

    def step(self, meta, children):
        return StepDecl(_span(meta), str(children[0]))

    def param(self, meta, children):
        default = default_span = domain = None
        small = False
        for child in children[1:]:
            if child.data == "default":
                default, default_span = _signed(child.children[0]), _span(child.children[0].meta)
            elif child.data == "small":
                small = True
            else:
                domain = _domain(child)
        return ParamDecl(_span(meta), str(children[0]), default, default_span, domain, small)

    def state(self, meta, children):
        return StateDecl(_span(meta), str(children[0]), children[1] if len(children) > 1 else None)

    def assign(self, meta, children):
        return Assign(_span(meta), str(children[0]), _span(children[0]), children[1])

    def assign_sub(self, meta, children):
        target = Name(_span(children[0]), str(children[0]))
        rhs = Chain(_span(meta), ("-",), (target, children[1]))
        return Assign(_span(meta), str(children[0]), _span(children[0]), rhs)

    def start(self, meta, children):
        return children


# ------------------------------------------------------------------ the parser
_CONTINUES = {"+", "-", "*", "/", "^", "**", "=", "-=", ",", "(", "[", ".."}


class Continuation:
    """Post-lexer: a newline inside brackets or after a binary operator continues the line."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth, prev = 0, None
        for tok in stream:
            if tok.type == "_NL":
                if depth > 0 or (prev is not None and prev.value in _CONTINUES):
                    continue
            elif tok.value in ("(", "["):
                depth += 1
            elif tok.value in (")", "]"):
                depth = max(0, depth - 1)
            prev = tok
            yield tok


def grammar_path() -> Path:
    """The grammar file: inside the package when installed from a wheel, else the source tree."""
    here = Path(__file__).resolve().parent.parent  # the memcorr package
    for candidate in (here / "grammars", here.parent / "grammars"):
        if (candidate / "optimizer.lark").is_file():
            return candidate / "optimizer.lark"
    raise FileNotFoundError("grammars/optimizer.lark is missing from the installation")


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    return Lark(
        grammar_path().read_text(),
        parser="lalr",
        lexer="contextual",
        postlex=Continuation(),
        propagate_positions=True,
        maybe_placeholders=False,
        cache=True,
    )


# Common mistakes, recognised by the parser state they fail in (lark's match_examples).
_HEAD = "optimizer o\nstep h\n"
SYNTAX_HINTS = {
    "an operator is missing between two terms: write `2 * beta`, not `2 beta`": [
        _HEAD + "x = 2 beta\n",
        _HEAD + "x = a b\n",
        _HEAD + "x = (a) (b)\n",
        _HEAD + "x = f(a) b\n",
    ],
    "a parenthesis is opened and never closed": [_HEAD + "x = (a + b\n", _HEAD + "x = sqrt(a\n", _HEAD + "x = f((a)\n"],
    "an operand is missing after the operator": [
        _HEAD + "x = a +\n",
        _HEAD + "x = a *\n",
        _HEAD + "x = a * ;\n",
        _HEAD + "x =\n",
    ],
    "a statement is `NAME = EXPR` (or `theta -= EXPR`)": [
        _HEAD + "3 = x\n",
        _HEAD + "x + 1 = y\n",
        _HEAD + "x\n",
        _HEAD + "x == y\n",
    ],
    'the first line must be `optimizer NAME ["description"]`': [
        "step h\n",
        "x = 1\n",
        "param beta = 0.9\n",
        "optimizer\n",
    ],
    "a parameter reads `param NAME [= NUMBER] [DOMAIN] [small]`, the default a plain number": [
        _HEAD + "param beta = x\n",
        _HEAD + "param beta = 1 - 0.1\n",
        _HEAD + "param = 0.9\n",
    ],
    "a domain reads `in (a, b)`, `in [a, b]`, `> a`, `>= a`, `< a` or `<= a`": [
        _HEAD + "param beta = 0.9 in 0, 1\n",
        _HEAD + "param beta = 0.9 in (0 1)\n",
        _HEAD + "param beta = 0.9 == 1\n",
    ],
}

_READABLE = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": 'a "description"',
    "_NL": "end of line",
    "$END": "end of file",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "SEMICOLON": "`;`",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*` or `/`",
    "POW": "`^`",
    "MINUS": "`-`",
    "PLUS": "`+`",
}


def _readable(expected) -> str:
    """Terminal names as a reader knows them: ``RPAR`` -> `` `)` ``, ``NAME`` -> "a name"."""
    known = {t.name: t.pattern.value for t in parser().terminals}
    names = sorted({_READABLE.get(t, f"`{known[t]}`" if t in known else t) for t in expected})
    return ", ".join(names[:8]) + (", …" if len(names) > 8 else "")


_CHAR_HINTS = {
    "'": "the description is a double-quoted string",
    "{": "group with parentheses",
    "}": "group with parentheses",
    ":": "assignment is `=`",
    "!": "there are no boolean operators; see docs/language.md for the functions",
}


# Greek letters a program might paste from a paper: the ASCII names the language reads
_GREEK = dict(
    zip(
        "αβγδεζηθικλμνξπρστυφχψω",
        "alpha beta gamma delta eps zeta eta theta iota kappa lam mu nu xi pi rho sigma tau upsilon phi chi psi "
        "omega".split(),
    )
)
KEYWORD_TYPOS = ("optimizer", "step", "param", "state", "small")


def _char_hint(char: str) -> str | None:
    if char.lower() in _GREEK:
        return f"names are ASCII: write `{_GREEK[char.lower()]}` for {char} (the printers show it as {char})"
    if not char.isascii():
        return f"names, operators and numbers are ASCII; {char!r} (U+{ord(char):04X}) may stand only in comments"
    return _CHAR_HINTS.get(char)


def _dangling_operator(tok, text: str) -> DSLError | None:
    """A line ending in a binary operator continues on the next one, so `v = a +` followed by the next
    statement fails there; point at the operator that left the expression open instead."""
    lines = text.splitlines()
    for number in range(tok.line - 1, 0, -1):
        code = lines[number - 1].split("#", 1)[0].rstrip()
        if not code:
            continue
        if code[-1] in "+-*/^":
            return DSLError(
                f"the expression ends with `{code[-1]}`",
                Span(number, len(code)),
                hint=f"an operand is missing after the operator (a line ending in `{code[-1]}` continues on the next)",
            )
        return None
    return None


def _syntax_error(err: UnexpectedInput, text: str) -> DSLError:
    if isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream or 0]
        return DSLError(f"unexpected character {char!r}", Span(err.line, err.column), hint=_char_hint(char))
    if isinstance(err, UnexpectedToken) and err.token.type != "$END":
        tok = err.token
        line = text.splitlines()[tok.line - 1] if tok.line <= len(text.splitlines()) else ""
        first = line.split()
        close = difflib.get_close_matches(first[0], KEYWORD_TYPOS, n=1, cutoff=0.7) if first else []
        # `parm beta = 0.9`: the second word is where the parser stops, the first looks like a keyword
        second = len(first) > 1 and tok.column == line.index(first[1], line.index(first[0]) + len(first[0])) + 1
        if close and second and first[0] not in KEYWORD_TYPOS:
            return DSLError(
                f"unknown word `{first[0]}`", Span(tok.line, 1, len(first[0])), hint=f"did you mean `{close[0]}`?"
            )
        dangling = _dangling_operator(tok, text) if tok.value in ("=", "-=") else None
        if dangling:
            return dangling
    hint = err.match_examples(
        parser().parse, SYNTAX_HINTS, use_accepts=False
    )  # lark 1.3: use_accepts=True crashes in its own debug log
    if isinstance(err, UnexpectedToken) and err.token.type != "$END":
        tok = err.token
        what = "end of line" if tok.type == "_NL" else f"`{tok.value}`"
        return DSLError(
            f"unexpected {what}; expected {_readable(err.accepts or err.expected)}",
            Span(tok.line, tok.column, len(tok.value) if tok.type != "_NL" else 1),
            hint=hint,
        )
    expected = err.expected if isinstance(err, (UnexpectedToken, UnexpectedEOF)) else ()
    lines = text.splitlines() or [""]
    return DSLError(
        f"unexpected end of file; expected {_readable(expected)}", Span(len(lines), len(lines[-1]) + 1), hint=hint
    )


def _check_depth(tree: Tree) -> None:
    """Reject statements deeper than MAX_DEPTH before anything recursive walks them."""
    stack = [(item, 1, item) for item in tree.children if isinstance(item, Tree)]
    while stack:
        node, depth, item = stack.pop()
        if depth > MAX_DEPTH:
            raise DSLError(
                f"expression nested more than {MAX_DEPTH} levels deep",
                Span(item.meta.line, item.meta.column),
                hint="split it into temporaries",
            )
        stack.extend((c, depth + 1, item) for c in node.children if isinstance(c, Tree))


def decode(data: bytes) -> str:
    """Bytes of a program file -> text, or a positioned DSLError (size, UTF-8, NUL)."""
    if len(data) > MAX_BYTES:
        raise DSLError(
            f"file is {len(data)} bytes; programs are limited to {MAX_BYTES} bytes",
            Span(1, 1),
            hint="an .opt file describes one optimizer step",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise DSLError("the file is not valid UTF-8", Span(line, col), hint="save it as UTF-8 text") from None
    return text


def parse(text: str, filename: str = "<string>") -> Program:
    """Parse program text into a ``Program``; raise ``DSLError`` located in ``filename``.
    Line endings are read as newlines whatever their kind (``\\r\\n``, and a lone ``\\r``)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        return _parse(text, filename)
    except DSLError as err:
        raise err.located(text, filename) from None


def _parse(text: str, filename: str) -> Program:
    if len(text) > MAX_BYTES:
        raise DSLError(f"program is {len(text)} characters; the limit is {MAX_BYTES}", Span(1, 1))
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise DSLError(
            "the file contains a NUL byte", Span(line, nul - text.rfind("\n", 0, nul)), hint="is this a binary file?"
        )
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise DSLError("empty program", Span(1, 1), hint='a program starts with `optimizer NAME "description"`')
    try:
        tree = parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, text) from None
    _check_depth(tree)
    try:
        items = ToAST().transform(tree)
    except VisitError as err:
        raise err.orig_exc from None
    return Program(items[0], tuple(items[1:]), text, filename)
