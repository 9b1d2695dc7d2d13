"""The check of docs/method.md §7 by numbers: the mean over label sequences of the difference between
the true method and the per-realization memoryless map."""

import importlib.util

import numpy as np
import pytest

import memcorr
from memcorr.losses import batch_nonconvex, batch_quadratics
from memcorr.verify.batches import verify_batches

X0 = np.array([1.0, -0.5])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, params, regime",
    [
        # the reference point: heavy ball, β = 0.5, 8 quadratic batches with different Hessians
        ("heavy_ball", {"beta": 0.5}, "stationary"),
        ("heavy_ball", {"beta": 0.5}, "finite"),
        ("nesterov", {"beta": 0.5}, "stationary"),
        ("nesterov_velocity", {"mu": 0.5}, "stationary"),
        ("qhm", {"beta": 0.6, "nu": 0.7}, "stationary"),
        ("aggmo", {"beta1": 0.3, "beta2": 0.6}, "stationary"),
        ("sgd_momentum", {"momentum": 0.5, "dampening": 0.3}, "finite"),
    ],
)
def test_the_mean_difference_is_second_order_with_the_noise_term(name, params, regime):
    d = memcorr.derive(name, batches="random", regime=regime)
    # the horizon: h = 0.04, 0.02, 0.01 over T = 1
    report = verify_batches(d, batch_quadratics(), X0, params, h0=0.04, steps=25, halvings=2, sequences=20000)
    orders = report.orders()
    print(report.table())
    assert report.passed and orders["E M"] >= 1.75
    # without the noise term the mean difference is first order: the check can fail
    assert orders["full-batch part"] <= 1.3 and orders["none"] <= 1.3


@pytest.mark.slow
def test_a_nonconvex_batch_loss():
    d = memcorr.derive("heavy_ball", batches="random")
    report = verify_batches(
        d, batch_nonconvex(), np.array([0.8, -0.6, 0.4]), {"beta": 0.5}, h0=0.04, steps=25, halvings=2, sequences=20000
    )
    print(report.table())
    assert report.orders()["E M"] >= 1.75 and report.orders()["full-batch part"] <= 1.3


def test_the_check_runs_and_reports(run_cli):
    # a quick run: small enough for the quick lane, and the table says what it measured
    d = memcorr.derive("heavy_ball", batches="random")
    report = verify_batches(d, batch_quadratics(), X0, {"beta": 0.5}, steps=10, halvings=2, sequences=2000)
    assert len(report.errors["E M"]) == 3 and all(e > 0 for e in report.errors["E M"])
    assert "mean difference" in report.table()
    assert report.errors["E M"][-1] < report.errors["none"][-1]


def test_a_memory_longer_than_the_horizon_is_refused_before_the_run(run_cli):
    # heavy ball at β = 0.99 remembers 100 steps: 40 steps would measure the start's transient (order 1)
    status, _, err = run_cli("verify", "heavy_ball", "--batches", "random", "--param", "beta=0.99")
    assert status == 2 and "remembers about 100 steps" in err and "--steps 400" in err and "Traceback" not in err


def test_verify_fixes_the_values_a_refusal_names(run_cli):
    # RMSprop's free momentum makes `buf` a nested state; with it fixed the check runs (α = 0.5: 2 steps of memory)
    args = ["--param", "momentum=0", "--param", "alpha=0.5", "--param", "eps=0.1", "--steps", "8", "--h", "0.02"]
    status, out, err = run_cli("verify", "rmsprop", "--batches", "random", *args)
    assert status == 0 and "PASS" in out and "Traceback" not in err, out + err


def test_verify_refuses_a_loss_without_batches(run_cli):
    status, _, err = run_cli("verify", "heavy_ball", "--batches", "random", "--loss", "quadratic")
    assert status == 2 and "batch loss" in err


def test_derive_refuses_a_program_without_an_expansion_in_the_noise_with_the_reason(run_cli):
    status, _, err = run_cli("derive", "lion", "--batches", "random")
    assert status == 2 and "kink" in err and "Traceback" not in err


def test_a_nonlinear_program_emits_its_torch_module_under_random_batches(run_cli, tmp_path):
    # its batch moments are estimated from micro-batches (tests/printing/test_batch_moments.py)
    torch = pytest.importorskip("torch")
    status, _, err = run_cli(
        "derive", "lion_softsign", "--batches", "random", "--emit", "numpy,torch", "-o", str(tmp_path)
    )
    assert status == 0, err
    spec = importlib.util.spec_from_file_location("lion_softsign_torch", tmp_path / "lion_softsign_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shifts = torch.tensor([[0.1, -0.2], [0.3, 0.0], [-0.1, 0.2]], dtype=torch.float64)
    correction = module.correction(torch.tensor([0.5, -1.0], dtype=torch.float64), lambda t: ((t - shifts) ** 4).sum(1))
    assert correction.shape == (2,) and torch.isfinite(correction).all() and correction.abs().sum() > 0


def test_derive_prints_both_parts(run_cli):
    status, out, _ = run_cli("derive", "heavy_ball", "--batches", "random")
    assert status == 0 and "noise:" in out and "V = E_b" in out
