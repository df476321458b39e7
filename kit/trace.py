"""The event stream: every kernel-facing call and every stage of a container becomes an event.

Events are small, JSON-ready records. Inside the container init they are written as JSON lines
to a pipe; in the calling process they are handed to sinks: the ``--trace`` printer, the
``--events json`` writer, a lesson recording what a step did, or the TUI's syscall log.

A syscall event reads like a line of strace::

    [kernel-filesystems] mount("proc", "/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL) = 0
"""

from __future__ import annotations

import errno as errno_module
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, TextIO

#: Event kinds. ``syscall``: one system call. ``stage``: a stage started or ended.
#: ``info``: a remark from the engine. ``process``: a process was created or replaced.
#: ``pause``: the init is waiting at a stage boundary. ``exit``: the container ended.
#: ``error``: a KitError crossed a process boundary. ``result``: a probe's answer.
KINDS = ("syscall", "stage", "info", "process", "pause", "exit", "error", "result")


@dataclass
class Event:
    """One thing that happened while building or running a container."""

    kind: str
    name: str
    args: list[str] = field(default_factory=list)
    result: str | None = None
    errno: int | None = None
    duration_ms: float | None = None
    stage: str | None = None
    phase: str | None = None
    message: str | None = None
    pid: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    @property
    def failed(self) -> bool:
        """True for a system call that returned an error."""
        return self.errno is not None

    def to_json(self) -> str:
        """One JSON line (no trailing newline)."""
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str | bytes) -> Event:
        """Parse a line written by :meth:`to_json`."""
        return cls(**json.loads(line))

    def format(self, *, with_stage: bool = True) -> str:
        """Render for people: strace-like for syscalls, one line for the rest."""
        prefix = f"[{self.stage}] " if with_stage and self.stage else ""
        if self.kind == "syscall":
            call = f"{self.name}({', '.join(self.args)})"
            if self.errno is not None:
                code = errno_module.errorcode.get(self.errno, str(self.errno))
                outcome = f"-1 {code} ({os.strerror(self.errno)})"
            else:
                outcome = self.result if self.result is not None else "0"
            note = f"  # {self.message}" if self.message else ""
            return f"{prefix}{call} = {outcome}{note}"
        if self.kind == "stage":
            return f"--- stage {self.name}: {self.phase} ---"
        if self.kind == "exit":
            return f"+++ {self.message or self.name} +++"
        text = self.message or self.name
        return f"{prefix}{text}"


_FIELDS = tuple(f.name for f in fields(Event))

Sink = Callable[[Event], None]


class Tracer:
    """Collects events and hands each one to every sink.

    There is one tracer per process (see :func:`tracer`). The current stage is remembered so
    each event says which stage of container creation issued it.
    """

    def __init__(self) -> None:
        self._sinks: list[Sink] = []
        self.stage: str | None = None
        #: False: only the events the caller needs to drive a container (process, pause,
        #: exit, error, result) are made; system calls and stages are not traced at all.
        self.detail = True

    def reset(self) -> None:
        """Forget every sink (a forked child must not write to its parent's printers)."""
        self._sinks.clear()
        self.stage = None

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    @property
    def active(self) -> bool:
        """Whether detailed events (system calls, stages) are wanted by anybody."""
        return self.detail and bool(self._sinks)

    def emit(self, event: Event) -> None:
        if event.stage is None:
            event.stage = self.stage
        for sink in list(self._sinks):
            sink(event)

    def info(self, message: str, **data: Any) -> None:
        """Emit a remark from the engine, e.g. which rootfs was chosen."""
        if self._sinks:
            self.emit(Event("info", "info", message=message, data=data))

    @contextmanager
    def capture(self) -> Iterator[list[Event]]:
        """Collect the events emitted inside a ``with`` block into a list."""
        events: list[Event] = []
        self.add_sink(events.append)
        try:
            yield events
        finally:
            self.remove_sink(events.append)


_TRACER = Tracer()


def tracer() -> Tracer:
    """The tracer of this process."""
    return _TRACER


def text_printer(stream: TextIO, *, show: Callable[[Event], bool] | None = None) -> Sink:
    """A sink that prints events for people (``kit run --trace``)."""

    def sink(event: Event) -> None:
        if show is None or show(event):
            stream.write(event.format() + "\n")
            stream.flush()

    return sink


def json_printer(stream: TextIO) -> Sink:
    """A sink that writes JSON lines for programs (``kit run --events json``)."""

    def sink(event: Event) -> None:
        stream.write(event.to_json() + "\n")
        stream.flush()

    return sink


def fd_writer(fd: int) -> Sink:
    """A sink that writes JSON lines to a raw file descriptor (the init's event pipe).

    Each event is one ``write`` well under PIPE_BUF (4096 bytes) where possible, so lines from
    the init's two processes never interleave inside a line.
    """

    def sink(event: Event) -> None:
        data = (event.to_json() + "\n").encode()
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BrokenPipeError:
                return  # nobody listens any more (the caller went away); keep going
            view = view[written:]

    return sink
