"""Long formulas laid out on lines a page can hold.

Input: a sympy expression and the LaTeX printer. Output: lines of at most ``WIDTH`` visible
symbols (``visible`` estimates how wide LaTeX sets), broken between the terms of a sum and inside
products, roots and reciprocals; ``rows`` of an ``align`` for one formula.
"""

from __future__ import annotations

import re

import sympy as sp

WIDTH = 68  # visible characters per line of a displayed formula before it is broken


def visible(tex: str) -> int:
    """Roughly how wide ``tex`` sets: a command counts as one symbol, sizing and braces as none,
    a fraction as its wider part; the widest row where it has several (an ``aligned`` recursion)."""
    return max(_width(row) for row in tex.split("\\\\"))


def _width(tex: str) -> int:
    i = tex.find("\\frac{")
    if i < 0:
        tex = re.sub(r"\\(left|right|Bigl|Bigr|bigl|bigr|mathrm|operatorname)\b|\\,", "", tex)
        # a binary operator sets with space on both sides: about three symbols wide
        binary = len(re.findall(r"(?<![{(^_])\s*[-+=]|\\leftarrow|\\times", tex))
        return len(re.sub(r"[{}_^ ]", "", re.sub(r"\\[A-Za-z]+", "x", tex))) + 2 * binary
    num_end = _group_end(tex, i + 5)
    den_end = _group_end(tex, num_end + 1)
    parts = _width(tex[i + 6 : num_end]), _width(tex[num_end + 2 : den_end])
    return _width(tex[:i]) + max(parts) + _width(tex[den_end + 1 :])


def _group_end(tex: str, start: int) -> int:
    """The index of the brace closing the group that opens at ``tex[start]``."""
    depth = 0
    for k in range(start, len(tex)):
        depth += {"{": 1, "}": -1}.get(tex[k], 0)
        if depth == 0:
            return k
    return len(tex) - 1


BRACKETS = [(r"\Bigl[", r"\Bigr]"), (r"\Bigl(", r"\Bigr)"), (r"\bigl\{", r"\bigr\}")]


def broken(expr, printer, depth: int = 0, width: int = WIDTH, tex: str | None = None) -> list[str]:
    """``expr`` as lines of at most ``width`` visible characters: a long sum is split between its
    terms; a long product keeps its short factors in front and splits its longest factor (a sum,
    or a power of one, ``[…]^{1/2}`` for a root) inside brackets, recursively, so that no line of a
    finite-n result runs off the page."""
    tex = printer.doprint(expr) if tex is None else tex  # ``tex``: expr printed already
    if visible(tex) <= width:
        return [tex]
    if expr.is_Add:
        terms = printer._as_ordered_terms(expr)
        return _lines([line for t in terms for line in broken(t, printer, depth, width)], width)
    if _splittable(expr):
        return _bracketed([""], expr, printer, depth, width)
    if expr.is_Mul and any(_splittable(f) for f in expr.args):
        inner = max(filter(_splittable, expr.args), key=lambda f: visible(printer.doprint(f)))
        rest = sp.Mul(*[f for f in expr.args if f is not inner])
        front = [""] if rest == 1 else ["-"] if rest == -1 else broken(rest, printer, depth, width)
        return _bracketed(front, inner, printer, depth, width)
    return [tex]


def _splittable(factor) -> bool:
    """A sum, or a power of something longer than a symbol (a root, a reciprocal)."""
    return factor.is_Add or (factor.is_Pow and not factor.base.is_Atom)


def _bracketed(front: list[str], inner, printer, depth: int, width: int) -> list[str]:
    """``front`` (lines) times ``inner`` broken inside brackets; a power's exponent after them."""
    open_, close = BRACKETS[min(depth, len(BRACKETS) - 1)]
    if inner.is_Pow:
        lines = broken(inner.base, printer, depth + 1, width - 6)  # room for ``\times \Bigl[`` and ``]^{k}``
        close += f"^{{{printer._print(inner.exp)}}}"
    else:
        lines = broken(inner, printer, depth + 1, width - 6)
    front = list(front)
    if visible(front[-1]) + visible(lines[0]) > width:  # the bracket opens on a line of its own
        front.append(r"\times")
    lines[0] = rf"{front.pop()} {open_}{lines[0]}"
    lines[-1] += close
    return front + lines


def _lines(terms: list[str], width: int) -> list[str]:
    """Pieces of a sum packed into lines of at most ``width`` visible characters."""
    lines = [terms[0]]
    for t in terms[1:]:
        joined = t if t.lstrip().startswith(("-", "+", r"\times")) else f"+ {t}"
        if visible(lines[-1]) + visible(joined) > width:
            lines.append(joined)
        else:
            lines[-1] += f" {joined}"
    return lines


UNSETTABLE = 60  # lines: a formula longer than a page is no result a reader can take in


def rows(lhs: str, expr, printer, relation: str = "=", numbered: bool = True) -> list[str]:
    """Rows of an ``align``: ``lhs & = …`` and its continuation lines; a formula longer than a page
    (RAdam's finite-n map) is named, not set, and the reader sent to its exact forms."""
    # breaking never shortens what is printed and a line holds at most WIDTH symbols: a formula wider than
    # UNSETTABLE lines' worth (half as much again for brackets and signs) is unsettable without breaking it
    # (RAdam's finite-n map: 12 s of breaking to find it too long)
    tex = printer.doprint(expr)
    too_wide = visible(tex) > UNSETTABLE * WIDTH * 3 // 2
    lines = [] if too_wide else broken(expr, printer, tex=tex)
    if too_wide or len(lines) > UNSETTABLE or max(visible(line) for line in lines) > 30 * WIDTH:
        ops = sp.count_ops(expr)
        lines = [rf"\text{{({ops} operations: too long to set; exact in the JSON record and the generated code)}}"]
    out = [f"{lhs} &{relation} {lines[0]}"] + [rf"&\quad {line}" for line in lines[1:]]
    return [row + ("" if numbered and i == len(out) - 1 else r" \nonumber") for i, row in enumerate(out)]
