"""The command line: ``memcorr check | derive | verify | list`` (docs/python.md).

Input: argv. Output: text on stdout, warnings and errors on stderr, exit status
0 (success), 1 (a numeric check failed) or 2 (bad input: the error format of
docs/language.md, never a traceback). Heavy imports happen inside the commands, so that
``memcorr check`` starts fast.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys

from .errors import UsageError
from .printing import OUTPUTS


def _warn(model) -> None:
    for w in model.warnings:
        print(w, file=sys.stderr)


def cmd_check(args) -> int:
    import memcorr

    model = memcorr.load(_program(args.file))
    _warn(model)
    print(model.show() if args.show else "ok  " + model.summary())
    return 0


def cmd_list(args) -> int:
    from .dsl.library import bundled, describe

    programs = bundled()
    width = max(map(len, programs), default=0)
    for name, path in programs.items():
        print(f"{name:<{width}}  {describe(path)}")
    return 0


def write_all(files: dict[str, str]) -> None:
    """Write every file or none: each goes to a temporary file in its folder first, and only when all
    are written are they renamed into place."""
    import tempfile

    for path in files:
        if os.path.isdir(path):  # the one rename that would fail after others succeeded
            raise IsADirectoryError(21, "a folder is in the way", path)
    temps: list[tuple[str, str]] = []
    try:
        for path, text in files.items():
            folder, name = os.path.split(path)
            os.makedirs(folder or ".", exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.", suffix=".tmp")
            temps.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        mode = 0o666 & ~_umask()  # the mode open() would give; mkstemp's is 0600
        for tmp, path in temps:
            os.chmod(tmp, mode)
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cmd_derive(args) -> int:
    from .pipeline import derive

    formats = [f.strip() for f in args.emit.split(",") if f.strip()] if args.emit else []
    unknown = [f for f in formats if f not in OUTPUTS]
    if unknown:
        raise UsageError(f"cannot emit {', '.join(unknown)}: this version emits {', '.join(OUTPUTS)}")
    if formats and not args.output:
        raise UsageError("--emit needs -o DIR, the folder to write the files into")
    if args.output and not formats:
        raise UsageError("-o DIR is where --emit writes; say which formats, e.g. --emit latex,numpy,torch,json")
    d = derive(
        _program(args.file),
        order=args.order,
        regime=args.regime,
        target=args.target,
        params=_param_texts(args.param),
        batches=args.batches,
    )
    _warn(d.model)
    # generate everything before writing anything
    files = {os.path.join(args.output, OUTPUTS[f].file.format(name=d.name)): OUTPUTS[f].emit(d) for f in formats}
    print(d.summary())
    write_all(files)
    for path in files:
        print(f"wrote {path}")
    return 0


def _program(file: str):
    """A command line's program: a bundled name, else a path (never program text, whatever the
    characters in the name)."""
    from pathlib import Path

    from .dsl.library import bundled

    return file if file in bundled() else Path(file)


def _param_texts(pairs) -> dict[str, str]:
    """``["beta2=0.95", …]`` -> ``{"beta2": "0.95"}``; the values are checked where the program is."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param expects NAME=NUMBER, not `{pair}`")
        if name.strip() in out:
            raise UsageError(f"--param {name.strip()} is given twice ({out[name.strip()]} and {value.strip()})")
        out[name.strip()] = value.strip()
    return out


PLOT_FORMATS = (".png", ".pdf", ".svg")


def _verify_options(args) -> None:
    """Refuse what verify cannot run before any work is done."""
    if args.h is not None and not (0 < args.h < float("inf")):
        raise UsageError(f"--h is the largest step size, a positive number, not {args.h!r}")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps is the number of steps at the largest h, at least 1, not {args.steps}")
    if args.plot:
        if os.path.isdir(args.plot):
            raise UsageError(f"--plot {args.plot} is a folder; give a file name such as errors.png")
        if os.path.splitext(args.plot)[1].lower() not in PLOT_FORMATS:
            raise UsageError(f"--plot writes {', '.join(PLOT_FORMATS)} files, not `{args.plot}`")


def cmd_verify(args) -> int:
    import warnings

    import numpy as np

    from .losses import builtin
    from .model.lower import with_values
    from .pipeline import derive
    from .verify.checks import verify

    _verify_options(args)
    texts = _param_texts(args.param)
    # random batches: the values are fixed in the derivation too (what a refusal's hint asks for: momentum=0)
    fixed = texts if args.batches == "random" else None
    d = derive(_program(args.file), order=args.order, regime=args.regime, batches=args.batches, params=fixed)
    _warn(d.model)
    if fixed is None:
        with_values(d.model, texts)  # the values derive would refuse (unknown, not a number, outside the domain)
    params = {name: float(text) for name, text in texts.items()}
    if args.batches == "random":
        return _verify_batches(d, args, params)
    try:
        loss, x0 = builtin(args.loss or "nonconvex")
    except ValueError as err:
        raise UsageError(str(err)) from None
    except ImportError:
        raise UsageError(f"the `{args.loss}` loss needs torch: pip install 'memcorr[torch]'") from None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # a step size at which the method blows up shows as NaN or inf in the table, which says so
        warnings.simplefilter("ignore", RuntimeWarning)
        report = verify(d, loss, x0, params, h0=args.h, steps=args.steps or 20, thorough=args.thorough)
    print(report.table())
    if args.plot:
        try:
            from .verify.plot import plot_report

            plot_report(report, args.plot)
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install 'memcorr[plot]'") from None
        print(f"wrote {args.plot}")
    return 0 if report.passed else 1


def _verify_batches(d, args, params) -> int:
    """``verify --batches random``: the mean over label sequences (docs/method.md §7)."""
    from .losses import BATCH_LOSSES, builtin
    from .verify.batches import verify_batches

    # a nonlinear program's mean holds to leading order in the noise: checked where the noise is small
    name = args.loss or ("batch_quadratics" if d.expansion.noise_exact else "batch_quadratics_small")
    if name not in BATCH_LOSSES:
        raise UsageError(f"--batches random needs a batch loss: --loss {' or '.join(BATCH_LOSSES)}, not `{name}`")
    if args.plot:
        raise UsageError("--plot draws the full-batch check; the random-batch check prints its table")
    loss, x0 = builtin(name)
    try:
        report = verify_batches(d, loss, x0, params, h0=args.h, steps=args.steps or 40, halvings=3 + args.thorough)
    except ValueError as err:  # a memory the horizon cannot hold
        raise UsageError(str(err)) from None
    print(report.table())
    return 0 if report.passed else 1


def _docs() -> str:
    from .dsl.library import docs_dir

    folder = docs_dir()
    return (
        f"documentation (installed in {folder}):\n"
        "  language.md   the .opt language: declarations, statements, functions, limits\n"
        "  python.md     this command line, memcorr.derive and Derivation, the generated modules\n"
        "  method.md     the mathematics memcorr implements, with citations"
    )


class _Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a misspelt option (``--oder`` -> ``--order``)."""

    def error(self, message):
        if "unrecognized arguments:" in message:
            options = [o for a in self._all_actions() for o in a.option_strings]
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], options, n=1)
                if word.startswith("-") and close:
                    message += f" (did you mean `{close[0]}`?)"
                    break
        super().error(message)

    def _all_actions(self):
        for action in self._actions:
            yield action
            for sub in getattr(action, "choices", None) or {}:
                if isinstance(action.choices, dict):
                    yield from action.choices[sub]._actions


def parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(
        prog="memcorr",
        description="Memoryless modified equations of optimizers with memory.",
        epilog=_docs(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"memcorr {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "check",
        help="parse and validate a program",
        description="Parse and validate a program of the .opt language (docs/language.md).",
        epilog=_docs(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("file", help="an .opt file or the name of a bundled program")
    c.add_argument("--show", action="store_true", help="print the lowered state-space model")
    c.set_defaults(run=cmd_check)
    common = _Parser(add_help=False)
    common.add_argument("file", help="an .opt file or the name of a bundled program")
    common.add_argument("--order", type=int, default=1, help="the order R of the correction (default 1)")
    common.add_argument("--regime", choices=("stationary", "finite"), default="stationary")
    common.add_argument(
        "--batches",
        choices=("full", "random"),
        default="full",
        help="full-batch gradients, or batches drawn at random: the correction and G averaged over them",
    )
    d = sub.add_parser("derive", parents=[common], help="derive the memoryless map and its corrections")
    d.add_argument(
        "--target",
        choices=("map", "flow"),
        default="map",
        help="the memoryless map, or the modified flow (docs/method.md)",
    )
    d.add_argument("--emit", help="comma-separated formats to write: latex, numpy, torch, jax, json")
    d.add_argument(
        "--param", action="append", metavar="NAME=VALUE", help="fix a parameter to a number in the result (repeatable)"
    )
    d.add_argument("-o", "--output", metavar="DIR", help="folder for the emitted files")
    d.set_defaults(run=cmd_derive)
    v = sub.add_parser("verify", parents=[common], help="check a derivation numerically (docs/method.md)")
    v.add_argument(
        "--loss",
        help="nonconvex (default), quadratic, rosenbrock, logistic, mlp; with --batches random: batch_quadratics "
        "(default), batch_nonconvex",
    )
    v.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a default (repeatable)")
    v.add_argument(
        "--h", type=float, help="the largest step size (default: from the memory length and the loss's curvature)"
    )
    v.add_argument(
        "--steps", type=int, help="steps at the largest h (the horizon; default 20, with --batches random 40)"
    )
    v.add_argument(
        "--thorough",
        action="store_true",
        help="one more halving of h, and a stationary horizon of up to 5000 steps, not 1000 (a long memory's "
        "trajectory order)",
    )
    v.add_argument("--plot", metavar="FILE.png", help="draw error against h (needs matplotlib)")
    v.set_defaults(run=cmd_verify)
    ls = sub.add_parser("list", help="the bundled programs in derivations/")
    ls.set_defaults(run=cmd_list)
    return p


def _progress_on_a_terminal() -> None:
    """A long derivation says what it is doing, stage by stage, when stderr is a terminal."""
    import logging

    log = logging.getLogger("memcorr")
    if sys.stderr.isatty() and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("  [%(relativeCreated)6.0f ms] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def main(argv=None) -> int:
    from .errors import DerivationError, DSLError

    args = parser().parse_args(argv)
    _progress_on_a_terminal()
    try:
        return args.run(args)
    except DSLError as err:
        print(err, file=sys.stderr)
        return 2
    except DerivationError as err:
        print(f"{getattr(args, 'file', 'memcorr')}: error: cannot derive: {err}", file=sys.stderr)
        return 2
    except UsageError as err:
        print(f"memcorr {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `memcorr list | head`: the reader left; no traceback (before OSError, its base)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:  # e.g. -o DIR not writable; nothing partial was left behind
        print(f"memcorr: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
