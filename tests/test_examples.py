"""The examples (issue "The paper's claims on a real network") run with --quick and show their claims."""

import importlib
import re
import sys

import pytest
from conftest import ROOT

pytest.importorskip("torch")
pytest.importorskip("sklearn")
sys.path.insert(0, str(ROOT / "examples"))


def run(name: str):
    return importlib.import_module(name).main(["--quick"])


@pytest.mark.slow
def test_convergence_slopes_on_the_mlp():
    """SGD(momentum) against its generated Memoryless: order 0 falls like h, order 1 like h², and
    order 2 (stationary regime, started on the manifold) like h³."""
    slopes = run("convergence")
    finite, manifold = slopes["sgd_momentum"], slopes["sgd_momentum (manifold start)"]
    assert 0.8 <= finite[0] <= 1.3 and finite[1] >= 1.75, finite
    assert 0.8 <= manifold[0] <= 1.3 and 1.75 <= manifold[1] <= 2.3 and manifold[2] >= 2.7, manifold


@pytest.mark.slow
def test_adamw_trajectory_corrected_closer_where_the_sweep_shows_it_valid():
    results = run("trajectory")
    for runs in (results["along"], results["lion"]):  # AdamW at eps = 1e-2, soft-sign Lion
        for h, d in runs.items():  # the correction helps at every checkpoint
            assert all(b < a for a, b in zip(d["order 0"][1:], d["order 1"][1:])), (h, d)
    sweep = {eps: d["order 1"][-1] / d["order 0"][-1] for eps, d in results["sweep"].items()}
    assert sweep[1e-1] < sweep[1e-2] < 1 < sweep[1e-5], sweep  # and stops helping as eps shrinks


@pytest.mark.slow
def test_adamw_regularizer_flips_sign_where_beta2_crosses_beta1():
    results = run("regularizer")
    for beta2, rows in results.items():
        for g_adamw, l1, g_lion in rows:
            assert l1 > 0 and g_lion >= 0
            expected = 0 if beta2 == 0.9 else (1 if beta2 < 0.9 else -1)
            assert (g_adamw > 1e-9) - (g_adamw < -1e-9) == expected, (beta2, g_adamw)


@pytest.mark.slow
def test_the_noise_part_of_momentums_implied_loss_scales_as_one_over_the_batch_size():
    """docs/method.md §7: G_noise = c V_B with V_B = V_1/B, measured with the generated estimator."""
    for row in run("batches"):  # --quick: batches of 8 and 32 (the tutorial's table adds 128)
        scaled = [B * row[B] for B in (8, 32)]
        assert all(x > 0 for x in scaled) and max(scaled) < 1.6 * min(scaled), row
        assert row[8] > row[32] > 0


@pytest.mark.slow
def test_adamws_memory_on_the_mlp_follows_the_large_noise_reading():
    """docs/method.md §7 "At large noise": memcorr's Ψ̄_1 predicts torch.optim.AdamW's measured memory term
    (sign per coordinate, direction, the regularized fraction), and smaller batches regularize more."""
    rows = {r["B"]: r for r in run("critical_batch")}  # --quick: B = 1 and 64
    for r in rows.values():
        assert r["sign agrees"] > 0.75 and r["cosine"] > 0.6, r
        assert abs(r["reg (predicted)"] - r["reg (measured)"]) < 0.1, r
        assert 0.6 < r["<u,M> predicted"] / r["<u,M> measured"] < 1.6, r
    assert rows[1]["reg (measured)"] > 2 * rows[64]["reg (measured)"]


@pytest.mark.slow
def test_explicit_term_cancels_the_memory_of_sgd_momentum():
    """SGD(momentum) on L − hG (G exact, same-method form) tracks its order-0 map to O(h²)."""
    slopes = run("explicit")["slopes"]["sgd_momentum"]
    assert slopes["explicit"] >= 1.75 and slopes["plain"] < 1.3, slopes


def test_tutorial_tables_are_the_committed_script_outputs():
    """Every table row in docs/tutorial.md is a line the scripts printed into docs/figures/*.txt."""
    outputs = {line.strip() for p in (ROOT / "docs" / "figures").glob("*.txt") for line in p.read_text().splitlines()}
    text = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    blocks = text.split("```")[1::2]
    rows = [line.strip() for b in blocks for line in b.splitlines() if re.search(r"\d\.\d+e[-+]\d\d", line)]
    assert len(rows) > 20
    assert [r for r in rows if r not in outputs] == []
    for name in ("convergence", "trajectory", "regularizer", "explicit", "adamw_latex", "batches", "critical_batch"):
        assert (ROOT / "docs" / "figures" / f"{name}.png").exists(), name
