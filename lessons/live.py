"""Kernel objects a lesson keeps alive between steps: containers and experiment processes.

A step often leaves something running so the next step, the check, or the learner's shell
can look at it: a container paused between two stages, a container running its program, a
process chrooted into a directory. Each is held by a :class:`LiveContainer` or a
:class:`LiveProcess` owned by the session, and :meth:`close` always tears it down for real
(the container is killed, its namespaces and mounts vanish with it).

If the program holding them dies, nothing survives either: a container's init kills the
container when its caller goes away, and an experiment child exits when its stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import time
from collections.abc import Callable
from typing import Any

from kit.errors import KitError
from kit.probes.experiment import Experiment
from kit.runtime import pipeline
from kit.runtime.exec import PROCESS_STAGES
from kit.runtime.launcher import ContainerProcess, ExitStatus, Pause
from kit.spec import Spec
from kit.trace import Event

EventSink = Callable[[Event], None]


class LiveContainer:
    """A container started by a lesson and kept until the lesson lets it go.

    ``pauses`` lists the stages after which it stops, in order; :meth:`advance` moves it to
    the next one. With ``run_program`` the container finally execs its program and keeps
    running it (the lesson never waits for it). ``pipe_stdio`` gives the lesson the other end
    of the program's stdin and stdout (for probes that report and then wait).
    """

    def __init__(
        self,
        name: str,
        spec: Spec,
        *,
        pauses: list[str],
        run_program: bool,
        pipe_stdio: bool = False,
        on_event: EventSink | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.pauses = list(pauses)
        self.run_program = run_program
        self.pause: Pause | None = None
        self.status: ExitStatus | None = None
        self.running = False  # exec'd (or running its probe)
        self._stdin_w = -1
        self._stdout_r = -1
        self._buffer = b""
        stdin_r: int | None = None
        stdout_w: int | None = None
        if pipe_stdio:
            stdin_r, self._stdin_w = os.pipe2(os.O_CLOEXEC)
            self._stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        # Stopping just before exec tells us the container's host PID without waiting for
        # the program to end; then we let it go and never wait for it.
        before = ["exec"] if run_program else []
        self.process = ContainerProcess(
            spec,
            pause_after=self.pauses,
            pause_before=before,
            stdin=stdin_r if stdin_r is not None else self._devnull,
            stdout=stdout_w if stdout_w is not None else self._devnull,
            stderr=self._devnull,
            on_event=on_event,
        )
        try:
            self.process.start()
        finally:
            for fd in (stdin_r, stdout_w):
                if fd is not None:
                    os.close(fd)

    @property
    def host_pid(self) -> int | None:
        return self.process.host_pid

    @property
    def where(self) -> str:
        """Where the container is now, for people."""
        if self.status is not None:
            return "ended"
        if self.running:
            return "running its program"
        if self.pause is not None:
            return f"paused {self.pause.phase} {self.pause.stage}"
        return "starting"

    @property
    def confined(self) -> bool:
        """Whether the container's process has started confining itself (its first process
        stage ran): from then on, a process joining it gets the container's whole confinement
        (see :mod:`lessons.shell`)."""
        if self.running:
            return True
        if self.pause is None:
            return False
        names = pipeline.stage_names()
        first = min(names.index(stage) for stage in PROCESS_STAGES)
        done = names.index(self.pause.stage) + (1 if self.pause.phase == "after" else 0)
        return done > first

    def advance(self) -> Pause | None:
        """Resume to the next pause (or into the program). Raises the KitError if setup
        failed."""
        if self.pause is not None:
            self.process.resume()
            self.pause = None
        pause = self.process.next_pause()
        if pause is None:
            self.status = self.process.status
            if self.status is not None and self.status.error is not None:
                raise self.status.error
            return None
        if pause.phase == "before" and pause.stage == "exec":
            exe = _exe(pause.host_pid)
            self.process.resume()  # into the program
            # Wait for the execve itself, so that a check or a shell right after this sees the
            # program as PID 1, not kit's init a moment before it replaced itself.
            _wait_for_exec(pause.host_pid, exe)
            self.running = True
            return None
        self.pause = pause
        return pause

    def advance_to(self, stage: str) -> Pause:
        """Resume until paused after ``stage``."""
        while True:
            pause = self.advance()
            if pause is not None and pause.stage == stage:
                return pause
            if pause is None:
                raise KitError(
                    f"the container never paused after {stage}",
                    fix="the lesson asks for a stage its container was not told to stop at",
                )

    def read_line(self, timeout: float = 30.0) -> Any:
        """One JSON line the program wrote on stdout (``pipe_stdio`` containers)."""
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._stdout_r], [], [], timeout)
            if not ready:
                raise KitError("the container did not answer in time", fix="reset the lesson")
            data = os.read(self._stdout_r, 65536)
            if not data:
                raise KitError("the container ended without answering", fix="reset the lesson")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        """Kill the container (if alive) and reap it; its namespaces and mounts go with it."""
        with contextlib.suppress(Exception):
            self.process.close()
        for attr in ("_stdin_w", "_stdout_r", "_devnull"):
            fd = getattr(self, attr)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, attr, -1)
        self.pause = None
        self.running = False


class LiveProcess:
    """A probe function running in its own child interpreter, kept alive after it reported
    (see :mod:`kit.probes.experiment`)."""

    def __init__(self, name: str, experiment: Experiment, result: Any) -> None:
        self.name = name
        self.experiment = experiment
        self.result = result

    @property
    def host_pid(self) -> int | None:
        return self.experiment.pid

    @property
    def where(self) -> str:
        return "running" if self.experiment.alive else "ended"

    def close(self) -> None:
        self.experiment.close()


Live = LiveContainer | LiveProcess


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _wait_for_exec(pid: int, exe: str | None, timeout: float = 5.0) -> None:
    """Until /proc/PID/exe changes (the execve happened) or the process is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = _exe(pid)
        if now is None or now != exe:
            return
        time.sleep(0.002)
