"""The LaTeX documents: the program as equations and a whole derivation as an ``align`` block
(or a standalone page).

Input: a ``Derivation`` (and its checked program). Output: LaTeX source in paper notation.
"""

from __future__ import annotations

import re
import unicodedata

import sympy as sp

from ..dsl.ast import Assign, Call, Chain, StateDecl, Visitor
from .latex import MemcorrLatexPrinter, paper_names, symbol_tex
from .layout import rows

# ------------------------------------------------------------- the program as equations
ADD, MUL, NEG, POW, ATOM = range(5)
FUNCTION_TEX = {"sign": r"\operatorname{sign}", "exp": r"\exp", "log": r"\log", "tanh": r"\tanh"}


class ProgramTex(Visitor):
    """The statements of a checked program as LaTeX, per coordinate ``j``."""

    def __init__(self, checked, names: dict[str, str]):
        self.names = names
        self.states = set(checked.states)
        self.fields = self.states | {s.target for s in checked.statements if s.target != "theta"}

    def name(self, node_id: str, whole: bool) -> tuple[str, int]:
        if node_id == "theta":
            return (r"\theta" if whole else r"\theta_j"), ATOM
        if node_id == "g":
            return (r"\nabla L" if whole else r"\partial_j L"), NEG  # no parentheses in products, some in powers
        if node_id == "loss":
            return "L", ATOM
        tex = self.names.get(node_id, symbol_tex(node_id))
        if node_id in self.fields and not whole:
            return f"{{{tex}}}_{{j}}", ATOM
        return tex, ATOM

    def expr(self, node, whole: bool = False) -> tuple[str, int]:
        """LaTeX of ``node`` and its precedence (how tightly it binds)."""
        return self.visit(node, whole)

    def visit_Num(self, node, whole):
        return _number(node.text), ATOM

    def visit_Name(self, node, whole):
        return self.name(node.id, whole)

    def visit_Neg(self, node, whole):
        return f"-{self.wrap(node.operand, whole, NEG)}", NEG

    def visit_Chain(self, node, whole):
        return self.chain(node, whole)

    def visit_Pow(self, node, whole):
        exponent, _ = self.expr(node.exponent, whole)
        return f"{self.wrap(node.base, whole, ATOM)}^{{{exponent}}}", POW

    def visit_History(self, node, whole):
        base, _ = self.name(node.name, True)
        index, _ = self.expr(node.index, whole)
        return f"{base}^{{({index})}}" + ("" if whole else "_j"), ATOM

    def visit_IndexedSum(self, node, whole):
        lo, hi = self.expr(node.lo, whole)[0], self.expr(node.hi, whole)[0]
        return rf"\sum_{{{node.index}={lo}}}^{{{hi}}} {self.wrap(node.body, whole, MUL)}", MUL

    def visit_Call(self, node, whole):
        return self.call(node, whole)

    def wrap(self, node, whole: bool, at_least: int) -> str:
        tex, prec = self.expr(node, whole)
        return rf"\left({tex}\right)" if prec < at_least else tex

    def chain(self, node: Chain, whole: bool) -> tuple[str, int]:
        if node.ops[0] in "+-":
            tex = self.expr(node.operands[0], whole)[0]
            for op, x in zip(node.ops, node.operands[1:]):
                tex += f" {op} {self.wrap(x, whole, MUL if op == '-' else ADD + 1)}"
            return tex, ADD
        tex, prec = self.expr(node.operands[0], whole)
        for op, x in zip(node.ops, node.operands[1:]):
            if op == "/":
                tex, prec = rf"\frac{{{tex}}}{{{self.expr(x, whole)[0]}}}", ATOM
            else:
                left = rf"\left({tex}\right)" if prec < MUL else tex
                right, rprec = self.expr(x, whole)
                right = rf"\left({right}\right)" if rprec <= MUL or right.startswith("-") else right
                tex, prec = f"{left} {right}" if not right[0].isdigit() else rf"{left} \cdot {right}", MUL
        return tex, prec

    def call(self, node: Call, whole: bool) -> tuple[str, int]:
        f, args = node.func, node.args
        if f in ("grad", "loss", "norm", "dot", "sum"):  # functions of the whole vector
            inner = [self.expr(a, True)[0] for a in args]
            if f == "grad":
                return (r"\nabla L" if whole else r"\partial_j L") + rf"\left({inner[0]}\right)", MUL
            if f == "loss":
                return rf"L\left({inner[0]}\right)", ATOM
            if f == "norm":
                return rf"\left\lVert {inner[0]} \right\rVert", ATOM
            if f == "dot":
                return rf"\left\langle {inner[0]}, {inner[1]} \right\rangle", ATOM
            return rf"\sum_i \left({inner[0]}\right)_i", MUL
        inner = [self.expr(a, whole)[0] for a in args]
        if f == "sqrt":
            return rf"\sqrt{{{inner[0]}}}", ATOM
        if f == "abs":
            return rf"\left|{inner[0]}\right|", ATOM
        if f in ("max", "min"):
            return rf"\{f}\left({inner[0]}, {inner[1]}\right)", ATOM
        return rf"{FUNCTION_TEX[f]}\left({inner[0]}\right)", ATOM

    def rows(self, program) -> list[str]:
        """One row per state's start and per statement: states and θ are updated (``←``),
        temporaries defined (``=``)."""
        out = []
        for item in program.items:
            if isinstance(item, StateDecl):
                init = self.expr(item.init)[0] if item.init is not None else "0"
                out.append(rf"{{{self.name(item.name, True)[0]}}}^{{(0)}}_j &= {init} \nonumber")
            elif isinstance(item, Assign):
                arrow = r"\leftarrow" if item.target == "theta" or item.target in self.states else "="
                out.append(rf"{self.name(item.target, False)[0]} &{arrow} {self.expr(item.expr)[0]} \nonumber")
        return out


def _number(text: str) -> str:
    """``1e-8`` → ``10^{-8}``, ``2.5e-3`` → ``2.5 \\cdot 10^{-3}``."""
    mantissa, _, exponent = text.lower().partition("e")
    if not exponent:
        return text
    power = rf"10^{{{int(exponent)}}}"
    return power if float(mantissa) == 1 else rf"{mantissa} \cdot {power}"


# ------------------------------------------------------------- the derivation
def program_names(model) -> dict[str, str]:
    """Paper names for every name of the program: the step, the parameters, the states and temporaries."""
    return paper_names([model.checked.step, *model.params, *ProgramTex(model.checked, {}).fields])


_GREEK_TEX = dict(
    zip(
        "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ",
        [
            *"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau".split(),
            *"upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega".split(),
        ],
    )
)
_SYMBOLS_TEX = {
    "∇": r"$\nabla$",
    "·": r"$\cdot$",
    "×": r"$\times$",
    "⊙": r"$\odot$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "≠": r"$\ne$",
    "≈": r"$\approx$",
    "→": r"$\to$",
    "∞": r"$\infty$",
    "±": r"$\pm$",
    "√": r"$\surd$",
    "‖": r"$\|$",
    "⟨": r"$\langle$",
    "⟩": r"$\rangle$",
    "∑": r"$\sum$",
    "∂": r"$\partial$",
    "²": r"$^2$",
    "—": "---",
    "–": "--",
    "“": "``",
    "”": "''",
    "‘": "`",
    "’": "'",
    "…": r"\ldots{}",
    "\u00a0": "~",
}


def tex_escape(text: str) -> str:
    """Plain text (a description, a reason) for LaTeX's text mode: the special characters escaped,
    Greek letters and common symbols set in math, other accented letters without their accent (the
    documents load no font encoding), anything else as ``?`` — never a character pdflatex refuses."""
    special = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#"}
    special |= {"%": r"\%", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(special.get(c) or _unicode_tex(c) for c in text)


def breakable(text: str) -> str:
    """``tex_escape`` for a text that quotes formulas as code (a reason): a line may break after each
    operator and comma, where a long formula would otherwise run off the page."""
    return re.sub(r"([*+/,(=])(?!\s)", r"\1\\allowbreak{}", tex_escape(text))


def _unicode_tex(c: str) -> str:
    if c.isascii():
        return c
    if c in _GREEK_TEX:
        return f"$\\{_GREEK_TEX[c]}$"
    if c in _SYMBOLS_TEX:
        return _SYMBOLS_TEX[c]
    plain = "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x))
    return plain if plain.isascii() and plain else "?"


def derivation_tex(d, standalone: bool = False) -> str:
    """``d.to_latex``: one ``align`` — the program, the memoryless map, the named fields, the states,
    the implied loss and its verdict; ``standalone`` wraps it in a document for ``pdflatex``."""
    m = d.model
    names = program_names(m)
    printer = MemcorrLatexPrinter(names)
    program = ProgramTex(m.checked, names)
    h = names[m.checked.step]
    finite = d.regime == "finite"
    psi = r"\tilde\Psi" if d.target == "flow" else r"\Psi"
    sup = "^{(n)}" if finite else ""

    body = [rf"\intertext{{{_header(d, names)}}}", *program.rows(m.checked.program)]
    shape = (
        rf"\dot\theta = -\bigl({psi}_0{sup} + {h}\,{psi}_1{sup} + \dots\bigr)"
        if d.target == "flow"
        else rf"\theta^{{(n+1)}} = \theta^{{(n)}} - {h}\bigl({psi}_0{sup} + {h}\,{psi}_1{sup} + \dots\bigr)"
    )
    what = "modified flow" if d.target == "flow" else "memoryless map"
    body.append(rf"\intertext{{The {what} ({d.regime} regime, order {d.order}): ${shape}$, with}}")
    for r, e in enumerate([d.update, *d.corrections]):
        body += rows(f"{psi}_{{{r}}}{sup}", e, printer)
    # Ψ_0 inside an atom is the update just printed: said in words, not printed twice
    named = {f: v for f, v in d.fields.items() if f.name != "Psi_0"}
    if named:
        update = r", with $\Psi_0$ the update," if len(named) < len(d.fields) else ""
        body.append(rf"\intertext{{where{update}}}")
        for f, v in named.items():
            body += rows(printer.doprint(f), v, printer, numbered=False)
    if d.states:
        where = "along the memoryless history" if finite else "on the invariant manifold"
        body.append(rf"\intertext{{The states {where}:}}")
        for name, series in d.states.items():
            state = sp.Add(*[m.h**r * s for r, s in enumerate(series)]) if not finite else series[0]
            rest = "" if finite or len(series) == 0 else rf" + O({h}^{{{len(series)}}})"
            lines = rows(f"{{{names.get(name, symbol_tex(name))}}}{sup}_j", state, printer, numbered=False)
            body += lines[:-1] + [lines[-1].replace(r" \nonumber", rf"{rest} \nonumber")]
    body += _perturbation_rows(d, printer, h) + _large_noise_rows(d.large_noise, printer)
    for q in d.potentials:
        r = q.order
        if q.exact:
            body.append(rf"\intertext{{Order {r}: ${psi}_{{{r}}} = P \odot \nabla G_{{{r}}}$ with}}")
            body += rows(f"G_{{{r}}}", q.potential, printer)
        elif q.potential is not None:
            body.append(
                rf"\intertext{{Order {r}: ${psi}_{{{r}}}/P$ is not a gradient field: "
                rf"${psi}_{{{r}}} = P \odot (\nabla G_{{{r}}} + N_{{{r}}})$ with the non-gradient part $N_{{{r}}}$:}}"
            )
            body += rows(f"G_{{{r}}}", q.potential, printer, numbered=False)
            body += rows(f"N_{{{r}}}", q.non_gradient, printer)
        else:
            body.append(rf"\intertext{{Order {r}: ${psi}_{{{r}}}/P$ was too large to integrate.}}")
    align = _join(body)
    return _document(d, align) if standalone else align


def _join(body: list[str]) -> str:
    """Rows of an ``align`` with ``\\\\`` between rows (an ``\\intertext`` follows a row's break)."""
    out: list[str] = []
    for row in body:
        if out and not out[-1].startswith(r"\intertext"):
            out[-1] += r" \\"
        out.append(row)
    if out[-1].startswith(r"\intertext"):
        out[-1] += r" \notag"  # the empty row an align ends with after an \intertext: no number
    return "\\begin{align}\n" + "\n".join(out) + "\n\\end{align}"


def _header(d, names) -> str:
    m = d.model
    params = []
    for name, p in m.params.items():
        value = rf" = {_number(f'{p.default:g}')}" if p.default is not None else ""
        params.append(f"${names[name]}{value}$")
    listed = ", ".join(params) if params else "none"
    return (
        rf"The program \texttt{{{tex_escape(m.name)}}}, per coordinate $j$ "
        rf"(step size ${names[m.checked.step]}$, step counter $n$; parameters {listed}):"
    )


def _perturbation_rows(d, printer, h) -> list[str]:
    p = d.perturbation
    if p.potential is None:
        return [rf"\intertext{{No implied loss: {breakable(p.reason or 'none found')}.}}"]
    form = rf"{p.form} form, $P = {printer.doprint(p.preconditioner)}$"
    if p.form == "preconditioned" and p.decoupled not in (None, 0):
        form += rf", decoupled $R = {printer.doprint(p.decoupled)}$"
    exact = "exact" if p.exact else f"leading order, remainder ${_order_tex(p.remainder_order, printer)}$"
    verdict = tex_escape(p.verdict)
    if p.verdict == "depends" and p.condition:
        verdict += rf": regularizing where ${printer.doprint(p.relation)}$"
    if p.coefficient_at_defaults is not None:
        value = _number(f"{p.coefficient_at_defaults:.4g}")
        where = rf" and $n = {p.at_step}$" if p.at_step is not None else ""
        verdict += rf"; at the defaults{where} {tex_escape(p.verdict_at_defaults)} (coefficient ${value}$)"
        if p.coefficient_as_n_grows is not None:
            verdict += rf"; as $n \to \infty$, coefficient ${_number(f'{p.coefficient_as_n_grows:.4g}')}$"
    out = [
        rf"\intertext{{The implied loss ({form}; {exact}). Verdict: {verdict}.}}",
        rf"\tilde L &= L + {h}\, G, \nonumber",
        *rows("G", p.potential, printer),
    ]
    if p.noise != 0:
        out.append(
            rf"\intertext{{Random batches: $V = \mathbb{{E}}_b \lVert \nabla L_b - \nabla L \rVert^2$ is the gradient "
            rf"noise; the full-batch part of $G$ is {tex_escape(p.verdict_full)}, the noise part is "
            rf"${printer.doprint(p.noise)}$.}}"
        )
    if p.critical_batch is not None:
        out.append(
            rf"\intertext{{With batches of $B$ examples ($V = V_1/B$), $G$ changes sign at "
            rf"$B^* = {printer.doprint(p.critical_batch)}$ ($V$ at $B = 1$): it regularizes "
            rf"{'above' if p.verdict_full == 'regularizing' else 'below'} $B^*$.}}"
        )
    return out


def _large_noise_rows(r, printer) -> list[str]:
    """Random batches, nonlinear programs: the step at the means of its second-moment filters and where
    the sign of its memory term changes with the batch size."""
    if r is None:
        return []
    if r.update is None or r.weight is None:
        return [rf"\intertext{{At large noise: no reading ({breakable(r.reason)}).}}"]
    bar = r"\bar\Psi"
    out = [
        r"\intertext{At large noise (the step at the means of its second-moment filters; "
        r"$\sigma^2_j = \mathbb{E}_b \xi_{b,j}^2$):}",
        *rows(f"{bar}_{{0}}", r.update, printer, numbered=False),
        *rows(f"{bar}_{{1}}", r.correction, printer),
        rf"\intertext{{In one coordinate, where the covariance is locally constant, its memory term is "
        rf"$P\,c(\rho)\,\nabla^2 L\,(P\,\nabla L)$, with "
        rf"$P = {printer.doprint(r.preconditioner)}$ and $\rho = \sigma^2_j/(\partial_j L)^2$:}}",
        *(
            [r"c(\rho) &= \frac{c_0 + c_\infty\,\rho}{1 + \rho}, \nonumber"]
            + rows("c_0", r.c0, printer, numbered=False)
            + rows(r"c_\infty", r.c_inf, printer)
            if r.between_limits
            else rows(r"c(\rho)", r.weight, printer)
        ),
    ]
    if r.ratio is None:
        return out + [
            rf"\intertext{{At the defaults $c$ keeps its sign: {tex_escape(r.large_batches)} at every noise level.}}"
        ]
    ratio = r"-c_0/c_\infty" if r.between_limits else printer.doprint(r.ratio)
    critical = r"\sigma_1^2/(\rho^* (\partial_j L)^2)" if r.between_limits else printer.doprint(r.critical_batch)
    return out + [
        rf"\intertext{{$c$ changes sign at $\rho^* = {ratio}$ "
        rf"(${_number(f'{r.ratio_at_defaults:.4g}')}$ at the defaults): at the defaults "
        rf"{tex_escape(r.large_batches)} where "
        rf"$\rho < \rho^*$, {tex_escape(r.small_batches)} where $\rho > \rho^*$. With batches of $B$ examples "
        rf"($\sigma^2 = \sigma_1^2/B$) it is {tex_escape(r.small_batches)} below "
        rf"$B^* = {critical}$ ($\sigma_1^2$ the variance of one example's gradient), per coordinate.}}"
    ]


def _order_tex(order: str, printer) -> str:
    """``"O(eps)"`` in paper names."""
    return re.sub(
        r"[A-Za-z_]\w*", lambda w: w.group() if w.group() == "O" else printer._print(sp.Symbol(w.group())), order
    )


def _document(d, align: str) -> str:
    title = tex_escape(d.model.description or d.name)
    return (
        "\\documentclass[11pt]{article}\n"
        "\\usepackage{amsmath,amssymb,bm}\n"
        "\\setlength{\\textwidth}{16.5cm}\\setlength{\\oddsidemargin}{0cm}\\setlength{\\evensidemargin}{0cm}\n"
        "\\allowdisplaybreaks\\sloppy\n"
        "\\begin{document}\n"
        f"\\section*{{{tex_escape(d.name)}: {title}}}\n"
        f"Generated by memcorr. Coordinate $j$ of each vector field; $\\nabla^2 L[v]$ is the Hessian applied to $v$, "
        "$\\nabla^{k+1} L[v_1, \\dots, v_k]$ the higher derivatives, and norms, inner products and $L$ range over all "
        "coordinates.\n"
        f"{align}\n"
        "\\end{document}\n"
    )


def formula_rows(d) -> list[str]:
    """``Ψ_r &= …`` and ``G &= …`` in the program's paper names, one row each (for Jupyter)."""
    m = d.model
    printer = MemcorrLatexPrinter(program_names(m))
    psi = r"\tilde\Psi" if d.target == "flow" else r"\Psi"
    out = [f"{psi}_{{{r}}} &= {printer.doprint(e)}" for r, e in enumerate([d.update, *d.corrections])]
    if d.perturbation.potential is not None:
        out.append(f"G &= {printer.doprint(d.perturbation.potential)}")
    return out
