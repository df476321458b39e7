"""Reading kernel state for checks and observations: small, read-only helpers.

Checks must look at the kernel, not at what the lesson remembers doing. Everything here reads
``/proc`` or the filesystem and changes nothing.
"""

from __future__ import annotations

import os

from kit.linux.namespaces import namespace_ids


def alive(pid: int | None) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def identity(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(device, inode): two paths with the same identity are the same directory."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def root_of(pid: int) -> tuple[int, int]:
    """The identity of a process's root directory (``/proc/PID/root``)."""
    return identity(f"/proc/{pid}/root")


def host_root() -> tuple[int, int]:
    return identity("/")


def namespaces_of(pid: int | str = "self") -> dict[str, int]:
    return namespace_ids(pid)


def new_namespaces(pid: int) -> set[str]:
    """The namespaces a process does *not* share with us."""
    inside, outside = namespace_ids(pid), namespace_ids()
    return {name for name, ino in inside.items() if outside.get(name) != ino}


def numeric_entries(directory: str | os.PathLike[str]) -> list[int]:
    """The PIDs a /proc lists (its numeric entries)."""
    try:
        return sorted(int(name) for name in os.listdir(directory) if name.isdigit())
    except OSError:
        return []


def read_text(path: str | os.PathLike[str], limit: int = 65536) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(limit)
    except OSError:
        return None


def status(pid: int | str | None) -> dict[str, str]:
    """The fields of ``/proc/PID/status`` (``Uid``, ``CapEff``, ``Seccomp`` ...; PID may be
    ``"self"``), as the host reads them; empty when there is no such process."""
    text = read_text(f"/proc/{pid}/status") if pid else None
    fields: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def command_name(pid: int) -> str | None:
    """The kernel's name for a process's program (``/proc/PID/comm``)."""
    text = read_text(f"/proc/{pid}/comm")
    return text.strip() if text is not None else None


def under(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or below it (by name: ``/a/bc`` is not under ``/a/b``)."""
    directory = directory.rstrip("/")
    return path == directory or path.startswith(directory + "/")
