"""What a step's ``run`` and ``check`` functions get: :class:`StepContext`.

The context is the whole toolbox of a lesson author. It starts real containers and experiments
through kit, keeps the ones a later step or the learner's shell needs, runs commands inside
them, and records what the learner should see::

    def run(ctx: StepContext) -> None:
        box = ctx.start("box", ctx.spec(hostname="lesson-1"))          # kept for later steps
        ctx.show(Namespaces("namespaces", ctx.namespaces(box), ctx.namespaces()))
        ctx.say(ctx.exec("box", "hostname").stdout)

    def check(ctx: StepContext) -> Verdict:                           # reads the kernel only
        box = ctx.find("box")
        if box is None or not kernel.alive(box.host_pid):
            return Verdict.no("no container is running: run the step")
        ...

Every event (system calls of the container init, of experiments, of kit calls made here) goes
to the step's record and, live, to whoever watches (the TUI's syscall log).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.errors import KitError
from kit.linux.namespaces import namespace_ids
from kit.probes.experiment import Experiment, run_experiment
from kit.runtime.defaults import default_spec
from kit.runtime.launcher import ContainerProcess, ExitStatus, Pause
from kit.spec import Spec
from kit.trace import Event
from lessons import kernel
from lessons.live import Live, LiveContainer, LiveProcess
from lessons.model import Verdict
from lessons.observe import Observation

if TYPE_CHECKING:
    from lessons.model import Lesson, Step
    from lessons.session import Session

#: What a kept container runs when the lesson does not care: it just stays.
IDLE = ("sleep", "infinity")


class StepContext:
    """The toolbox handed to a step's ``run`` and ``check`` (see the module docstring)."""

    def __init__(
        self,
        session: Session,
        step: Step,
        emit: Callable[[Event], None],
        show: Callable[[Observation], None],
        say: Callable[[str], None],
    ) -> None:
        self.session = session
        self.step = step
        self.emit = emit
        self._show = show
        self._say = say

    # --- where -------------------------------------------------------------------------------

    @property
    def lesson(self) -> Lesson:
        return self.session.lesson

    @property
    def workspace(self) -> Path:
        """The lesson's scratch directory (created on first use)."""
        path = self.session.workspace
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
        return path

    @property
    def memory(self) -> dict[str, Any]:
        """Values steps pass on to later steps of this session (not persisted)."""
        return self.session.memory

    def rootfs(self) -> Path:
        """The tutorial's root filesystem (host programs), built on first use."""
        from kit.rootfs import default_rootfs

        return default_rootfs()

    def spec(
        self,
        args: tuple[str, ...] | list[str] = IDLE,
        *,
        rootfs: str | os.PathLike[str] | None = None,
        hostname: str | None = None,
    ) -> Spec:
        """A container spec like ``kit run``'s, on the tutorial's root filesystem."""
        root = os.fspath(rootfs) if rootfs is not None else str(self.rootfs())
        return default_spec(list(args), root, hostname=hostname)

    # --- showing -----------------------------------------------------------------------------

    def show(self, observation: Observation) -> None:
        """Record an observation of kernel state for the learner."""
        self._show(observation)

    def say(self, text: str) -> None:
        """A line of commentary for the learner."""
        self._say(text)

    # --- containers --------------------------------------------------------------------------

    def run(
        self,
        spec: Spec,
        *,
        pause_after: tuple[str, ...] = (),
        at_pause: Callable[[Pause], None] | None = None,
    ) -> ExitStatus:
        """Run a container to its end (output captured); call ``at_pause`` at each pause."""
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with ContainerProcess(
                spec, pause_after=pause_after, stdin=devnull, capture=True, on_event=self.emit
            ) as container:
                while (pause := container.next_pause()) is not None:
                    if at_pause is not None:
                        at_pause(pause)
                    container.resume()
                assert container.status is not None
                return container.status
        finally:
            os.close(devnull)

    def start(
        self,
        name: str,
        spec: Spec,
        *,
        pauses: tuple[str, ...] = (),
        run_program: bool = True,
        pipe_stdio: bool = False,
        shell: bool = True,
    ) -> LiveContainer:
        """Start a container the lesson keeps under ``name`` (replacing one of that name).

        It stops after the first stage of ``pauses`` (advance with ``container.advance()``),
        or, without pauses, runs its program. With ``shell`` it becomes the target of "open a
        shell here".
        """
        self.session.drop(name)
        box = LiveContainer(
            name,
            spec,
            pauses=list(pauses),
            run_program=run_program,
            pipe_stdio=pipe_stdio,
            on_event=self.emit,
        )
        self.session.keep(box, shell=shell)
        box.advance()
        return box

    def container(self, name: str) -> LiveContainer:
        """A kept container; a KitError telling the learner what to do if it is gone."""
        found = self.find(name)
        if not isinstance(found, LiveContainer) or not kernel.alive(found.host_pid):
            raise KitError(
                f"the lesson's container {name!r} is not running",
                fix="run the earlier steps again (or reset the lesson)",
            )
        return found

    def find(self, name: str) -> Live | None:
        """A kept container or process, if there is one (checks use this)."""
        return self.session.objects.get(name)

    def pid(self, name: str) -> int | None:
        """The host PID of a kept object, if it is alive."""
        found = self.find(name)
        if found is None or not kernel.alive(found.host_pid):
            return None
        return found.host_pid

    # --- experiments -------------------------------------------------------------------------

    def experiment(
        self, function: str, *, keep: str | None = None, shell: bool = True, **args: Any
    ) -> Any:
        """Run a probe function in a child interpreter (``"module:function"``, see
        :mod:`kit.probes.experiment`). With ``keep``, the child stays alive under that name
        (its root, namespaces and mounts can then be checked and, with ``shell``, entered)."""
        if keep is None:
            return run_experiment(function, on_event=self.emit, **args)
        self.session.drop(keep)
        experiment = Experiment(function, args, stay=True, on_event=self.emit).start()
        try:
            result = experiment.result()
        except BaseException:
            experiment.close()
            raise
        self.session.keep(LiveProcess(keep, experiment, result), shell=shell)
        return result

    # --- looking inside ----------------------------------------------------------------------

    def namespaces(self, target: str | int | None = None) -> dict[str, int]:
        """Namespace ids of a kept object (by name or PID), or of the host (no argument)."""
        if target is None:
            return namespace_ids()
        pid = target if isinstance(target, int) else self.pid(target)
        if pid is None:
            raise KitError(f"{target} is not running", fix="run the earlier steps again")
        return namespace_ids(pid)

    def answer(self, name: str, path: str) -> tuple[int, str] | Verdict:
        """For a challenge whose learner writes an answer to a file in the kept container
        ``name``: the container's host PID and the file's text (stripped), read from the host
        through ``/proc/PID/root``; or the failing Verdict while the container or the file is
        missing. A check then compares the answer with what the kernel shows."""
        pid = self.pid(name)
        if pid is None:
            return Verdict.no("the challenge's container is not running: run the step first")
        text = kernel.read_text(f"/proc/{pid}/root{path}")
        if text is None:
            return Verdict.no(f"there is no {path} in the container yet")
        return pid, text.strip()

    def exec(
        self, name: str, command: str, *, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sh -c command`` inside a kept object, as the learner's shell there would
        (see :mod:`lessons.shell`)."""
        return self.session.exec(name, command, timeout=timeout)

    def output_of(self, name: str, command: str) -> str:
        """What ``sh -c command`` prints inside a kept object; a KitError if it fails."""
        done = self.exec(name, command)
        if done.returncode != 0:
            raise KitError(
                f"`{command}` failed inside {name} (status {done.returncode})",
                cause=done.stderr.strip() or None,
                fix="reset the lesson and run the steps again",
            )
        return done.stdout
