"""Named volumes: directories kit keeps for containers, outliving any one of them.

A volume is nothing but a directory on the host, ``<data root>/volumes/NAME/_data``, bind-
mounted into a container (``-v NAME:/path``). Its files survive the container, and the next
container that mounts the volume finds them; that is the whole difference from a container's
own writable files. Next to ``_data`` lives ``volume.json`` (name, creation time, labels).

Like Docker, kit copies what the image has at the mount point into a volume the first time
an empty volume is mounted there (``nocopy`` turns that off), so ``-v data:/var/lib/app``
starts with the image's files rather than hiding them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kit.errors import KitError
from kit.paths import data_root, ensure
from kit.rootpath import resolve_in_root

#: Docker's rule for volume names: letters, digits, and _.- after the first character.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")


@dataclass
class Volume:
    name: str
    created: float = field(default_factory=time.time)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return volumes_dir() / self.name

    @property
    def mountpoint(self) -> Path:
        """The directory containers see (what ``-v NAME:/path`` bind-mounts)."""
        return self.directory / "_data"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "mountpoint": str(self.mountpoint), "driver": "local"}


def volumes_dir() -> Path:
    return data_root() / "volumes"


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    """One lock for the whole volumes directory: create and remove are rare and quick."""
    base = ensure(volumes_dir())
    with open(base / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield base


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise KitError(
            f"invalid volume name {name!r}",
            cause="a volume name is two or more letters, digits, '_', '.' or '-', starting "
            "with a letter or digit",
            fix="choose a name like data or app-cache (a host path must start with / or ./)",
            exit_code=2,
        )


def _load(directory: Path) -> Volume:
    data = json.loads((directory / "volume.json").read_text())
    return Volume(name=data["name"], created=data["created"], labels=data.get("labels", {}))


def create(name: str | None = None, labels: dict[str, str] | None = None) -> Volume:
    """Create a volume (a random name when none is given); an existing one is returned as is."""
    name = name or os.urandom(16).hex()
    check_name(name)
    with _locked() as base:
        directory = base / name
        if (directory / "volume.json").exists():
            return _load(directory)
        volume = Volume(name=name, labels=dict(labels or {}))
        (directory / "_data").mkdir(parents=True, exist_ok=True)
        # Written last and atomically: a volume.json means a complete volume.
        temporary = directory / f".volume.json.{os.getpid()}"
        temporary.write_text(json.dumps(volume.to_dict(), indent=2) + "\n")
        os.replace(temporary, directory / "volume.json")
        return volume


def get(name: str) -> Volume:
    check_name(name)
    directory = volumes_dir() / name
    try:
        return _load(directory)
    except FileNotFoundError:
        raise KitError(
            f"no such volume: {name}",
            fix=f"create it with `kit volume create {name}`, or list them with `kit volume ls`",
        ) from None


def list_volumes() -> list[Volume]:
    base = volumes_dir()
    if not base.is_dir():
        return []
    found = []
    for entry in sorted(base.iterdir()):
        if not entry.is_dir():
            continue  # the lock file
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
            found.append(_load(entry))
    return found


def users(volume: Volume) -> list[str]:
    """Names of the containers (running or stopped, not removed) that mount this volume."""
    from kit.runtime import state

    names = []
    target = str(volume.mountpoint)
    for record in state.list_states():
        try:
            spec = state.load_spec(record.id)
        except KitError:
            continue
        if any(m.source == target for m in spec.mounts):
            names.append(record.name)
    return names


def remove(name: str, *, force: bool = False) -> None:
    """Delete a volume and its files; refused while a container record still uses it."""
    volume = get(name)
    holders = users(volume)
    if holders and not force:
        raise KitError(
            f"volume {name} is in use by {', '.join(holders)}",
            cause="a container that still exists (running or stopped) mounts it",
            fix=f"remove the container first (`kit rm {holders[0]}`), or use --force",
        )
    with _locked():
        shutil.rmtree(volume.directory)


def populate(volume: Volume, rootfs: str, destination: str) -> int:
    """Copy the image's files at ``destination`` into an empty volume; returns files copied.

    Only directories, regular files and symlinks are copied (a device node or FIFO in an
    image is skipped: opening one to copy it could block or touch hardware); owners, modes
    and times are kept. Symlinks are copied as links, never followed, and the source is
    resolved inside the root filesystem, so nothing outside it is read.
    """
    target = volume.mountpoint
    if any(target.iterdir()):
        return 0
    source = resolve_in_root(rootfs, destination)
    if not os.path.isdir(source) or os.path.islink(source):
        return 0
    copied = 0
    directories: list[tuple[Path, os.stat_result]] = []
    for directory, dirnames, filenames in os.walk(source):
        relative = os.path.relpath(directory, source)
        into = target / relative if relative != "." else target
        for name in sorted(dirnames + filenames):
            origin = os.path.join(directory, name)
            info = os.lstat(origin)
            copy = into / name
            if stat.S_ISDIR(info.st_mode):
                copy.mkdir()
                directories.append((copy, info))
            elif stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(origin), copy)
                _keep_metadata(copy, info)
            elif stat.S_ISREG(info.st_mode):
                shutil.copyfile(origin, copy, follow_symlinks=False)
                _keep_metadata(copy, info)
            else:
                continue
            copied += 1
        # os.walk lists symlinks to directories among dirnames but does not enter them.
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(directory, d))]
    # Directories last, deepest first: each entry made in a directory changes its mtime, and
    # a read-only mode would refuse the entries (to anyone but root).
    for copy, info in reversed(directories):
        _keep_metadata(copy, info)
    return copied


def _keep_metadata(copy: Path, info: os.stat_result) -> None:
    """Give ``copy`` the owner, mode and times of the original (a symlink has no mode)."""
    os.lchown(copy, info.st_uid, info.st_gid)
    if not stat.S_ISLNK(info.st_mode):
        # chmod after chown: changing the owner clears the setuid and setgid bits.
        os.chmod(copy, stat.S_IMODE(info.st_mode))
    os.utime(copy, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)
