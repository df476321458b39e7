"""Resolving a container path inside a root directory, as if that directory were ``/``.

Before pivot_root, kit mounts things at paths inside the root filesystem: ``/proc`` becomes
``ROOTFS/proc``. A root filesystem is not trusted: ``ROOTFS/proc`` may be a symlink to
``/etc``, and following it on the host would mount onto the host's ``/etc``. So every path is
resolved component by component, and a symlink is read and followed *within* the root: an
absolute target restarts at the root, and ``..`` never climbs above it. This is what runc's
securejoin does, and what the kernel's ``openat2(RESOLVE_IN_ROOT)`` does in one call
(:func:`open_in_root`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque

from kit.errors import KitError
from kit.linux.flags import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS

MAX_SYMLINKS = 40  # the kernel's own limit (MAXSYMLINKS) for one path lookup


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def resolve_in_root(root: str, path: str) -> str:
    """The host path of container path ``path`` under ``root``; never outside ``root``.

    Missing components are appended as they are (the caller may create them).
    """
    root = os.path.abspath(root)
    pending = deque(_components(path))
    resolved: list[str] = []
    followed = 0
    while pending:
        part = pending.popleft()
        if part == "..":
            if resolved:
                resolved.pop()  # ".." at the root stays at the root, as in the kernel
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            info = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if not stat.S_ISLNK(info.st_mode):
            resolved.append(part)
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise KitError(
                f"too many symlinks resolving {path} in {root}",
                errno=errno.ELOOP,
                cause="the root filesystem contains a symlink loop",
                fix="fix the symlinks in the root filesystem",
            )
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []  # an absolute symlink means the container's root, not the host's
        pending.extendleft(reversed(_components(target)))
    return os.path.join(root, *resolved)


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """Open ``path`` beneath an open root directory; the kernel keeps the lookup inside it."""
    from kit.linux.fs import openat2

    return openat2(root_fd, path, flags | os.O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
