"""Rich renderables of engine data, written once and used by the CLI, the lessons and the TUI.

Each function takes plain engine data (mount tables, diffs, namespace ids, events) and returns
a Rich renderable. Plain-text output (projectors, tests, ``--plain``) comes from the same
renderables rendered without colour (see :func:`to_text`).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from kit import mounts
from kit.trace import Event


def mount_table(table: Iterable[mounts.Mount], *, title: str | None = None) -> Table:
    """A mount table: mount point, type, source, options, propagation."""
    out = Table(title=title, show_edge=False, pad_edge=False, header_style="bold")
    for column in ("mount point", "type", "source", "options", "propagation"):
        out.add_column(column, overflow="fold")
    for m in table:
        where = m.mount_point if m.root == "/" else f"{m.mount_point} ({m.root})"
        out.add_row(where, m.fstype, m.source, ",".join(m.options), m.propagation)
    return out


def mount_diff(diff: mounts.MountDiff, *, title: str | None = None) -> RenderableType:
    """Added mounts in green with ``+``, removed in red with ``-``, changed in yellow ``~``."""
    if diff.empty:
        return Text("(no change to the mount table)", style="dim")
    out = Table(title=title, show_edge=False, pad_edge=False, header_style="bold")
    out.add_column("", width=1)
    for column in ("mount point", "type", "source", "options", "propagation"):
        out.add_column(column, overflow="fold")
    for sign, style, entries in (
        ("+", "green", diff.added),
        ("-", "red", diff.removed),
        ("~", "yellow", [after for _, after in diff.changed]),
    ):
        for m in entries:
            out.add_row(
                sign,
                m.mount_point,
                m.fstype,
                m.source,
                ",".join(m.options),
                m.propagation,
                style=style,
            )
    return out


def namespace_table(inside: dict[str, int], outside: dict[str, int]) -> Table:
    """Namespace ids inside the container next to the host's: which ones are new."""
    out = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("namespace", "host", "container", ""):
        out.add_column(column)
    for name, inner in inside.items():
        outer = outside.get(name)
        same = inner == outer
        out.add_row(
            name,
            str(outer),
            str(inner),
            Text("shared with host" if same else "new", style="dim" if same else "bold green"),
        )
    return out


def event_line(event: Event) -> Text:
    """One trace event, coloured: failed calls red, stages bold."""
    line = event.format()
    if event.kind == "syscall":
        return Text(line, style="red" if event.failed else "")
    if event.kind == "stage":
        return Text(line, style="bold cyan")
    if event.kind in ("error",):
        return Text(line, style="bold red")
    if event.kind == "exit":
        return Text(line, style="bold")
    return Text(line, style="dim")


def trace_log(events: Iterable[Event]) -> Group:
    return Group(*(event_line(e) for e in events))


def to_text(renderable: RenderableType, *, width: int = 100) -> str:
    """Render without colour, for plain output and golden tests."""
    console = Console(width=width, no_color=True, color_system=None, record=True, file=_NullFile())
    console.print(renderable)
    return console.export_text()


class _NullFile:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
