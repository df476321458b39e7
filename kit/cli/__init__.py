"""The command line: ``kit <command> ...`` (also ``python -m kit``).

Each command group lives in its own module here and exposes ``register(subparsers)``, which adds
its parsers and sets ``func`` (the handler, called with the parsed arguments, returning the exit
status), and ``COMMANDS``, the names it registers. Handlers are thin: parse -> spec -> engine
call -> render. Modules import heavy things inside their handlers, and only the module of the
command being run builds its parsers, so ``kit run`` starts fast however many commands exist.
"""

from __future__ import annotations

import argparse
import gc
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
    "kit.cli.image",
    "kit.cli.container_fs",
    "kit.cli.lifecycle",
    "kit.cli.explore",
    "kit.cli.oci",
    "kit.cli.volume",
    "kit.cli.seccomp",
]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors say what to do and exit with 2 in kit's format."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"kit: error: {message}. See `{self.prog} --help`.\n")
        raise SystemExit(2)


def _base_parser() -> argparse.ArgumentParser:
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
    # runc's global options, as engines (podman/conmon, containerd) pass them.
    parser.add_argument(
        "--log", metavar="FILE", help="also append kit's errors and warnings to FILE (runc)"
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="format of --log: text, or JSON lines like runc's",
    )
    parser.add_argument(
        "--systemd-cgroup",
        action="store_true",
        help="accepted for runc compatibility: kit always manages cgroups through cgroupfs "
        "and refuses a systemd-style cgroupsPath (slice:prefix:name)",
    )
    return parser


#: Where log_message also writes (``--log``), and how.
_LOG: dict[str, str | None] = {"path": None, "format": "text"}


def log_message(level: str, text: str, *, stream: object = None) -> None:
    """``kit: LEVEL: TEXT`` on stderr, and to the ``--log`` file when one was given."""
    (stream or sys.stderr).write(f"kit: {level}: {text}\n")  # type: ignore[attr-defined]
    path = _LOG["path"]
    if not path:
        return
    import json

    from kit.runtime.state import utc_timestamp

    now = utc_timestamp()
    if _LOG["format"] == "json":
        line = json.dumps({"level": level, "msg": text, "time": now})
    else:
        line = f"{now} {level}: {text}"
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
    except OSError:
        pass  # the log is a copy; stderr has the message


def _requested_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The command word in ``argv`` (the first argument that is not a global option)."""
    takes_value = {
        option
        for action in parser._actions
        if action.nargs != 0
        for option in action.option_strings
    }
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in takes_value
        else:
            return word
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only the invoked command's module registers, when known."""
    parser = _base_parser()
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = _requested_command(parser, argv) if argv is not None else None
    if wanted is not None:
        # One module at a time, until one declares the command: `kit run` imports
        # kit.cli.run and no other command's module.
        for name in COMMAND_MODULES:
            module = importlib.import_module(name)
            if wanted in getattr(module, "COMMANDS", ()):
                module.register(subparsers)
                return parser
    for name in COMMAND_MODULES:  # --help, or a command of a module without COMMANDS
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one kit command. Without ``argv``: this process's command line, and the process
    ends when the command returns (the ``kit`` program)."""
    if argv is not None:
        return _run(argv)
    # Nearly every object a kit command makes is made while importing its modules (code,
    # classes, the methods dataclasses generate) and lives until the end: the collector's
    # default rhythm (a pass every 700 new objects) walks them some 20 times for nothing,
    # about 3 ms of `kit run`. Collect less often; cycles are still collected.
    gc.set_threshold(20_000, 10, 10)
    try:
        return _run(sys.argv[1:])
    finally:
        # The interpreter exits next. Its last garbage collections would walk every object of
        # every imported module only to free memory the kernel takes back anyway (about 8 ms
        # of `kit run`); frozen objects are skipped. Files are still flushed and closed, and
        # atexit handlers still run.
        gc.freeze()


def _run(argv: list[str]) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.root:
        os.environ["KIT_ROOT"] = os.path.abspath(args.root)
    _LOG["path"], _LOG["format"] = args.log, args.log_format
    # kit's own commands reuse the seccomp filters they compiled (a library user of the
    # launcher does not unless it asks: see kit.security.seccomp_cache).
    from kit.security import seccomp_cache

    seccomp_cache.enable()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KitError as error:
        log_message("error", str(error))
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("kit: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`kit ... | head`): stop quietly, like any Unix filter. Point
        # stdout at /dev/null so Python's final flush does not complain a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a filter killed by SIGPIPE
    except OSError as error:
        # Not an error kit explains itself: still one line with the path and errno, not a
        # traceback. KIT_DEBUG=1 shows the traceback for a bug report.
        if os.environ.get("KIT_DEBUG"):
            raise
        log_message("error", str(_unexpected_os_error(error)))
        return 1


def _unexpected_os_error(error: OSError) -> KitError:
    where = f" on {error.filename}" if error.filename else ""
    hint = (
        "check the path's permissions, or point KIT_ROOT (or --root) at a directory you own"
        if isinstance(error, PermissionError)
        else "run with KIT_DEBUG=1 for the traceback and report it"
    )
    return KitError(
        f"{error.strerror or error}{where}",
        errno=error.errno,
        cause="kit could not complete a file system operation",
        fix=hint,
    )
