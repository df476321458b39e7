"""Observations: snapshots of real kernel state that a step shows the learner.

Each observation is taken *when the step runs* (it holds data, not a live handle) and knows how
to show itself two ways: :meth:`text` for the plain runner and golden tests, and
:meth:`renderable` (a Rich renderable, mostly from :mod:`kit.render`) for the TUI. ``pane``
tells the TUI where it belongs: ``mounts``, ``tree``, ``namespaces`` or ``output``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree as RichTree

from kit import mounts, render


@dataclass
class MountChange:
    """What changed in a mount table (e.g. what one stage did)."""

    title: str
    diff: mounts.MountDiff
    pane: str = "mounts"

    def text(self) -> str:
        return "\n".join(self.diff.lines()) or "(no change to the mount table)"

    def renderable(self) -> RenderableType:
        return render.mount_diff(self.diff)


@dataclass
class MountList:
    """A mount table (or the part of it a lesson cares about)."""

    title: str
    table: list[mounts.Mount]
    pane: str = "mounts"

    def text(self) -> str:
        return "\n".join(m.describe() for m in self.table) or "(no mounts)"

    def renderable(self) -> RenderableType:
        return render.mount_table(self.table)


@dataclass
class Namespaces:
    """Namespace ids of a process next to the host's."""

    title: str
    inside: dict[str, int]
    outside: dict[str, int]
    pane: str = "namespaces"

    def text(self) -> str:
        lines = []
        for name, inner in self.inside.items():
            outer = self.outside.get(name)
            state = "shared with host" if inner == outer else "new"
            lines.append(f"{name:<7} host {outer}  here {inner}  ({state})")
        return "\n".join(lines)

    def renderable(self) -> RenderableType:
        return render.namespace_table(self.inside, self.outside)


@dataclass
class Output:
    """Text a program printed, or anything best shown verbatim."""

    title: str
    body: str
    pane: str = "output"

    def text(self) -> str:
        return self.body.rstrip("\n") or "(nothing)"

    def renderable(self) -> RenderableType:
        return Text(self.text())


@dataclass
class Facts:
    """A few named values (an ELF header, a process's root, a result)."""

    title: str
    rows: list[tuple[str, str]]
    pane: str = "output"

    def text(self) -> str:
        width = max((len(k) for k, _ in self.rows), default=0)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.rows)

    def renderable(self) -> RenderableType:
        table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in self.rows:
            table.add_row(key, value)
        return table


# --- directory trees ---------------------------------------------------------------------------


@dataclass
class Node:
    """One entry of a directory tree snapshot."""

    name: str
    kind: str  # dir, file, symlink, char, block, fifo, socket, unknown
    detail: str = ""
    children: list[Node] = field(default_factory=list)

    def label(self) -> str:
        suffix = "/" if self.kind == "dir" and not self.name.endswith("/") else ""
        return f"{self.name}{suffix}" + (f"  {self.detail}" if self.detail else "")


_STYLES = {"dir": "bold blue", "symlink": "cyan", "char": "yellow", "block": "yellow"}


def _describe(path: str, st: os.stat_result) -> tuple[str, str]:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "dir", ""
    if stat.S_ISLNK(mode):
        try:
            return "symlink", f"-> {os.readlink(path)}"
        except OSError:
            return "symlink", "-> ?"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "char" if stat.S_ISCHR(mode) else "block"
        dev = st.st_rdev
        return kind, f"{kind} {os.major(dev)},{os.minor(dev)}"
    if stat.S_ISFIFO(mode):
        return "fifo", ""
    if stat.S_ISSOCK(mode):
        return "socket", ""
    if stat.S_ISREG(mode):
        return "file", f"{st.st_size} bytes"
    return "unknown", ""


def snapshot(path: str | os.PathLike[str], depth: int = 2, limit: int = 40) -> Node:
    """Walk ``path`` (never following symlinks, never leaving ``depth``) into a :class:`Node`.

    ``path`` may be a magic link such as ``/proc/PID/root/dev``: the walk then sees the
    directory exactly as that process does, mounts included.
    """
    root = os.fspath(path)

    def walk(current: str, name: str, level: int) -> Node:
        try:
            # The top is followed if it is a link (/proc/PID/root is one); nothing below is.
            st = os.stat(current) if level == 0 else os.lstat(current)
        except OSError as exc:
            return Node(name, "unknown", f"({exc.strerror})")
        kind, detail = _describe(current, st)
        node = Node(name, kind, detail)
        if kind == "dir" and level < depth:
            try:
                names = sorted(os.listdir(current))
            except OSError as exc:
                node.detail = f"({exc.strerror})"
                return node
            for child in names[:limit]:
                node.children.append(walk(os.path.join(current, child), child, level + 1))
            if len(names) > limit:
                node.children.append(Node(f"… {len(names) - limit} more", "unknown"))
        return node

    return walk(root, Path(root).name or "/", 0)


@dataclass
class Tree:
    """A directory tree, as one process saw it when the step ran."""

    title: str
    root: Node
    pane: str = "tree"

    @classmethod
    def of(
        cls, title: str, path: str | os.PathLike[str], *, depth: int = 2, name: str | None = None
    ) -> Tree:
        node = snapshot(path, depth)
        if name is not None:
            node.name = name
        return cls(title, node)

    def text(self) -> str:
        lines: list[str] = [self.root.label()]

        def add(node: Node, prefix: str) -> None:
            for i, child in enumerate(node.children):
                last = i == len(node.children) - 1
                lines.append(prefix + ("└── " if last else "├── ") + child.label())
                add(child, prefix + ("    " if last else "│   "))

        add(self.root, "")
        return "\n".join(lines)

    def renderable(self) -> RenderableType:
        def label(node: Node) -> Text:
            return Text(node.label(), style=_STYLES.get(node.kind, ""))

        tree = RichTree(label(self.root))

        def add(rich: RichTree, node: Node) -> None:
            for child in node.children:
                add(rich.add(label(child)), child)

        add(tree, self.root)
        return tree


Observation = MountChange | MountList | Namespaces | Output | Facts | Tree


def as_text(observation: Observation) -> str:
    """Title and body, for the plain runner."""
    return f"── {observation.title} ──\n{observation.text()}"


def group(observations: list[Observation]) -> RenderableType:
    """Several observations under their titles, as one renderable."""
    parts: list[RenderableType] = []
    for observation in observations:
        parts.append(Text(observation.title, style="bold underline"))
        parts.append(observation.renderable())
        parts.append(Text(""))
    return Group(*parts)
