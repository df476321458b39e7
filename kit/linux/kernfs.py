"""Reading and writing the kernel's control files (procfs, cgroupfs), traced.

Much of the kernel is configured by writing short text into special files: a user namespace's
id map is ``/proc/PID/uid_map``, a memory limit is ``memory.max`` in a cgroup directory.
Each write is one write(2) call, and the kernel parses and validates the text in it: a map
must be written in a single write, and a refused value fails the write with an errno.

``dir_fd`` lets a caller keep working on a directory after its path stopped being reachable
(the init parent's root moves when the container pivots in a mount namespace they share).
"""

from __future__ import annotations

import os

from kit.linux.syscall import quote, traced


def _shown(path: str, dir_fd: int | None, shown: str | None) -> str:
    """The path as the trace prints it: the full path the caller names, like strace -y."""
    if shown is not None:
        return quote(shown)
    return quote(path) if dir_fd is None else f"{dir_fd}, {quote(path)}"


def write_text(
    path: str,
    text: str,
    *,
    dir_fd: int | None = None,
    shown: str | None = None,
    note: str | None = None,
) -> None:
    """Write ``text`` to a kernel file in one write(2), without creating it (O_TRUNC, as a
    shell's ``>`` has, means nothing to these files; it lets a test's plain files stand in)."""

    def write() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            data = text.encode()
            if os.write(fd, data) != len(data):
                raise OSError(5, "short write")  # EIO: the kernel took only part of it
        finally:
            os.close(fd)

    traced(
        "write",
        [_shown(path, dir_fd, shown), quote(text)],
        write,
        context={"path": shown or path, "value": text.strip()},
        note=note,
    )


def write_fd(fd: int, text: str, *, shown: str, note: str | None = None) -> None:
    """Write ``text`` in one write(2) to a kernel file that is already open (``shown``: its
    path, for the trace). The kernel judges such a write with the credentials of whoever
    opened the file, which lets a process use a file its parent opened for it."""

    def write() -> None:
        data = text.encode()
        if os.write(fd, data) != len(data):
            raise OSError(5, "short write")

    traced(
        "write",
        [quote(shown), quote(text)],
        write,
        context={"path": shown, "value": text.strip()},
        note=note,
    )


def read_text(path: str, *, dir_fd: int | None = None) -> str:
    """Read a small kernel file (untraced: reading changes nothing)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def make_dir(
    path: str, *, dir_fd: int | None = None, shown: str | None = None, note: str | None = None
) -> None:
    """mkdir(2) in a kernel filesystem (in cgroupfs, this creates a cgroup)."""
    traced(
        "mkdir",
        [_shown(path, dir_fd, shown), "0755"],
        lambda: os.mkdir(path, 0o755, dir_fd=dir_fd),
        context={"path": shown or path},
        note=note,
    )


def remove_dir(
    path: str, *, dir_fd: int | None = None, shown: str | None = None, note: str | None = None
) -> None:
    """rmdir(2) in a kernel filesystem (in cgroupfs, this removes an empty cgroup)."""
    traced(
        "rmdir",
        [_shown(path, dir_fd, shown)],
        lambda: os.rmdir(path, dir_fd=dir_fd),
        context={"path": shown or path},
        note=note,
    )
