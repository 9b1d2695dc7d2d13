"""LaTeX in paper notation (api.md): every emitted document compiles with pdflatex.

The committed ``.tex`` of the bundled library (stationary and finite) and the documents of the
outside set are compiled; the notation rules (Greek names, subscripts, aliases that give way on a
clash, norms for the reductions) and the line breaking of long sums are checked on expressions.
"""

import re

import pytest
import sympy as sp
from conftest import GOOD, NOT_STATIONARY, PDFLATEX, ROOT, compile_tex, derived

import memcorr
from memcorr.algebra.atoms import THETA, CoordSum, G, Hess, Norm
from memcorr.expand.recurrence import Recurrence
from memcorr.printing.latex import MemcorrLatexPrinter, latex, paper_names
from memcorr.printing.layout import WIDTH, broken, rows, visible

needs_pdflatex = pytest.mark.skipif(
    PDFLATEX is None,
    reason="pdflatex is not installed (.ci/run installs texlive-latex-base and texlive-latex-recommended)",
)
COMMITTED = sorted((ROOT / "derivations" / "generated").rglob("*.tex"))


MAX_OVERFULL = 5.0  # points: wider lines run into the margin visibly


def overfull(log: str) -> float:
    """The widest overfull line in a pdflatex log, in points (0 when there is none)."""
    return max([float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)], default=0.0)


def test_every_bundled_program_has_a_committed_document():
    names = {p.stem for p in (ROOT / "derivations").glob("*.opt")}
    assert {p.stem for p in COMMITTED if p.parent.name == "stationary"} == names


@needs_pdflatex
@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_committed_documents_compile_without_overfull_lines(path, tmp_path):
    # long finite-n results are broken inside products and powers (``broken``), not left to run off
    log = compile_tex(path.read_text(encoding="utf-8"), tmp_path)
    assert overfull(log) <= MAX_OVERFULL, f"a line {overfull(log)} pt wider than the text"


def test_overfull_reads_the_log():
    assert overfull("Overfull \\hbox (71.2pt too wide) in alignment\nOverfull \\hbox (3.1pt too wide)") == 71.2
    assert overfull("Output written on doc.pdf") == 0.0


@needs_pdflatex
@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in GOOD if p.stem not in NOT_STATIONARY], ids=lambda p: p.stem)
def test_outside_documents_compile(path, tmp_path):
    compile_tex(derived(path).to_latex(standalone=True), tmp_path)


@needs_pdflatex
def test_flow_document_compiles(tmp_path):
    compile_tex(derived(ROOT / "derivations" / "adamw.opt", target="flow").to_latex(standalone=True), tmp_path)


def test_align_block_holds_the_program_the_map_and_the_verdict():
    tex = derived(ROOT / "derivations" / "adamw.opt").to_latex()
    assert tex.startswith("\\begin{align}") and tex.rstrip().endswith("\\end{align}")
    assert "\\documentclass" not in tex
    for piece in (r"\leftarrow", r"\Psi_{0}", r"\Psi_{1}", r"\tilde L", r"\beta_{1}", r"\varepsilon", r"\lambda"):
        assert piece in tex, piece
    assert "anti-regularizing" in tex and r"\beta_{1} > \beta_{2}" in tex


def test_names_follow_paper_notation_and_give_way_on_a_clash():
    names = paper_names(["beta1", "eps", "wd", "lr", "mhat", "decay"])
    assert names == {
        "beta1": r"\beta_{1}",
        "eps": r"\varepsilon",
        "wd": r"\lambda",
        "lr": r"\eta",
        "mhat": r"\hat{m}",
        "decay": r"\mathrm{decay}",
    }
    clash = paper_names(["lambda", "weight_decay", "eta", "lr"])
    assert clash["lambda"] == r"\lambda" and clash["weight_decay"] == r"\mathrm{weight\_decay}"
    assert clash["eta"] == r"\eta" and clash["lr"] == r"\mathrm{lr}"


def test_reductions_print_as_norms_and_inner_products():
    assert latex(CoordSum(sp.Abs(G))) == r"\left\lVert \nabla L \right\rVert_1"
    assert latex(CoordSum(G**2)) == r"\left\lVert \nabla L \right\rVert^{2}"
    assert latex(CoordSum(G * THETA)) == r"\left\langle \theta, \nabla L \right\rangle"
    assert latex(Norm(G) ** 2) == r"\left\lVert \nabla L \right\rVert^{2}"
    assert latex(G**2) == r"\left(\partial_j L\right)^{2}"
    assert latex(Hess(G)) == r"\left(\nabla^2 L \left[\nabla L\right]\right)_j"


def test_long_sums_are_broken_between_terms():
    b = sp.symbols("b1:13", positive=True)
    expr = sp.Add(*[bi * Hess(G) ** (i % 3 + 1) / (1 - bi) for i, bi in enumerate(b)])
    printer = MemcorrLatexPrinter()
    lines = broken(expr, printer)
    assert len(lines) > 1 and all(visible(line) <= WIDTH for line in lines)
    assert len(broken(3 * expr, printer)) > 1  # a short factor times a long sum: the factor in front
    assert broken(b[0] + b[1], printer) == [printer.doprint(b[0] + b[1])]


def test_long_products_and_roots_are_broken_inside_brackets():
    """A short factor times a long sum keeps the factor in front; a root of a long sum is set as
    ``[…]^{1/2}``; nested sums take the next bracket size; every line fits."""
    b = sp.symbols("b1:13", positive=True)
    long = sp.Add(*[bi * b[(i + 1) % 12] ** 2 for i, bi in enumerate(b)])
    printer = MemcorrLatexPrinter()
    lines = broken(Hess(G) * sp.sqrt(long) / (1 - b[0]) + G * long**2, printer)
    assert all(visible(line) <= WIDTH for line in lines)
    assert any(r"\Bigr]^{\frac{1}{2}}" in line for line in lines) and any(line.startswith("+") for line in lines)


def test_jupyter_rendering():
    d = derived(ROOT / "derivations" / "heavy_ball.opt")
    tex = d._repr_latex_()
    assert tex.startswith("$\\begin{aligned}") and "G &=" in tex


@needs_pdflatex
def test_broken_formulas_compile(tmp_path):
    b = sp.symbols("b1:13", positive=True)
    expr = 3 * sp.Add(*[bi * Hess(G) / (1 - bi) for bi in b])
    rows = " \\\\\n".join(
        f"X &= {line}" if i == 0 else f"&\\quad {line}" for i, line in enumerate(broken(expr, MemcorrLatexPrinter()))
    )
    source = "\\documentclass{article}\n\\usepackage{amsmath,amssymb,bm}\n\\begin{document}\n"
    compile_tex(source + f"\\begin{{align}}\n{rows}\n\\end{{align}}\n\\end{{document}}\n", tmp_path)


def test_description_with_special_characters_is_escaped(tmp_path):
    d = memcorr.derive(
        'optimizer odd "50% of_the & #1 {best} ~ $x^2$"\nstep h\nstate m = 0\nm = 0.5 * m + g\ntheta = theta - h * m\n'
    )
    tex = d.to_latex(standalone=True)
    assert r"50\% of\_the \& \#1 \{best\}" in tex
    if PDFLATEX:
        compile_tex(tex, tmp_path)


@needs_pdflatex
@pytest.mark.parametrize("name, target", [("heavy_ball", "map"), ("gd", "flow"), ("adabelief", "map")])
def test_higher_order_documents_compile(name, target, tmp_path):
    """One line per order: Ψ_2, Ψ_3 with ∇³L and ∇⁴L, and G_r (or why there is none)."""
    d = memcorr.derive(name, order=3, target=target)
    tex = d.to_latex(standalone=True)
    assert r"\Psi_{3}" in tex and r"\nabla^{3} L" in tex
    compile_tex(tex, tmp_path)


def test_a_formula_no_page_can_hold_is_named_not_set():
    """RAdam's finite-n map: a fraction over hundreds of terms would fill pages."""
    x = sp.Symbol("x")
    huge = 1 / sp.Add(*[sp.Symbol(f"a{i}") * x**i for i in range(600)])
    (row,) = rows(r"\Psi_1", huge, MemcorrLatexPrinter())
    assert r"\text{(" in row and "operations: too long to set" in row and "\t" not in row


def test_every_bundled_program_has_a_committed_finite_document():
    names = {p.stem for p in (ROOT / "derivations").glob("*.opt")}
    assert {p.stem for p in COMMITTED if p.parent.name == "finite"} == names


def test_a_map_without_closed_form_prints_as_its_recursion():
    """Adadelta's finite-n correction (memcorr/expand/recurrence.py): the result at t = n, one row per
    update — its two states, their responses δ and the displacement q — and where each starts; the
    start of q is the first loop (the states and the sum Q of the memoryless steps)."""
    d = derived(ROOT / "derivations" / "adadelta.opt", regime="finite")
    first, second = sorted(d.expansion.corrections[0].atoms(Recurrence), key=lambda r: len(r.parts[1]))
    assert len(first.parts[1]) == 3 and len(second.parts[1]) == 5  # (states, Q), (states, δ, q)
    tex = latex(d.expansion.corrections[0])
    assert tex.count(r"\leftarrow") == 8
    assert tex.count(r"\text{from }") == 2 and r"\end{aligned}" in tex
