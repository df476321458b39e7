"""Mounting: mount(2), umount2(2) and pivot_root(2).

The newer file-descriptor based mount API (fsopen/fsconfig/fsmount/move_mount/mount_setattr)
lives in :mod:`kit.linux.newmount`.
"""

from __future__ import annotations

import ctypes

from kit.linux.flags import MS, UMOUNT
from kit.linux.syscall import check, libc, quote, raw_syscall, traced

libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _b(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


def mount(
    source: str | None,
    target: str,
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
    *,
    note: str | None = None,
) -> None:
    """mount(2). ``note`` explains the call in the trace (e.g. which volume this is)."""
    traced(
        "mount",
        [quote(source), quote(target), quote(fstype), MS.render(flags), quote(data)],
        lambda: check(libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))),
        context={"source": source, "target": target, "fstype": fstype, "data": data},
        note=note,
    )


def umount2(target: str, flags: int = 0, *, note: str | None = None) -> None:
    """umount2(2)."""
    traced(
        "umount2",
        [quote(target), UMOUNT.render(flags)],
        lambda: check(libc.umount2(_b(target), flags)),
        context={"target": target},
        note=note,
    )


def pivot_root(new_root: str, put_old: str, *, note: str | None = None) -> None:
    """pivot_root(2): make ``new_root`` the root mount and move the old root to ``put_old``.

    glibc has no wrapper for it, so it goes through syscall(2).
    """
    traced(
        "pivot_root",
        [quote(new_root), quote(put_old)],
        lambda: raw_syscall("pivot_root", _b(new_root), _b(put_old)),
        context={"new_root": new_root, "put_old": put_old},
        note=note,
    )
