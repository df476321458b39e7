"""Rich renderables of engine data, written once and used by the CLI, the lessons and the TUI.

Each function takes plain engine data (mount tables, diffs, namespace ids, events) and returns
a Rich renderable. Plain text (the plain lesson runner, golden tests) comes from the data's
own lines (:meth:`kit.mounts.MountDiff.lines`, :meth:`kit.mounts.Mount.describe`).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

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


#: Colour of each propagation type in a mount tree.
_PROPAGATION_STYLE = {
    "shared": "bold yellow",
    "slave": "cyan",
    "shared+slave": "bold cyan",
    "private": "green",
    "unbindable": "magenta",
}


def mount_tree(table: Iterable[mounts.Mount], *, title: str | None = None) -> Tree:
    """A mount table as the tree it is: each mount under the mount it sits on (parent id).

    Each node shows mount point, filesystem type, source, options and propagation, as in
    ``findmnt``. Mounts whose parent is not in the table (the root of the namespace, or
    mounts of a detached subtree) are the tree's top level.
    """
    entries = list(table)
    ids = {m.mount_id for m in entries}
    children: dict[int, list[mounts.Mount]] = {}
    tops: list[mounts.Mount] = []
    for m in entries:
        if m.parent_id in ids and m.parent_id != m.mount_id:
            children.setdefault(m.parent_id, []).append(m)
        else:
            tops.append(m)
    tree = Tree(Text(title or "mounts", style="bold"), guide_style="dim")

    def label(m: mounts.Mount) -> Text:
        text = Text(m.mount_point, style="bold")
        if m.root != "/":
            text.append(f" [{m.root}]", style="dim")
        text.append(f"  {m.fstype}  {m.source}  ")
        text.append(",".join(m.options), style="dim")
        text.append("  ")
        text.append(m.propagation, style=_PROPAGATION_STYLE.get(m.propagation, ""))
        return text

    def add(node: Tree, m: mounts.Mount, seen: set[int]) -> None:
        branch = node.add(label(m))
        for child in children.get(m.mount_id, []):
            if child.mount_id not in seen:  # a malformed table must not loop forever
                add(branch, child, seen | {child.mount_id})

    for m in tops:
        add(tree, m, {m.mount_id})
    return tree


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
    if event.kind == "error":
        return Text(line, style="bold red")
    if event.kind == "exit":
        return Text(line, style="bold")
    return Text(line, style="dim")
