"""Running a probe function in a fresh, single-threaded interpreter on the host.

Some demonstrations need a process of their own: chroot(2) changes the caller's root, and
unshare(2) moves the caller into new namespaces. A lesson must never do that to the program
it runs in (the TUI is multi-threaded; a chroot would take every thread with it), so the
function runs in a child interpreter started the way the container init is started
(``python -I -S``, kit on ``sys.path``). The child streams its trace events back as JSON lines
on a pipe, then its result (or a KitError), exactly like the init does.

With ``stay=True`` the child keeps running after it reported, holding on to whatever it did
(its root directory, its namespaces), until :meth:`Experiment.close` closes its stdin. That
lets a lesson check the kernel state the experiment left: ``/proc/PID/root``,
``/proc/PID/mountinfo``. If the caller dies, the child sees end-of-file and exits too.

Typical use::

    with Experiment("kit.probes.pivot:pivot_into", {"root": "/tmp/r", "bind_first": False}) as ex:
        result = ex.result()          # what the function returned
    print(ex.events)                  # every system call it made
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from kit.errors import KitError
from kit.reexec import fresh_interpreter
from kit.trace import Event, fd_writer, tracer

#: How long a child may take to report before the caller gives up (it is then killed).
DEFAULT_TIMEOUT = 30.0


class Experiment:
    """A probe function running in its own child interpreter. A context manager: leaving it
    always ends the child."""

    def __init__(
        self,
        function: str,
        args: dict[str, Any] | None = None,
        *,
        stay: bool = False,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.function = function
        self.args = dict(args or {})
        self.stay = stay
        self.on_event = on_event
        self.events: list[Event] = []
        self.pid: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._events_fd = -1
        self._stdin_fd = -1
        self._buffer = b""
        self._done = False
        self._result: Any = None
        self._error: KitError | None = None

    def start(self) -> Experiment:
        events_r, events_w = os.pipe2(os.O_CLOEXEC)
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
        setup = {
            "function": self.function,
            "args": self.args,
            "events_fd": events_w,
            "stay": self.stay,
        }
        argv = fresh_interpreter(__name__, json.dumps(setup))
        try:
            self._popen = subprocess.Popen(
                argv,
                pass_fds=[events_w],
                stdin=stdin_r,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                close_fds=True,
            )
        finally:
            os.close(events_w)
            os.close(stdin_r)
        self.pid = self._popen.pid
        self._events_fd, self._stdin_fd = events_r, stdin_w
        return self

    def result(self, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Wait for the function's result; raise its KitError if it failed."""
        deadline = time.monotonic() + timeout
        while not self._done:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise KitError(
                    f"the experiment {self.function} did not answer within {timeout:.0f} s",
                    fix="run it again; if it keeps hanging, report it as a kit bug",
                )
            ready, _, _ = select.select([self._events_fd], [], [], left)
            if ready:
                self._read()
        if self._error is not None:
            raise self._error
        return self._result

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def close(self, timeout: float = 5.0) -> int | None:
        """Let the child go (end-of-file on its stdin) and reap it; kill it if it lingers."""
        if self._popen is None:
            return None
        if self._stdin_fd >= 0:
            os.close(self._stdin_fd)
            self._stdin_fd = -1
        try:
            code = self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self._popen.wait()
        if self._events_fd >= 0:
            os.close(self._events_fd)
            self._events_fd = -1
        if self._popen.stderr is not None:
            self._popen.stderr.close()
        return code

    def kill(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(signal.SIGKILL)

    def __enter__(self) -> Experiment:
        if self._popen is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        data = os.read(self._events_fd, 65536)
        if not data:
            self._finish_without_result()
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            event = Event.from_json(line)
            if event.kind == "result":
                self._result = event.data.get("result")
                self._done = True
            elif event.kind == "error":
                self._error = (
                    KitError.from_dict(event.data)
                    if event.data
                    else KitError(event.message or f"the experiment {self.function} failed")
                )
                self._done = True
            self.events.append(event)
            if self.on_event is not None:
                self.on_event(event)

    def _finish_without_result(self) -> None:
        self._done = True
        assert self._popen is not None
        code = self._popen.wait()
        stderr = self._popen.stderr.read().decode(errors="replace") if self._popen.stderr else ""
        if self._error is None:
            self._error = KitError(
                f"the experiment {self.function} ended (status {code}) without a result",
                cause=stderr.strip().splitlines()[-1] if stderr.strip() else None,
                fix="report this as a kit bug, with the output of the lesson",
            )


def run_experiment(
    function: str, on_event: Callable[[Event], None] | None = None, **args: Any
) -> Any:
    """Run ``function(**args)`` in a child interpreter and return its result."""
    with Experiment(function, args, on_event=on_event) as experiment:
        return experiment.result()


# --- the child's side -------------------------------------------------------------------------


def boot() -> None:
    """Entry point of the child interpreter (see :func:`kit.reexec.fresh_interpreter`)."""
    setup = json.loads(sys.argv[1])
    events_fd = int(setup["events_fd"])
    log = tracer()
    log.add_sink(fd_writer(events_fd))
    code = 0
    try:
        module_name, _, name = setup["function"].partition(":")
        module = __import__(module_name, fromlist=[name])
        function = getattr(module, name)
        # Imported now, while the host's files are reachable: the function may chroot.
        result = function(**setup["args"])
        log.emit(Event("result", setup["function"], data={"result": result}))
        if setup["stay"]:
            while os.read(0, 4096):  # until the caller closes our stdin (or dies)
                pass
    except KitError as error:
        log.emit(Event("error", "error", message=str(error), data=error.to_dict()))
        code = 1
    except BaseException:
        log.emit(Event("error", "error", message=traceback.format_exc()))
        code = 1
    finally:
        os._exit(code)
