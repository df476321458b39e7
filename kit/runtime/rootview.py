"""A container's root filesystem, opened from the host without touching the host's mounts.

``kit export`` and ``kit cp`` work on a directory file descriptor of the container's root and
never on a host path, because every lookup made *relative to that fd* with the right flags
(see :mod:`kit.runtime.copy`) stays inside it. How the fd is obtained depends on the state:

* **running, whole tree** (``cp``): ``/proc/PID/root``, the container's root directory as its
  PID 1 sees it, with everything mounted on it (its /tmp tmpfs, its volumes).
* **running, root filesystem only** (``export``): a *detached clone* of the container's root
  mount, made with ``open_tree(OPEN_TREE_CLONE)`` by a short-lived child that joined the
  container's mount namespace (the kernel clones only mounts of the caller's own
  namespace). No /proc, /sys, /dev or volume mounts: the files of the container, as
  ``docker export`` gives them.
* **stopped, from an image**: the overlay (image layers + the container's writable layer)
  mounted with the new mount API (fsopen/fsconfig/fsmount) as a **detached mount**: it
  belongs to no mount namespace, appears in no mount table, and vanishes when the last fd
  to it is closed. The kernel merges the layers and applies whiteouts, exactly as when the
  container ran.
* **stopped, from a root filesystem directory**: a detached clone (``open_tree``) of that
  directory, so mounts that happen to sit below it on the host are not included.

Rootless kit may neither mount nor join a mount namespace from the host (both need
CAP_SYS_ADMIN over the host's mount namespace): a helper process does those two things inside
user namespaces instead, the container's own or a new one with the container's id maps, and
sends the fd back (see :mod:`kit.runtime.root_opener`). Only ``/proc/PID/root`` needs no helper:
the container's processes belong to the user.

Nothing here attaches a mount anywhere: the leak guard, ``findmnt`` and ``/proc/self/mounts``
see no change on the host.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from kit.errors import KitError
from kit.linux import newmount
from kit.runtime import state
from kit.runtime.root_opener import RootJob, open_in_helper
from kit.runtime.state import ContainerState
from kit.security import userns
from kit.spec import IdMapping, Spec


@dataclass
class RootView:
    """An open root of a container: ``fd`` (O_PATH directory) and how it was made."""

    fd: int
    kind: str  # "proc-root", "root-mount-clone", "overlay", "rootfs-clone"
    #: Host PID of the running container whose root this is, if any.
    pid: int = 0
    #: uid and gid on the host of the container's root user (user namespaces shift them).
    root_uid: int = 0
    root_gid: int = 0
    #: Host ids of its files -> the container's ids, through every range of the container's
    #: id maps (None: no user namespace, the ids are the same).
    owners: userns.IdTranslation | None = None


def _set_ids(view: RootView, spec: Spec) -> None:
    """Fill in how the container's ids appear on the host (user namespaces shift them)."""
    owners = userns.container_ids(spec)
    if owners is None:
        return

    def root(mappings: list[IdMapping]) -> int:
        return next((m.host_id for m in mappings if m.container_id == 0), 0)

    view.root_uid, view.root_gid = root(owners.uids), root(owners.gids)
    view.owners = owners


def _running(record: ContainerState) -> bool:
    return (
        record.status in (state.RUNNING, state.CREATED)
        and record.pid > 0
        and state.is_alive(record.pid, record.pid_start)
    )


@contextlib.contextmanager
def open_root(record: ContainerState, *, whole_tree: bool) -> Iterator[RootView]:
    """The container's root as an fd (see the module docstring); closed on exit."""
    spec: Spec | None
    if _running(record):
        view = _process_root(record.pid, record.pid_start, whole_tree)
        try:
            spec = state.load_spec(record.id)
        except KitError:  # a running container needs no spec to be opened
            spec = None
    else:
        spec = state.load_spec(record.id)
        view = _open_stopped(record, spec)
    if spec is not None:
        _set_ids(view, spec)
    try:
        yield view
    finally:
        os.close(view.fd)


def _process_root(pid: int, start: int, whole_tree: bool) -> RootView:
    if whole_tree:
        fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        kind = "proc-root"
    else:
        fd = clone_root_mount(pid)
        kind = "root-mount-clone"
    # Opened by PID: make sure it is still the container (PIDs are reused).
    if not state.is_alive(pid, start):
        os.close(fd)
        raise KitError(f"process {pid} ended while kit opened its root", fix="try again")
    return RootView(fd, kind, pid)


@contextlib.contextmanager
def open_process_root(pid: int, start: int = 0, *, whole_tree: bool = True) -> Iterator[RootView]:
    """The root of a running process (any container, recorded by kit or not): its whole
    tree (``/proc/PID/root``), or a detached clone of its root mount alone."""
    view = _process_root(pid, start, whole_tree)
    try:
        yield view
    finally:
        os.close(view.fd)


def _open_stopped(record: ContainerState, spec: Spec) -> RootView:
    """A stopped container's root: its overlay, or a clone of its root filesystem directory."""
    if spec.kit.overlay is not None:
        if userns.host_root():
            from kit import overlay

            layers = spec.kit.overlay
            fd = overlay.detached_overlay(
                layers.lowers, layers.upper, layers.work, userxattr=layers.userxattr
            )
        else:
            fd = open_in_helper(RootJob("overlay", spec_json=spec.to_json()))
        return RootView(fd, "overlay")
    path = spec.root.path
    if record.bundle and not os.path.isabs(path):
        path = os.path.join(record.bundle, path)
    if not os.path.isdir(path):
        raise KitError(
            f"the root filesystem of {record.name} is gone ({path})",
            fix="remove the container with `kit rm`",
        )
    if userns.host_root():
        flags = newmount.OPEN_TREE_CLONE | newmount.OPEN_TREE_CLOEXEC
        fd = newmount.open_tree(newmount.AT_FDCWD, path, flags)
    else:
        fd = open_in_helper(RootJob("clone", path=path, spec_json=spec.to_json()))
    return RootView(fd, "rootfs-clone")


def clone_root_mount(pid: int) -> int:
    """A detached clone of the root mount of ``pid``'s mount namespace (no submounts).

    open_tree(OPEN_TREE_CLONE) only clones mounts of the caller's own mount namespace, so a
    helper joins the container's (user namespace first, as ``kit exec`` does), clones its
    "/", and hands the fd back (see :mod:`kit.runtime.root_opener`). The clone stays usable
    after the helper is gone: a detached mount lives as long as an fd refers to it.
    """
    return open_in_helper(RootJob("join", pid=pid))
