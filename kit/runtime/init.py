"""The container init: the two processes that turn a spec into a running container.

The caller (``kit run``, a lesson, the TUI) starts this in a fresh interpreter
(``python -m kit.runtime.init``) or, from a single-threaded CLI, in a forked child. Then:

1. The **init parent** unshares the new namespaces. A new PID namespace only applies to the
   children of the process that creates it, so it forks:
2. the **container process**, PID 1 of the new PID namespace, which runs the stages of
   :mod:`kit.runtime.pipeline` and finally execs the container's program.

The init parent stays behind, outside the new PID namespace, as the container's parent: it
forwards signals the caller sends over the control pipe, kills the container if the caller dies
(end-of-file on that pipe), reaps it, and reports how it ended. It is the only process that may
``waitpid`` the container, so there is no race with PID reuse when it delivers a signal.

The parent tells the container process when it may go on over a pipe (runc's nsexec does the
same over its sync pipe), because some steps can only be done from outside:

    init parent                                  container process
    -----------                                  -----------------
    create the cgroup, write the limits and
    the device policy, open its membership
    files (before the process exists)
    create namespaces, fork (clone with a new
    user namespace: it must exist *first*, so
    it owns the others)                          waits
    write the uid/gid maps (user namespace)  "n" -> becomes root of its user namespace
                                                    (may pause after namespaces); joins its
                                                    cgroup through the files the parent
                                                    opened, unshares the cgroup namespace,
                                                    whose root is now that cgroup; runs the
                                                    stages
    forward signals, reap, read the OOM
    count, remove the cgroup, report
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import traceback

# Everything the container process may need after pivot_root must be imported now: once the
# host's root is detached, the interpreter can no longer find its own module files.
from kit import elf  # noqa: F401  (used by the exec stage's explanations)
from kit.cgroups.base import ContainerCgroup
from kit.errors import KitError
from kit.linux import caps
from kit.linux.clone import fork_into_namespaces
from kit.linux.flags import NAMESPACES
from kit.linux.namespaces import clone_flags, join_namespace, unshare
from kit.linux.process import set_parent_death_signal
from kit.runtime import gate, pipeline
from kit.runtime.context import Channels, InitContext, InitOptions
from kit.runtime.stages import cgroups as cgroups_stage
from kit.runtime.stages import exec as exec_stage
from kit.runtime.stages import seccomp as seccomp_stage
from kit.security import userns
from kit.spec import Spec
from kit.trace import Event, fd_writer, tracer

#: Exit status when container setup fails before the program starts (Docker uses 125 too;
#: runc 255). kit exec uses it as well, for "kit itself failed".
SETUP_FAILED = 125

#: Signals the init parent (and kit exec's joiner) must survive: the terminal sends them to
#: the whole foreground process group, and the caller decides what reaches the container.
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP)


def boot() -> None:
    """Entry point of a re-executed init: ``python -m kit.runtime.init '<json>'``."""
    setup = json.loads(sys.argv[1])
    channels = Channels(**setup["channels"])
    options = InitOptions(**setup["options"])
    with os.fdopen(setup["spec_fd"], "rb") as spec_pipe:
        spec = Spec.from_json(spec_pipe.read())
    parent_main(spec, channels, options)


def parent_main(spec: Spec, channels: Channels, options: InitOptions) -> None:
    """The init parent. Never returns: exits with the container's exit status."""
    code = SETUP_FAILED
    try:
        tracer().add_sink(fd_writer(channels.events))
        tracer().detail = options.trace
        for sig in TERMINAL_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        code = _create_and_watch(spec, channels, options)
    except BaseException as error:  # report, never hang the caller
        code = report_failure(error)
    finally:
        os._exit(code)


def report_failure(error: BaseException) -> int:
    """Send the caller an "error" event for a setup that failed with ``error``, and return
    the exit status to end with: a KitError's own (other than 1), else SETUP_FAILED.
    Call it from the ``except`` block (an unexpected error is sent with its traceback)."""
    if isinstance(error, KitError):
        tracer().emit(Event("error", "error", message=str(error), data=error.to_dict()))
        return error.exit_code if error.exit_code != 1 else SETUP_FAILED
    tracer().emit(Event("error", "error", message=traceback.format_exc()))
    return SETUP_FAILED


def _create_and_watch(spec: Spec, channels: Channels, options: InitOptions) -> int:
    log = tracer()
    # The container's cgroup, with its limits and device policy, exists before the container
    # process does: at its cgroups stage the process joins it by itself, through files opened
    # here (see kit.runtime.stages.cgroups for why that is much cheaper than moving it).
    log.stage = pipeline.CGROUPS.name
    cgroup = cgroups_stage.prepare(spec, options)
    try:
        log.stage = pipeline.NAMESPACES.name
        if log.active:
            log.emit(Event("stage", log.stage, phase="start", message=pipeline.NAMESPACES.summary))
        # The handshake pipe (see the module docstring): parent -> child.
        to_child_r, to_child_w = os.pipe2(os.O_CLOEXEC)
        # OCI create: the container will wait at a FIFO before execve (see kit.runtime.gate).
        release = gate.prepare(options.exec_fifo)
        seccomp_stage.prepare(spec)  # the filter, made while kit's cache is in reach
        pid = _start_container_process(spec)
    except BaseException:
        if cgroup is not None:
            cgroups_stage.finish(cgroup)
        raise
    if pid == 0:
        os.close(to_child_w)
        gate.after_fork(release, in_child=True)
        container_main(spec, channels, options, to_child_r, cgroup)
    os.close(to_child_r)
    if cgroup is not None:
        cgroup.close_join_files()  # the container process has its own copies
    gate.after_fork(release, in_child=False)
    log.emit(
        Event(
            "process",
            "container",
            data={"host_pid": pid, "init_pid": os.getpid()},
            message=f"container process is PID {pid} on the host, PID 1 inside",
        )
    )
    try:
        # Only a process outside the new user namespace may write its id maps. Until they
        # exist the container process waits: the caller has learned its host PID (the event
        # above) before anything happens in it.
        if userns.creates_user_namespace(spec):
            userns.write_maps(pid, spec)
        _tell(to_child_w, b"n")
    except BaseException:
        # Setup failed on our side: the container process must not outlive it.
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if cgroup is not None:
            cgroups_stage.finish(cgroup)
        raise
    finally:
        os.close(to_child_w)
    for fd in (channels.resume, channels.console):
        if fd >= 0:
            os.close(fd)
    status = watch(pid, channels, options, release)
    if status is None:
        # Created (OCI): the container waits for `kit start`, and outlives us. Its cgroups
        # stay until `kit delete`.
        log.emit(Event("process", "released", data={"host_pid": pid}, message="created"))
        return 0
    oom_killed = cgroups_stage.finish(cgroup) if cgroup is not None else False
    return report_exit(status, oom_killed)


def _tell(fd: int, step: bytes) -> None:
    """Let the container process go on. If it was killed meanwhile (a signal from outside
    while we set it up), its end of the pipe is closed: say nothing, watch() reaps it and
    reports how it ended (137 for SIGKILL), as if it had died a moment later."""
    with contextlib.suppress(BrokenPipeError):
        os.write(fd, step)


def _start_container_process(spec: Spec) -> int:
    """Join namespaces given by path, create the others, and fork the container process.

    Returns its PID, or 0 in the container process. Without a new user namespace the parent
    unshares the namespaces itself (a new PID namespace applies to its next child) and
    forks. With one, the parent must stay outside it, so the child is created by clone(2)
    with all the flags: the kernel makes the user namespace first and every other new
    namespace owned by it. The cgroup namespace is left to the child, which creates it once
    it is in its cgroup.
    """
    create: list[str] = []
    for ns in spec.linux.namespaces:
        if ns.path:
            if ns.type == "user":
                raise KitError(
                    f"joining the user namespace {ns.path} is not supported",
                    cause="kit's init parent must stay outside the container's user namespace",
                    fix="let kit create the user namespace (drop its path), or run without one",
                )
            join_namespace(ns.path, NAMESPACES[ns.type][0])
        elif ns.type != "cgroup":
            create.append(ns.type)
    if "user" in create:
        userns.check_mappings(spec)
        # Opened (a rootfs directory, bind sources) or built (an image's overlay, its layers
        # idmapped) with our privileges, attached inside (see kit.security.userns).
        userns.pin_rootfs(spec)
        userns.pin_bind_sources(spec)
        pid = fork_into_namespaces(clone_flags(create))
        if pid != 0:
            userns.release_pinned()
        return pid
    if create:
        unshare(clone_flags(create))
    return os.fork()


def watch(pid: int, channels: Channels, options: InitOptions, release: int = -1) -> int | None:
    """Forward signals from the caller until the container process exits; return its wait
    status. None: the container reached its start gate (it said so on ``release``, the
    release pipe of kit.runtime.gate) and we leave it running."""
    pidfd = os.pidfd_open(pid)
    watching = [pidfd, channels.control] + ([release] if release >= 0 else [])
    buffer = b""
    while True:
        ready, _, _ = select.select(watching, [], [])
        if release in ready:
            # "c": created, the container waits at its gate. End-of-file: it died first.
            created = os.read(release, 1) == b"c"
            watching.remove(release)
            os.close(release)
            if created:
                os.close(pidfd)
                return None
        if channels.control in ready:
            data = os.read(channels.control, 256)
            if not data:
                watching.remove(channels.control)
                if not options.detach:
                    # The caller died without a word: take the container down with it.
                    os.kill(pid, signal.SIGKILL)
                continue
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.startswith(b"signal "):
                    os.kill(pid, int(line.split()[1]))
        if pidfd in ready:
            break
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    return status


def report_exit(status: int, oom_killed: bool) -> int:
    """Send the exit event (code, signal, whether the OOM killer struck); return the code."""
    oom = {"oom_killed": True} if oom_killed else {}
    because = " (OOMKilled: the container reached its memory limit)" if oom_killed else ""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name
        tracer().emit(
            Event(
                "exit",
                "exit",
                data={"code": 128 + sig, "signal": sig, **oom},
                message=f"killed by {name}{because}",
            )
        )
        return 128 + sig
    code = os.WEXITSTATUS(status)
    tracer().emit(
        Event("exit", "exit", data={"code": code, **oom}, message=f"exited with {code}{because}")
    )
    return code


def container_main(
    spec: Spec,
    channels: Channels,
    options: InitOptions,
    from_parent: int,
    cgroup: ContainerCgroup | None,
) -> None:
    """The container process (PID 1 inside). Never returns."""
    code = SETUP_FAILED
    try:
        # If the init parent dies, so do we (and with PID 1, the whole PID namespace).
        set_parent_death_signal(signal.SIGKILL)
        # Until exec, terminal signals must not interrupt the setup half-way (the caller
        # aborts through the resume pipe); the exec stage restores the defaults.
        for sig in TERMINAL_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        os.close(channels.control)
        ctx = InitContext(
            spec=spec, channels=channels, options=options, rootfs=os.path.abspath(spec.root.path)
        )
        _finish_namespaces(ctx, from_parent, cgroup)
        exec_stage.prepare_probe(ctx)
        caps.last_cap()  # read now: after pivot_root the container may have no /proc
        pipeline.run_container_stages(ctx)
        code = 0  # only a probe gets here: exec never returns
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else SETUP_FAILED
    except BaseException as error:
        code = report_failure(error)
    finally:
        os._exit(code)


def _finish_namespaces(ctx: InitContext, from_parent: int, cgroup: ContainerCgroup | None) -> None:
    """The container process's half of the namespaces stage (see the handshake in the module
    docstring), then the cgroups stage, which it does alone."""
    log = tracer()
    if os.read(from_parent, 1) != b"n":
        os._exit(SETUP_FAILED)  # the parent failed or died before the namespaces were ready
    os.close(from_parent)
    log.stage = pipeline.NAMESPACES.name
    if userns.creates_user_namespace(ctx.spec):
        userns.become_root(ctx.spec)
        userns.check_reachable(ctx.spec)
        # A change of effective uid clears the parent-death signal: set it again.
        set_parent_death_signal(signal.SIGKILL)
    if log.active:
        log.emit(Event("stage", log.stage, phase="end"))
    pipeline.pause_between(ctx, pipeline.NAMESPACES, pipeline.CGROUPS)
    log.stage = pipeline.CGROUPS.name
    if log.active:
        log.emit(Event("stage", log.stage, phase="start", message=pipeline.CGROUPS.summary))
    cgroups_stage.join(cgroup)
    cgroups_stage.enter_namespace(ctx)
    if log.active:
        log.emit(Event("stage", log.stage, phase="end"))
    pipeline.pause_between(ctx, pipeline.CGROUPS, None)


if __name__ == "__main__":
    boot()
