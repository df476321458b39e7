"""Filesystem calls the init makes: mkdir(2), mknod(2), symlink(2), chmod(2), openat2(2)."""

from __future__ import annotations

import ctypes
import os

from kit.linux.flags import RESOLVE, S_IFBLK, S_IFCHR, render_open_flags
from kit.linux.syscall import quote, raw_syscall, traced


def mkdir(path: str, mode: int = 0o755) -> None:
    traced(
        "mkdir", [quote(path), f"0{mode:o}"], lambda: os.mkdir(path, mode), context={"path": path}
    )


def mknod(path: str, kind: str, major: int, minor: int, mode: int = 0o666) -> None:
    """Create a device node; ``kind`` is ``c`` (character) or ``b`` (block)."""
    type_bits = S_IFCHR if kind == "c" else S_IFBLK
    type_name = "S_IFCHR" if kind == "c" else "S_IFBLK"
    traced(
        "mknod",
        [quote(path), f"{type_name}|0{mode:o}", f"makedev({major}, {minor})"],
        lambda: os.mknod(path, type_bits | mode, os.makedev(major, minor)),
        context={"path": path},
    )


def symlink(target: str, path: str) -> None:
    traced(
        "symlink",
        [quote(target), quote(path)],
        lambda: os.symlink(target, path),
        context={"path": path},
    )


def chmod(path: str, mode: int) -> None:
    traced(
        "chmod", [quote(path), f"0{mode:o}"], lambda: os.chmod(path, mode), context={"path": path}
    )


def chown(path: str, uid: int, gid: int) -> None:
    traced(
        "lchown",
        [quote(path), str(uid), str(gid)],
        lambda: os.lchown(path, uid, gid),
        context={"path": path},
    )


def create_file(path: str, mode: int = 0o644) -> None:
    """Create an empty file (a mount point for a file bind mount)."""

    def create() -> None:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode))

    traced(
        "open",
        [quote(path), "O_WRONLY|O_CREAT|O_CLOEXEC|O_NOFOLLOW", f"0{mode:o}"],
        create,
        context={"path": path},
    )


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


AT_FDCWD = -100


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open ``path`` relative to ``dirfd`` with resolution rules.

    With RESOLVE_IN_ROOT every lookup (``..``, absolute symlinks) treats ``dirfd`` as ``/``:
    the kernel itself guarantees the result lies inside that directory.
    """
    how = _OpenHow(flags, mode, resolve)
    shown_dir = "AT_FDCWD" if dirfd == AT_FDCWD else str(dirfd)
    return traced(
        "openat2",
        [
            shown_dir,
            quote(path),
            f"{{flags={render_open_flags(flags)}, resolve={RESOLVE.render(resolve)}}}",
            str(ctypes.sizeof(how)),
        ],
        lambda: raw_syscall(
            "openat2",
            ctypes.c_int(dirfd),
            path.encode(),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        ),
        context={"path": path},
    )
