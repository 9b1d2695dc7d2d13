"""memcorr.derive, the Derivation object and `memcorr derive` (api.md)."""

import numpy as np
import pytest
import sympy as sp
from conftest import BUNDLED, ROOT, lanes

import memcorr
from memcorr.losses import builtin

LOSS, X0 = builtin("nonconvex")


def test_derivation_object_fields():
    d = memcorr.derive("heavy_ball")
    assert d.order == 1 and d.regime == "stationary" and d.target == "map"
    assert d.correction == d.corrections[0]
    assert set(d.states) == {"v"} and len(d.states["v"]) == 2
    assert isinstance(d.update, sp.Expr)


@pytest.mark.parametrize("path", lanes(BUNDLED))
def test_no_dirac_delta_reaches_a_result(path):
    for regime in ("stationary", "finite"):
        try:
            d = memcorr.derive(path, regime=regime)
        except memcorr.DerivationError:
            continue
        for e in [d.update, *d.corrections, *[s for series in d.states.values() for s in series]]:
            assert not e.has(sp.DiracDelta)
            assert not e.has(sp.Derivative) and not e.has(sp.Subs)


def test_generated_module_api_and_docstring():
    d = memcorr.derive("adamw")
    m = memcorr.load_module(d)
    assert m.HYPER == {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
    assert "optimizer adamw" in m.__doc__ and r"\Psi_1" in m.__doc__
    h = 1e-3
    full = m.memoryless(X0, LOSS, h, beta2=0.9)
    assert np.allclose(full, m.update(X0, LOSS, beta2=0.9) + h * m.correction(X0, LOSS, beta2=0.9))
    assert np.allclose(m.memoryless(X0, LOSS, h, order=0), m.update(X0, LOSS))
    state = m.initial_state(X0, LOSS, h, order=0)
    assert set(state) == {"m", "v"} and np.allclose(state["m"], LOSS.grad(X0))
    assert np.allclose(state["v"], LOSS.grad(X0) ** 2)
    first = m.initial_state(X0, LOSS, h)["m"] - state["m"]  # h S_1 = h Hess(Ψ_0)/(1 - β1)
    expected = h / (1 - 0.9) * (LOSS.hvp(X0, m.update(X0, LOSS) - 0.01 * X0) + 0.01 * LOSS.hvp(X0, X0))
    assert np.allclose(first, expected)
    with pytest.raises(TypeError, match="unknown hyperparameters"):
        m.update(X0, LOSS, beta3=0.5)
    with pytest.raises(ValueError):
        m.correction(X0, LOSS, order=2)


def test_generated_module_matches_the_formula_numerically():
    """Ψ_1 of heavy ball is β/(1-β)^3 H g: the generated code computes exactly that."""
    m = memcorr.load_module(memcorr.derive("heavy_ball"))
    expected = 0.7 / 0.3**3 * LOSS.hvp(X0, LOSS.grad(X0))
    assert np.allclose(m.correction(X0, LOSS, beta=0.7), expected)


def test_finite_module_takes_the_step_counter():
    m = memcorr.load_module(memcorr.derive("heavy_ball", regime="finite"))
    with pytest.raises(TypeError, match="step counter"):
        m.update(X0, LOSS)
    g = LOSS.grad(X0)
    assert np.allclose(m.update(X0, LOSS, n=2, beta=0.5), (1 + 0.5 + 0.25) * g)
    assert np.allclose(m.correction(X0, LOSS, n=0, beta=0.5), 0)


def test_parameter_names_that_are_python_keywords_are_safe():
    d = memcorr.derive(
        "optimizer kw\nstep lr\nparam lambda = 0.5 in (0, 1)\nstate v = 0\nv = lambda * v + g\ntheta = theta - lr * v\n"
    )
    m = memcorr.load_module(d)
    assert np.allclose(m.update(X0, LOSS, **{"lambda": 0.5}), 2 * LOSS.grad(X0))


def test_derive_command_writes_the_module(run_cli, tmp_path):
    status, out, err = run_cli("derive", "heavy_ball", "--emit", "numpy", "-o", tmp_path)
    assert status == 0, err
    assert "Ψ₁ = " in out and "Hess(g)" in out and "verdict: regularizing" in out
    assert (tmp_path / "heavy_ball_numpy.py").is_file()
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["derive", "heavy_ball", "--emit", "numpy"], "needs -o"),
        (["derive", "heavy_ball", "--emit", "fortran", "-o", "x"], "cannot emit fortran"),
        (["derive", ROOT / "tests" / "programs" / "good" / "decaying_step.opt"], "needs the method to settle"),
        (["derive", "adadelta", "--regime", "finite", "--target", "flow"], "loop over the past steps"),
        (["derive", "heavy_ball", "--regime", "finite", "--order", "2"], "first order"),
        (["derive", "heavy_ball", "--order", "0"], "order must be"),
    ],
)
def test_derive_errors_exit_2_without_traceback(run_cli, argv, message, tmp_path):
    status, out, err = run_cli(*argv)
    assert status == 2
    assert message in err and "Traceback" not in err


def test_far_point_is_a_derivation_error(run_cli, tmp_path):
    path = tmp_path / "far.opt"
    path.write_text("optimizer far\nstep h\nstate m = 0\nm = 0.5 * m + g\ntheta = theta - h * grad(theta + m)\n")
    status, _, err = run_cli("derive", path)
    assert status == 2 and "does not approach theta" in err


def test_failed_emit_leaves_no_partial_file(run_cli, tmp_path):
    blocker = tmp_path / "heavy_ball_torch.py"
    blocker.mkdir()  # a folder where one file should go: none of the four is written
    status, _, err = run_cli("derive", "heavy_ball", "--emit", "latex,numpy,torch,json", "-o", tmp_path)
    assert status == 2 and "error" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["heavy_ball_torch.py"]


def test_a_failing_emitter_writes_nothing(run_cli, tmp_path, monkeypatch):
    from memcorr import printing

    def broken(d):
        raise memcorr.DerivationError("the torch emitter failed")

    monkeypatch.setitem(printing.OUTPUTS, "torch", printing.Output("{name}_torch.py", broken))
    status, _, err = run_cli("derive", "heavy_ball", "--emit", "latex,numpy,torch,json", "-o", tmp_path / "out")
    assert status == 2 and "the torch emitter failed" in err
    assert not (tmp_path / "out").exists()


def test_emit_all_five_formats(run_cli, tmp_path):
    status, out, err = run_cli("derive", "adamw", "--emit", "latex,numpy,torch,jax,json", "-o", tmp_path)
    assert status == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["adamw.json", "adamw.tex", "adamw_jax.py", "adamw_numpy.py", "adamw_torch.py"]

    def imports(name):
        lines = (tmp_path / name).read_text().splitlines()
        return [line for line in lines if line.startswith(("import", "from"))]

    assert imports("adamw_torch.py") == ["import warnings", "import torch"]  # the standard library and torch only
    # jax only (optax is imported inside optimizer(), where it is asked for)
    assert imports("adamw_jax.py") == [
        "from typing import NamedTuple",
        "import jax",
        "import jax.numpy",
        "from jax.flatten_util import ravel_pytree",
    ]
    assert (tmp_path / "adamw.tex").read_text().startswith("\\documentclass")


def test_derive_prints_the_bundled_result(run_cli):
    status, out, _ = run_cli("derive", "adamw")
    assert status == 0
    committed = (ROOT / "derivations" / "generated" / "adamw.txt").read_text(encoding="utf-8")
    assert committed.startswith(out)


def test_verify_command(run_cli, tmp_path):
    png = tmp_path / "hb.png"
    status, out, _ = run_cli("verify", "heavy_ball", "--param", "beta=0.5", "--plot", png)
    assert status == 0 and "PASS" in out
    assert png.stat().st_size > 1000
    status, out, _ = run_cli("verify", "heavy_ball", "--param", "beta=0.5", "--h", "0.5")
    assert status == 1 and "FAIL" in out


def test_verify_unknown_parameter(run_cli):
    status, _, err = run_cli("verify", "heavy_ball", "--param", "gamma=0.5")
    assert status == 2 and "`gamma` is not a parameter of heavy_ball" in err
    status, _, err = run_cli("verify", "heavy_ball", "--loss", "nope")
    assert status == 2 and "unknown loss" in err


def test_a_state_reading_its_own_norm_is_a_derivation_error():
    with pytest.raises(memcorr.DerivationError, match="implicit"):
        memcorr.derive("optimizer self\nstep h\nstate m = 0\nm = 0.5 * m + g / (1 + norm(m))\ntheta = theta - h * m\n")


def test_derive_seeds_sympys_generator_and_gives_it_back():
    """sympy factors at random evaluation points: a derivation seeds them (the same result and
    time in every process) and leaves the caller's generator where it was."""
    import sympy.core.random as sympy_random

    sympy_random.seed(123)
    before = sympy_random.rng.getstate()
    first = memcorr.derive("heavy_ball")
    assert sympy_random.rng.getstate() == before
    sympy_random.rng.random()  # the caller moves its generator: the derivation does not see it
    assert memcorr.derive("heavy_ball").to_json() == first.to_json()
