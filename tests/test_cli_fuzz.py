"""A seeded fuzz of the whole command line: programs (bundled, and bundled with random edits) under
random commands, regimes, orders <= 2, targets, ``--param`` values and output formats.

Every case ends in exit 0 with every output valid (strict JSON, modules that import, LaTeX that
compiles), exit 1 (a numeric check that failed, with its table), or exit 2 with a message in the
error format — never a traceback, never a file left behind by a failed run. A few cases run in the
quick lane, more in the slow one.
"""

import importlib.util
import json
import random
import sys

import pytest
from conftest import PDFLATEX, ROOT, compile_tex

from memcorr.cli import main

# fast to derive at order 2 and in both regimes: the pool the quick lane draws from
FAST = ["gd", "heavy_ball", "nesterov", "qhm", "lion", "signum", "sgd_momentum", "heavy_ball_sum"]
EVERY = sorted(p.stem for p in (ROOT / "derivations").glob("*.opt"))
EDITS = "abgnhkmtv0123456789.,;=+-*/^()[]#\n _e"


def mutated(rng: random.Random, name: str) -> str:
    """A bundled program with one to three characters deleted, inserted or replaced."""
    text = (ROOT / "derivations" / f"{name}.opt").read_text()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(text))
        kind = rng.choice(["delete", "insert", "replace"])
        char = rng.choice(EDITS)
        text = {"delete": text[:i] + text[i + 1 :], "insert": text[:i] + char + text[i:]}.get(
            kind, text[:i] + char + text[i + 1 :]
        )
    return text


def param_value(rng: random.Random, name: str) -> str:
    return rng.choice(
        [f"{name}=0.5", f"{name}=1.5", f"{name}=abc", "nosuch=1", f"{name}=1e99999999", f"{name}=-0.2", f"{name}=0"]
    )


def case(rng: random.Random, pool: list[str], tmp_path) -> list[str]:
    name = rng.choice(pool)
    program = name
    if rng.random() < 0.4:
        program = str(tmp_path / f"{name}_mut.opt")
        (tmp_path / f"{name}_mut.opt").write_text(mutated(rng, name))
    command = rng.choice(["check", "derive", "derive", "derive", "verify"])
    argv = [command, program]
    if command == "check":
        return argv + (["--show"] if rng.random() < 0.5 else [])
    argv += ["--regime", rng.choice(["stationary", "finite"]), "--order", rng.choice(["1", "1", "2"])]
    if rng.random() < 0.5:
        params = (ROOT / "derivations" / f"{name}.opt").read_text().split("param ")[1:]
        argv += ["--param", param_value(rng, params[0].split()[0] if params else "beta")]
    if command == "derive":
        argv += ["--target", rng.choice(["map", "flow"])]
        formats = rng.sample(["latex", "numpy", "torch", "json"], rng.randint(0, 4))
        if formats:
            argv += ["--emit", ",".join(formats), "-o", str(tmp_path / "out")]
    else:
        argv += ["--steps", "5"]
    return argv


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def imports(path) -> None:
    spec = importlib.util.spec_from_file_location(f"fuzzed_{path.stem}_{id(path)}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert module.HYPER is not None


def check_outputs(folder, tmp_path) -> None:
    for path in folder.iterdir():
        assert not path.name.startswith("."), f"a temporary file was left: {path.name}"
        if path.suffix == ".json":
            strict_json(path.read_text())
        elif path.name.endswith("_numpy.py"):
            imports(path)
        elif path.name.endswith("_torch.py"):
            pytest.importorskip("torch")
            imports(path)
        elif path.name.endswith("_jax.py"):
            pytest.importorskip("jax")
            imports(path)
        elif path.suffix == ".tex" and PDFLATEX:
            compile_tex(path.read_text(), tmp_path)


def run_case(argv, capsys, tmp_path) -> None:
    out = tmp_path / "out"
    status = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if status == 2:
        assert "error" in captured.err, (argv, captured.err)
        assert not out.exists() or not any(out.iterdir()), f"{argv}: files left by a failed run"
    elif status == 1:
        assert argv[0] == "verify" and "FAIL" in captured.out
    else:
        assert status == 0, (argv, captured.err)
        if out.exists():
            check_outputs(out, tmp_path)


@pytest.mark.parametrize("seed", range(8))
def test_the_command_line_never_fails_badly(seed, capsys, tmp_path):
    rng = random.Random(seed)
    run_case(case(rng, FAST, tmp_path), capsys, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 140))
def test_the_command_line_never_fails_badly_on_the_whole_library(seed, capsys, tmp_path):
    rng = random.Random(seed)
    argv = case(rng, EVERY, tmp_path)
    if "2" in argv and any(n in argv[1] for n in ("adam", "rmsprop", "nadam", "radam", "adadelta", "lamb", "adan")):
        argv[argv.index("--order") + 1] = "1"  # their order-2 maps take minutes (the speed issue)
    run_case(argv, capsys, tmp_path)
