"""``d.to_json()`` and ``--emit json`` (api.md): the fields, stable order, every formula as LaTeX and srepr."""

import json

import sympy as sp

import memcorr
from memcorr.calculus import CoordSum, G


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
    potential = sp.sympify(eval(p["potential"]["sympy"], {**vars(sp), **vars(memcorr.calculus)}))
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
