"""A researcher's first day: programs written from docs/language.md alone, every example of that
page, and the names and constructs that crashed a new user's derivations."""

import re

import pytest
import sympy as sp
from conftest import PROGRAMS, ROOT

import memcorr
from memcorr.algebra.atoms import G, Hess

FIRST_DAY = sorted((PROGRAMS / "first_day").glob("*.opt"))
REFUSED = {"amsgrad": "does not decay"}
EXAMPLES = re.findall(r"```\n((?:#[^\n]*\n)*optimizer .*?)```", (ROOT / "docs" / "language.md").read_text(), re.S)


def test_the_language_page_has_examples():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("text", EXAMPLES, ids=lambda t: t.split("optimizer ")[1].split()[0])
def test_every_example_of_the_language_page_derives(text):
    d = memcorr.derive(text)
    assert d.update != 0


@pytest.mark.parametrize("path", FIRST_DAY, ids=lambda p: p.stem)
@pytest.mark.parametrize("regime", ["stationary", "finite"])
def test_first_day_programs_derive_or_are_refused_with_the_reason(path, regime):
    if path.stem in REFUSED:
        with pytest.raises(memcorr.DSLError, match=REFUSED[path.stem]):
            memcorr.derive(path, regime=regime)
        return
    d = memcorr.derive(path, regime=regime)
    assert d.update != 0 and d.perturbation.verdict in (
        "regularizing",
        "anti-regularizing",
        "depends",
        "none",
        "unknown",
    )


def _psi1_at(name_or_path, **values):
    d = memcorr.derive(name_or_path)
    subs = {d.model.params[k].symbol: v for k, v in values.items()}
    return sp.simplify(d.expansion.corrections[0].xreplace(subs)), d


def test_triple_momentum_reduces_to_heavy_ball_and_nesterov():
    """Van Scoy et al. 2018, eq. (1): γ = 0 is heavy ball, γ = β is Nesterov; their first-order
    corrections are β/(1−β)³ ∇²L∇L and β²/(1−β)³ ∇²L∇L (the bundled known results)."""
    d = memcorr.derive(PROGRAMS / "first_day" / "triple_momentum.opt")
    beta, gamma = d.model.params["beta"].symbol, d.model.params["gamma"].symbol
    psi1 = d.expansion.corrections[0]
    assert sp.simplify(psi1.xreplace({gamma: 0}) - beta / (1 - beta) ** 3 * Hess(G)) == 0
    assert sp.simplify(psi1.xreplace({gamma: beta}) - beta**2 / (1 - beta) ** 3 * Hess(G)) == 0


def test_eps_inside_the_root_says_to_declare_it_small():
    d = memcorr.derive(PROGRAMS / "first_day" / "adam_eps_inside.opt")
    p = d.perturbation
    assert p.verdict == "unknown" and "declaring `eps` small" in p.reason
    small = (PROGRAMS / "first_day" / "adam_eps_inside.opt").read_text().replace("> 0\n", "> 0 small\n")
    q = memcorr.derive(small).perturbation
    assert q.potential is not None and not q.exact and q.verdict == "depends"


SYMPY_NAMES = ["beta", "gamma", "zeta", "E", "I", "S", "N", "O", "Q", "pi", "lambda"]


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[] if n in ("beta", "lambda") else [pytest.mark.slow]) for n in SYMPY_NAMES]
)
def test_names_sympy_defines_are_ordinary_names(name):
    """AdamW's two rates renamed: the finite regime's condition (β₁ > β₂ at large n) once went back
    through sympify, which read `beta`, `gamma`, `E`… as sympy's functions and constants."""
    other = "rate2" if name != "rate2" else "rate3"
    text = (
        f"optimizer named\nstep lr\nparam {name} = 0.9 in (0, 1)\nparam {other} = 0.999 in (0, 1)\n"
        "param eps = 1e-8 > 0 small\nstate m = 0\nstate v = 0\n"
        f"m = {name} * m + (1 - {name}) * g\nv = {other} * v + (1 - {other}) * g^2\n"
        f"theta = theta - lr * m / (1 - {name}^(n + 1)) / (sqrt(v / (1 - {other}^(n + 1))) + eps)\n"
    )
    for regime in ("stationary", "finite"):
        d = memcorr.derive(text, regime=regime)
        assert d.perturbation.verdict == "depends" and d.perturbation.relation is not None
        d.summary(), d.to_latex(standalone=True), d.to_json()
    memcorr.derive(text, target="flow").summary()


def test_a_sign_mask_derives_in_the_finite_regime():
    text = (
        "optimizer cautious\nstep lr\nparam beta = 0.9 in (0, 1)\nstate m = 0\n"
        "m = beta * m + (1 - beta) * g\nmask = (1 + sign(m * g)) / 2\ntheta = theta - lr * mask * m\n"
    )
    d = memcorr.derive(text, regime="finite")
    assert d.perturbation.verdict in ("unknown", "regularizing", "anti-regularizing", "depends", "none")


def test_the_order_has_a_documented_limit():
    with pytest.raises(memcorr.DerivationError, match="from 1 to 10"):
        memcorr.derive("heavy_ball", order=100)


def test_a_derivation_repr_is_one_line():
    assert "\n" not in repr(memcorr.derive("adamw")) and "summary()" in repr(memcorr.derive("adamw"))


def test_verify_on_a_vanishing_correction_says_so(run_cli):
    status, out, _ = run_cli("verify", PROGRAMS / "first_day" / "tiger.opt")
    assert status == 0 and "the correction vanishes (Ψ_1 = 0)" in out and "rounding level" in out
    assert "inf" not in out


def test_emitted_latex_of_a_unicode_description_and_a_flow_compiles(tmp_path):
    from conftest import PDFLATEX, compile_tex

    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed (.ci/run installs it)")
    text = 'optimizer u "β-momentum — with ∇L · θ, Grokfast’s idea, café"\nstep h\nparam beta = 0.9 in (0, 1)\n'
    text += "state v = 0\nv = beta * v + g\ntheta = theta - h * v\n"
    compile_tex(memcorr.derive(text).to_latex(standalone=True), tmp_path)
    for name in ("lion", "lion_softsign", "signum"):
        compile_tex(memcorr.derive(name, target="flow").to_latex(standalone=True), tmp_path)


@pytest.mark.parametrize("name", ["adamw", "nadamw", "qhadam"])
def test_finite_results_print_powers_as_papers_do(name):
    """``1 − β^{n+1}``, not ``-β*β**n + 1``: powers of one base merged in text and LaTeX."""
    d = memcorr.derive(name, regime="finite")
    summary = d.summary()
    assert not re.search(r"(\w+)\*\1\*\*n", summary), summary
    assert "**(n + 1)" in summary
    assert not re.search(r"(\\beta_\{\d\}) \\, \1\^\{n\}", d.to_latex())


def test_a_long_reason_may_break_in_latex():
    from memcorr.printing.document import breakable

    assert breakable("a*b+c, f(x)") == r"a*\allowbreak{}b+\allowbreak{}c, f(\allowbreak{}x)"


@pytest.mark.parametrize("argv", [["--help"], ["check", "--help"]])
def test_help_points_to_the_documentation(argv, capsys):
    from memcorr.cli import main
    from memcorr.dsl.library import docs_dir

    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    assert "language.md" in out and "python.md" in out and "method.md" in out
    assert (docs_dir() / "language.md").is_file()


def test_the_docs_point_nowhere_outside_the_repository():
    for page in ("language", "python", "method"):
        text = (ROOT / "docs" / f"{page}.md").read_text()
        assert "shared/spec" not in text and "../" not in text
    assert "shared/spec" not in (ROOT / "README.md").read_text()


def test_a_derivation_reports_its_stages(caplog, monkeypatch):
    """What the command line shows on a terminal while a long derivation runs (derived here, not read
    from the cache another test may have filled: a cached result has no stages to report)."""
    monkeypatch.setenv("MEMCORR_CACHE", "off")
    with caplog.at_level("INFO", logger="memcorr"):
        memcorr.derive("heavy_ball", order=2, target="flow")
    messages = [r.getMessage() for r in caplog.records]
    assert "invariant manifold: order 2 of 2" in messages and "modified flow: order 2 of 2" in messages


@pytest.mark.parametrize(
    "line, words",
    [
        ("param β = 0.9 in (0, 1)", ["unexpected character 'β'", "write `beta`"]),
        ("parm beta = 0.9 in (0, 1)", ["unknown word `parm`", "did you mean `param`"]),
        ("stat v = 0", ["unknown word `stat`", "did you mean `state`"]),
    ],
)
def test_first_day_syntax_hints(line, words):
    text = f"optimizer x\nstep h\n{line}\ntheta = theta - h * g\n"
    with pytest.raises(memcorr.DSLError) as err:
        memcorr.load(text)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert err.value.line == 3


def test_a_trailing_operator_is_reported_on_its_own_line():
    text = "optimizer x\nstep h\nparam beta = 0.5 in (0, 1)\nstate v = 0\nv = beta * v +\ntheta = theta - h * v\n"
    with pytest.raises(memcorr.DSLError, match="ends with `\\+`") as err:
        memcorr.load(text)
    assert (err.value.line, err.value.column) == (5, 14)


def test_a_syntax_error_after_a_keyword_like_word_is_not_called_a_typo():
    with pytest.raises(memcorr.DSLError) as err:
        memcorr.load("optimizer x\nstep h\nstat = 3 3\ntheta = theta - h * g\n")
    assert "unknown word" not in str(err.value)


STALE = 'optimizer stale "a gradient three steps stale"\nstep lr\ntheta = theta - lr * grad(theta[n - 3])\n'


@pytest.mark.slow
def test_finite_results_read_as_papers_write_them():
    """Gaps oriented and collected: Adam's first moment is ``(1 − β₁ⁿ)(g + λθ)``, not
    ``g(1 − β₁ⁿ) − λθ(β₁ⁿ − 1)``; a stale gradient's weight is ``min(n, 3)``; sums over the steps
    read ``Σ_{s=0}^{n − 1}``, loops as a recursion; no sympy names (``Min``, ``Sum``, ``loop``, ``_s``)."""
    adam = memcorr.derive("adam", regime="finite")
    assert "m: S^(n) = (1 - β₁**n)*(g + θ*weight_decay)" in adam.summary()
    stale = memcorr.derive(STALE, regime="finite")
    assert "Ψ₁ = Hess(g)*min(n, 3)" in stale.summary()
    radam = memcorr.derive("radam", regime="finite").summary()
    rmsprop = memcorr.derive("rmsprop", regime="finite").summary()
    assert "Σ_{s=0}^{n - 1} (" in radam and "after, for t = 0, …, n − 1: v ← " in rmsprop
    for summary in (adam.summary(), stale.summary(), radam, rmsprop):
        assert not re.search(r"\b(Min|Max|Sum|Piecewise|loop)\(|\b_[st]\b|\*\*n - 1\)", summary), summary


def test_a_sign_of_a_square_is_one():
    text = 'optimizer sq "a mask that is always on"\nstep lr\nparam beta = 0.9 in (0, 1)\nstate m = 0\n'
    d = memcorr.derive(text + "m = beta * m + (1 - beta) * g * sign(g^2)\ntheta = theta - lr * m\n")
    assert d.update == G and "sign" not in d.summary()


def test_a_max_of_a_state_is_refused_at_its_update(run_cli, tmp_path):
    source = (PROGRAMS / "first_day" / "amsgrad.opt").read_text().replace("max(vmax, v)", "max(0.99 * vmax, v)")
    (tmp_path / "ams.opt").write_text(source)
    status, out, err = run_cli("derive", tmp_path / "ams.opt")
    assert status == 2 and not out
    assert "ams.opt:13:1: error: cannot solve for the fixed point" in err
    assert "^^^^" in err and "hint: if one branch always wins" in err
