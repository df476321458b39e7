"""Where every file came from: the view models behind ``kit layers``, ``kit which``, ``kit diff``.

The domain is a stack of directories in overlayfs's form (bottom first): the image's layers,
and for a container its writable layer on top. Reading them the way overlayfs does gives:

* **per layer** (:func:`layer_stack`): which paths the layer added (A), changed (C, it
  shadows a lower version) or removed (D, a whiteout; or everything below an opaque
  directory), with sizes, and the *wasted* bytes: file contents in lower layers that no one
  can see any more, because a higher layer replaced or deleted them (what dive reports);
* **per path** (:func:`which`): which layer supplies it, which lower versions it shadows, or
  which whiteout or opaque directory hides it, and whether a mount covers it in a container;
* **per container** (:func:`container_diff`): its writable layer read as ``docker diff`` does.

Each result renders as plain text lines (``lines()``), tested against golden files; the CLI
prints those lines, lessons and the TUI can render the same data.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kit import overlay


@dataclass
class Change:
    """One path a layer touches. ``kind``: A added, C changed, D deleted."""

    kind: str
    path: str
    size: int = 0
    type: str = "file"
    note: str = ""

    def line(self) -> str:
        size = human(self.size) if self.type == "file" and self.kind != "D" else ""
        suffix = "/" if self.type == "dir" else ""
        arrow = f"  ({self.note})" if self.note else ""
        return f"{self.kind} {size:>8}  {self.path}{suffix}{arrow}"


@dataclass
class LayerView:
    """One layer of a stack, as ``kit layers`` shows it."""

    index: int
    label: str
    created_by: str
    changes: list[Change] = field(default_factory=list)
    #: Bytes of regular files this layer adds or replaces (its content size).
    size: int = 0
    #: Bytes of lower files this layer makes unreachable (replaced or deleted).
    wasted: int = 0

    def counts(self) -> dict[str, int]:
        out = {"A": 0, "C": 0, "D": 0}
        for change in self.changes:
            out[change.kind] += 1
        return out


@dataclass
class StackView:
    layers: list[LayerView]

    @property
    def wasted(self) -> int:
        return sum(layer.wasted for layer in self.layers)

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def lines(self, *, max_changes: int | None = None) -> list[str]:
        """The plain-text view: a header per layer, then its changes."""
        out: list[str] = []
        for layer in self.layers:
            c = layer.counts()
            out.append(
                f"layer {layer.index}  {layer.label}  size {human(layer.size)}  "
                f"+{c['A']} ~{c['C']} -{c['D']}  wasted {human(layer.wasted)}"
            )
            if layer.created_by:
                out.append(f"  {layer.created_by}")
            shown = layer.changes if max_changes is None else layer.changes[:max_changes]
            out += ["  " + change.line() for change in shown]
            if len(shown) < len(layer.changes):
                out.append(f"  ... {len(layer.changes) - len(shown)} more")
        out.append(
            f"total {human(self.size)} in {len(self.layers)} layers, "
            f"wasted {human(self.wasted)} ({_percent(self.wasted, self.size)})"
        )
        return out


def human(n: int) -> str:
    """Sizes the way ``docker images`` shows them (powers of 1000)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def _kind(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    return "special"


def walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``root`` as (``/path``, lstat), parents before children, sorted."""
    stack = [("", str(root))]
    while stack:
        rel, directory = stack.pop()
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        subdirs = []
        for name in names:
            full = os.path.join(directory, name)
            st = os.lstat(full)
            path = f"{rel}/{name}"
            yield path, st
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((path, full))
        stack.extend(reversed(subdirs))


@dataclass
class _Entry:
    size: int
    type: str
    layer: int


def _below(merged: dict[str, _Entry], path: str) -> list[str]:
    prefix = path.rstrip("/") + "/"
    return [p for p in merged if p.startswith(prefix)]


def _drop(merged: dict[str, _Entry], paths: list[str]) -> int:
    """Take ``paths`` out of the merged view; return their bytes, now wasted."""
    wasted = sum(merged[p].size for p in paths)
    for p in paths:
        del merged[p]
    return wasted


def layer_stack(
    layers: Iterable[tuple[Path, str, str]], *, userxattr: bool | None = None
) -> StackView:
    """Read a stack of overlay-form directories, bottom first: (dir, label, created_by)."""
    merged: dict[str, _Entry] = {}
    views: list[LayerView] = []
    for index, (root, label, created_by) in enumerate(layers):
        view = LayerView(index, label, created_by)
        for path, st in walk(root):
            full = str(root) + path
            if overlay.is_whiteout(st):
                gone = [p for p in (path, *_below(merged, path)) if p in merged]
                if not gone:
                    continue  # deleting what no lower layer has: nothing to show
                view.wasted += _drop(merged, gone)
                view.changes.append(Change("D", path, type="whiteout", note="whiteout"))
                continue
            kind = _kind(st)
            size = st.st_size if kind == "file" else 0
            previous = merged.get(path)
            if kind == "dir" and overlay.is_opaque(full, userxattr):
                hidden = _below(merged, path)
                view.wasted += _drop(merged, hidden)
                note = f"opaque: hides {len(hidden)} lower entries" if hidden else "opaque"
                view.changes.append(Change("C" if previous else "A", path, type="dir", note=note))
            elif kind == "dir" and previous is not None and previous.type == "dir":
                pass  # a directory that only holds this layer's changes
            else:
                if previous is not None:  # replaced: it and everything under it
                    view.wasted += previous.size + _drop(merged, _below(merged, path))
                view.changes.append(Change("C" if previous else "A", path, size, kind))
            view.size += size
            merged[path] = _Entry(size, kind, index)
        view.changes.sort(key=lambda c: c.path)
        views.append(view)
    return StackView(views)


# --- which ---------------------------------------------------------------------------------


@dataclass
class Provenance:
    """The story of one path in a stack (top first)."""

    path: str
    #: (layer label, what that layer holds at the path), top first.
    steps: list[tuple[str, str]] = field(default_factory=list)
    #: The label of the layer whose version is visible, if any.
    supplier: str | None = None
    mount: str | None = None

    def lines(self) -> list[str]:
        out = [f"{self.path}"]
        if self.mount:
            out.append(f"  covered by a mount: {self.mount} (image files beneath are hidden)")
        if self.supplier and self.mount:
            out.append(f"  beneath the mount, {self.supplier} holds it")
        elif self.supplier:
            out.append(f"  supplied by {self.supplier}")
        elif not self.mount:
            out.append("  not present in the merged view")
        out += [f"  {label}: {what}" for label, what in self.steps]
        return out


def which(
    layers: list[tuple[Path, str]],
    path: str,
    *,
    mounts: list[tuple[str, str]] | None = None,
    userxattr: bool | None = None,
) -> Provenance:
    """Which layer (bottom-first list of (dir, label)) supplies ``path``, and what it hides.

    ``mounts`` are (destination, description) of a container's mounts: one at or above the
    path covers whatever the layers hold.
    """
    path = "/" + "/".join(p for p in path.split("/") if p)
    result = Provenance(path)
    for destination, description in mounts or []:
        dest = "/" + destination.strip("/")
        if path == dest or path.startswith(dest.rstrip("/") + "/"):
            result.mount = f"{description} at {dest}"
    parts = [p for p in path.split("/") if p]
    hidden_by: str | None = None  # the whiteout or opaque directory that cut the lookup
    for root, label in reversed(layers):
        state = _state(root, parts, userxattr)
        if hidden_by is not None:
            if state is not None and state[1] != "hidden":
                result.steps.append((label, f"{state[0]} (hidden by {hidden_by})"))
            continue
        if state is None:
            continue
        what, status = state
        if status == "hidden":
            result.steps.append((label, what))
            hidden_by = f"{what.split(' (')[0]} in {label}"
            continue
        visible = result.supplier is None
        if visible:
            result.supplier = label
        result.steps.append((label, f"{what} ({'visible' if visible else 'shadowed'})"))
        if status == "present":  # a file or link hides everything below; a directory merges
            hidden_by = f"the {what.split(',')[0].split(' ')[0]} in {label}"
    return result


def _exists(root: Path, parts: list[str]) -> bool:
    return os.path.lexists(os.path.join(root, *parts)) if parts else True


def _state(root: Path, parts: list[str], userxattr: bool | None) -> tuple[str, str] | None:
    """What one layer says about a path: None (nothing), or (description, status).

    status: ``present`` (a file, link or device: it ends the lookup), ``dir`` (a directory:
    lower layers' directories merge with it), ``hidden`` (a whiteout, an opaque parent or a
    non-directory parent: lower layers no longer count).
    """
    for depth in range(1, len(parts)):
        parent = os.path.join(root, *parts[:depth])
        shown = "/" + "/".join(parts[:depth])
        try:
            st = os.lstat(parent)
        except OSError:
            return None
        if overlay.is_whiteout(st):
            return f"whiteout of parent {shown}", "hidden"
        if not stat.S_ISDIR(st.st_mode):
            return f"{shown} is a {_kind(st)} here", "hidden"
        if overlay.is_opaque(parent, userxattr) and not _exists(root, parts):
            return f"opaque directory {shown} hides it", "hidden"
    full = os.path.join(root, *parts) if parts else str(root)
    try:
        st = os.lstat(full)
    except OSError:
        return None
    if overlay.is_whiteout(st):
        return "whiteout (deleted here)", "hidden"
    kind = _kind(st)
    if kind == "file":
        return f"file, {human(st.st_size)}, mode {stat.S_IMODE(st.st_mode):04o}", "present"
    if kind == "symlink":
        return f"symlink -> {os.readlink(full)}", "present"
    if kind == "dir":
        if overlay.is_opaque(full, userxattr):
            return "directory (opaque: lower contents hidden)", "present"
        return "directory", "dir"
    return kind, "present"


# --- container diff ------------------------------------------------------------------------


def container_diff(
    upper: Path, lowers_bottom_first: list[Path], *, userxattr: bool | None = None
) -> list[Change]:
    """``docker diff``: each path of the writable layer as A, C or D (whiteouts interpreted)."""
    out: list[Change] = []

    def in_lowers(path: str) -> bool:
        """Whether the image's merged view shows ``path`` (the topmost layer that speaks)."""
        parts = [p for p in path.split("/") if p]
        for root in reversed(lowers_bottom_first):
            state = _state(root, parts, userxattr)
            if state is not None:
                return state[1] != "hidden"
        return False

    opaque_dirs: list[str] = []
    for path, st in walk(upper):
        if overlay.is_whiteout(st):
            if in_lowers(path):  # a whiteout of nothing (possible, harmless) is no change
                out.append(Change("D", path, type="whiteout"))
            continue
        kind = _kind(st)
        inside_opaque = any(path.startswith(d + "/") for d in opaque_dirs)
        existed = not inside_opaque and in_lowers(path)
        note = ""
        if kind == "dir" and overlay.is_opaque(str(upper) + path, userxattr):
            opaque_dirs.append(path)
            note = "opaque: replaces the lower directory"
        size = st.st_size if kind == "file" else 0
        out.append(Change("C" if existed else "A", path, size, kind, note))
    return sorted(out, key=lambda c: c.path)


def diff_lines(changes: list[Change]) -> list[str]:
    """``C /etc``, ``A /etc/new``, ``D /etc/old`` — the format of ``docker diff``."""
    return [f"{c.kind} {c.path}" + (f"  ({c.note})" if c.note else "") for c in changes]
