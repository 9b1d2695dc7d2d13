"""The command line: ``memcorr check | derive | verify | list`` (api.md).

Input: argv. Output: text on stdout, warnings and errors on stderr, exit status
0 (success), 1 (a numeric check failed) or 2 (bad input: the error format of
dsl.md, never a traceback). Heavy imports happen inside the commands, so that
``memcorr check`` starts fast.
"""
from __future__ import annotations

import argparse
import sys


def _load(source):
    import memcorr
    model = memcorr.load(source)
    for w in model.warnings:
        print(w, file=sys.stderr)
    return model


def cmd_check(args) -> int:
    model = _load(args.file)
    print(model.show() if args.show else "ok  " + model.summary())
    return 0


def cmd_list(args) -> int:
    from .library import bundled, describe
    programs = bundled()
    width = max(map(len, programs), default=0)
    for name, path in programs.items():
        print(f"{name:<{width}}  {describe(path)}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="memcorr", description="Memoryless modified equations of "
                                "optimizers with memory.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="parse and validate a program")
    c.add_argument("file", help="an .opt file or the name of a bundled program")
    c.add_argument("--show", action="store_true", help="print the lowered state-space model")
    c.set_defaults(run=cmd_check)
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


if __name__ == "__main__":
    sys.exit(main())
