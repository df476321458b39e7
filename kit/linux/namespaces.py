"""Namespaces: unshare(2), setns(2), and reading a process's namespace ids.

A namespace id is the inode number of ``/proc/PID/ns/<type>``; two processes are in the same
namespace exactly when the ids match. Lessons compare them inside and outside a container.
"""

from __future__ import annotations

import os

from kit.linux.flags import CLONE, NAMESPACES
from kit.linux.syscall import check, libc, traced

#: The /proc/PID/ns entries kit compares (time and user are shown when present).
NS_FILES = ("mnt", "pid", "uts", "ipc", "net", "cgroup", "user", "time")


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (CLONE_NEWPID affects its next child)."""
    traced(
        "unshare",
        [CLONE.render(flags)],
        lambda: check(libc.unshare(flags)),
        context={"flags": CLONE.render(flags)},
    )


def setns(fd: int, nstype: int, *, path: str | None = None) -> None:
    """Join the namespace open on ``fd`` (e.g. ``/proc/PID/ns/mnt``)."""
    shown = f"{fd}</{path.lstrip('/')}>" if path else str(fd)
    traced(
        "setns",
        [shown, CLONE.render(nstype)],
        lambda: check(libc.setns(fd, nstype)),
        context={"path": path},
    )


def join_namespace(path: str, nstype: int) -> None:
    """Open a namespace file and join it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype, path=path)
    finally:
        os.close(fd)


def namespace_ids(pid: int | str = "self") -> dict[str, int]:
    """The namespace ids (inode numbers) of a process, e.g. ``{"mnt": 4026531841, ...}``."""
    ids: dict[str, int] = {}
    for name in NS_FILES:
        try:
            ids[name] = os.stat(f"/proc/{pid}/ns/{name}").st_ino
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return ids


def clone_flags(types: list[str]) -> int:
    """CLONE_NEW* flags for OCI namespace type names (``["mount", "pid", ...]``)."""
    flags = 0
    for kind in types:
        flags |= NAMESPACES[kind][0]
    return flags
