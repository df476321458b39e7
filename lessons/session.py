"""A learner working through one lesson: runs steps, checks them, and tears everything down.

:class:`Session` owns the kernel objects a lesson keeps alive (containers, experiment
processes) and the lesson's scratch directory. It runs steps *in order*: asked to run step 5
in a fresh session (the learner came back after a restart), it first replays steps 1-4 so the
kernel is in the state step 5 expects. Challenges are not replayed: by rule, no later step
depends on what a learner did in a challenge.

A session is used from one thread at a time (the TUI's engine worker); a lock makes sure.
Nothing here imports Textual: the TUI, the plain runner and the tests all drive this class.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import KitError
from kit.runtime.state import process_start_time
from kit.trace import Event, tracer
from lessons import kernel
from lessons.context import StepContext
from lessons.live import Live, LiveContainer
from lessons.model import Lesson, Step, Verdict
from lessons.observe import Observation
from lessons.shell import command_environment, exec_argv, exec_spec, join_argv
from lessons.workspace import teardown, workspace_for

EventSink = Callable[[Event], None]


@dataclass
class StepOutcome:
    """What running a step did: events, observations, remarks, and a failure if any."""

    step: Step
    events: list[Event] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    error: KitError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ShellCommand:
    """How to open a shell in the lesson's current container (see :meth:`Session.shell`)."""

    argv: list[str]
    env: dict[str, str]
    banner: str
    #: Joined like ``kit exec`` (every namespace, cgroup and the container's confinement);
    #: False for an nsenter-like join (namespaces, root, cgroup: see lessons.shell).
    confined: bool = True


class Session:
    """One lesson's live state for one learner."""

    def __init__(self, lesson: Lesson, *, workspace: Path | None = None) -> None:
        self.lesson = lesson
        self.workspace = workspace or workspace_for(lesson.id)
        self.objects: dict[str, Live] = {}
        self.memory: dict[str, object] = {}
        #: The kept object "open a shell here" enters.
        self.shell_target: str | None = None
        #: How many steps, from the first, have run in this session.
        self.ran = 0
        self._lock = threading.RLock()

    # --- kept objects ------------------------------------------------------------------------

    def keep(self, obj: Live, *, shell: bool = True) -> None:
        self.objects[obj.name] = obj
        if shell:
            self.shell_target = obj.name

    def drop(self, name: str) -> None:
        obj = self.objects.pop(name, None)
        if obj is not None:
            obj.close()
        if self.shell_target == name:
            self.shell_target = None

    # --- steps -------------------------------------------------------------------------------

    def run_step(self, index: int, on_event: EventSink | None = None) -> StepOutcome:
        """Run step ``index`` (replaying earlier steps first if the kernel is not there yet)."""
        with self._lock:
            if index < self.ran:
                # Going back: start again from a clean kernel, then replay up to here.
                self._release()
                self.ran = 0
            for earlier in range(self.ran, index):
                step = self.lesson.steps[earlier]
                if step.is_challenge:
                    continue
                if on_event is not None:
                    on_event(Event("info", "replay", message=f"replaying step: {step.title}"))
                replayed = self._run(step, on_event)
                if replayed.error is not None:
                    raise replayed.error
            outcome = self._run(self.lesson.steps[index], on_event)
            self.ran = index + 1
            return outcome

    def _run(self, step: Step, on_event: EventSink | None) -> StepOutcome:
        outcome = StepOutcome(step)
        me = threading.get_ident()

        def emit(event: Event) -> None:
            outcome.events.append(event)
            if on_event is not None:
                on_event(event)

        def local(event: Event) -> None:
            # kit calls made in this thread (mounts, rootfs builds); other threads' are theirs.
            if threading.get_ident() == me:
                emit(event)

        ctx = StepContext(self, step, emit, outcome.observations.append, outcome.remarks.append)
        tracer().add_sink(local)
        try:
            step.run(ctx)
        except KitError as error:
            outcome.error = error
        finally:
            tracer().remove_sink(local)
        return outcome

    def check(self, index: int) -> Verdict:
        """Ask the kernel whether step ``index`` is done."""
        step = self.lesson.steps[index]
        with self._lock:
            ctx = StepContext(self, step, lambda e: None, lambda o: None, lambda s: None)
            try:
                return step.check(ctx)
            except (KitError, OSError) as error:
                return Verdict.no(f"could not look: {error}")

    def solve(self, index: int) -> subprocess.CompletedProcess[str]:
        """Do a challenge the way a learner would: its solution, in its container's shell."""
        step = self.lesson.steps[index]
        if not step.is_challenge or self.shell_target is None:
            raise KitError("nothing to solve here", fix="run the challenge step first")
        return self.exec(self.shell_target, step.solution)  # type: ignore[attr-defined]

    # --- inside ------------------------------------------------------------------------------

    def _enter(self, name: str, argv: list[str]) -> list[str]:
        """The command that runs ``argv`` in the kept object ``name`` (see lessons.shell):
        as ``kit exec`` for a container that has confined itself, else an nsenter-like join
        of what exists (namespaces, root, cgroups)."""
        obj = self.objects.get(name)
        if obj is None or not kernel.alive(obj.host_pid):
            raise KitError(
                f"the lesson's {name!r} is not running",
                fix="run the step again (or reset the lesson)",
            )
        assert obj.host_pid is not None
        label = f"lesson {self.lesson.number}"
        if isinstance(obj, LiveContainer) and obj.confined:
            spec_file = self.workspace / ".shells" / f"{name}.json"
            spec_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = spec_file.with_suffix(".tmp")
            temporary.write_text(exec_spec(obj.spec, label).to_json())
            temporary.replace(spec_file)
            start = process_start_time(obj.host_pid) or 0
            return exec_argv(spec_file, obj.host_pid, start, argv)
        joined = (
            sorted(kernel.new_namespaces(obj.host_pid)) if isinstance(obj, LiveContainer) else []
        )
        return join_argv(obj.host_pid, argv, joined, label)

    def exec(
        self, name: str, command: str, *, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sh -c command`` inside a kept object, as its shell would; output captured."""
        argv = self._enter(name, ["/bin/sh", "-c", command])
        return subprocess.run(
            argv,
            env=command_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def shell(self) -> ShellCommand | None:
        """The command for "open a shell here", or None if nothing is running to enter."""
        name = self.shell_target
        obj = self.objects.get(name) if name else None
        if name is None or obj is None or not kernel.alive(obj.host_pid):
            return None
        argv = self._enter(name, ["/bin/sh"])
        confined = isinstance(obj, LiveContainer) and obj.confined
        if not isinstance(obj, LiveContainer):
            how = "its root joined: a lesson's experiment process, not a container"
        elif confined:
            how = "joined like `kit exec`: namespaces, cgroup, user, capabilities, seccomp"
        else:
            how = (
                "its namespaces, root and cgroup joined: the container confines itself only "
                "just before exec"
            )
        banner = (
            f"kit lesson {self.lesson.number}: a shell inside {name!r} ({obj.where}),\n"
            f"{how}.\n"
            "Look around; type `exit` (or Ctrl-D) to return to the lesson.\n"
        )
        return ShellCommand(argv, command_environment(), banner, confined)

    # --- teardown ----------------------------------------------------------------------------

    def _release(self) -> list[str]:
        """End every kept object and unmount what the lesson mounted; keep the files."""
        done = []
        for name in list(self.objects):
            self.drop(name)
            done.append(f"stopped {name}")
        done += teardown(self.workspace, remove_files=False)
        return done

    def reset(self) -> list[str]:
        """Tear down for real: kept processes, mounts, and the lesson's files."""
        with self._lock:
            done = self._release()
            done += [
                d for d in teardown(self.workspace, remove_files=True) if d.startswith("removed")
            ]
            self.memory.clear()
            self.shell_target = None
            self.ran = 0
            return done

    def close(self) -> list[str]:
        """End kept objects and mounts (the app is quitting); files stay for next time."""
        with self._lock:
            done = self._release()
            self.ran = 0
            return done
