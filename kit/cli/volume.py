"""``kit volume``: named volumes, directories kit keeps for containers (see kit.volumes).

kit volume create data            # an empty volume (kit run -v data:/x also creates it)
kit volume ls [--json] [-q]
kit volume inspect data           # JSON: name, mountpoint on the host, created, labels
kit volume rm data [-f]           # refused while a container that uses it still exists
"""

from __future__ import annotations

import argparse

#: The commands this module registers (see kit.cli).
COMMANDS = ("volume",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "volume",
        help="create, list, inspect and remove named volumes",
        description="Named volumes: host directories kit keeps and mounts with -v NAME:/path.",
    )
    commands = parser.add_subparsers(dest="volume_command", metavar="COMMAND", required=True)
    create = commands.add_parser("create", help="create a volume")
    create.add_argument("name", nargs="?", help="its name (default: a random one)")
    create.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="attach a label"
    )
    create.set_defaults(func=create_command)
    listing = commands.add_parser("ls", help="list volumes")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("-q", "--quiet", action="store_true", help="names only")
    listing.set_defaults(func=ls_command)
    inspect = commands.add_parser("inspect", help="show volumes as JSON")
    inspect.add_argument("names", nargs="+", metavar="NAME")
    inspect.set_defaults(func=inspect_command)
    remove = commands.add_parser("rm", help="remove volumes and their files")
    remove.add_argument("names", nargs="+", metavar="NAME")
    remove.add_argument(
        "-f", "--force", action="store_true", help="remove even if a container uses it"
    )
    remove.set_defaults(func=rm_command)


def create_command(args: argparse.Namespace) -> int:
    from kit import volumes
    from kit.errors import KitError

    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise KitError(f"invalid --label {item!r}", fix="use --label KEY=VALUE", exit_code=2)
        labels[key] = value
    print(volumes.create(args.name, labels).name)
    return 0


def ls_command(args: argparse.Namespace) -> int:
    import json

    from kit import volumes

    found = volumes.list_volumes()
    if args.json:
        print(json.dumps([v.to_dict() for v in found], indent=2))
    elif args.quiet:
        for volume in found:
            print(volume.name)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_edge=False, pad_edge=False, header_style="bold", box=None)
        for column in ("NAME", "MOUNTPOINT", "USED BY"):
            table.add_column(column, overflow="fold")
        for volume in found:
            table.add_row(
                volume.name, str(volume.mountpoint), ", ".join(volumes.users(volume)) or "-"
            )
        Console().print(table)
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    import json

    from kit import volumes

    print(json.dumps([volumes.get(name).to_dict() for name in args.names], indent=2))
    return 0


def rm_command(args: argparse.Namespace) -> int:
    from kit import volumes

    for name in args.names:
        volumes.remove(name, force=args.force)
        print(name)
    return 0
