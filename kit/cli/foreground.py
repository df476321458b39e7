"""Running one container in the foreground of a terminal: what ``kit run`` does.

It keeps the container's record, prints traces and events, relays signals, and, when
stepping, stops at each stage to show what the stage did (the mount table diff and the
namespace ids, read from the host) before continuing on Enter.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import TextIO

from kit.forwarding import signals_forwarded
from kit.runtime import state
from kit.runtime.launcher import ContainerProcess, ExitStatus, Pause
from kit.runtime.pipeline import stage_names
from kit.spec import Spec
from kit.trace import Event, json_printer, text_printer


def terminal_signals_reach_container() -> bool:
    """Whether Ctrl-C on our terminal already signals the container directly.

    The container's processes stay in kit's process group (without -t), so when that group is
    the terminal's foreground group, the terminal delivers SIGINT to them itself; forwarding
    it as well would deliver it twice.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


class ForegroundRun:
    """``kit run`` without -d: start, watch, step, relay, record, remove."""

    def __init__(
        self,
        spec: Spec,
        *,
        container_id: str,
        name: str | None = None,
        remove: bool = False,
        interactive: bool = False,
        trace: bool = False,
        events_json: bool = False,
        events_file: str | None = None,
        step: bool = False,
        pause_after: list[str] | None = None,
        pause_before: list[str] | None = None,
        use_fork: bool = True,
        err: TextIO = sys.stderr,
    ) -> None:
        self.spec = spec
        self.container_id = container_id
        self.name = name or container_id[:12]
        self.remove = remove
        self.interactive = interactive
        self.step = step
        self.pause_after = stage_names()[:-1] if step else list(pause_after or [])
        self.pause_before = list(pause_before or [])
        self.use_fork = use_fork
        self.err = err
        self.sinks = []
        self.trace = trace or events_json or step or bool(pause_after) or bool(pause_before)
        if trace:
            self.sinks.append(text_printer(err))
        self._events_stream: TextIO | None = None
        if events_json:
            self._events_stream = open(events_file, "a") if events_file else err  # noqa: SIM115
            self.sinks.append(json_printer(self._events_stream))
        self.container: ContainerProcess | None = None
        self._interrupts = 0
        self._direct_terminal_signals = False
        # The record names this process as answerable for the container (kit doctor --leaks
        # tells a record of a killed `kit run` from one being created right now).
        self.record = state.ContainerState(
            id=container_id,
            name=self.name,
            auto_remove=remove,
            owner_pid=os.getpid(),
            owner_start=state.process_start_time(os.getpid()) or 0,
        )

    def on_event(self, event: Event) -> None:
        if event.kind == "process" and event.name == "container" and self.record.pid == 0:
            self.record.pid = int(event.data["host_pid"])
            self.record.status = "running"
            self.record.started = time.time()
            state.save(self.record)
        for sink in self.sinks:
            sink(event)

    def _forward(self, signum: int) -> None:
        container = self.container
        if container is None:
            return
        if signum == signal.SIGINT:
            self._interrupts += 1
            if self._interrupts >= 3:
                self.err.write(
                    "\nkit: the container ignored SIGINT three times (a PID 1 ignores signals "
                    "it has no handler for); killing it\n"
                )
                container.signal(signal.SIGKILL)
                return
        if signum == signal.SIGHUP and self.spec.process.terminal:
            # Our terminal hung up (window closed, ssh dropped): nobody can use the container's
            # terminal any more. A PID 1 may ignore SIGHUP, so end it for certain.
            container.signal(signal.SIGHUP)
            container.signal(signal.SIGKILL)
            return
        if signum in (signal.SIGINT, signal.SIGQUIT) and self._direct_terminal_signals:
            return  # the terminal already delivered it to the container's process group
        container.signal(signum)

    def run(self) -> ExitStatus:
        state.create(self.record, self.spec)
        relay_terminal = self.spec.process.terminal
        stdin_fd = None
        devnull = None
        if not (self.interactive or relay_terminal):
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            stdin_fd = devnull
        self._direct_terminal_signals = not relay_terminal and terminal_signals_reach_container()
        status: ExitStatus | None = None
        try:
            with signals_forwarded(self._forward):
                container = ContainerProcess(
                    self.spec,
                    container_id=self.container_id,
                    pause_before=self.pause_before,
                    pause_after=self.pause_after,
                    stdin=stdin_fd,
                    relay_terminal=relay_terminal,
                    use_fork=self.use_fork,
                    trace=self.trace,
                    on_event=self.on_event,
                )
                self.container = container
                try:
                    container.start()
                    while True:
                        pause = container.next_pause()
                        if pause is None:
                            break
                        if self._show_pause(pause):
                            container.resume()
                        else:
                            self.err.write("kit: aborted; the container and its mounts are gone\n")
                            container.abort()
                            break
                    status = container.status
                finally:
                    container.close()
        finally:
            if devnull is not None:
                os.close(devnull)
            if self._events_stream is not None and self._events_stream is not self.err:
                self._events_stream.close()
            self._record_end(status)
        assert status is not None
        return status

    def _record_end(self, status: ExitStatus | None) -> None:
        if self.remove:
            state.remove(self.container_id)
            return
        self.record.status = "stopped"
        self.record.finished = time.time()
        if status is not None:
            self.record.exit_code = status.code
            self.record.exit_signal = status.signal
            self.record.oom_killed = status.oom_killed
            self.record.error = str(status.error) if status.error else None
        state.save(self.record)

    # --- stepping ----------------------------------------------------------------------------

    def _show_pause(self, pause: Pause) -> bool:
        """Show what the stage did; True to continue, False to abort."""
        from rich.console import Console
        from rich.rule import Rule

        from kit import render

        console = Console(file=self.err, stderr=True)
        console.print(Rule(f"paused {pause.phase} stage [bold]{pause.stage}[/bold]"))
        console.print(
            f"container process: PID {pause.host_pid} on the host "
            f"(look from another terminal: cat /proc/{pause.host_pid}/mountinfo, "
            f"ls /proc/{pause.host_pid}/root/, nsenter -t {pause.host_pid} -a sh)"
        )
        if pause.phase == "after":
            console.print(f"[bold]mount table changes by {pause.stage}[/bold]")
            console.print(render.mount_diff(pause.diff))
        if pause.stage == "namespaces":
            console.print("[bold]namespaces (ids from /proc/PID/ns, host vs container)[/bold]")
            console.print(render.namespace_table(pause.namespaces, pause.host_namespaces))
        return self._ask_continue()

    def _ask_continue(self) -> bool:
        prompt = "[Enter] continue, [q] abort: "
        try:
            tty = open("/dev/tty", "r+")  # noqa: SIM115
        except OSError:
            tty = None
        # At the prompt, Ctrl-C means "abort", not "signal the container".
        forwarding = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            if tty is not None:
                tty.write(prompt)
                tty.flush()
                answer = tty.readline()
            else:
                self.err.write(prompt)
                self.err.flush()
                answer = sys.stdin.readline()
        except KeyboardInterrupt:
            return False
        finally:
            signal.signal(signal.SIGINT, forwarding)
            if tty is not None:
                tty.close()
        if answer == "":
            return False  # end of input: nobody is there to continue
        return answer.strip().lower() not in ("q", "quit", "a", "abort")
