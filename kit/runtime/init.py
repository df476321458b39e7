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
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import traceback

# Everything the container process may need after pivot_root must be imported now: once the
# host's root is detached, the interpreter can no longer find its own module files.
from kit import elf  # noqa: F401  (used by the exec stage's explanations)
from kit.errors import KitError
from kit.linux.flags import NAMESPACES
from kit.linux.namespaces import clone_flags, join_namespace, unshare
from kit.linux.process import set_parent_death_signal
from kit.runtime import pipeline
from kit.runtime.context import Channels, InitContext, InitOptions
from kit.runtime.stages import exec as exec_stage
from kit.spec import Spec
from kit.trace import Event, fd_writer, tracer

#: Exit status when container setup fails before the program starts (Docker uses 125 too).
SETUP_FAILED = 125

#: Signals the init parent must survive: the terminal sends them to the whole foreground
#: process group, and the caller decides what reaches the container.
_PARENT_IGNORES = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP)


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
        for sig in _PARENT_IGNORES:
            signal.signal(sig, signal.SIG_IGN)
        code = _create_and_watch(spec, channels, options)
    except KitError as error:
        tracer().emit(Event("error", "error", message=str(error), data=error.to_dict()))
        code = error.exit_code if error.exit_code != 1 else SETUP_FAILED
    except BaseException:  # report, never hang the caller
        tracer().emit(Event("error", "error", message=traceback.format_exc()))
    finally:
        os._exit(code)


def _create_and_watch(spec: Spec, channels: Channels, options: InitOptions) -> int:
    log = tracer()
    log.stage = pipeline.NAMESPACES.name
    if log.active:
        log.emit(Event("stage", log.stage, phase="start", message=pipeline.NAMESPACES.summary))
    _enter_namespaces(spec)
    go_read, go_write = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(go_write)
        container_main(spec, channels, options, go_read)
    os.close(go_read)
    log.emit(
        Event(
            "process",
            "container",
            data={"host_pid": pid, "init_pid": os.getpid()},
            message=f"container process is PID {pid} on the host, PID 1 inside",
        )
    )
    if log.active:
        log.emit(Event("stage", log.stage, phase="end"))
    # The container process waits for this byte, so the caller learns its host PID (the event
    # above) before anything else happens in it.
    os.write(go_write, b"g")
    os.close(go_write)
    for fd in (channels.resume, channels.console):
        if fd is not None and fd >= 0:
            os.close(fd)
    return _watch(pid, channels, options)


def _enter_namespaces(spec: Spec) -> None:
    """Join namespaces given by path, and unshare the rest."""
    create: list[str] = []
    for ns in spec.linux.namespaces:
        if ns.path:
            join_namespace(ns.path, NAMESPACES[ns.type][0])
        elif ns.type != "user":
            create.append(ns.type)
    if create:
        unshare(clone_flags(create))


def _watch(pid: int, channels: Channels, options: InitOptions) -> int:
    """Forward signals from the caller until the container process exits; return its status."""
    pidfd = os.pidfd_open(pid)
    watching = [pidfd, channels.control]
    buffer = b""
    while True:
        ready, _, _ = select.select(watching, [], [])
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
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name
        tracer().emit(
            Event(
                "exit", "exit", data={"code": 128 + sig, "signal": sig}, message=f"killed by {name}"
            )
        )
        return 128 + sig
    code = os.WEXITSTATUS(status)
    tracer().emit(Event("exit", "exit", data={"code": code}, message=f"exited with {code}"))
    return code


def container_main(spec: Spec, channels: Channels, options: InitOptions, go_fd: int) -> None:
    """The container process (PID 1 inside). Never returns."""
    code = SETUP_FAILED
    try:
        # If the init parent dies, so do we (and with PID 1, the whole PID namespace).
        set_parent_death_signal(signal.SIGKILL)
        # Until exec, terminal signals must not interrupt the setup half-way (the caller
        # aborts through the resume pipe); the exec stage restores the defaults.
        for sig in _PARENT_IGNORES:
            signal.signal(sig, signal.SIG_IGN)
        os.close(channels.control)
        if os.read(go_fd, 1) != b"g":
            os._exit(SETUP_FAILED)  # the parent died before letting us start
        os.close(go_fd)
        ctx = InitContext(
            spec=spec, channels=channels, options=options, rootfs=os.path.abspath(spec.root.path)
        )
        exec_stage.prepare_probe(ctx)
        pipeline.run_container_stages(ctx)
        code = 0  # only a probe gets here: exec never returns
    except KitError as error:
        tracer().emit(Event("error", "error", message=str(error), data=error.to_dict()))
        code = error.exit_code if error.exit_code != 1 else SETUP_FAILED
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else SETUP_FAILED
    except BaseException:
        tracer().emit(Event("error", "error", message=traceback.format_exc()))
    finally:
        os._exit(code)


if __name__ == "__main__":
    boot()
