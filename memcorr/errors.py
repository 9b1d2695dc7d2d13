"""Errors with source positions, rendered in the format of docs/language.md.

Input: a message, the source text and a span (1-based line and column).
Output: ``DSLError`` whose ``str`` is::

    FILE:LINE:COL: error: MESSAGE
       LINE | the source line
            |     ^^^^
    hint: HINT
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of the source: 1-based line and column, ``length`` characters long."""

    line: int
    column: int
    length: int = 1


class DSLError(Exception):
    """A program that the language rejects (syntax or semantics)."""

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        hint: str | None = None,
        source: str = "",
        filename: str = "<string>",
    ):
        self.message = message
        self.span = span or Span(1, 1)
        self.hint = hint
        self.source = source
        self.filename = filename
        super().__init__(self.render())

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    def located(self, source: str, filename: str) -> DSLError:
        """The same error, attached to the program text it was found in."""
        return DSLError(self.message, self.span, hint=self.hint, source=source, filename=filename)

    def render(self, kind: str = "error") -> str:
        line, col = self.span.line, self.span.column
        out = [f"{self.filename}:{line}:{col}: {kind}: {self.message}"]
        lines = self.source.splitlines()
        if not lines:  # no text to show (a file that could not be read): the message and the hint
            return "\n".join(out + ([f"hint: {self.hint}"] if self.hint else []))
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        text = text[:200].replace("\t", " ")
        gutter = f"{line:>5} | "
        out.append(gutter + text)
        width = max(1, min(self.span.length, max(1, len(text) - col + 1)))
        out.append(" " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^" * width)
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


class DSLWarning(DSLError):
    """A finding that does not stop the program (e.g. a state that never reaches theta)."""

    def __str__(self) -> str:
        return self.render("warning")

    def located(self, source: str, filename: str) -> DSLWarning:
        return DSLWarning(self.message, self.span, hint=self.hint, source=source, filename=filename)


class DerivationError(Exception):
    """A program that is valid but whose expansion cannot be derived; the message says why."""


class UsageError(Exception):
    """A command line or call that asks for something memcorr does not do (an option's value, a
    format, a loss); the message says what is accepted."""
