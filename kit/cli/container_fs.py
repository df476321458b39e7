"""A container's filesystem changes: ``kit diff`` and ``kit commit``.

kit diff web            # A added, C changed, D deleted: the container's writable layer
kit commit web web:2    # that writable layer becomes a new layer of a new image
"""

from __future__ import annotations

import argparse
import sys

#: The commands this module registers (see kit.cli).
COMMANDS = ("diff", "commit")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("diff", help="what a container changed in its filesystem")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=diff_command)

    p = subparsers.add_parser("commit", help="make an image from a container's changes")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("name", metavar="NAME[:TAG]")
    p.add_argument("-m", "--message", default="", help="a comment for the history")
    p.set_defaults(func=commit_command)


def diff_command(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from kit.image.commit import changes

    found = changes(args.container)
    if args.json:
        sys.stdout.write(json.dumps([asdict(c) for c in found], indent=2) + "\n")
        return 0
    from kit.layers_view import diff_lines

    sys.stdout.write("".join(line + "\n" for line in diff_lines(found)))
    return 0


def commit_command(args: argparse.Namespace) -> int:
    from kit.image.commit import commit

    image = commit(args.container, args.name, message=args.message)
    sys.stdout.write(f"{image.id}\n")
    return 0
