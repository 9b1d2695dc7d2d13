"""The command line: ``memcorr check | derive | verify | list`` (api.md).

Input: argv. Output: text on stdout, warnings and errors on stderr, exit status
0 (success), 1 (a numeric check failed) or 2 (bad input: the error format of
dsl.md, never a traceback). Heavy imports happen inside the commands, so that
``memcorr check`` starts fast.
"""

from __future__ import annotations

import argparse
import os
import sys


def _warn(model) -> None:
    for w in model.warnings:
        print(w, file=sys.stderr)


def cmd_check(args) -> int:
    import memcorr

    model = memcorr.load(args.file)
    _warn(model)
    print(model.show() if args.show else "ok  " + model.summary())
    return 0


def cmd_list(args) -> int:
    from .library import bundled, describe

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
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


EMITTERS = {
    "latex": ("{name}.tex", lambda d: d.to_latex(standalone=True)),
    "numpy": ("{name}_numpy.py", lambda d: d.to_numpy()),
    "torch": ("{name}_torch.py", lambda d: d.to_torch()),
    "json": ("{name}.json", lambda d: d.to_json()),
}


def cmd_derive(args) -> int:
    from .derivation import derive
    from .errors import DerivationError

    formats = [f.strip() for f in args.emit.split(",") if f.strip()] if args.emit else []
    unknown = [f for f in formats if f not in EMITTERS]
    if unknown:
        raise DerivationError(f"cannot emit {', '.join(unknown)}: this version emits {', '.join(EMITTERS)}")
    if formats and not args.output:
        raise DerivationError("--emit needs -o DIR, the folder to write the files into")
    d = derive(args.file, order=args.order, regime=args.regime, target=args.target, params=_param_texts(args.param))
    _warn(d.model)
    # generate everything before writing anything
    files = {os.path.join(args.output, EMITTERS[f][0].format(name=d.name)): EMITTERS[f][1](d) for f in formats}
    print(d.summary())
    write_all(files)
    for path in files:
        print(f"wrote {path}")
    return 0


def _param_texts(pairs) -> dict[str, str]:
    """``["beta2=0.95", …]`` -> ``{"beta2": "0.95"}``; the values are checked where the program is."""
    from .errors import DerivationError

    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise DerivationError(f"--param expects NAME=NUMBER, not `{pair}`")
        out[name.strip()] = value.strip()
    return out


def _parse_params(pairs) -> dict:
    from .errors import DerivationError

    out = {}
    for pair in pairs or []:
        name, _, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise DerivationError(f"--param expects NAME=NUMBER, not `{pair}`") from None
    return out


def cmd_verify(args) -> int:
    from .derivation import derive
    from .errors import DerivationError
    from .losses import builtin
    from .verify import verify

    d = derive(args.file, order=args.order, regime=args.regime)
    _warn(d.model)
    params = _parse_params(args.param)
    unknown = sorted(set(params) - set(d.model.params))
    if unknown:
        raise DerivationError(
            f"unknown parameter(s) {', '.join(unknown)}; {d.name} has {', '.join(d.model.params) or 'none'}"
        )
    try:
        loss, x0 = builtin(args.loss)
    except ValueError as err:
        raise DerivationError(str(err)) from None
    except ImportError:
        raise DerivationError(f"the `{args.loss}` loss needs torch: pip install 'memcorr[torch]'") from None
    report = verify(d, loss, x0, params, h0=args.h, steps=args.steps)
    print(report.table())
    if args.plot:
        try:
            from .plot import plot_report

            plot_report(report, args.plot)
        except ImportError:
            raise DerivationError("--plot needs matplotlib: pip install 'memcorr[plot]'") from None
        print(f"wrote {args.plot}")
    return 0 if report.passed else 1


def parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="memcorr", description="Memoryless modified equations of optimizers with memory.")
    p.add_argument("--version", action="version", version=f"memcorr {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="parse and validate a program")
    c.add_argument("file", help="an .opt file or the name of a bundled program")
    c.add_argument("--show", action="store_true", help="print the lowered state-space model")
    c.set_defaults(run=cmd_check)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("file", help="an .opt file or the name of a bundled program")
    common.add_argument("--order", type=int, default=1, help="the order R of the correction (default 1)")
    common.add_argument("--regime", choices=("stationary", "finite"), default="stationary")
    d = sub.add_parser("derive", parents=[common], help="derive the memoryless map and its corrections")
    d.add_argument(
        "--target",
        choices=("map", "flow"),
        default="map",
        help="the memoryless map, or the modified flow of method.md §5",
    )
    d.add_argument("--emit", help="comma-separated formats to write: latex, numpy, torch, json")
    d.add_argument(
        "--param", action="append", metavar="NAME=VALUE", help="fix a parameter to a number in the result (repeatable)"
    )
    d.add_argument("-o", "--output", metavar="DIR", help="folder for the emitted files")
    d.set_defaults(run=cmd_derive)
    v = sub.add_parser("verify", parents=[common], help="check a derivation numerically (method.md §6)")
    v.add_argument("--loss", default="nonconvex", help="nonconvex, quadratic, rosenbrock, logistic, mlp")
    v.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a default (repeatable)")
    v.add_argument(
        "--h", type=float, help="the largest step size (default: from the memory length and the loss's curvature)"
    )
    v.add_argument("--steps", type=int, default=20, help="steps at the largest h (the horizon)")
    v.add_argument("--plot", metavar="FILE.png", help="draw error against h (needs matplotlib)")
    v.set_defaults(run=cmd_verify)
    ls = sub.add_parser("list", help="the bundled programs in derivations/")
    ls.set_defaults(run=cmd_list)
    return p


def main(argv=None) -> int:
    from .errors import DerivationError, DSLError

    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except DSLError as err:
        print(err, file=sys.stderr)
        return 2
    except DerivationError as err:
        print(f"{getattr(args, 'file', 'memcorr')}: error: cannot derive: {err}", file=sys.stderr)
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
