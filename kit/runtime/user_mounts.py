"""The mounts a user asks for (``-v``, ``--tmpfs``, ``--mount``), as checked OCI mount entries.

Three kinds, all ending up in ``spec.mounts`` and mounted by the ``volumes`` stage:

* a **bind mount** ``-v /host/dir:/data[:ro]``: a host directory (or file) appears in the
  container; writes go straight to the host;
* a **named volume** ``-v name:/data``: a bind mount of a directory kit keeps
  (:mod:`kit.volumes`), created on first use and kept after the container is gone;
* a **tmpfs** ``--tmpfs /scratch:size=16m,noexec``: memory-backed, empty at start, gone at
  exit. Like Docker's, it is ``nosuid,nodev,noexec`` unless told otherwise.

``--mount type=bind|volume|tmpfs,source=..,target=..,readonly`` is the long form of the same.
Requests that cannot be right are refused before anything is created: a host path that does
not exist, two mounts at one place, a mount that would replace ``/`` or hide /proc,
contradicting options (``ro`` with ``rw``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from kit.errors import KitError
from kit.linux.flags import MOUNT_OPTION_FLAGS, PROPAGATION_FLAGS
from kit.spec import Mount

#: A few /proc files LXCFS-style tools replace with their own; anything else under /proc is
#: the kernel's view of the container's processes, and hiding it is refused (runc's list).
PROC_ALLOWED = (
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
)

#: What --tmpfs starts from (Docker's defaults); the user's words come after and may undo them.
TMPFS_DEFAULTS = ("nosuid", "nodev", "noexec")

_SIZE = re.compile(r"^\d+[kKmMgG%]?$")
_MODE = re.compile(r"^[0-7]{3,4}$")
_NUMBER = re.compile(r"^\d+$")

#: Pairs of words that contradict each other within one request.
_OPPOSITES = (("ro", "rw"), ("exec", "noexec"), ("suid", "nosuid"), ("dev", "nodev"))


@dataclass
class Requested:
    """One mount the user asked for, and where (for error messages)."""

    mount: Mount
    flag: str
    #: The named volume behind a bind, if any (copied into from the image when empty).
    volume: str | None = None
    nocopy: bool = False


def _error(flag: str, problem: str, fix: str, cause: str | None = None) -> KitError:
    return KitError(f"{flag}: {problem}", cause=cause, fix=fix, exit_code=2)


def check_destination(destination: str, flag: str) -> str:
    """An absolute, normalised destination that does not replace / or hide /proc."""
    if not destination.startswith("/"):
        raise _error(flag, f"the container path {destination!r} is not absolute", "start it with /")
    path = os.path.normpath(destination)
    path = "/" + path.lstrip("/")
    if path == "/":
        raise _error(
            flag,
            "a mount cannot replace the container's root directory",
            "mount at a directory below / (use --rootfs to choose the root itself)",
        )
    if (path == "/proc" or path.startswith("/proc/")) and path not in PROC_ALLOWED:
        raise _error(
            flag,
            f"mounting over {path} would hide the kernel's /proc",
            "choose another path: /proc shows the container's own processes, and files "
            "mounted over it have been used to escape containers (runc refuses them too)",
        )
    return path


def _check_words(words: list[str], flag: str) -> None:
    for one, other in _OPPOSITES:
        if one in words and other in words:
            raise _error(flag, f"{one} and {other} contradict each other", "keep one of them")
    modes = [w for w in words if w in PROPAGATION_FLAGS]
    if len(modes) > 1:
        raise _error(flag, f"two propagation modes ({', '.join(modes)})", "keep one of them")


def _host_source(text: str, flag: str) -> str:
    path = os.path.abspath(os.path.expanduser(text))
    if not os.path.exists(path):
        raise _error(
            flag,
            f"the host path {text} does not exist",
            f"create it first (mkdir -p {path}), or correct the path",
            cause="kit does not create bind-mount sources: a typo would silently mount an "
            "empty new directory",
        )
    return path


def _is_host_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or text in (".", "..")


def _bind(destination: str, source: str, words: list[str]) -> Mount:
    # Docker's binds are recursive (rbind) and private unless a propagation mode is given.
    options = ["rbind"]
    options += [w for w in words if w in PROPAGATION_FLAGS] or ["rprivate"]
    if "ro" in words:
        options.append("ro")
    return Mount(destination, "bind", source, options)


def parse_volume(text: str) -> Requested:
    """``-v SOURCE:DEST[:OPTIONS]`` with OPTIONS ro|rw, a propagation mode, nocopy."""
    flag = f"-v {text}"
    parts = text.split(":")
    if len(parts) == 1:
        raise _error(
            flag,
            "anonymous volumes are not supported",
            f"name the volume (-v NAME:{text}) or give a host path (-v /host/dir:{text})",
        )
    if len(parts) > 3:
        raise _error(flag, "too many ':'", "write SOURCE:DEST or SOURCE:DEST:OPTIONS")
    source, destination = parts[0], parts[1]
    words = [w for w in (parts[2].split(",") if len(parts) == 3 else []) if w]
    allowed = {"ro", "rw", "nocopy", *PROPAGATION_FLAGS}
    for word in words:
        if word in ("z", "Z"):
            raise _error(flag, f"{word} relabels for SELinux, which kit does not use", "drop it")
        if word not in allowed:
            raise _error(flag, f"unknown option {word!r}", f"use {', '.join(sorted(allowed))}")
    _check_words(words, flag)
    if not source:
        raise _error(flag, "the source is empty", "give a host path or a volume name")
    destination = check_destination(destination, flag)
    if _is_host_path(source):
        if "nocopy" in words:
            raise _error(flag, "nocopy applies to named volumes only", "drop nocopy")
        return Requested(_bind(destination, _host_source(source, flag), words), flag)
    if "/" in source:
        raise _error(
            flag,
            f"{source!r} is neither an absolute path nor a volume name",
            f"write a host path as /... or ./{source}",
        )
    from kit import volumes

    volumes.check_name(source)
    return Requested(
        _bind(destination, str(volumes.Volume(source).mountpoint), words),
        flag,
        volume=source,
        nocopy="nocopy" in words,
    )


def _tmpfs_option(word: str, flag: str) -> None:
    key, _, value = word.partition("=")
    checks = {"size": _SIZE, "mode": _MODE, "uid": _NUMBER, "gid": _NUMBER, "nr_inodes": _SIZE}
    if key in checks and value:
        if not checks[key].match(value):
            raise _error(flag, f"bad value for {key}: {value!r}", _TMPFS_HELP)
        return
    if word in MOUNT_OPTION_FLAGS and word not in ("bind", "rbind", "remount"):
        return
    raise _error(flag, f"unknown tmpfs option {word!r}", _TMPFS_HELP)


_TMPFS_HELP = (
    "tmpfs options are ro, rw, exec, noexec, suid, nosuid, dev, nodev, size=64m (or k, g, %), "
    "mode=1777, uid=N, gid=N, nr_inodes=N"
)


def _tmpfs(destination: str, words: list[str], flag: str) -> Mount:
    for word in words:
        _tmpfs_option(word, flag)
    _check_words(words, flag)
    sizes = [w for w in words if w.startswith("size=")]
    if len(sizes) > 1:
        raise _error(flag, "two sizes", "give size= once")
    return Mount(destination, "tmpfs", "tmpfs", [*TMPFS_DEFAULTS, *words])


def parse_tmpfs(text: str) -> Requested:
    """``--tmpfs DEST[:OPTIONS]``."""
    flag = f"--tmpfs {text}"
    destination, _, options = text.partition(":")
    destination = check_destination(destination, flag)
    words = [w for w in options.split(",") if w]
    return Requested(_tmpfs(destination, words, flag), flag)


_MOUNT_KEYS = (
    "type",
    "source",
    "src",
    "target",
    "destination",
    "dst",
    "readonly",
    "ro",
    "bind-propagation",
    "volume-nocopy",
    "tmpfs-size",
    "tmpfs-mode",
)


def _truth(value: str, key: str, flag: str) -> bool:
    if value in ("", "true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise _error(flag, f"{key}={value!r} is not true or false", f"write {key} or {key}=false")


def parse_mount(text: str) -> Requested:
    """``--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,...]``."""
    flag = f"--mount {text}"
    fields: dict[str, str] = {}
    for item in text.split(","):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key not in _MOUNT_KEYS:
            raise _error(flag, f"unknown key {key!r}", f"use {', '.join(_MOUNT_KEYS)}")
        key = {"src": "source", "destination": "target", "dst": "target", "ro": "readonly"}.get(
            key, key
        )
        if key in fields:
            raise _error(flag, f"{key} is given twice", "give each key once")
        fields[key] = value
    kind = fields.get("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise _error(flag, f"unknown type {kind!r}", "use type=bind, type=volume or type=tmpfs")
    if "target" not in fields:
        raise _error(flag, "no target", "add target=/path/in/container")
    readonly = _truth(fields["readonly"], "readonly", flag) if "readonly" in fields else False
    words = ["ro"] if readonly else []
    if "bind-propagation" in fields:
        if kind != "bind":
            raise _error(flag, "bind-propagation is for type=bind", "drop it")
        if fields["bind-propagation"] not in PROPAGATION_FLAGS:
            raise _error(
                flag,
                f"unknown propagation {fields['bind-propagation']!r}",
                f"use one of {', '.join(PROPAGATION_FLAGS)}",
            )
        words.append(fields["bind-propagation"])
    for key in ("tmpfs-size", "tmpfs-mode"):
        if key in fields and kind != "tmpfs":
            raise _error(flag, f"{key} is for type=tmpfs", "drop it")
    if "volume-nocopy" in fields and kind != "volume":
        raise _error(flag, "volume-nocopy is for type=volume", "drop it")
    destination = check_destination(fields["target"], flag)
    if kind == "tmpfs":
        if fields.get("source"):
            raise _error(flag, "a tmpfs has no source", "drop source=")
        if "tmpfs-size" in fields:
            words.append(f"size={fields['tmpfs-size']}")
        if "tmpfs-mode" in fields:
            words.append(f"mode={fields['tmpfs-mode']}")
        return Requested(_tmpfs(destination, words, flag), flag)
    source = fields.get("source", "")
    if not source:
        what = "a host path" if kind == "bind" else "a volume name"
        raise _error(flag, "no source", f"add source=... ({what})")
    if kind == "bind":
        return Requested(_bind(destination, _host_source(source, flag), words), flag)
    from kit import volumes

    volumes.check_name(source)
    nocopy = (
        _truth(fields["volume-nocopy"], "volume-nocopy", flag)
        if "volume-nocopy" in fields
        else False
    )
    return Requested(
        _bind(destination, str(volumes.Volume(source).mountpoint), words),
        flag,
        volume=source,
        nocopy=nocopy,
    )


def _depth(path: str) -> int:
    return path.rstrip("/").count("/")


def merge(existing: list[Mount], requested: list[Requested]) -> list[Mount]:
    """The spec's mounts with the requested ones added.

    A request at the destination of a default mount (kit's /tmp tmpfs, /dev/shm) replaces it;
    two requests at one destination are refused. Requests are mounted parents first (/data
    before /data/logs), whatever order they were given in, as Docker does.
    """
    seen: dict[str, str] = {}
    for item in requested:
        destination = item.mount.destination
        if destination in seen:
            raise _error(
                item.flag,
                f"{destination} is already the target of {seen[destination]}",
                "mount one thing at each container path",
            )
        seen[destination] = item.flag
    kept = [m for m in existing if os.path.normpath(m.destination) not in seen]
    ordered = sorted(requested, key=lambda item: _depth(item.mount.destination))
    return kept + [item.mount for item in ordered]
