"""The command line: ``kit <command> ...`` (also ``python -m kit``).

Each command group lives in its own module here and exposes ``register(subparsers)``, which adds
its parsers and sets ``func`` (the handler, called with the parsed arguments, returning the exit
status). Handlers are thin: parse -> spec -> engine call -> render. Modules import heavy things
inside their handlers, so ``kit --help`` and container start stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from kit import __version__
from kit.errors import KitError

#: Command modules, in the order their commands appear in ``kit --help``.
COMMAND_MODULES = [
    "kit.cli.run",
    "kit.cli.rootfs",
    "kit.cli.doctor",
]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors say what to do and exit with 2 in kit's format."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"kit: error: {message}. See `{self.prog} --help`.\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kit",
        description="Build real containers from scratch, and see what the kernel does.",
    )
    parser.add_argument("--version", action="version", version=f"kit version {__version__}")
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="keep all of kit's state under DIR (same as KIT_ROOT)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # TEMPORARY while command modules are being written
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.root:
        os.environ["KIT_ROOT"] = os.path.abspath(args.root)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KitError as error:
        sys.stderr.write(f"kit: error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("kit: interrupted\n")
        return 130
