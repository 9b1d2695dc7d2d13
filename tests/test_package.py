"""The habits of a maintained package: version, ``python -m memcorr``, ``derive --param``."""

import subprocess
import sys

import pytest
import sympy as sp

import memcorr
from memcorr.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"memcorr {memcorr.__version__}"


def test_python_dash_m_is_the_console_script():
    out = subprocess.run([sys.executable, "-m", "memcorr", "list"], capture_output=True, text=True, check=True)
    assert "adamw" in out.stdout and "heavy_ball" in out.stdout


def test_derive_with_a_parameter_fixed(run_cli):
    status, out, err = run_cli("derive", "adamw", "--param", "beta2=0.95")
    assert status == 0, err
    assert "β₂" not in out.split("implied loss")[1].split("\n")[0]  # substituted in G
    d = memcorr.derive("adamw", params={"beta2": "0.95"})
    b1 = d.model.params["beta1"].symbol
    # the coefficient β1/(1−β1) − β2/(1−β2) at β2 = 0.95 (exactly 19/20), method.md §4
    assert sp.simplify(d.perturbation.coefficient - (b1 / (1 - b1) - 19)) == 0
    assert "beta2" not in d.model.params


def test_derive_param_errors_exit_2_in_the_dsl_format(run_cli):
    status, _, err = run_cli("derive", "adamw", "--param", "gamma=0.5")
    assert status == 2 and "adamw.opt:" in err and "not a parameter" in err and "^" in err
    assert "| optimizer adamw" in err  # the caret under the optimizer line, never under a comment
    assert "Traceback" not in err
    status, _, err = run_cli("derive", "adamw", "--param", "beta2=1.5")
    assert status == 2 and "outside the domain in (0, 1)" in err and "param beta2" in err and "^" in err
    status, _, err = run_cli("derive", "adamw", "--param", "beta2=x")
    assert status == 2 and "not a number" in err
