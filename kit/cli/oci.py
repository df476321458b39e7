"""kit as an OCI runtime (placeholder while being written)."""

from __future__ import annotations

import argparse

COMMANDS: tuple[str, ...] = ()


def register(subparsers: argparse._SubParsersAction) -> None:
    pass


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", "-b", metavar="DIR", help="run an OCI bundle (runc's run)")


def run_bundle_command(args: argparse.Namespace) -> int:
    raise NotImplementedError
