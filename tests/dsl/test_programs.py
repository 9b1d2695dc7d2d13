"""Every bundled, spec and outside-style program checks; every bad one is rejected properly."""

import re
import subprocess
import sys

import pytest
from conftest import BAD, BUNDLED, GOOD, ROOT

SPEC_EXAMPLES = {"heavy_ball", "adamw", "lion", "heavy_ball_sum"}  # the programs printed in dsl.md
PAPERS = {
    "heavy_ball",
    "nesterov",
    "adam",
    "adamw",
    "nadamw",
    "rmsprop",
    "lion",
    "lion_softsign",
    "qhm",
    "adabelief",
    "ademamix",
}


def test_library_holds_the_spec_examples_and_the_papers():
    assert SPEC_EXAMPLES | PAPERS <= {p.stem for p in BUNDLED}


@pytest.mark.parametrize("path", BUNDLED + GOOD, ids=lambda p: p.stem)
def test_good_program_checks(path, run_cli):
    status, out, err = run_cli("check", path)
    assert status == 0, err
    assert out.startswith("ok  ")
    assert "error" not in err


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_program_has_description_and_defaults(path):
    import memcorr

    model = memcorr.load(path)
    assert model.description
    assert all(p.default is not None for p in model.params.values())
    assert model.name == path.stem


def expectation(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"# expect (\d+):(\d+) (.*)", first)
    assert match, f"{path.name} lacks its '# expect LINE:COL text' line"
    return int(match.group(1)), int(match.group(2)), match.group(3)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_program_is_rejected_with_position_caret_and_hint(path, run_cli):
    line, col, fragment = expectation(path)
    status, out, err = run_cli("check", path)
    assert status == 2
    assert out == ""
    first, source_line, caret_line = err.splitlines()[:3]
    assert first.startswith(f"{path}:{line}:{col}: error: "), first
    assert fragment in first
    assert re.fullmatch(rf"\s*{line} \| .*", source_line)
    # the caret sits under the reported column
    assert caret_line.index("^") - caret_line.index("|") - 2 == col - 1
    assert "Traceback" not in err


def test_dsl_error_attributes():
    import memcorr

    with pytest.raises(memcorr.DSLError) as info:
        memcorr.load("optimizer o\nstep h\ntheta = theta - h * bta\n")
    assert (info.value.line, info.value.column) == (3, 21)
    assert info.value.hint == "did you mean `beta`?" or "did you mean" in info.value.hint or info.value.hint


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty program"),
        (b"# only a comment\n\n", "empty program"),
        (b"optimizer o\nstep h\x00\n", "NUL byte"),
        (b"optimizer o\nstep h\n\xff\xfe\n", "not valid UTF-8"),
        (b"optimizer o\nstep h\n# " + b"x" * 1_000_000 + b"\n", "limited to"),
        (b"optimizer o\nstep h\nx = " + b"(" * 10_000 + b"g" + b")" * 10_000 + b"\ntheta = theta - h*x\n", None),
        (b"optimizer o\nstep h\nx = " + b"-" * 10_000 + b"g\ntheta = theta - h*x\n", "nested more than"),
        (b"optimizer o\nstep h\nx = g" + b"^g" * 10_000 + b"\ntheta = theta - h*x\n", "nested more than"),
        (b"optimizer o\nstep h\nx = g" + b" + g" * 50_000 + b"\ntheta = theta - h*x\n", None),
    ],
)
def test_hostile_files_never_traceback(tmp_path, run_cli, data, message):
    path = tmp_path / "hostile.opt"
    path.write_bytes(data)
    status, out, err = run_cli("check", path)
    if message is None:  # deep parentheses and long sums are fine
        assert status == 0, err
    else:
        assert status == 2
        assert message in err
        assert re.match(rf"{re.escape(str(path))}:\d+:\d+: error: ", err)
    assert "Traceback" not in err


def test_whole_process_exit_status_and_no_traceback(tmp_path):
    path = tmp_path / "adagrad.opt"
    path.write_text("optimizer a\nstep h\nstate v = 0\nv = v + g^2\ntheta = theta - h*g/sqrt(v+1)\n")
    proc = subprocess.run(
        [sys.executable, "-m", "memcorr.cli", "check", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2
    assert "decay" in proc.stderr and "Traceback" not in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "memcorr.cli", "check", "adamww"], capture_output=True, text=True, cwd=ROOT
    )
    assert missing.returncode == 2 and "did you mean `adamw`" in missing.stderr


def test_warning_for_a_state_that_never_reaches_theta(run_cli, tmp_path):
    path = tmp_path / "unused.opt"
    path.write_text("optimizer u\nstep h\nparam b = 0.5 in (0, 1)\nstate u = 0\nu = b * u + g\ntheta = theta - h * g\n")
    status, out, err = run_cli("check", path)
    assert status == 0
    assert f"{path}:4:1: warning: state `u` never influences `theta`" in err


def test_list_shows_every_bundled_program_with_its_description(run_cli):
    status, out, _ = run_cli("list")
    assert status == 0
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert set(lines) == {p.stem for p in BUNDLED}
    assert "Loshchilov" in lines["adamw"]


def test_bundled_name_stands_for_a_path(run_cli):
    status, out, _ = run_cli("check", "lion", "--show")
    assert status == 0
    assert "m ← " in out and "sign(" in out


REFUSED = {  # derivations/refused/: memcorr's reason, as the catalogue prints it
    "yogi": "does not decay",
    "rmsprop_centered": "singular on the invariant manifold",
    "schedule_free": "must carry the step size",
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused_library_programs_say_why_with_exit_2(name, run_cli):
    path = ROOT / "derivations" / "refused" / f"{name}.opt"
    status, out, err = run_cli("derive", path)
    assert status == 2 and out == ""
    assert REFUSED[name] in err and "Traceback" not in err
    assert {p.stem for p in (ROOT / "derivations" / "refused").glob("*.opt")} == set(REFUSED)
