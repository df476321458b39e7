"""The create/start split of an OCI runtime: the container waits at a gate before execve.

``kit create`` builds the whole container (namespaces, cgroups, mounts, pivot_root, user,
capabilities, seccomp...) and stops just before the execve: the container is *created*. An
engine can then wire things up (podman's conmon attaches to its stdio) and ``kit start`` lets
the program run. runc does this with a FIFO, ``exec.fifo``; so does kit, in the container's
state directory (made by ``kit create``, see :mod:`kit.runtime.oci`, which also holds the
engine's side of step 3; this module is the container's side):

1. The init parent opens the FIFO read-write before it forks (on Linux that never blocks),
   so the container process inherits it and is a *reader* of it.
2. In the exec stage, once the program has been found, it clears its parent-death signal
   (the init parent is about to leave), says "created", closes its event pipe (``kit create``
   then returns) and its end of the *release pipe* (the init parent then exits, and the
   container is adopted by the nearest subreaper, conmon under podman), and reads one byte
   from the FIFO: it sleeps there.
3. ``kit start`` (:func:`kit.runtime.oci.open_the_gate`) opens the FIFO for writing *without
   blocking*: that succeeds only while a reader exists, so a container that died meanwhile
   gives ENXIO instead of a hang. It writes one byte, and removes the FIFO: "no FIFO, live
   process" is what "running" means.
4. The container wakes up, closes the FIFO and execs the program. Its file descriptors were
   all marked close-on-exec already: nothing of kit follows the program.

Errors after the gate (a program that cannot be executed after all) go to the container's
stderr, since nobody reads the event pipe any more; the engine's log shows them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING

from kit.errors import KitError
from kit.linux.process import set_parent_death_signal
from kit.trace import Event, text_printer, tracer

if TYPE_CHECKING:  # only named: kit start and kit delete import this module without the spec
    from kit.runtime.context import InitContext

#: File descriptors opened by the init parent before it forks (inherited by the container
#: process): the FIFO, and the write end of the release pipe.
_fds: dict[str, int] = {}


def prepare(fifo: str | None) -> int:
    """In the init parent, before the fork: open the FIFO and make the release pipe.

    Returns the release pipe's read end (-1 without a gate). The parent opens the FIFO, not
    the container process: the parent has the host's privileges, while the container
    process may already be an unprivileged user of its own user namespace.
    """
    if not fifo:
        return -1
    try:
        _fds["fifo"] = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)
    except OSError as error:
        raise KitError(
            f"cannot open the start FIFO {fifo}",
            errno=error.errno,
            fix="run `kit delete --force ID` and create the container again",
        ) from None
    read_end, _fds["release"] = os.pipe2(os.O_CLOEXEC)
    return read_end


def after_fork(release_read: int, *, in_child: bool) -> None:
    """Each side closes the ends it does not use."""
    if release_read < 0:
        return
    if in_child:
        os.close(release_read)
    else:
        os.close(_fds.pop("fifo"))
        os.close(_fds.pop("release"))


def wait_for_start(ctx: InitContext) -> None:
    """In the exec stage, just before execve: report "created" and wait for ``kit start``."""
    fd = _fds.pop("fifo", None)
    if fd is None:
        return
    set_parent_death_signal(0)  # the init parent leaves now; we must survive it
    tracer().emit(
        Event("process", "created", message="created: waiting for `kit start` at exec.fifo")
    )
    # From here on nobody reads the event pipe: errors go to the container's stderr.
    tracer().reset()
    tracer().detail = False
    tracer().add_sink(text_printer(sys.stderr, show=lambda e: e.kind == "error"))
    for channel in ("events", "resume"):
        number = getattr(ctx.channels, channel)
        if number >= 0:
            with contextlib.suppress(OSError):
                os.close(number)
            setattr(ctx.channels, channel, -1)
    write_end = _fds.pop("release", None)
    if write_end is not None:
        os.write(write_end, b"c")  # the init parent reads "created" and leaves
        os.close(write_end)
    # Terminal signals stay ignored while we wait, as during setup; SIGKILL ends us.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        try:
            data = os.read(fd, 1)
            break
        except InterruptedError:
            continue
    os.close(fd)
    if not data:
        raise SystemExit(0)
