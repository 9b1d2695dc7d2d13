"""Write the library's catalogue, docs/catalogue.md and docs/catalogue.pdf (or check it).

The catalogue is a view of the committed outputs, never a derivation of its own: per bundled program
the program text, and from derivations/generated/ (kept current by scripts/golden.py) Ψ_0, Ψ_1,
the implied loss G with its form and verdict, the order-2 term where it is short, and which regimes
derive; then the programs in derivations/refused/ with memcorr's own reason. The PDF is one LaTeX
document made of the committed per-program documents (the project's own printer) and a verdict table.

    python scripts/catalogue.py            # rewrite docs/catalogue.{md,tex,pdf}
    python scripts/catalogue.py --check    # exit 1 if docs/catalogue.md or .tex is stale

tests/test_catalogue.py fails when the catalogue is stale.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import memcorr  # noqa: E402
from memcorr.dsl.library import describe  # noqa: E402

GENERATED = ROOT / "derivations" / "generated"
DOCS = ROOT / "docs"
ASCII = str.maketrans({"−": "-", "²": "^2", "→": "->", "…": "...", "θ": "theta"})  # messages in pdflatex
SHORT = 400  # characters of LaTeX up to which an order-2 term is printed in the catalogue


def programs() -> list[Path]:
    return sorted((ROOT / "derivations").glob("*.opt"))


def refused() -> list[Path]:
    return sorted((ROOT / "derivations" / "refused").glob("*.opt"))


def record(folder: str, name: str) -> dict | None:
    path = GENERATED / folder / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def reason(path: Path) -> str:
    """memcorr's own message for a refused program, without the file's location."""
    try:
        memcorr.derive(path)
    except (memcorr.DSLError, memcorr.DerivationError) as err:
        return str(err).replace(str(path), path.name)
    raise AssertionError(f"{path.name} is in derivations/refused/ but derives")


def verdict(p: dict) -> str:
    words = p["verdict"]
    if words == "depends" and p.get("condition"):
        words += f" (regularizing where `{p['condition']}`)"
    at = p.get("verdict_at_defaults")
    if at:
        coefficient = p.get("coefficient_at_defaults")
        words += f"; at the defaults {at}" + (f" (coefficient {coefficient:.4g})" if coefficient is not None else "")
    return words


def random_batches(name: str) -> tuple[str, str]:
    """(the table's cell, the section's paragraph) for random batches: the noise part of G and the
    verdict of the whole, or why the program is not derived so (from its committed summary)."""
    r = record("random", name)
    if r is None:
        text = (GENERATED / f"{name}.txt").read_text(encoding="utf-8")
        why = text.split("not derived with random batches — ", 1)[1].strip().removeprefix("random batches: ")
        return "not derived", f"Random batches: not derived — {why}"
    p = r["perturbation"]
    if not r["noise_correction"]["exact"]:
        noise = r["noise_correction"]["latex"]
        cell, words = large_noise(r)
        return (
            "leading order in the noise; no G" + (f"; {cell}" if cell else ""),
            f"Random batches (leading order in the noise): the noise part of $\\Psi_1$ is ${noise}$; no implied "
            f"loss for it ({p['reason']}).{words}",
        )
    noise = p["noise"]["latex"] if p.get("noise") else "0"
    return (
        f"{p['verdict']} (full batch part {p.get('verdict_full') or p['verdict']})",
        f"Random batches (exact): $G = {p['potential']['latex']}$, noise part ${noise}$; verdict {p['verdict']}.",
    )


def large_noise(r: dict) -> tuple[str, str]:
    """(a short cell, a sentence) for the reading at large noise (docs/method.md §7), or empty strings."""
    n = r.get("large_noise")
    if not n or not n["weight"]:
        return "", ""
    if not n["ratio"]:
        return (
            f"at large noise {n['large_batches']}",
            f" At large noise: $c(\\rho) = {n['weight']['latex']}$, {n['large_batches']} at every batch size.",
        )
    weight = (
        f"$c(\\rho) = (c_0 + c_\\infty \\rho)/(1 + \\rho)$, $c_0 = {n['c0']['latex']}$, "
        f"$c_\\infty = {n['c_inf']['latex']}$,"
        if n.get("between_limits")
        else f"$c(\\rho) = {n['weight']['latex']}$"
    )
    return (
        f"at large noise {n['small_batches']} below B* (ρ* = {n['ratio_at_defaults']:.4g})",
        f" At large noise ($\\rho = \\sigma^2/g^2$): {weight} changes sign at $\\rho^* = {n['ratio']['latex']}$ "
        f"({n['ratio_at_defaults']:.4g} at the defaults): {n['small_batches']} for batches below "
        f"$B^* = {n['critical_batch']['latex']}$ ($\\sigma^2$ of one example), {n['large_batches']} above.",
    )


def markdown() -> str:
    rows, sections = [], []
    for path in programs():
        name = path.stem
        s, f, o2 = record("stationary", name), record("finite", name), record("order2", name)
        p = s["perturbation"]
        cell, paragraph = random_batches(name)
        rows.append(f"| [`{name}`](#{name}) | {s['description']} | {p['form'] or '—'} | {verdict(p)} | {cell} |")
        part = [f"## {name}", "", s["description"], "", "```", path.read_text(encoding="utf-8").strip(), "```", ""]
        part += [f"$$\\Psi_0 = {s['update']['latex']}$$", "", f"$$\\Psi_1 = {s['corrections'][0]['latex']}$$", ""]
        if p["potential"]:
            exact = "exact" if p["exact"] else f"leading order, remainder {p['remainder_order']}"
            part += [f"$$G = {p['potential']['latex']}$$", "", f"Form: {p['form']} ({exact})."]
        else:
            part += [f"No implied loss: {p['reason']}"]
        part += ["", f"Verdict: {verdict(p)}.", "", paragraph]
        if o2 and len(o2["corrections"][1]["latex"]) <= SHORT:
            part += ["", f"$$\\Psi_2 = {o2['corrections'][1]['latex']}$$"]
        regimes = "stationary and finite" if f else "stationary only (see the program's .txt for why)"
        part += ["", f"Regimes: {regimes}. Outputs: `derivations/generated/*/{name}.*`.", ""]
        sections.append("\n".join(part))
    refusals = []
    for p in refused():
        quoted = "\n".join(f"  {line}" for line in ["```", *reason(p).splitlines(), "```"])
        refusals.append(f"- `{p.stem}` — {describe(p)}:\n\n{quoted}\n")
    head = [
        "# The memcorr catalogue",
        "",
        "Generated by `python scripts/catalogue.py` from `derivations/` and `derivations/generated/`; do not",
        "edit by hand. PDF: [catalogue.pdf](catalogue.pdf). Per coordinate `j`: "
        "$\\theta^{(n+1)} = \\theta^{(n)} - h(\\Psi_0 + h\\Psi_1 + \\dots)$ tracks the optimizer with memory,",
        "$\\tilde L = L + hG$ is the implied loss; a positive coefficient regularizes (docs/method.md §4). With",
        "random batches $G = G_{full} + G_{noise}$, $V = E_b\\|\\nabla L_b - \\nabla L\\|^2$ (docs/method.md §7).",
        "",
        "| program | description | form of G | verdict | random batches |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
    tail = ["## Refused", "", "Programs memcorr cannot derive, with its own reason:", "", *refusals, ""]
    return "\n".join(head + sections + tail)


def _body(tex: str) -> str:
    body = tex.split("\\begin{document}", 1)[1].split("\\end{document}", 1)[0]
    return body.replace("\\section*{", "\\section{", 1)


def latex() -> str:
    template = (GENERATED / "stationary" / "gd.tex").read_text(encoding="utf-8")
    preamble = template.split("\\begin{document}", 1)[0]
    rows = []
    for path in programs():
        p = record("stationary", path.stem)["perturbation"]
        at = p.get("verdict_at_defaults") or ""
        r = record("random", path.stem)
        batches = r["perturbation"]["verdict"] if r else "not derived"
        if r and large_noise(r)[0]:
            batches += "; " + large_noise(r)[0].replace("ρ*", "$\\rho^*$")
        rows.append(f"\\texttt{{{path.stem.replace('_', chr(92) + '_')}}} & {p['verdict']} & {at} & {batches} \\\\")
    parts = [
        preamble,
        "\\begin{document}\n\\title{The memcorr catalogue}\\date{}\\maketitle\n",
        "Generated by \\texttt{python scripts/catalogue.py} from the committed outputs of memcorr.\n",
        "\\begin{center}\\begin{tabular}{llll}\nprogram & verdict & at the defaults & random batches \\\\ \\hline\n",
        "\n".join(rows),
        "\n\\end{tabular}\\end{center}\n",
    ]
    for path in programs():
        parts.append(_body((GENERATED / "stationary" / f"{path.stem}.tex").read_text(encoding="utf-8")))
        o2 = record("order2", path.stem)
        if o2 and len(o2["corrections"][1]["latex"]) <= SHORT:
            parts.append(f"At order 2 (stationary): \\[\\Psi_2 = {o2['corrections'][1]['latex']}\\]\n")
        r = record("random", path.stem)
        if r:
            noise = r["perturbation"]["noise"]["latex"]
            parts.append(
                "With random batches ($V = \\mathbb{E}_b\\lVert \\nabla L_b - \\nabla L\\rVert^2$), the noise part of "
                f"$G$ is \\[{noise},\\] and the verdict of the whole {r['perturbation']['verdict']}.\n"
            )
    parts.append("\\section{Refused}\n\\begin{itemize}\n")
    for path in refused():
        text = reason(path).splitlines()[0].translate(ASCII)
        text = re.sub(r"([_&%#$^])", r"\\\1", text).replace("\\^", "\\^{}")
        parts.append(f"\\item \\texttt{{{path.stem.replace('_', chr(92) + '_')}}}: {text}\n")
    parts.append("\\end{itemize}\n\\end{document}\n")
    return "".join(parts)


def expected() -> dict[Path, str]:
    return {DOCS / "catalogue.md": markdown(), DOCS / "catalogue.tex": latex()}


def stale() -> list[Path]:
    return [p for p, text in expected().items() if not p.exists() or p.read_text(encoding="utf-8") != text]


def compile_pdf(tex: str) -> bytes:
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        sys.exit("pdflatex is not installed: apt-get install -y texlive-latex-base texlive-latex-recommended")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "catalogue.tex").write_text(tex, encoding="utf-8")
        for _ in range(2):  # the second pass settles the title page
            run = subprocess.run(
                [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "catalogue.tex"],
                cwd=folder,
                capture_output=True,
                text=True,
            )
            if run.returncode:
                sys.exit(run.stdout[-3000:])
        return (Path(folder) / "catalogue.pdf").read_bytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.check:
        paths = stale()
        for p in paths:
            print(f"stale: {p.relative_to(ROOT)}")
        sys.exit(1 if paths else 0)
    files = expected()
    pdf = compile_pdf(files[DOCS / "catalogue.tex"])
    DOCS.mkdir(exist_ok=True)
    for p, text in files.items():
        p.write_text(text, encoding="utf-8")
    (DOCS / "catalogue.pdf").write_bytes(pdf)
    print(f"wrote {', '.join(p.name for p in files)} and catalogue.pdf to {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
