"""The kit tutorial app: services shared by the screens.

:class:`KitApp` owns the learner's progress, one :class:`~lessons.session.Session` per lesson
(created on first use, closed when the app ends, so no container or mount outlives it), the
``kit doctor`` verdict on this machine, and :meth:`KitApp.open_shell`, the single place where
the app hands the terminal to a shell inside a container. Tests replace that one method:
suspending the app needs a real terminal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from kit_tui.commands import LessonCommands
from kit_tui.messages import DoctorFinished, ReadinessKnown
from kit_tui.screens import BlockedScreen, MainScreen
from lessons.model import Lesson
from lessons.progress import Progress
from lessons.session import Session, ShellCommand

if TYPE_CHECKING:  # the doctor's modules load in the worker that asks it, not at start
    from kit.doctor.requirements import Assessment

#: ``() -> (can_run, explanation, lines)``: how the app asks whether containers can run here.
DoctorVerdict = tuple[bool, str, list[str]]


#: ``(lesson) -> Assessment``: how the app asks whether a lesson can run on this machine.
Readiness = Callable[[Lesson], "Assessment"]


def kit_doctor() -> DoctorVerdict:
    """``kit doctor``'s checks (about a second: it makes real, harmless attempts). The lessons'
    readiness is then decided from the same checks (:func:`lessons.readiness.remember`)."""
    from kit.doctor import can_run_containers, explain_blockers, run_checks
    from kit.doctor.requirements import Facts
    from lessons import readiness

    checks = run_checks()
    readiness.remember(Facts(checks))
    lines = [check.line() for check in checks]
    can_run = can_run_containers(checks)
    explanation = explain_blockers(checks)
    if can_run and os.geteuid() != 0:
        # The engine can run rootless containers, but the lessons also mount and enter
        # namespaces on the host itself (propagation demos, shells): that needs root.
        return (
            False,
            "kit's containers can run here without root, but the lessons need root: they mount "
            "on the host (lesson 3's propagation demo) and enter half-built containers from "
            "the host. Run `sudo python tui.py`.",
            lines,
        )
    return can_run, explanation, lines


def lesson_readiness(lesson: Lesson) -> Assessment:
    """Whether ``lesson`` can run here: its requirements asked of the doctor (see
    :mod:`lessons.readiness`; the checks run once per process)."""
    from lessons.readiness import assess

    return assess(lesson)


def _unknown_readiness(lesson: Lesson, error: Exception) -> Assessment:
    """A lesson whose requirements could not be assessed counts as blocked, with the reason."""
    from kit.doctor.requirements import Assessment, Unmet

    fix = getattr(error, "fix", None) or "run `kit doctor --requirements` to see what fails"
    unmet = Unmet("requires", "its requirements", f"they could not be checked ({error})", fix)
    return Assessment(tuple(lesson.requires), (unmet,), ())


def reclaim_terminal() -> None:
    """Make our process group the terminal's foreground group again.

    An interactive shell takes the terminal's foreground for its own process group, and gives
    it back when it exits, to the group it found. A shell in the container's PID namespace
    cannot see our group (ESRCH, "Cannot set tty process group"), so the terminal would stay
    with its dead group, and the app, now in the background, would be stopped by SIGTTIN/SIGTTOU
    as soon as it touches the terminal. Taking it back needs SIGTTOU ignored for the call.
    """
    try:
        fd = sys.__stdin__.fileno() if sys.__stdin__ is not None else -1
    except (OSError, ValueError):
        return
    if fd < 0 or not os.isatty(fd):
        return
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        if os.tcgetpgrp(fd) != os.getpgrp():
            os.tcsetpgrp(fd, os.getpgrp())
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, previous)


class KitApp(App[None]):
    """kit's tutorial."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "kit"
    SUB_TITLE = "how a container gets its filesystem"
    COMMANDS: ClassVar = App.COMMANDS | {LessonCommands}
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit")]

    def __init__(
        self,
        *,
        start_lesson: str | None = None,
        doctor: Callable[[], DoctorVerdict] | None = kit_doctor,
        readiness: Readiness | None = lesson_readiness,
        progress_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.start_lesson = start_lesson
        self.doctor = doctor
        #: Asked, in a worker, whether each lesson can run here (None: never ask; tests).
        self.readiness = readiness
        #: The answers, by lesson id, once known (set on the UI thread).
        self.assessments: dict[str, Assessment] = {}
        self.progress = Progress.load(progress_path)
        self.sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()
        self.doctor_verdict: DoctorVerdict | None = None

    def get_default_screen(self) -> Screen[None]:
        return MainScreen()

    def on_mount(self) -> None:
        self.run_doctor()

    # --- services ------------------------------------------------------------------------------

    def session(self, lesson_id: str) -> Session:
        """The lesson's session (engine threads only: the first use cleans up after a crash)."""
        from lessons.catalog import find

        with self._sessions_lock:
            session = self.sessions.get(lesson_id)
            if session is None:
                session = Session(find(lesson_id))
                session.close()  # mounts or processes an earlier, crashed run left behind
                self.sessions[lesson_id] = session
            return session

    def open_lesson(self, lesson_id: str) -> None:
        """Show a lesson (the command palette and the lesson list call this)."""
        screen = self.screen
        if isinstance(screen, MainScreen):
            screen.open(lesson_id)

    def open_shell(self, command: ShellCommand) -> int:
        """Hand the terminal to a shell inside the lesson's container until it exits.

        The one interactive escape of the app; tests replace this method. ``command`` joins
        the container as ``kit exec`` does (see lessons.shell): the shell gets a terminal of
        the container's own, relayed to ours, and the container's confinement.
        """
        with self.suspend():
            sys.stdout.write("\n" + command.banner + "\n")
            sys.stdout.flush()
            try:
                return subprocess.run(command.argv, env=command.env, check=False).returncode
            except OSError as error:
                sys.stdout.write(f"could not start the shell: {error}\n")
                return 127
            finally:
                reclaim_terminal()

    def close_sessions(self) -> None:
        """Tear down what every lesson kept running (processes, mounts); files stay."""
        with self._sessions_lock:
            for session in self.sessions.values():
                session.close()

    # --- kit doctor ----------------------------------------------------------------------------

    def run_doctor(self) -> None:
        if self.doctor is not None or self.readiness is not None:
            self._doctor_worker()

    @work(thread=True, group="doctor", exit_on_error=False)
    def _doctor_worker(self) -> None:
        if self.doctor is not None:
            try:
                can_run, explanation, lines = self.doctor()
            except Exception:
                can_run, explanation, lines = (
                    True,
                    "",
                    [f"kit doctor failed: {traceback.format_exc(limit=2)}"],
                )
            self.post_message(DoctorFinished(can_run, explanation, lines))
        if self.readiness is not None:
            self.post_message(ReadinessKnown(self.assess_all(self.readiness)))

    @staticmethod
    def assess_all(readiness: Readiness) -> dict[str, Assessment]:
        """Every lesson's assessment (in a worker: the first answer runs the checks)."""
        from lessons.catalog import all_lessons

        found = {}
        for lesson in all_lessons():
            try:
                found[lesson.id] = readiness(lesson)
            except Exception as error:
                found[lesson.id] = _unknown_readiness(lesson, error)
        return found

    def on_readiness_known(self, message: ReadinessKnown) -> None:
        self.assessments = dict(message.assessments)
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.assessments = dict(message.assessments)

    def on_doctor_finished(self, message: DoctorFinished) -> None:
        self.doctor_verdict = (message.can_run, message.explanation, message.lines)
        if not message.can_run:
            self.push_screen(BlockedScreen(message.explanation, message.lines))

    async def action_quit(self) -> None:
        self.close_sessions()
        self.exit()

    def on_unmount(self) -> None:
        self.close_sessions()


def run(argv: list[str]) -> int:
    """``python tui.py [LESSON]``"""
    start = argv[0] if argv else None
    if start is not None:
        from lessons.catalog import find

        try:
            start = find(start).id
        except KeyError as error:
            sys.stderr.write(f"tui.py: {error.args[0]}\n")
            return 2
    app = KitApp(start_lesson=start)
    try:
        app.run()
    finally:
        app.close_sessions()
    return 0
