"""The monitor of a detached container (``kit run -d``): a small process that outlives the CLI.

A container needs a parent for its whole life: something must reap it, keep its output and
write down how it ended. ``kit run -d`` returns at once, so it leaves that job to a monitor,
the role conmon plays for podman and containerd-shim for Docker::

    kit run -d (exits)        monitor ── init parent ── container (PID 1 inside)
                                 │
                                 └── container.log, state.json

The monitor is started with the classic double fork: the CLI forks a child, the child calls
setsid(2) (a new session, no controlling terminal: a terminal hang-up or Ctrl-C in the
user's shell never reaches it) and forks the monitor, then exits at once. The monitor is
thereby an orphan, adopted by the host's init (or the nearest subreaper), and, not being a
session leader, it can never acquire a controlling terminal by accident. Its stdin, stdout
and stderr are /dev/null, its own diagnostics go to ``monitor.log``: nothing ties it to the
terminal or the pipes of the ``kit run -d`` that started it.

It then starts the container with :class:`~kit.runtime.launcher.ContainerProcess`
(``detach=True``: the init parent does not kill the container if the monitor dies), writes the
container's stdout and stderr to ``container.log`` as JSON lines (the format of Docker's
json-file log driver: ``{"log": "...", "stream": "stdout", "time": "..."}``), tells the
CLI when the program runs (or why it could not start), and finally records the exit status
(and OOMKilled) in ``state.json``, or removes the container with ``--rm``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kit.errors import KitError
from kit.runtime import state
from kit.spec import Spec
from kit.trace import Event

if TYPE_CHECKING:
    from kit.runtime.launcher import ExitStatus

LOG_NAME = "container.log"
MONITOR_LOG_NAME = "monitor.log"


# --- the log ----------------------------------------------------------------------------------


def log_path(container_id: str) -> Path:
    return state.container_dir(container_id) / LOG_NAME


class LogWriter:
    """Append the container's output to its log, one JSON record per line of output.

    Bytes that are not UTF-8 survive: they are decoded with ``surrogateescape`` and JSON
    escapes the surrogates, so :func:`read_log` gives back the exact bytes.
    """

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        data = self._partial[stream] + data
        lines = data.split(b"\n")
        self._partial[stream] = lines.pop()  # after the last newline: maybe a partial line
        # A line longer than 16 KiB is written in pieces, as Docker does.
        if len(self._partial[stream]) > 16384:
            lines.append(self._partial[stream])
            self._partial[stream] = b""
            self._emit(stream, [line + b"\n" for line in lines[:-1]] + [lines[-1]])
            return
        self._emit(stream, [line + b"\n" for line in lines])

    def flush(self) -> None:
        """Write out partial lines (at the end)."""
        for stream, rest in self._partial.items():
            if rest:
                self._emit(stream, [rest])
                self._partial[stream] = b""

    def _emit(self, stream: str, chunks: list[bytes]) -> None:
        if not chunks:
            return
        now = state.utc_timestamp()
        records = [
            json.dumps(
                {
                    "log": chunk.decode("utf-8", "surrogateescape"),
                    "stream": stream,
                    "time": now,
                }
            )
            for chunk in chunks
        ]
        # One write(2) per batch with O_APPEND: a reader never sees half a record.
        os.write(self.fd, ("\n".join(records) + "\n").encode())

    def close(self) -> None:
        self.flush()
        os.close(self.fd)


def parse_log_line(line: str) -> tuple[str, bytes, str] | None:
    """(stream, bytes, time) of one log record; None for a torn or foreign line."""
    try:
        record = json.loads(line)
        return (
            str(record["stream"]),
            str(record["log"]).encode("utf-8", "surrogateescape"),
            str(record.get("time", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


# --- starting the monitor (in the CLI) --------------------------------------------------------


def start_detached(
    container_id: str, *, spec: Spec | None = None, interactive: bool = False
) -> int:
    """Fork the monitor of a recorded container; return the container's host PID once its
    program runs. Raises the setup error if it could not start. For single-threaded callers
    (the CLI): it forks. ``spec``: the recorded spec, if the caller has it (the forked monitor
    then need not read config.json back)."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        # The middle child: new session, fork the monitor, exit. Nothing here may return.
        try:
            os.close(ready_r)
            os.setsid()
            if os.fork() == 0:
                _monitor_main(container_id, ready_w, interactive, spec)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.waitpid(child, 0)  # the middle child exits at once: no zombie left behind
    with os.fdopen(ready_r, "rb") as ready:
        report = ready.read()  # until the monitor closes its end
    if not report:
        raise KitError(
            "the container's monitor died before the container started",
            fix=f"see {state.container_dir(container_id) / MONITOR_LOG_NAME}",
            exit_code=125,
        )
    message = json.loads(report.splitlines()[0])
    if "error" in message:
        raise KitError.from_dict(message["error"])
    return int(message["pid"])


# --- the monitor itself -----------------------------------------------------------------------


def _monitor_main(
    container_id: str, ready_fd: int, interactive: bool, spec: Spec | None = None
) -> None:
    """The monitor process. Never returns."""
    code = 1
    try:
        _detach_stdio(container_id, ready_fd)
        code = Monitor(container_id, ready_fd, interactive=interactive, spec=spec).run()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _detach_stdio(container_id: str, keep: int) -> None:
    """stdin/stdout to /dev/null, stderr to monitor.log, no other inherited fd but ``keep``;
    the process name (``ps -o comm``) is "kit-monitor"."""
    from kit.linux.process import set_process_name
    from kit.trace import tracer

    tracer().reset()  # never write to the CLI's trace printers
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(
        state.container_dir(container_id) / MONITOR_LOG_NAME,
        os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        0o600,
    )
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    with contextlib.suppress(KitError):
        set_process_name("kit-monitor")
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)


class Monitor:
    """Runs one detached container from start to recorded end."""

    def __init__(
        self,
        container_id: str,
        ready_fd: int,
        *,
        interactive: bool = False,
        spec: Spec | None = None,
    ) -> None:
        self.container_id = container_id
        self.ready_fd = ready_fd
        self.interactive = interactive
        self.spec: Spec = spec if spec is not None else state.load_spec(container_id)
        self.log = LogWriter(log_path(container_id))
        self.reported = False

    def _tell_cli(self, message: dict[str, object]) -> None:
        if self.reported:
            return
        self.reported = True
        with contextlib.suppress(OSError):
            os.write(self.ready_fd, (json.dumps(message) + "\n").encode())
        os.close(self.ready_fd)

    def on_event(self, event: Event) -> None:
        if event.kind == "process" and event.name == "container":
            pid = int(event.data["host_pid"])
            started = state.process_start_time(pid) or 0

            def running(record: state.ContainerState) -> None:
                record.pid, record.pid_start = pid, started
                record.status = state.RUNNING
                record.started = time.time()

            state.update(self.container_id, running)
        elif event.kind == "process" and event.name == "started":
            self._tell_cli({"pid": state.load(self.container_id).pid})

    def run(self) -> int:
        from kit.runtime.launcher import ContainerProcess

        me = os.getpid()
        me_start = state.process_start_time(me) or 0

        def owned(record: state.ContainerState) -> None:
            record.owner_pid, record.owner_start = me, me_start
            record.log_path = str(log_path(self.container_id))

        state.update(self.container_id, owned)
        # With -i the container's stdin stays open (a shell waits on it): a pipe whose write
        # end only the monitor holds, and never writes to. Without -i, /dev/null.
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC) if self.interactive else (-1, -1)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        container = ContainerProcess(
            self.spec,
            container_id=self.container_id,
            stdin=stdin_r if self.interactive else null,
            capture=True,
            on_output=self.log.write,
            detach=True,
            use_fork=True,  # the monitor is single-threaded
            trace=False,
            on_event=self.on_event,
        )
        try:
            container.start()
            if self.interactive:
                os.close(stdin_r)
            os.close(null)
            status = container.wait()
        finally:
            container.close()
            self.log.close()
        if status.error is not None:
            self._tell_cli({"error": status.error.to_dict()})
        else:
            self._tell_cli({"pid": container.host_pid or 0})
        if stdin_w >= 0:
            os.close(stdin_w)
        self._record_end(status)
        return 0

    def _record_end(self, status: ExitStatus) -> None:
        try:
            record = state.load(self.container_id)
        except KitError:
            return  # removed meanwhile (kit rm -f)
        if record.auto_remove:
            from kit.runtime import lifecycle

            lifecycle.remove_files(self.container_id)
            return

        def stopped(current: state.ContainerState) -> None:
            current.status = state.STOPPED
            current.finished = time.time()
            current.exit_code = status.code
            current.exit_signal = status.signal
            current.oom_killed = current.oom_killed or status.oom_killed
            current.error = str(status.error) if status.error else None

        with contextlib.suppress(KitError):
            state.update(self.container_id, stopped)
