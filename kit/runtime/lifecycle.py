"""Acting on recorded containers: signal, stop, wait, remove, and clean up after a crash.

Signals go through a **pidfd** (pidfd_open(2) + pidfd_send_signal(2)): a file descriptor that
names one process for good. A plain ``kill(pid)`` could hit an unrelated process that got the
PID after the container ended; here the PID is opened first, then the process behind the pidfd
is checked against the start time recorded with the PID, and only then signalled. The pidfd
also becomes readable when the process ends, which is how kit waits for a container it is not
the parent of.

``kit stop`` is ``docker stop``: SIGTERM, a grace period, then SIGKILL. A container's PID 1
gets no default signal actions from the kernel (a signal without a handler is ignored for
PID 1 of a namespace), so a program that never installs a SIGTERM handler only goes at
SIGKILL, after the grace period. SIGKILL always works from outside the namespace.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal

from kit.errors import KitError
from kit.runtime import state
from kit.runtime.state import ContainerState


def parse_signal(text: str | int) -> int:
    """``TERM``, ``SIGTERM``, ``sigterm``, ``15`` -> 15."""
    value = str(text).strip()
    if value.isdigit():
        number = int(value)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        with contextlib.suppress(AttributeError):
            return int(getattr(signal.Signals, name))
    raise KitError(
        f"invalid signal {text!r}",
        fix="give a name like TERM, KILL, HUP or a number like 15",
        exit_code=2,
    )


def open_process(pid: int, start: int) -> int | None:
    """A pidfd for the process recorded as (pid, start time); None if it is gone."""
    if pid <= 0:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    # The pidfd pins *whatever* process has the PID now; make sure it is ours.
    if not state.is_alive(pid, start):
        os.close(pidfd)
        return None
    return pidfd


def send_signal(record: ContainerState, sig: int) -> bool:
    """Signal the container's PID 1; False if it is not running."""
    pidfd = open_process(record.pid, record.pid_start)
    if pidfd is None:
        return False
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)
    return True


def signal_all(record: ContainerState, sig: int) -> bool:
    """Signal every process of the container (runc's ``kill --all``); PID 1 last."""
    from kit.runtime.processes import namespace_members

    if not record.pid or not state.is_alive(record.pid, record.pid_start):
        return False
    for member in reversed(namespace_members(record.pid)):
        if member != record.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, sig)
    send_signal(record, sig)
    return True


def wait_process(pid: int, start: int, timeout: float | None) -> bool:
    """Wait until the process ends (True) or the timeout passes (False)."""
    pidfd = open_process(pid, start)
    if pidfd is None:
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(pidfd)


def _wait_owner(record: ContainerState, timeout: float = 5.0) -> None:
    """Give the monitor time to record the exit; kill it if it hangs."""
    if not record.owner_pid or record.owner_pid == os.getpid():
        return
    if not wait_process(record.owner_pid, record.owner_start, timeout):
        _kill_owner(record)


def stop(record: ContainerState, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """SIGTERM, up to ``timeout`` seconds, then SIGKILL. False if it was not running."""
    if not send_signal(record, sig):
        return False
    if not wait_process(record.pid, record.pid_start, timeout):
        send_signal(record, signal.SIGKILL)
        wait_process(record.pid, record.pid_start, None)
    _wait_owner(record)
    return True


def kill(record: ContainerState, timeout: float = 10.0) -> None:
    """SIGKILL the container and wait until it (and its monitor's bookkeeping) is done."""
    if send_signal(record, signal.SIGKILL):
        wait_process(record.pid, record.pid_start, timeout)
    _wait_owner(record)


def is_running(record: ContainerState) -> bool:
    return state.live_status(record) in (state.CREATED, state.RUNNING)


def remove(record: ContainerState, *, force: bool = False) -> None:
    """``kit rm``: remove a stopped container (``force``: kill a running one first)."""
    if is_running(record) or (record.status == state.CREATING and record.owner_alive()):
        if not force:
            raise KitError(
                f"container {record.name} is {state.live_status(record)}",
                cause="removing it would pull its files out from under a running program",
                fix=f"stop it first (`kit stop {record.name}`), or use `kit rm -f`",
                exit_code=1,
            )
        if record.status == state.CREATING and not record.pid:
            _kill_owner(record)
        kill(record)
    remove_files(record.id)


def _kill_owner(record: ContainerState) -> None:
    if record.owner_pid == os.getpid():
        return  # the creator itself cleaning up after a failure
    pidfd = open_process(record.owner_pid, record.owner_start)
    if pidfd is None:
        return
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    select.select([pidfd], [], [], 5.0)
    os.close(pidfd)


def remove_files(container_id: str) -> None:
    """Everything of the container on the host: its cgroups, its writable layer (image
    containers: the layer and nothing of the image), then its record."""
    remove_cgroups(container_id)
    directory = state.container_dir(container_id)
    if (directory / "image.json").exists():
        from kit.image.container import remove_writable_layer

        remove_writable_layer(container_id)
    state.remove(container_id)


# --- cgroups left behind ---------------------------------------------------------------------


def cgroup_roots() -> list[str]:
    """Mount points of every cgroup hierarchy (v1 trees and the unified tree), once each."""
    from kit import mounts

    roots: list[str] = []
    for m in mounts.read():
        if m.fstype in ("cgroup", "cgroup2") and m.mount_point not in roots:
            roots.append(m.mount_point)
    return roots


def container_cgroups(container_id: str) -> list[str]:
    """Host paths of cgroup directories of this container that exist, in every hierarchy
    (kit's limits in memory/pids/cpu, an OCI container's devices cgroup...)."""
    from kit.paths import root_tag

    custom = state.config_value(container_id, "linux", "cgroupsPath")
    if not isinstance(custom, str):
        custom = None
    relative = (custom or f"/kit/{root_tag()}-{container_id}").strip("/")
    paths = (f"{root}/{relative}" for root in cgroup_roots())
    return [path for path in paths if os.path.isdir(path)]


def remove_cgroup_dir(path: str) -> None:
    """Kill what is left in a cgroup directory and rmdir it, child cgroups first (see
    :func:`kit.cgroups.base.remove_tree`)."""
    from kit.cgroups.base import remove_tree

    parent, name = os.path.split(path.rstrip("/"))
    try:
        parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        remove_tree(parent_fd, name, path)
    finally:
        os.close(parent_fd)


def remove_cgroups(container_id: str) -> None:
    for path in container_cgroups(container_id):
        remove_cgroup_dir(path)
