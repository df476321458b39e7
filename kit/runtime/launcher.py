"""Starting a container and talking to it: the caller's side of the init.

:class:`ContainerProcess` starts the init (see :mod:`kit.runtime.init`), reads its event
stream, stops at pauses so the half-built container can be inspected from the host, forwards
signals, relays a terminal, and collects the exit status. It never forks or unshares in the
calling process unless asked to (``use_fork=True``, for the single-threaded CLI): by default
it starts a fresh interpreter, which is safe from threaded programs like the TUI.

Typical use::

    with ContainerProcess(spec, pause_after=["pivot-root"]) as container:
        pause = container.next_pause()      # the container waits after pivot_root
        print(pause.diff.lines())           # what that stage did to the mount table
        container.resume()
        status = container.wait()
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kit import mounts
from kit.errors import KitError
from kit.linux.namespaces import namespace_ids
from kit.reexec import fresh_interpreter
from kit.runtime import pipeline
from kit.runtime.context import Channels, InitOptions
from kit.runtime.defaults import new_container_id
from kit.spec import Spec
from kit.trace import Event, tracer

if TYPE_CHECKING:  # imported when needed: a container without a terminal never needs them
    import socket
    import subprocess

    from kit.runtime.console import RawTerminal


@dataclass
class ExitStatus:
    """How a container ended."""

    #: Shell-style status: the exit code, or 128+N when killed by signal N.
    code: int
    signal: int | None = None
    #: Why setup failed, when it did (the program never ran).
    error: KitError | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    #: What a probe returned (``spec.kit.probe``).
    result: Any = None
    #: The OOM killer killed a process of the container (its memory limit was reached).
    oom_killed: bool = False


@dataclass
class Pause:
    """The container is waiting at a stage boundary; inspect it from the host."""

    stage: str
    phase: str
    host_pid: int
    mounts: list[mounts.Mount]
    #: What the stage changed in the mount table (exact for a pause after a stage).
    diff: mounts.MountDiff
    namespaces: dict[str, int]
    host_namespaces: dict[str, int]


EventCallback = Callable[[Event], None]
#: Receives the container's output as it comes: ("stdout" | "stderr", bytes).
OutputCallback = Callable[[str, bytes], None]


class ContainerProcess:
    """One container being created and run. Use as a context manager: leaving it always
    leaves nothing behind (the container is killed if still running)."""

    #: The module whose ``boot()`` a re-executed interpreter runs (``kit exec`` runs its own).
    boot_module = "kit.runtime.init"

    def __init__(
        self,
        spec: Spec,
        *,
        container_id: str | None = None,
        pause_before: Iterable[str] = (),
        pause_after: Iterable[str] = (),
        stdin: int | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
        capture: bool = False,
        relay_terminal: bool = False,
        use_fork: bool = False,
        detach: bool = False,
        trace: bool = True,
        on_event: EventCallback | None = None,
        on_output: OutputCallback | None = None,
        console_socket: int | None = None,
        exec_fifo: str | None = None,
    ) -> None:
        self.spec = spec
        self.container_id = container_id or new_container_id()
        self.pause_before = list(pause_before)
        self.pause_after = list(pause_after)
        pipeline.check_stage_names(self.pause_before + self.pause_after)
        # To show exactly what a stage did, also stop (silently) just before it.
        self._silent_before = {s for s in self.pause_after if s != "namespaces"} - set(
            self.pause_before
        )
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.capture = capture
        self.relay_terminal = relay_terminal
        self.use_fork = use_fork
        self.detach = detach
        self.trace = trace
        self.on_event = on_event
        #: With ``capture``: hand output to this callback as it arrives instead of keeping it
        #: (a detached container's monitor writes it to the log). Also receives the output
        #: of a terminal (``-t``) that is not relayed to ours.
        self.on_output = on_output
        #: A connected unix socket (OCI ``--console-socket``): the terminal's master is sent
        #: there instead of to us.
        self.console_socket = console_socket
        #: OCI create: the container waits at this FIFO before execve (see kit.runtime.gate).
        self.exec_fifo = exec_fifo
        # Watch the resume pipe until nothing in the container reads it any more: the program
        # replaced the init (execve closed the pipe, which is close-on-exec) or the container
        # process ended. A "started" event says so.
        self._watch_resume = True
        self._resume_error = False
        self._stdin_open = True
        self.events: list[Event] = []
        self.init_pid: int | None = None
        self.host_pid: int | None = None
        self.console_master: int | None = None
        self.status: ExitStatus | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._events_fd = -1
        self._control_fd = -1
        self._resume_fd = -1
        self._console_sock: socket.socket | None = None
        #: Our read ends of the capture pipes -> "stdout" / "stderr", and what they gave.
        self._capture_fds: dict[int, str] = {}
        self._captured: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._buffer = b""
        self._last_mounts: list[mounts.Mount] = []
        self._host_ns: dict[str, int] = {}
        self._error: KitError | None = None
        self._exit: dict[str, Any] | None = None
        self._result: Any = None
        self._events_open = False
        self._terminal: RawTerminal | None = None

    # --- starting -------------------------------------------------------------------------

    def start(self) -> ContainerProcess:
        if self.pause_after or self.pause_before:
            # The baseline against which the first pause shows what changed.
            self._last_mounts = mounts.read()
            self._host_ns = namespace_ids()
        events_r, events_w = os.pipe2(os.O_CLOEXEC)
        control_r, control_w = os.pipe2(os.O_CLOEXEC)
        resume_r, resume_w = os.pipe2(os.O_CLOEXEC)
        child_fds = [events_w, control_r, resume_r]
        console_child = -1
        if self.spec.process.terminal and self.console_socket is not None:
            console_child = os.dup(self.console_socket)
            child_fds.append(console_child)
        elif self.spec.process.terminal:
            import socket

            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self._console_sock = ours
            console_child = theirs.detach()
            child_fds.append(console_child)
        capture_child: dict[int, int] = {}
        if self.capture:
            for target, name in ((1, "stdout"), (2, "stderr")):
                read_end, write_end = os.pipe2(os.O_CLOEXEC)
                self._capture_fds[read_end] = name
                capture_child[target] = write_end
        channels = Channels(events_w, control_r, resume_r, console_child)
        options = InitOptions(
            container_id=self.container_id,
            pause_before=sorted(set(self.pause_before) | self._silent_before),
            pause_after=self.pause_after,
            detach=self.detach,
            trace=self.trace,
            exec_fifo=self.exec_fifo,
        )
        stdio = {
            0: self.stdin,
            1: capture_child.get(1, self.stdout),
            2: capture_child.get(2, self.stderr),
        }
        try:
            if self.use_fork:
                self.init_pid = self._fork(channels, options, stdio)
            else:
                self.init_pid = self._reexec(channels, options, stdio)
        finally:
            for fd in [*child_fds, *capture_child.values()]:
                os.close(fd)
        self._events_fd, self._control_fd, self._resume_fd = events_r, control_w, resume_w
        self._events_open = True
        return self

    def _reexec(
        self, channels: Channels, options: InitOptions, stdio: dict[int, int | None]
    ) -> int:
        import subprocess

        spec_r, spec_w = os.pipe2(os.O_CLOEXEC)
        setup = {
            "channels": channels.to_dict(),
            "options": options.to_dict(),
            "spec_fd": spec_r,
            **self._boot_setup(),
        }
        # The init re-executes in a fresh interpreter (kit.reexec): no fork of a threaded caller.
        argv = fresh_interpreter(self.boot_module, json.dumps(setup))
        try:
            self._popen = subprocess.Popen(
                argv,
                pass_fds=[*channels.fds(), spec_r],
                stdin=stdio[0],
                stdout=stdio[1],
                stderr=stdio[2],
                close_fds=True,
            )
        finally:
            os.close(spec_r)
        with os.fdopen(spec_w, "wb") as spec_pipe:
            spec_pipe.write(self.spec.to_json().encode())
        return self._popen.pid

    def _boot_setup(self) -> dict[str, Any]:
        """More settings for the re-executed interpreter's ``boot()`` (subclasses add some)."""
        return {}

    def _fork(self, channels: Channels, options: InitOptions, stdio: dict[int, int | None]) -> int:
        """Fork the init directly: saves starting an interpreter. Only for single-threaded
        callers (the CLI); forking a threaded process can deadlock the child."""
        from kit.runtime.init import parent_main  # imported before fork: the child inherits it

        pid = os.fork()
        if pid != 0:
            return pid
        try:
            tracer().reset()
            keep = set(channels.fds())
            for target, fd in stdio.items():
                if fd is not None:
                    os.dup2(fd, target)
            for entry in os.listdir("/proc/self/fd"):
                fd = int(entry)
                if fd > 2 and fd not in keep:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            parent_main(self.spec, channels, options)
        finally:
            os._exit(125)

    # --- talking to it ---------------------------------------------------------------------

    def next_pause(self) -> Pause | None:
        """Run until the container pauses (returned) or ends (None)."""
        return self._pump(stop_at_pause=True)

    def resume(self) -> None:
        """Let a paused container continue."""
        os.write(self._resume_fd, b"c")

    def signal(self, sig: int) -> None:
        """Deliver a signal to the container's PID 1 (through its parent, no PID races)."""
        if self._control_fd >= 0:
            with contextlib.suppress(BrokenPipeError):
                os.write(self._control_fd, f"signal {int(sig)}\n".encode())

    def wait(self) -> ExitStatus:
        """Run to the end (pauses are resumed automatically) and return the exit status."""
        while self._pump(stop_at_pause=True) is not None:
            self.resume()
        assert self.status is not None
        return self.status

    def abort(self) -> ExitStatus:
        """Stop now: the container is killed and everything it had is torn down."""
        for attr in ("_resume_fd", "_control_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)
        while self._pump(stop_at_pause=True) is not None:
            pass
        assert self.status is not None
        return self.status

    def __enter__(self) -> ContainerProcess:
        if self.init_pid is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.init_pid is not None and self.status is None:
            self.abort()
        for fd in (self._events_fd, self._control_fd, self._resume_fd, self.console_master):
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._events_fd = self._control_fd = self._resume_fd = -1
        self.console_master = None
        for fd in list(self._capture_fds):
            os.close(fd)
        self._capture_fds.clear()
        if self._console_sock is not None:
            self._console_sock.close()
            self._console_sock = None

    # --- the event loop --------------------------------------------------------------------

    def _pump(self, *, stop_at_pause: bool) -> Pause | None:
        if self.status is not None:
            return None
        while self._events_open or self._capture_fds or self.console_master is not None:
            readable = self._wait_readable()
            for fd in readable:
                if fd == self._events_fd:
                    pause = self._read_events()
                    if pause is not None and stop_at_pause:
                        return pause
                elif self._console_sock is not None and fd == self._console_sock.fileno():
                    self._receive_console()
                elif fd in self._capture_fds:
                    data = os.read(fd, 65536)
                    if data and self.on_output is not None:
                        self.on_output(self._capture_fds[fd], data)
                    elif data:
                        self._captured[self._capture_fds[fd]] += data
                    else:
                        os.close(fd)
                        del self._capture_fds[fd]
                elif fd == self.console_master:
                    self._relay_from_container()
                elif fd == 0:
                    self._relay_to_container()
            if self._resume_gone():
                self._watch_resume = False
                if self.host_pid is not None and self._error is None and self._result is None:
                    self._publish(
                        Event("process", "started", message="the container's program runs")
                    )
            if not self._events_open and self._only_terminal_left():
                break
        self._finish()
        return None

    def _wait_readable(self) -> list[int]:
        watch: list[int] = []
        if self._events_open:
            watch.append(self._events_fd)
        if self._console_sock is not None:
            watch.append(self._console_sock.fileno())
        watch += list(self._capture_fds)
        if self.console_master is not None and self._reads_terminal():
            watch.append(self.console_master)
            if self.relay_terminal and self._stdin_open:
                watch.append(0)
        poller = select.poll()
        for fd in watch:
            poller.register(fd, select.POLLIN)
        if self._watch_resume and self._resume_fd >= 0:
            # Registered for no event: poll still reports POLLERR on a pipe's write end once
            # its last reader is closed.
            poller.register(self._resume_fd, 0)
        try:
            ready = poller.poll()
        except InterruptedError:
            return []
        self._resume_error = any(fd == self._resume_fd and fd not in watch for fd, _ in ready)
        # POLLHUP without POLLIN (a pipe whose writers are gone) reads as end-of-file.
        return [fd for fd, _ in ready if fd in watch]

    def _resume_gone(self) -> bool:
        return self._watch_resume and self._resume_error

    def _reads_terminal(self) -> bool:
        return self.relay_terminal or self.on_output is not None

    def _only_terminal_left(self) -> bool:
        """After the init is gone, keep relaying only until the terminal has drained."""
        return not self._capture_fds and (self.console_master is None or not self._reads_terminal())

    def _read_events(self) -> Pause | None:
        data = os.read(self._events_fd, 65536)
        if not data:
            self._events_open = False
            os.close(self._events_fd)
            self._events_fd = -1
            return None
        self._buffer += data
        pause = None
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            event = Event.from_json(line)
            found = self._handle(event)
            if found is not None:
                pause = found
                # Keep the rest buffered: nothing more arrives until we resume anyway.
                break
        return pause

    def _handle(self, event: Event) -> Pause | None:
        if event.kind == "process" and event.name == "container":
            self.host_pid = int(event.data["host_pid"])
        elif event.kind == "error":
            if event.data:
                self._error = KitError.from_dict(event.data)
            else:
                self._error = KitError(event.message or "the init failed")
        elif event.kind == "exit":
            self._exit = event.data
        elif event.kind == "result":
            self._result = event.data.get("result")
        if event.kind == "pause":
            return self._on_pause(event)
        self._publish(event)
        return None

    def _publish(self, event: Event) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _on_pause(self, event: Event) -> Pause | None:
        assert self.host_pid is not None
        now = mounts.read(self.host_pid)
        pause = Pause(
            stage=event.name,
            phase=event.phase or "after",
            host_pid=self.host_pid,
            mounts=now,
            diff=mounts.diff(self._last_mounts, now),
            namespaces=namespace_ids(self.host_pid),
            host_namespaces=self._host_ns,
        )
        self._last_mounts = now
        if event.phase == "before" and event.name in self._silent_before:
            self.resume()  # only a snapshot, so the pause after this stage shows its diff
            return None
        self._publish(event)
        return pause

    def _receive_console(self) -> None:
        from kit.runtime.console import RawTerminal, receive_fd, set_window_size, window_size

        assert self._console_sock is not None
        fd = receive_fd(self._console_sock)
        self._console_sock.close()
        self._console_sock = None
        if fd is None:
            return
        self.console_master = fd
        if self.relay_terminal:
            self._terminal = RawTerminal(0).__enter__()
            size = window_size(0)
            if size:
                set_window_size(fd, *size)
            signal.signal(signal.SIGWINCH, self._on_winch)

    def _on_winch(self, signum: int, frame: object) -> None:
        """Our terminal was resized: pass the new size on at once (the container's terminal
        sends its foreground job SIGWINCH), before any keys typed after the resize."""
        from kit.runtime.console import set_window_size, window_size

        size = window_size(0)
        if size and self.console_master is not None:
            set_window_size(self.console_master, *size)

    def _relay_from_container(self) -> None:
        assert self.console_master is not None
        try:
            data = os.read(self.console_master, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            data = b""
        if not data:
            self._close_terminal()
            return
        if self.on_output is not None and not self.relay_terminal:
            self.on_output("stdout", data)
            return
        os.write(1, data)

    def _relay_to_container(self) -> None:
        try:
            data = os.read(0, 65536)
        except OSError:  # EIO: our terminal hung up
            data = b""
        if not data:
            # Our stdin ended (a closed pipe, a hung-up terminal): stop watching it, or poll
            # would report it readable forever and the loop would spin.
            self._stdin_open = False
            return
        if self.console_master is not None:
            os.write(self.console_master, data)

    def _close_terminal(self) -> None:
        if self._terminal is not None:
            self._terminal.__exit__(None, None, None)
            self._terminal = None
        if self.console_master is not None:
            os.close(self.console_master)
            self.console_master = None

    def _remove_cgroups_of_a_killed_init(self) -> None:
        """The init parent was killed before it could remove the container's cgroups (every
        root container has one, for its device policy): its container died with it (parent
        death signal), so remove them here."""
        from kit.runtime.lifecycle import remove_cgroups

        with contextlib.suppress(KitError, OSError):
            remove_cgroups(self.container_id)

    def _finish(self) -> None:
        """Reap the init and assemble the exit status."""
        if self.status is not None:
            return
        self._close_terminal()
        assert self.init_pid is not None
        if self._popen is not None:
            raw = self._popen.wait()
        else:
            raw = os.waitstatus_to_exitcode(os.waitpid(self.init_pid, 0)[1])
        code = raw if raw >= 0 else 128 - raw  # killed by signal N: -N, shown as 128+N
        if raw < 0 and self._exit is None:
            self._remove_cgroups_of_a_killed_init()
        sig = None
        oom_killed = False
        if self._exit is not None:
            code = int(self._exit.get("code", code))
            sig = self._exit.get("signal")
            oom_killed = bool(self._exit.get("oom_killed"))
        self.status = ExitStatus(
            code=code,
            signal=sig,
            error=self._error,
            stdout=bytes(self._captured["stdout"]),
            stderr=bytes(self._captured["stderr"]),
            result=self._result,
            oom_killed=oom_killed,
        )
