"""Opening a container's root in a helper process, and handing the open fd back.

Two things :mod:`kit.runtime.rootview` needs are refused to a process that is not host root,
because both need CAP_SYS_ADMIN in the user namespace that owns the *mount namespace* the
caller is in (the host's, for an ordinary user: EPERM):

* creating a mount (``fsopen`` of the image's overlay, ``open_tree(OPEN_TREE_CLONE)`` of a
  directory), and
* joining another mount namespace (``setns``), which also asks for CAP_SYS_ADMIN and
  CAP_SYS_CHROOT in the caller's *own* user namespace.

A short-lived helper process gets those capabilities where they are enough, does the one
call, and sends the resulting fd to the caller over a unix socket (SCM_RIGHTS) before it
exits. What it opens is a *detached* mount: it lives as long as an fd refers to it, belongs to
no mount table, and the caller reads and writes through it with its own permissions.

* **join** (a running container): the helper joins the container's user namespace (its
  creator holds every capability there), then its mount namespace, and clones the root mount.
  Host root, who may join any namespace, skips nothing: the order is the one ``kit exec``
  uses, user namespace first.
* **overlay** / **clone** (a stopped container): the helper is made in a *new* user namespace
  carrying the container's id maps (the same ids the container had, see
  :func:`kit.security.userns.in_mapped_namespace`), then a new mount namespace, which it
  owns. There it builds the overlay as the rootfs stage does when the container starts
  (``userxattr``), or clones the root filesystem directory. The overlay keeps the helper's
  credentials as its mounter's, so a copy-up by ``kit cp`` works as it did while the
  container ran.

The helper is a fork from a single-threaded caller (the CLI), or a fresh interpreter from a
threaded one (the TUI, pytest): joining a user namespace and unsharing one are refused to a
multi-threaded process, and fork with threads is unsafe. It answers with one message, the fd
or the KitError that stopped it, so the caller shows the real reason.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from kit.errors import KitError
from kit.reexec import fresh_interpreter

if TYPE_CHECKING:
    from kit.spec import Spec


@dataclass
class RootJob:
    """What the helper opens: ``join`` (the root mount of running ``pid``), ``overlay`` (the
    image's overlay of ``spec_json``) or ``clone`` (the directory ``path``)."""

    kind: str
    pid: int = 0
    path: str = ""
    #: The container's spec (its id maps and overlay), for ``overlay`` and ``clone``.
    spec_json: str = ""


def open_in_helper(job: RootJob) -> int:
    """Run ``job`` in a helper process; return the fd it sent (a detached mount)."""
    # SOCK_SEQPACKET keeps messages apart: the first answer is the one read.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours:
        try:
            if threading.active_count() > 1:
                argv = fresh_interpreter(__name__, json.dumps(asdict(job)), str(theirs.fileno()))
                helper = subprocess.Popen(
                    argv,
                    pass_fds=[theirs.fileno()],
                )
                theirs.close()
                helper.wait()
            else:
                child = os.fork()
                if child == 0:
                    try:
                        ours.close()
                        serve(json.dumps(asdict(job)), theirs.fileno())
                    finally:
                        os._exit(0)
                theirs.close()
                os.waitpid(child, 0)
        finally:
            theirs.close()
        return _receive(ours)


def _receive(sock: socket.socket) -> int:
    message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
    if fds:
        return fds[0]
    if message:
        raise KitError.from_dict(json.loads(message))
    raise KitError(
        "could not open the container's root",
        cause="the helper process that opens it ended without an answer",
        fix="run the command again with --trace to see its calls",
    )


# --- in the helper ------------------------------------------------------------------------------


def boot() -> None:
    """Entry point of the helper interpreter: ``argv`` is the job (JSON) and the socket's fd."""
    serve(sys.argv[1], int(sys.argv[2]))


def serve(job_json: str, sock_fd: int) -> None:
    """The helper's side: do the job and send one answer (the fd, or the error)."""
    job = RootJob(**json.loads(job_json))
    try:
        if job.kind == "join":
            _send_fd(sock_fd, _clone_from_namespaces(job.pid))
        else:
            from kit.security import userns
            from kit.spec import Spec

            spec = _with_maps(Spec.from_json(job.spec_json))
            userns.in_mapped_namespace(spec, lambda: _build_and_send(job, spec, sock_fd))
    except Exception as error:  # any failure goes back to the caller, explained
        _send_error(sock_fd, error)


def _clone_from_namespaces(pid: int) -> int:
    """Join ``pid``'s user namespace (if not ours) and mount namespace; clone its ``/``."""
    from kit.linux import newmount
    from kit.linux.flags import CLONE_NEWNS, CLONE_NEWUSER
    from kit.linux.namespaces import setns

    # Both opened before joining anything: /proc is the container's after the mount namespace.
    user_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    mnt_fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(user_fd).st_ino != os.stat("/proc/self/ns/user").st_ino:
            setns(user_fd, CLONE_NEWUSER, path=f"/proc/{pid}/ns/user")
        setns(mnt_fd, CLONE_NEWNS, path=f"/proc/{pid}/ns/mnt")
    finally:
        os.close(user_fd)
        os.close(mnt_fd)
    # open_tree(OPEN_TREE_CLONE) copies only mounts of the caller's own mount namespace.
    return newmount.open_tree(
        newmount.AT_FDCWD, "/", newmount.OPEN_TREE_CLONE | newmount.OPEN_TREE_CLOEXEC
    )


def _with_maps(spec: Spec) -> Spec:
    """The spec, given the caller's own ids as maps if it has none (a container without a
    user namespace: the helper still needs one to own a mount namespace)."""
    from kit.spec import IdMapping

    if not spec.linux.uid_mappings or not spec.linux.gid_mappings:
        spec.linux.uid_mappings = [IdMapping(0, os.geteuid(), 1)]
        spec.linux.gid_mappings = [IdMapping(0, os.getegid(), 1)]
    return spec


def _build_and_send(job: RootJob, spec: Spec, sock_fd: int) -> None:
    """In the user namespace with the container's maps: a mount namespace of our own, then
    the detached mount. Errors are answered here (the caller gets this reason, not just
    "the helper failed")."""
    from kit import overlay
    from kit.linux import newmount
    from kit.linux.flags import CLONE_NEWNS
    from kit.linux.namespaces import unshare

    try:
        # Creating mounts needs CAP_SYS_ADMIN over the mount namespace: one this namespace owns.
        unshare(CLONE_NEWNS)
        layers = spec.kit.overlay
        if job.kind == "overlay" and layers is not None:
            # Inside a user namespace overlayfs may keep its marks in user.* xattrs only.
            fd = overlay.detached_overlay(layers.lowers, layers.upper, layers.work, userxattr=True)
        else:
            flags = newmount.OPEN_TREE_CLONE | newmount.OPEN_TREE_CLOEXEC
            fd = newmount.open_tree(newmount.AT_FDCWD, job.path, flags)
        _send_fd(sock_fd, fd)
    except Exception as error:  # answered, not lost in an exit status
        _send_error(sock_fd, error)


def _send_fd(sock_fd: int, fd: int) -> None:
    with socket.socket(fileno=os.dup(sock_fd)) as sock:
        socket.send_fds(sock, [b"fd"], [fd])
    os.close(fd)


def _send_error(sock_fd: int, error: Exception) -> None:
    if not isinstance(error, KitError):
        error = KitError(
            f"could not open the container's root: {error}",
            errno=getattr(error, "errno", None),
        )
    with socket.socket(fileno=os.dup(sock_fd)) as sock:
        sock.send(json.dumps(error.to_dict()).encode())
