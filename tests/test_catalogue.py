"""docs/catalogue.{md,tex,pdf} are current and agree with the literature (regenerate: python scripts/catalogue.py)."""

import importlib.util
import re

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def catalogue():
    spec = importlib.util.spec_from_file_location("catalogue", ROOT / "scripts" / "catalogue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalogue_is_current(catalogue):
    stale = catalogue.stale()
    assert not stale, f"stale {[p.name for p in stale]}: run python scripts/catalogue.py"
    pdf = ROOT / "docs" / "catalogue.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000


def test_every_program_is_in_the_catalogue_and_the_readme_links_it(catalogue):
    text = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    for path in catalogue.programs() + catalogue.refused():
        assert f"`{path.stem}`" in text
    assert "docs/catalogue.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def verdict_row(name: str) -> str:
    text = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    (row,) = [line for line in text.splitlines() if line.startswith(f"| [`{name}`]")]
    return row.split(" | ")[-2]


def test_catalogue_verdicts_agree_with_the_literature():
    # Cattaneo & Shigida (NeurIPS 2025), Sec. 4: AdamW's memory anti-regularizes at its defaults
    # (beta1 = 0.9 < beta2 = 0.999), Lion's memory has no such effect (sign of an EMA: no
    # first-order correction), heavy ball's regularizes (Ghosh, Lyu, Zhang & Sun, ICLR 2023, "Implicit
    # regularization in heavy-ball momentum accelerated SGD": h beta/(2(1-beta)^2) ||grad L||^2 here).
    assert re.search(r"regularizing where `beta1 > beta2`.*at the defaults anti-regularizing", verdict_row("adamw"))
    assert verdict_row("lion").startswith("none")
    assert verdict_row("heavy_ball").startswith("regularizing")


def test_the_catalogue_gives_the_random_batch_verdict_or_why_not():
    # heavy ball with random batches: both parts regularize (seed §5.2); Lion is refused with its reason
    text = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    (row,) = [line for line in text.splitlines() if line.startswith("| [`heavy_ball`]")]
    assert row.split(" | ")[-1].startswith("regularizing (full batch part regularizing)")
    assert "Random batches: not derived — the step has a kink" in text
