"""What a container's cgroup can do, whichever version holds it.

The init parent creates the cgroup, writes the limits and the device policy (every container
kit runs as root has one, see :mod:`kit.cgroups.devices`) and opens its membership files; the
container process joins through them (before it creates its cgroup namespace, so that the
namespace's root *is* this cgroup); after the container exits, the init parent reads whether
the OOM killer struck and removes the cgroup.

Every directory is kept open: the parent may share the container's mount namespace, and once
the container pivots its root, ``/sys/fs/cgroup/...`` no longer names anything for either of
them. Calls relative to an open directory (``openat``, ``unlinkat``) still reach it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from kit.cgroups.device_rules import DevicePolicy
from kit.errors import KitError
from kit.linux.kernfs import make_dir, read_text, remove_dir, write_fd, write_text
from kit.spec import Resources


@dataclass
class Directory:
    """One cgroup directory of the container, in one tree."""

    #: The tree's mount point, e.g. /sys/fs/cgroup/memory.
    mount: str
    #: The container's cgroup path in that tree, e.g. /kit/3f2a9c01-5d1e....
    path: str
    #: Open directories: the container's cgroup and its parent.
    fd: int = -1
    parent_fd: int = -1
    #: In the unified (v2) tree: device rules go there as a BPF program, not as files.
    unified: bool = False
    #: The membership file, opened for the container process to join (see join_self).
    join_fd: int = -1

    @property
    def join_file(self) -> str:
        """v1's ``tasks`` (one thread, the writer itself: no global lock); v2 has only
        ``cgroup.procs`` across cgroups."""
        return "cgroup.procs" if self.unified else "tasks"

    @property
    def host_path(self) -> str:
        return self.mount + self.path

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def file(self, name: str) -> str:
        """The host path of one of its files, for messages."""
        return f"{self.host_path}/{name}"

    def write(self, name: str, value: str, note: str | None = None) -> None:
        write_text(name, value, dir_fd=self.fd, shown=self.file(name), note=note)

    def read(self, name: str) -> str:
        return read_text(name, dir_fd=self.fd)

    def has(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        for attr in ("fd", "parent_fd", "join_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, attr, -1)


def _open_dir(path: str, dir_fd: int | None = None) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)


def limit_text(value: int) -> str:
    """A limit as pids.max and v2 files take it: the number, or ``max`` (none) for 0 or less."""
    return str(value) if value > 0 else "max"


def counter(text: str, key: str) -> int:
    """The value of ``key`` in a flat-keyed cgroup file (``key value`` per line), else 0."""
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == key:
            return int(words[1])
    return 0


class ContainerCgroup:
    """The container's cgroup, in one tree (v2) or one per controller (v1)."""

    version = 0

    def __init__(self, directories: list[Directory]) -> None:
        self.directories = directories
        #: The directory that holds the device policy (one of ``directories``), if any.
        self.devices: Directory | None = None

    @property
    def path(self) -> str:
        return self.directories[0].path

    def paths(self) -> list[str]:
        """Host paths of the container's cgroup directories."""
        return [d.host_path for d in self.directories]

    # --- creating ----------------------------------------------------------------------------

    def create(self) -> None:
        """mkdir the container's cgroup (and its parents) in every tree; keep them open."""
        try:
            for directory in self.directories:
                self._create_one(directory)
        except BaseException:
            self.remove()
            raise

    def _create_one(self, d: Directory) -> None:
        parts = [p for p in d.path.split("/") if p]
        fd = _open_dir(d.mount)
        where = d.mount
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                self.prepare_parent(fd, where)
                where = f"{where}/{part}"
                try:
                    make_dir(part, dir_fd=fd, shown=where, note="a new cgroup" if last else None)
                except KitError as error:
                    # The shared parents (kit/) exist after the first container; the
                    # container's own directory must be new.
                    if error.errno != errno.EEXIST or last:
                        raise self._explain(error, where) from None
                child = _open_dir(part, dir_fd=fd)
            except BaseException:
                os.close(fd)
                raise
            if last:
                d.parent_fd, d.fd = fd, child
                return
            os.close(fd)
            fd = child

    def prepare_parent(self, fd: int, where: str) -> None:
        """Hook, called on each directory before a child is made in it (v2 hands
        controllers down here)."""

    def _explain(self, error: KitError, where: str) -> KitError:
        if error.errno == errno.EEXIST:
            return KitError(
                f"the cgroup {where} already exists",
                errno=error.errno,
                cause="a container with this id ran before and its cgroup was not removed",
                fix=f"remove it (rmdir {where}) after checking that no process is in it",
            )
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return KitError(
                f"cannot create the cgroup {where}",
                errno=error.errno,
                cause="creating cgroups needs write access to the cgroup tree: root with a "
                "writable /sys/fs/cgroup (a container usually gets it read-only), or a "
                "subtree delegated to you. Every container kit runs as root gets one for its "
                "device policy; limits need one too",
                fix="run kit as root on the host, or mount the cgroup tree writable; rootless "
                "kit needs a cgroup only for --memory/--pids-limit/--cpus. `kit doctor` "
                "shows the cgroup setup",
            )
        return error

    # --- limits, members, outcome --------------------------------------------------------------

    def apply(self, resources: Resources) -> None:
        raise NotImplementedError

    def restrict_devices(self, policy: DevicePolicy) -> None:
        """Apply the device policy (v1 devices files, or a v2 BPF program)."""
        from kit.cgroups.devices import restrict

        assert self.devices is not None
        restrict(self.devices, policy)

    def open_join_files(self) -> None:
        """Open each directory's membership file for writing, for a child to inherit and
        join by itself (:meth:`join_self`). Close-on-exec: the program never gets them."""
        for d in self.directories:
            d.join_fd = os.open(d.join_file, os.O_WRONLY | os.O_CLOEXEC, dir_fd=d.fd)

    def close_join_files(self) -> None:
        for d in self.directories:
            if d.join_fd >= 0:
                os.close(d.join_fd)
                d.join_fd = -1

    def join_self(self) -> None:
        """In the (single-threaded) container process: write 0, "myself", into the files
        the init parent opened. Moving oneself skips the kernel's global migration lock."""
        for d in self.directories:
            write_fd(d.join_fd, "0", shown=d.file(d.join_file), note=f"join {d.path}")
        self.close_join_files()

    def procs(self) -> list[int]:
        """PIDs in the container's cgroup (in any of its trees)."""
        found: set[int] = set()
        for d in self.directories:
            if d.fd < 0:
                continue
            with contextlib.suppress(OSError):
                found.update(int(p) for p in d.read("cgroup.procs").split())
        return sorted(found)

    def oom_kills(self) -> int:
        """How many processes the OOM killer has killed in this cgroup."""
        raise NotImplementedError

    def kill_all(self) -> None:
        """SIGKILL every process still in the cgroup (none, normally: the PID namespace's end
        took them with it)."""
        for pid in self.procs():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Remove the container's cgroup directories (the shared parents stay)."""
        for d in self.directories:
            if d.fd >= 0:
                remove_tree(d.parent_fd, d.name, d.host_path, kill=self.kill_all)
            d.close()

    def close(self) -> None:
        for d in self.directories:
            d.close()


#: rmdir attempts, 10 ms apart, before a cgroup that stays busy is reported.
_REMOVE_ATTEMPTS = 200


def remove_tree(
    parent_fd: int, name: str, shown: str, *, kill: Callable[[], None] | None = None
) -> None:
    """rmdir the cgroup ``name`` (in the directory open as ``parent_fd``) and every cgroup
    below it, deepest first. ``kill`` ends the processes still inside (default: SIGKILL to
    each PID in its ``cgroup.procs``). Used by the init parent for its container, and from
    the host side by ``kit rm -f`` and ``kit doctor --leaks``."""
    # rmdir(2) of a cgroup that still has child cgroups fails with EBUSY. A container
    # engine running inside the container (kit in a lab VM, podman in a lesson) makes
    # cgroups below the container's own: its cgroup namespace shows ours as the root.
    try:
        fd = _open_dir(name, parent_fd)
    except FileNotFoundError:
        return
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                remove_tree(fd, entry.name, f"{shown}/{entry.name}")
        # A cgroup can be removed only when no process is in it. The last member leaves
        # when it is reaped, and the kernel may need a moment to notice: retry briefly.
        for attempt in range(_REMOVE_ATTEMPTS):
            try:
                remove_dir(name, dir_fd=parent_fd, shown=shown)
                return
            except KitError as error:
                if error.errno == errno.ENOENT:
                    return
                if error.errno != errno.EBUSY:
                    raise
                if attempt == _REMOVE_ATTEMPTS - 1:
                    raise KitError(
                        f"cannot remove the cgroup {shown}",
                        errno=error.errno,
                        cause="processes or child cgroups are still in it",
                        fix=f"check with `cat {shown}/cgroup.procs` and `ls {shown}`",
                    ) from None
            if kill is not None:
                kill()
            else:
                _kill_members(fd)
            time.sleep(0.01)
    finally:
        os.close(fd)


def _kill_members(cgroup_fd: int) -> None:
    """SIGKILL the processes in the cgroup open as ``cgroup_fd`` (normally none are left)."""
    with contextlib.suppress(OSError):
        with open(os.open("cgroup.procs", os.O_RDONLY | os.O_CLOEXEC, dir_fd=cgroup_fd)) as f:
            pids = [int(p) for p in f.read().split()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
