"""``d.to_json()`` and ``--emit json`` (api.md): the fields, stable order, every formula as LaTeX and srepr."""

import json
import os
import subprocess
import sys

import sympy as sp

import memcorr
from memcorr.algebra import atoms
from memcorr.algebra.atoms import CoordSum, G


def test_json_record_has_the_api_fields():
    d = memcorr.derive("heavy_ball")
    text = d.to_json()
    record = json.loads(text)
    assert list(record)[:4] == ["name", "description", "order", "regime"]
    assert {"name", "order", "regime", "target", "update", "corrections", "states", "perturbation"} <= set(record)
    assert record["name"] == "heavy_ball" and record["order"] == 1 and record["target"] == "map"
    p = record["perturbation"]
    assert p["form"] == "same-method" and p["exact"] is True and p["verdict"] == "regularizing"
    assert "\\nabla L" in p["potential"]["latex"]
    # the srepr is the formula itself: heavy ball's G = β/(2(1−β)²) ‖∇L‖² (method.md §4)
    b = d.model.params["beta"].symbol
    potential = sp.sympify(eval(p["potential"]["sympy"], {**vars(sp), **vars(atoms)}))
    assert sp.simplify(potential - b / (2 * (1 - b) ** 2) * CoordSum(G**2)) == 0
    assert text == d.to_json()  # stable


def test_emit_json_writes_the_file(run_cli, tmp_path):
    status, _, err = run_cli("derive", "adamw", "--emit", "json,numpy", "-o", tmp_path)
    assert status == 0, err
    record = json.loads((tmp_path / "adamw.json").read_text())
    assert record["perturbation"]["verdict_at_defaults"] == "anti-regularizing"
    assert (tmp_path / "adamw_numpy.py").is_file()


def test_a_derivation_renders_in_jupyter():
    tex = memcorr.derive("heavy_ball")._repr_latex_()
    assert tex.startswith("$\\begin{aligned}") and "\\Psi_{1}" in tex and "G &=" in tex


def test_json_reports_the_non_gradient_part_per_order():
    """Gradient descent's flow at order 2: ⅙H²g is left over (tests/test_known_results.py)."""
    record = json.loads(memcorr.derive("gd", order=2, target="flow").to_json())
    (order2,) = record["potentials"]
    assert order2["order"] == 2 and order2["exact"] is False and "not a gradient" in order2["reason"]
    rest = sp.sympify(eval(order2["non_gradient"]["sympy"], {**vars(sp), **vars(atoms)}))
    assert sp.simplify(rest - atoms.Hess(atoms.Hess(G)) / 6) == 0


def test_the_record_does_not_depend_on_symbols_built_before():
    # sympy takes Symbol('beta', positive=True) for the program's Symbol('beta', real=True, positive=True)
    # and its cache hands back expressions built with the first; the record is the same either way
    derive = "import memcorr; print(memcorr.derive('heavy_ball', batches='random').to_json())"
    before = (
        "import sympy as sp; beta = sp.Symbol('beta', positive=True); "
        "_ = [beta + 1, 1 - beta, (1 - beta) ** -2, beta / 2 / (1 - beta) ** 2]; "
    )
    env = {**os.environ, "MEMCORR_CACHE": "off"}
    plain, primed = (
        subprocess.run([sys.executable, "-c", pre + derive], env=env, capture_output=True, text=True, check=True).stdout
        for pre in ("", before)
    )
    assert "beta" in plain and plain == primed
