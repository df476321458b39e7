"""``kit rootfs``: build and list root filesystems.

kit rootfs build DIR                          # host programs + their libraries (no download)
kit rootfs build DIR --program vi --program ip   # ... and these too
kit rootfs build DIR --only --program ls      # just the shell and ls
kit rootfs build DIR --from busybox           # one static binary, ~300 applet links
kit rootfs build DIR --from tar FILE.tar.gz   # unpack an archive safely
kit rootfs ls                                 # what is under kit's rootfs directory
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from kit.rootfs import RootfsReport

#: Kept in step with kit.rootfs.SOURCES (not imported: the parser must stay light).
SOURCES = ("host", "busybox", "tar")


#: The commands this module registers (see kit.cli).
COMMANDS = ("rootfs",)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kit rootfs build`` and ``kit rootfs ls`` to the command line."""
    parser = subparsers.add_parser(
        "rootfs",
        help="build and list root filesystems",
        description="Build the directory tree a container sees as /, and list those built.",
    )
    commands = parser.add_subparsers(
        dest="rootfs_command", metavar="COMMAND", parser_class=_intermixed(type(parser))
    )

    build = commands.add_parser(
        "build",
        help="build a root filesystem in DEST",
        description=(
            "Build a root filesystem in DEST, atomically (in a temporary directory beside DEST, "
            "renamed into place when complete). host: copy host programs with their loader "
            "and libraries; busybox: the host's static busybox and its applet links; tar: "
            "unpack FILE safely."
        ),
    )
    build.add_argument("dest", metavar="DEST", help="the directory to create")
    build.add_argument("file", metavar="FILE", nargs="?", help="the archive, with --from tar")
    build.add_argument(
        "--from",
        dest="source",
        choices=SOURCES,
        default="host",
        help="where the files come from (default: host)",
    )
    build.add_argument(
        "-p",
        "--program",
        dest="programs",
        action="append",
        default=[],
        metavar="NAME",
        help="also copy this host program (repeatable; a name in PATH or a full path)",
    )
    build.add_argument(
        "--only",
        action="store_true",
        help="copy only the shell and the --program programs, not kit's default set",
    )
    build.add_argument("--force", action="store_true", help="replace DEST if it exists")
    build.add_argument(
        "--allow-devices",
        action="store_true",
        help="with --from tar: create device nodes from the archive (trusted archives only)",
    )
    build.add_argument("-v", "--verbose", action="store_true", help="show a table of every program")
    build.add_argument("--json", action="store_true", help="print the build report as JSON")
    build.set_defaults(func=build_command)

    listing = commands.add_parser(
        "ls",
        help="list the root filesystems under kit's rootfs directory",
        description="List the root filesystems under kit's rootfs directory, with sizes.",
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(func=ls_command)

    def usage(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)


def _intermixed(base: type[argparse.ArgumentParser]) -> type[argparse.ArgumentParser]:
    """A parser class that lets positionals follow options: ``build DEST --from tar FILE``.

    Plain argparse takes all positionals at the first run of them (DEST, and FILE as absent),
    then rejects FILE after ``--from tar``. Intermixed parsing collects options first.
    """

    class Intermixed(base):  # type: ignore[valid-type, misc]
        _inside = False

        def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def, override]
            if self._inside:  # parse_known_intermixed_args calls back into this method
                return super().parse_known_args(args, namespace)
            self._inside = True
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._inside = False

    return Intermixed


def build_command(args: argparse.Namespace) -> int:
    """Build a root filesystem and print what went into it."""
    import json
    import sys

    from kit.errors import KitError
    from kit.rootfs import DEFAULT_PROGRAMS, build_rootfs

    if args.source != "host" and (args.programs or args.only):
        raise KitError(
            "--program and --only apply to --from host",
            cause=f"a {args.source} root filesystem brings its own programs",
            fix="leave them out, or use --from host",
            exit_code=2,
        )
    programs = None
    extra: list[str] = []
    if args.only:
        programs = list(args.programs)
    else:
        extra = [name for name in args.programs if name not in DEFAULT_PROGRAMS]
    report = build_rootfs(
        args.dest,
        args.source,
        tar_file=args.file,
        programs=programs,
        extra_programs=extra,
        replace=args.force,
        allow_devices=args.allow_devices,
    )
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
        return 0
    _print_build(report, verbose=args.verbose)
    return 0


def _print_build(report: RootfsReport, *, verbose: bool) -> None:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"built a {report.source} root filesystem at {report.dest} "
        f"({human_size(report.total_bytes)}, {_entries(report)} entries)"
    )
    if verbose and report.programs:
        console.print(_program_table(report))
    else:
        for line in _summary(report):
            console.print(f"  {line}")
    if report.missing:
        console.print(f"  [dim]not on this host, skipped: {' '.join(report.missing)}[/dim]")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"try it: kit run --rm -it --rootfs {report.dest} /bin/sh")


def _entries(report: RootfsReport) -> int:
    if report.extract is not None:
        return report.extract.members
    return len(report.files)


def _summary(report: RootfsReport) -> list[str]:
    """A few lines: which programs, which loader, which libraries."""
    lines = []
    for program in report.programs:
        if program.links:
            lines.append(
                f"{program.name}: {program.kind}, {len(program.links)} applet links "
                f"(/bin/sh -> {program.path})"
            )
    dynamic = [p for p in report.programs if not p.links]
    if report.source == "tar":
        for program in dynamic:  # what the archive's /bin/sh is
            loader = f", loader {program.interpreter}" if program.interpreter else ""
            lines.append(f"{program.path}: {program.kind}{loader}")
        dynamic = []
    if dynamic:
        names = " ".join(p.name for p in dynamic)
        lines.append(f"{len(dynamic)} program{'s' if len(dynamic) != 1 else ''}: {names}")
        loaders = sorted({p.interpreter for p in dynamic if p.kind == "dynamic"})
        if loaders:
            lines.append(f"loader: {' '.join(loaders)}")
        libraries = sorted(
            {lib.rsplit("/", 1)[-1] for p in dynamic for lib in p.libraries}
            - {loader.rsplit("/", 1)[-1] for loader in loaders}
        )
        if libraries:
            lines.append(f"libraries ({len(libraries)}): {' '.join(libraries)}")
    if report.extract is not None:
        x = report.extract
        lines.append(
            f"unpacked {x.files} files, {x.dirs} directories, {x.symlinks} symlinks, "
            f"{x.hardlinks} hard links, {x.fifos + x.devices} special files"
        )
    return lines


def _program_table(report: RootfsReport) -> Table:
    from rich.table import Table

    table = Table(title=f"programs in {report.dest}", title_justify="left")
    for column in ("program", "path", "kind", "needs"):
        table.add_column(column)
    table.add_column("adds", justify="right")
    for program in report.programs:
        if program.links:
            needs = f"nothing ({len(program.links)} applet links)"
        elif program.kind == "dynamic":
            count = len(program.libraries) - 1  # the loader is listed too
            needs = f"loader + {count} librar{'y' if count == 1 else 'ies'}"
        elif program.kind == "script":
            needs = f"#! {program.interpreter}"
        else:
            needs = "nothing"
        path = program.path
        if program.real_path and program.real_path != program.path:
            path += f" -> {program.real_path}"
        table.add_row(program.name, path, program.kind, needs, human_size(program.size))
    return table


def ls_command(args: argparse.Namespace) -> int:
    """List the root filesystems under kit's rootfs directory."""
    import json
    import sys

    from kit import paths
    from kit.rootfs import list_rootfs

    found = list_rootfs()
    if args.json:
        sys.stdout.write(json.dumps([entry.to_dict() for entry in found], indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    if not found:
        base = paths.rootfs_dir()
        console.print(
            f"no root filesystems under {base}; build one with `kit rootfs build {base / 'NAME'}`"
        )
        return 0
    table = Table()
    table.add_column("name")
    table.add_column("source")
    table.add_column("size", justify="right")
    table.add_column("entries", justify="right")
    table.add_column("path")
    for entry in found:
        table.add_row(
            entry.name, entry.source, human_size(entry.bytes), str(entry.entries), entry.path
        )
    console.print(table)
    return 0


def human_size(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
