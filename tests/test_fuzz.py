"""Grammar fuzzing: whatever the input, memcorr either accepts it or raises DSLError.

Two sources of input, 1,000 cases each in CI: strings drawn from the project's
own grammar (``hypothesis.extra.lark.from_lark``), and bundled programs with
random edits (characters deleted, inserted or replaced, lines duplicated or dropped).
"""

import pytest
from conftest import BUNDLED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

import memcorr
from memcorr.dsl.parse import grammar_path

FUZZ = settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
SOURCES = [p.read_text() for p in BUNDLED]
ALPHABET = 'abgnhkmtv0123456789.,;=+-*/^()[]#"\n _e'


def accepted_or_dsl_error(text):
    try:
        memcorr.load(text if "\n" in text else text + "\n")
    except memcorr.DSLError as err:
        assert err.line >= 1 and err.column >= 1
        assert "\n" in str(err)  # a source line and a caret follow the message


names = st.sampled_from(["theta", "g", "n", "loss", "h", "beta", "v", "m", "x", "k", "sqrt", "grad"])


@pytest.mark.slow
@FUZZ
@given(from_lark(Lark(grammar_path().read_text(), parser="lalr"), explicit={"_NL": st.just("\n"), "NAME": names}))
def test_grammar_strings(text):
    accepted_or_dsl_error(text)


@st.composite
def mutated(draw):
    lines = draw(st.sampled_from(SOURCES)).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "dup_line", "drop_line"]))
        text = "".join(lines)
        if kind in ("dup_line", "drop_line") and len(lines) > 1:
            i = draw(st.integers(0, len(lines) - 1))
            lines = lines[:i] + ([lines[i]] * 2 if kind == "dup_line" else []) + lines[i + 1 :]
            continue
        i = draw(st.integers(0, max(0, len(text) - 1)))
        char = draw(st.sampled_from(ALPHABET))
        text = {
            "delete": text[:i] + text[i + 1 :],
            "insert": text[:i] + char + text[i:],
            "replace": text[:i] + char + text[i + 1 :],
        }.get(kind, text)
        lines = text.splitlines(keepends=True)
    return "".join(lines)


@pytest.mark.slow
@FUZZ
@given(mutated())
def test_mutated_programs(text):
    accepted_or_dsl_error(text)
