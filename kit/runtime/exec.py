"""``kit exec``: run one more program inside a running container.

A container is nothing but a process in a set of namespaces, a cgroup, and a list of security
settings. To run another program "in" it, a process joins those namespaces with setns(2),
moves into the same cgroups, puts on the same security settings, and execs the program. This
is what ``docker exec``, ``runc exec`` and ``nsenter`` do. Step by step:

1. **A fresh process.** The caller starts a new interpreter (``python -I -S``, like the init):
   it holds nothing of the caller (no open files, no memory of the CLI), only kit's modules,
   all imported now, because once it has joined the container's mount namespace the host's
   files, its own module files among them, are out of reach.
2. **Non-dumpable, no leaked fds.** ``prctl(PR_SET_DUMPABLE, 0)`` first: the kernel then
   refuses other processes (in particular the container's) access to this process's
   ``/proc/PID/{exe,mem,environ,fd}`` and to ptrace, unless they hold CAP_SYS_PTRACE over the
   host. Every inherited fd is marked close-on-exec (close_range CLOSE_RANGE_CLOEXEC): nothing
   of the host survives into the program (runc's CVE-2024-21626 leaked a host directory fd).
3. **Open every namespace first,** from ``/proc/PID/ns/*`` of the container's PID 1, and a
   pidfd of it (checked against its recorded start time, so a reused PID is never joined).
   After joining the mount namespace, ``/proc/PID`` of a host PID no longer names anything.
4. **Join the cgroups** (write our PID to ``cgroup.procs`` of the container's cgroup in each
   hierarchy where it differs from ours), while the host's /sys/fs/cgroup is still our view.
5. **setns, in order:** the user namespace first, if the container has its own (joining it
   gives us capabilities *in* it, which joining the namespaces it owns requires), then IPC,
   UTS, network, cgroup, PID, time, and the mount namespace last (it moves our root and
   working directory into the container).
6. **Fork.** A PID namespace applies to the children of the process that joins it, never to
   the process itself; the child is the first process of ours that the container can see.
   Our process (the "joiner") stays outside, in the host's PID namespace, as its parent: it
   forwards signals, reaps it and reports how it ended.
7. **In the child, the container's own rules,** by running the very same stages the init runs
   for PID 1: rlimits, identity (user and groups), capabilities, no_new_privs, Landlock and
   seccomp (see :data:`PROCESS_STAGES`), then the ``exec`` stage: working directory, env,
   close-on-exec, execve. With ``-t`` a terminal is made from the *container's* devpts first.

**CVE-2019-5736 and /proc/self/exe.** In 2019 a container could overwrite the host's runc
binary: while ``runc exec`` was joining the container, a process inside opened
``/proc/<runc's pid>/exe`` (a link to the runc binary on the host) and, once runc had exited,
wrote to it. What kit does instead, and why that path stays closed:

* The joiner never becomes visible to the container: it stays in the host's PID namespace,
  so no ``/proc/<pid>`` of the container's procfs names it.
* The child is visible, but non-dumpable until its execve: ``/proc/<child>/exe`` cannot be
  opened from the container (ptrace access check), and the container cannot ptrace it.
* The interpreter is never the program that runs inside: the child's execve replaces it with
  the container's own program, so ``/proc/<pid>/exe`` then names a file of the container.
* The host's interpreter file is not reachable by path from inside (the container's mount
  namespace has its own root), and kit never opens it for writing.

runc's fix was to run from a sealed memfd copy of itself; kit's interpreter never runs as a
container process after the execve, and is hidden and non-dumpable before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

# Everything the joiner and its child may need after setns(mount) is imported now.
from kit import (
    elf,  # noqa: F401  (used by the exec stage's explanations)
    mounts,
)
from kit.errors import KitError
from kit.linux import caps
from kit.linux.flags import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLOSE_RANGE_CLOEXEC,
    PR_SET_DUMPABLE,
)
from kit.linux.kernfs import write_text
from kit.linux.namespaces import setns
from kit.linux.process import close_range, prctl, set_parent_death_signal
from kit.runtime import pipeline
from kit.runtime.console import make_controlling_terminal, open_pty, send_fd
from kit.runtime.context import Channels, InitContext, InitOptions
from kit.runtime.init import (  # the joiner watches and reports as the init parent does
    SETUP_FAILED,
    TERMINAL_SIGNALS,
    report_exit,
    report_failure,
    watch,
)
from kit.runtime.launcher import ContainerProcess
from kit.runtime.stages import exec as exec_stage
from kit.runtime.stages import seccomp as seccomp_stage
from kit.runtime.state import is_alive
from kit.spec import Spec
from kit.trace import Event, fd_writer, tracer

#: The init's stages that set up the *process* rather than the container, in the init's
#: order: an exec'd process must get each of them again. Every other stage shapes the
#: container itself (mounts, devices, hostname...), which the process joins as it is. Every
#: stage of the pipeline is in exactly one of the two lists (a test checks it), so a new
#: stage forces a decision here.
PROCESS_STAGES = ("rlimits", "identity", "capabilities", "no-new-privs", "landlock", "seccomp")
CONTAINER_WIDE_STAGES = (
    "propagation",
    "rootfs",
    "kernel-filesystems",
    "devices",
    "volumes",
    "pivot-root",
    "mount-propagation",
    "readonly-root",
    "readonly-paths",
    "masked-paths",
    "hostname",
    "network",
    "console",  # exec makes its own terminal (without touching /dev/console)
    "exec",  # run last, separately
)

#: /proc/PID/ns file, clone flag: the order of joining (see the module docstring).
JOIN_ORDER: tuple[tuple[str, int], ...] = (
    ("user", CLONE_NEWUSER),
    ("ipc", CLONE_NEWIPC),
    ("uts", CLONE_NEWUTS),
    ("net", CLONE_NEWNET),
    ("cgroup", CLONE_NEWCGROUP),
    ("pid", CLONE_NEWPID),
    ("time", CLONE_NEWTIME),
    ("mnt", CLONE_NEWNS),
)


@dataclass
class Target:
    """The container process to join: its host PID and start time (see kit.runtime.state)."""

    pid: int
    start: int


# --- the caller's side ----------------------------------------------------------------------


class ExecProcess(ContainerProcess):
    """One program being run in a running container, driven like a container.

    Events, exit status, signal forwarding and the terminal relay work exactly as for
    :class:`~kit.runtime.launcher.ContainerProcess`; only the re-executed interpreter runs
    :func:`boot` of this module instead of the init. Always a fresh interpreter (never a
    fork of the caller): the joiner goes into the container, and must take nothing along.
    With ``detach`` the joiner leaves once the program runs (the program is then adopted by
    the host's init, or by the caller if it is a subreaper, as conmon is).
    """

    boot_module = "kit.runtime.exec"

    def __init__(self, spec: Spec, target: Target, **kwargs: Any) -> None:
        kwargs["use_fork"] = False
        super().__init__(spec, **kwargs)
        self.target = target

    def _boot_setup(self) -> dict[str, Any]:
        return {"target": {"pid": self.target.pid, "start": self.target.start}}


# --- the joiner (a fresh interpreter) ---------------------------------------------------------


def boot() -> None:
    """Entry point of the re-executed joiner: ``python -c '...boot()' '<json>'``."""
    setup = json.loads(sys.argv[1])
    channels = Channels(**setup["channels"])
    options = InitOptions(**setup["options"])
    target = Target(**setup["target"])
    with os.fdopen(setup["spec_fd"], "rb") as spec_pipe:
        spec = Spec.from_json(spec_pipe.read())
    joiner_main(spec, channels, options, target)


def joiner_main(spec: Spec, channels: Channels, options: InitOptions, target: Target) -> None:
    """Join the container, fork the program's process, watch it. Never returns."""
    code = SETUP_FAILED
    try:
        tracer().add_sink(fd_writer(channels.events))
        tracer().detail = options.trace
        tracer().stage = "exec"
        for sig in TERMINAL_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        prctl(PR_SET_DUMPABLE, 0)
        close_range(3, flags=CLOSE_RANGE_CLOEXEC)
        code = _join_and_run(spec, channels, options, target)
    except BaseException as error:
        code = report_failure(error)
    finally:
        os._exit(code)


def open_namespaces(target: Target) -> dict[str, int]:
    """fds of the container's namespaces that differ from ours, by /proc/PID/ns name."""
    pidfd = _pidfd(target)
    opened: dict[str, int] = {}
    try:
        for name, _ in JOIN_ORDER:
            path = f"/proc/{target.pid}/ns/{name}"
            try:
                if os.stat(path).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    continue  # shared with us (e.g. --net host): nothing to join
            except FileNotFoundError:
                continue  # a namespace type this kernel lacks (time before 5.6)
            opened[name] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        # Opened by path: make sure the PID still names the container (not a reused PID).
        if not is_alive(target.pid, target.start):
            raise _gone(target)
    except BaseException:
        for fd in opened.values():
            os.close(fd)
        raise
    finally:
        os.close(pidfd)
    return opened


def _pidfd(target: Target) -> int:
    try:
        return os.pidfd_open(target.pid)
    except ProcessLookupError:
        raise _gone(target) from None


def _gone(target: Target) -> KitError:
    return KitError(
        f"the container's process {target.pid} is gone",
        cause="the container stopped before kit could join it",
        fix="start it again; `kit ps -a` shows how it ended",
        exit_code=SETUP_FAILED,
    )


def cgroup_paths(pid: int | str) -> dict[str, str]:
    """``/proc/PID/cgroup`` as {controllers: path} (``""`` is the unified v2 tree)."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            out[controllers] = path
    return out


def cgroup_mount(controllers: str, table: list[mounts.Mount]) -> str | None:
    """Where the hierarchy of a ``/proc/PID/cgroup`` line is mounted (``""``: cgroup v2).

    A v1 mount lists its controllers (or ``name=systemd``) among its super options.
    """
    for m in table:
        if controllers == "" and m.fstype == "cgroup2":
            return m.mount_point
        if (
            controllers
            and m.fstype == "cgroup"
            and set(controllers.split(",")) <= set(m.super_options)
        ):
            return m.mount_point
    return None


def join_cgroups(pid: int) -> None:
    """Move ourselves into the container's cgroup wherever it differs from ours."""
    theirs = cgroup_paths(pid)
    ours = cgroup_paths("self")
    table = mounts.read()
    for controllers, path in theirs.items():
        if ours.get(controllers) == path:
            continue
        mount = cgroup_mount(controllers, table)
        if mount is None:
            continue  # a hierarchy not mounted here: nothing to write to
        # v1: a single thread moving itself ("0" into tasks) skips the kernel's global
        # migration lock and its RCU grace period (see kit.runtime.stages.cgroups); we are
        # single-threaded, as setns requires anyway. v2 moves whole processes only.
        name, who = ("cgroup.procs", str(os.getpid())) if controllers == "" else ("tasks", "0")
        write_text(
            f"{mount}{path.rstrip('/')}/{name}",
            who,
            note=f"join the container's cgroup {path} ({controllers or 'unified'})",
        )


def _join_and_run(spec: Spec, channels: Channels, options: InitOptions, target: Target) -> int:
    seccomp_stage.prepare(spec)  # the filter, made while kit's cache is in reach
    opened = open_namespaces(target)
    try:
        join_cgroups(target.pid)
        # Read while /proc is the host's: the container may have none (a container can unmount
        # it), and the capabilities stage needs the kernel's last capability number.
        caps.last_cap()
        for name, flag in JOIN_ORDER:
            if name in opened:
                setns(opened[name], flag, path=f"/proc/{target.pid}/ns/{name}")
    finally:
        for fd in opened.values():
            os.close(fd)
    # Tells the joiner when the child's execve happened (its copy closes on exec, unread) or
    # its setup failed (it writes "x" first); only needed when the joiner leaves early (detach).
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(sync_r)
        _child_main(spec, channels, options, sync_w)
    os.close(sync_w)
    tracer().emit(
        Event(
            "process",
            "container",
            data={"host_pid": pid, "init_pid": os.getpid()},
            message=f"exec'd process is PID {pid} on the host",
        )
    )
    for fd in (channels.resume, channels.console):
        if fd >= 0:
            os.close(fd)
    if options.detach:
        return _release(pid, sync_r)
    os.close(sync_r)
    return report_exit(watch(pid, channels, options), False)


def _release(pid: int, sync_r: int) -> int:
    """Detached exec: leave as soon as the program runs; it is adopted by a subreaper.

    Never reap a program that ran: a quick one (``sh -c 'exit 6'``) may have ended already,
    and its status belongs to the subreaper (conmon), not to kit's own exit status, which
    says whether the exec worked (runc's rule too)."""
    failed = os.read(sync_r, 1) == b"x"  # "x": setup failed; end-of-file: it exec'd
    os.close(sync_r)
    if failed:
        _, status = os.waitpid(pid, 0)
        return report_exit(status, False)
    tracer().emit(
        Event("process", "released", data={"host_pid": pid}, message="the program runs; kit left")
    )
    return 0


def _child_main(spec: Spec, channels: Channels, options: InitOptions, sync_w: int) -> None:
    """The exec'd process before its execve. Never returns."""
    code = SETUP_FAILED
    try:
        if not options.detach:
            # If the joiner dies, so does the process it was starting (nobody would reap it).
            set_parent_death_signal(signal.SIGKILL)
        ctx = InitContext(spec=spec, channels=channels, options=options, rootfs="/", pivoted=True)
        os.close(channels.control)
        if spec.process.terminal:
            _make_terminal(ctx)
        by_name = {stage.name: stage for stage in pipeline.CONTAINER_STAGES}
        for name in PROCESS_STAGES:
            stage = by_name[name]
            tracer().stage = name
            assert stage.run is not None
            stage.run(ctx)
        if options.detach:
            # The identity stage re-arms the parent-death signal after the uid change; a
            # detached process must outlive the joiner, which leaves once it runs.
            set_parent_death_signal(0)
        tracer().stage = "exec"
        exec_stage.run(ctx)
    except BaseException as error:
        code = report_failure(error)
    finally:
        with contextlib.suppress(OSError):
            os.write(sync_w, b"x")  # no execve: tell a detached joiner to report the failure
        os._exit(code)


def _make_terminal(ctx: InitContext) -> None:
    """A pty from the container's devpts, its master sent to the caller (as ``-t`` for run,
    without the /dev/console bind mount, which belongs to the container's PID 1)."""
    size = ctx.spec.process.console_size
    master, slave = open_pty(size.height if size else 24, size.width if size else 80)
    with contextlib.suppress(OSError):
        send_fd(ctx.channels.console, master)
    os.close(master)
    os.close(ctx.channels.console)
    ctx.channels.console = -1
    make_controlling_terminal(slave)


if __name__ == "__main__":
    boot()
