"""Screens: the main screen (which coordinates the widgets and the engine workers), the
doctor's screen for machines that cannot run containers, and two small dialogs."""

from __future__ import annotations

import os
import time
import traceback
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Label, OptionList, Static

from kit.errors import KitError
from kit.trace import Event
from kit_tui import viewmodel
from kit_tui.messages import (
    CheckFinished,
    EngineFailed,
    EventsArrived,
    LessonBlocked,
    ResetFinished,
    StepFinished,
)
from kit_tui.widgets import Controls, LessonList, Prose, StepList, SyscallLog, Visuals
from lessons import instructor
from lessons.catalog import all_lessons, find
from lessons.model import Lesson, Question, Step
from lessons.progress import LessonProgress
from lessons.session import StepOutcome

if TYPE_CHECKING:
    from kit.doctor.requirements import Assessment


class MainScreen(Screen[None]):
    """Lesson list, steps, prose, visual panes, syscall log and step controls."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run", "Run"),
        Binding("c", "check", "Check"),
        Binding("h", "hint", "Hint"),
        Binding("v", "solution", "Solution"),
        Binding("s", "shell", "Shell"),
        Binding("n", "next", "Next"),
        Binding("p", "previous", "Prev"),
        Binding("k", "skip", "Skip"),
        Binding("ctrl+r", "reset", "Reset"),
    ]

    lesson_id: reactive[str] = reactive("", init=False)
    index: reactive[int] = reactive(0, init=False)
    busy: reactive[bool] = reactive(False, init=False)
    #: Whether each lesson can run on this machine, by id, once the doctor has answered.
    assessments: reactive[dict[str, Assessment]] = reactive(dict, init=False)

    def __init__(self) -> None:
        super().__init__()
        self._pending: deque[Event] = deque()
        #: The last outcome of each step this run, to show again when the learner comes back.
        self._outcomes: dict[tuple[str, int], StepOutcome] = {}
        self._status: dict[tuple[str, int], str] = {}
        #: Seconds the engine took in the last step (the benchmark reads it).
        self.last_engine_seconds = 0.0

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield LessonList(id="lessons")
                yield StepList(id="steps")
            with Vertical(id="main"):
                yield Prose(id="prose")
                yield Visuals(id="visuals")
                yield SyscallLog(id="log", max_lines=5000, wrap=False, markup=False)
        yield Static(id="status")
        yield Controls(id="controls")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#lessons").border_title = "Lessons"
        self.query_one("#steps").border_title = "Steps"
        self.query_one("#log").border_title = "System calls"
        progress = self.app.progress  # type: ignore[attr-defined]
        start = self.app.start_lesson or progress.current or all_lessons()[0].id  # type: ignore[attr-defined]
        self.open(start)
        first_frame = os.environ.get("KIT_TUI_FIRST_FRAME")
        if first_frame:
            self.call_after_refresh(self._first_frame, first_frame)

    def _first_frame(self, path: str) -> None:
        """Benchmark hook: note when the first frame is on screen, then leave."""
        with open(path, "w") as f:
            f.write(f"{time.time()}\n")
        self.app.exit()

    # --- state -------------------------------------------------------------------------------

    @property
    def lesson(self) -> Lesson:
        return find(self.lesson_id)

    @property
    def step(self) -> Step:
        return self.lesson.steps[self.index]

    @property
    def progress(self) -> LessonProgress:
        return self.app.progress.lesson(self.lesson_id)  # type: ignore[attr-defined]

    @property
    def blocked(self) -> Assessment | None:
        """What blocks the current lesson on this machine, if anything does."""
        assessment = self.assessments.get(self.lesson_id)
        return assessment if viewmodel.blocked(assessment) else None

    def save(self) -> None:
        progress = self.app.progress  # type: ignore[attr-defined]
        progress.current = self.lesson_id
        self.progress.position = self.index
        progress.save()

    def open(self, lesson_id: str) -> None:
        """Show a lesson, at the step the learner was on."""
        lesson = find(lesson_id)
        position = self.app.progress.lesson(lesson.id).position  # type: ignore[attr-defined]
        with self.prevent(OptionList.OptionHighlighted):
            self.lesson_id = lesson.id
            readonly = self.blocked is not None
            self.index = min(
                position, viewmodel.reachable(lesson, self.progress, readonly=readonly)
            )
        self.refresh_all()
        self.save()

    def watch_index(self) -> None:
        if self.lesson_id:
            self.refresh_all()

    def watch_busy(self, busy: bool) -> None:
        self.refresh_controls()

    def watch_assessments(self) -> None:
        if self.lesson_id:
            self.refresh_all()

    def refresh_all(self) -> None:
        lesson = self.lesson
        lessons = self.query_one(LessonList)
        lessons.clear_options()
        lessons.add_options(self._lesson_labels())
        lessons.highlighted = [item.id for item in all_lessons()].index(lesson.id)
        self.refresh_steps()
        prose = self.query_one(Prose)
        prose.border_title = viewmodel.title(lesson, self.index)
        prose.show(viewmodel.prose(lesson, self.index, self.assessments.get(lesson.id)))
        outcome = self._outcomes.get((self.lesson_id, self.index))
        self.query_one(Visuals).show(outcome.observations if outcome else [])
        if self.blocked is not None:
            self.set_status(viewmodel.blocked_status(lesson, self.blocked))
        else:
            self.set_status(self._status.get((self.lesson_id, self.index), self._default_status()))
        self.refresh_controls()

    def _lesson_labels(self) -> list[str]:
        progress = self.app.progress  # type: ignore[attr-defined]
        return [
            viewmodel.lesson_label(item, progress.lesson(item.id), self.assessments.get(item.id))
            for item in all_lessons()
        ]

    def _step_labels(self) -> list[str]:
        return [
            viewmodel.step_label(step, i, self.progress, self.index)
            for i, step in enumerate(self.lesson.steps)
        ]

    def refresh_steps(self) -> None:
        steps = self.query_one(StepList)
        steps.clear_options()
        steps.add_options(self._step_labels())
        steps.highlighted = self.index

    def refresh_labels(self) -> None:
        """New marks on both lists, replacing their labels in place rather than rebuilding."""
        lessons = self.query_one(LessonList)
        for i, label in enumerate(self._lesson_labels()):
            lessons.replace_option_prompt_at_index(i, label)
        steps = self.query_one(StepList)
        for i, label in enumerate(self._step_labels()):
            steps.replace_option_prompt_at_index(i, label)

    def refresh_controls(self) -> None:
        if not self.lesson_id:
            return
        step, busy = self.step, self.busy
        challenge = step.is_challenge
        # A lesson that cannot run here can be read, never run: nothing fails halfway.
        runnable = self.blocked is None
        advance = viewmodel.can_advance(
            self.lesson, self.progress, self.index, readonly=not runnable
        )
        enabled = {
            "run": not busy and runnable,
            "check": not busy and runnable,
            "hint": not busy and challenge,
            "solution": not busy and challenge,
            "shell": not busy and runnable and self._can_enter(),
            "skip": not busy and not self.progress.done(step.id),
            "next": not busy and advance,
            "reset": not busy,
        }
        for button_id, on_ in enabled.items():
            self.query_one(f"#{button_id}", Button).disabled = not on_

    def _can_enter(self) -> bool:
        """Whether the lesson keeps something running that a shell can enter."""
        session = self.app.sessions.get(self.lesson_id)  # type: ignore[attr-defined]
        return session is not None and session.shell_target is not None

    def _default_status(self) -> str:
        """The status line of a step nothing has happened to yet (a runnable lesson's)."""
        step = self.step
        if self.progress.done(step.id):
            return "✓ done. Next (n) moves on."
        if step.is_challenge:
            return "★ A challenge: run it (r) to set it up, then open a shell (s). Hints: h."
        return "Press r to run this step on the real engine" + (
            " (you will be asked to predict first)." if step.question else "."
        )

    def set_status(self, text: str) -> None:
        self._status[(self.lesson_id, self.index)] = text
        self.query_one("#status", Static).update(Text(text))

    # --- learner picks -----------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#lessons")
    def lesson_picked(self, event: OptionList.OptionSelected) -> None:
        self.open(all_lessons()[event.option_index].id)

    @on(OptionList.OptionSelected, "#steps")
    def step_picked(self, event: OptionList.OptionSelected) -> None:
        readonly = self.blocked is not None
        furthest = viewmodel.reachable(self.lesson, self.progress, readonly=readonly)
        if event.option_index > furthest:
            self.notify("Pass (or skip) the steps before it first.", severity="warning")
            self.refresh_steps()
            return
        self.index = event.option_index
        self.save()

    # --- actions ------------------------------------------------------------------------------

    def _refuse_if_busy(self) -> bool:
        if self.busy:
            self.notify("The engine is still working on the last request.", severity="warning")
        return self.busy

    def _refuse_if_blocked(self) -> bool:
        if self.blocked is not None:
            self.set_status(viewmodel.blocked_status(self.lesson, self.blocked))
            self.notify("This lesson cannot run on this machine: see the top of its text.")
        return self.blocked is not None

    def action_run(self) -> None:
        if self._refuse_if_busy() or self._refuse_if_blocked():
            return
        step, question = self.step, self.step.question
        if question is not None and step.id not in self.progress.predictions:
            lesson_id, index = self.lesson_id, self.index

            def predicted(choice: int | None) -> None:
                if choice is None:
                    self.set_status("Run cancelled. Press r when you are ready to predict.")
                    return
                self.app.progress.lesson(lesson_id).predictions[step.id] = choice  # type: ignore[attr-defined]
                self.save()
                self.start_run(lesson_id, index)

            self.app.push_screen(PredictScreen(question), predicted)
            return
        self.start_run(self.lesson_id, self.index)

    def start_run(self, lesson_id: str, index: int) -> None:
        self.busy = True
        title = find(lesson_id).steps[index].title
        self.set_status(f"Running “{title}” on the engine…")
        self.query_one(SyscallLog).write(Text(f"── {title} ──", style="bold"))
        self.run_worker_step(lesson_id, index)

    def _on_event(self, event: Event) -> None:
        """Called in the worker's thread for every engine event: buffer, and ask for a redraw."""
        self._pending.append(event)
        self.post_message(EventsArrived())

    @work(thread=True, group="engine", exit_on_error=False)
    def run_worker_step(self, lesson_id: str, index: int) -> None:
        try:
            # Asked here too: a learner may press r before the doctor's answer arrived.
            readiness = self.app.readiness  # type: ignore[attr-defined]
            if readiness is not None:
                assessment = readiness(find(lesson_id))
                if not assessment.runnable:
                    self.post_message(LessonBlocked(lesson_id, assessment))
                    return
            session = self.app.session(lesson_id)  # type: ignore[attr-defined]
            started = perf_counter()
            outcome = session.run_step(index, on_event=self._on_event)
            verdict = session.check(index)
            engine = perf_counter() - started
            self.post_message(StepFinished(lesson_id, index, outcome, engine))
            self.post_message(CheckFinished(lesson_id, index, verdict))
        except KitError as error:
            self.post_message(EngineFailed(str(error)))
        except Exception:
            self.post_message(EngineFailed(traceback.format_exc(limit=3)))

    def action_check(self) -> None:
        if self._refuse_if_busy() or self._refuse_if_blocked():
            return
        self.busy = True
        self.set_status("Reading the kernel…")
        self.run_worker_check(self.lesson_id, self.index)

    @work(thread=True, group="engine", exit_on_error=False)
    def run_worker_check(self, lesson_id: str, index: int) -> None:
        try:
            verdict = self.app.session(lesson_id).check(index)  # type: ignore[attr-defined]
            self.post_message(CheckFinished(lesson_id, index, verdict))
        except Exception:
            self.post_message(EngineFailed(traceback.format_exc(limit=3)))

    def action_hint(self) -> None:
        step = self.step
        hints = getattr(step, "hints", ())
        if not hints:
            self.notify("This step has no hints: run it and read what the kernel shows.")
            return
        shown = min(self.progress.hints.get(step.id, 0) + 1, len(hints))
        self.progress.hints[step.id] = shown
        self.save()
        self.set_status(viewmodel.hints_text(step, shown))

    def action_solution(self) -> None:
        step = self.step
        if not step.is_challenge:
            self.notify("Only challenges have a solution to reveal.")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                if step.id not in self.progress.solutions_seen:
                    self.progress.solutions_seen.append(step.id)
                    self.save()
                self.set_status(f"Solution (type it in the container's shell): {step.solution}")  # type: ignore[attr-defined]

        if instructor.active():  # instructor mode: solutions without a confirmation
            confirmed(True)
            return
        self.app.push_screen(
            ConfirmScreen("Show the solution? Trying with the hints teaches more."), confirmed
        )

    def action_shell(self) -> None:
        if self._refuse_if_busy() or self._refuse_if_blocked():
            return
        session = self.app.sessions.get(self.lesson_id)  # type: ignore[attr-defined]
        command = session.shell() if session is not None else None
        if command is None:
            self.notify(
                "Nothing is running to enter yet: run the step first (r).", severity="warning"
            )
            return
        code = self.app.open_shell(command)  # type: ignore[attr-defined]
        self.set_status(f"Back from the container's shell (status {code}).")
        if self.step.is_challenge:
            self.action_check()

    def action_next(self) -> None:
        readonly = self.blocked is not None
        if not viewmodel.can_advance(self.lesson, self.progress, self.index, readonly=readonly):
            if self.index + 1 >= len(self.lesson.steps):
                self.notify("This is the lesson's last step. Pick another lesson (ctrl+p).")
            else:
                self.notify(
                    "Next opens once the step's check passes (or skip it with k).",
                    severity="warning",
                )
            return
        self.index += 1
        self.save()

    def action_previous(self) -> None:
        if self.index > 0:
            self.index -= 1
            self.save()

    def action_skip(self) -> None:
        step = self.step
        if self.progress.done(step.id):
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.progress.mark_skipped(step.id)
                self.save()
                self.refresh_labels()
                self.refresh_controls()
                self.set_status("↷ skipped. Next (n) moves on.")

        self.app.push_screen(
            ConfirmScreen(f"Skip “{step.title}” without passing its check?"), confirmed
        )

    def action_reset(self) -> None:
        if self._refuse_if_busy():
            return
        lesson = self.lesson

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.busy = True
                self.set_status("Tearing down: containers, processes, mounts, files…")
                self.run_worker_reset(lesson.id)

        self.app.push_screen(
            ConfirmScreen(
                f"Reset lesson {lesson.number}? Its containers and processes are stopped, its "
                "mounts unmounted, its files deleted, and its progress cleared."
            ),
            confirmed,
        )

    @work(thread=True, group="engine", exit_on_error=False)
    def run_worker_reset(self, lesson_id: str) -> None:
        try:
            done = self.app.session(lesson_id).reset()  # type: ignore[attr-defined]
            self.post_message(ResetFinished(lesson_id, done))
        except Exception:
            self.post_message(EngineFailed(traceback.format_exc(limit=3)))

    # --- messages from the workers --------------------------------------------------------------

    def on_events_arrived(self, message: EventsArrived) -> None:
        batch: list[Event] = []
        while self._pending:
            batch.append(self._pending.popleft())
        self.query_one(SyscallLog).add(batch)

    def on_step_finished(self, message: StepFinished) -> None:
        self.last_engine_seconds = message.engine_seconds
        outcome = message.outcome
        self._outcomes[(message.lesson_id, message.index)] = outcome
        if (message.lesson_id, message.index) != (self.lesson_id, self.index):
            return
        self.query_one(Visuals).show(outcome.observations)
        for remark in outcome.remarks:
            self.query_one(SyscallLog).write(Text(remark, style="italic"))
        if outcome.error is not None:
            self.set_status(f"✗ The step failed: {outcome.error}")

    def on_check_finished(self, message: CheckFinished) -> None:
        self.busy = False
        lesson = find(message.lesson_id)
        step = lesson.steps[message.index]
        progress = self.app.progress.lesson(lesson.id)  # type: ignore[attr-defined]
        verdict = message.verdict
        outcome = self._outcomes.get((message.lesson_id, message.index))
        lines = []
        if outcome is not None and outcome.error is not None:
            lines.append(f"✗ The step failed: {outcome.error}")
        if verdict.passed:
            progress.mark_passed(step.id, verdict.detail)
            self.app.progress.save()  # type: ignore[attr-defined]
            lines.append(f"✓ Check passed: {verdict.detail}")
        else:
            lines.append(f"✗ Check: {verdict.detail}")
            if step.is_challenge:
                lines.append("Your turn: open a shell in the container (s); hints with h.")
        feedback = viewmodel.prediction_feedback(step, progress.predictions.get(step.id))
        if feedback and outcome is not None:
            lines.append(f"Your prediction: {feedback}")
        if (message.lesson_id, message.index) == (self.lesson_id, self.index):
            self.set_status("\n".join(lines))
            self.refresh_labels()
            self.refresh_controls()

    def on_reset_finished(self, message: ResetFinished) -> None:
        self.busy = False
        self.app.progress.reset(message.lesson_id)  # type: ignore[attr-defined]
        self._outcomes = {k: v for k, v in self._outcomes.items() if k[0] != message.lesson_id}
        self._status = {k: v for k, v in self._status.items() if k[0] != message.lesson_id}
        log = self.query_one(SyscallLog)
        for line in message.done:
            log.write(Text(f"reset: {line}", style="yellow"))
        if message.lesson_id == self.lesson_id:
            self.index = 0
            self.refresh_all()
            self.set_status(
                f"Lesson reset ({len(message.done)} things torn down). Start again with r."
            )
        self.save()

    def on_lesson_blocked(self, message: LessonBlocked) -> None:
        self.busy = False
        self.assessments = {**self.assessments, message.lesson_id: message.assessment}

    def on_engine_failed(self, message: EngineFailed) -> None:
        self.busy = False
        self.set_status(f"✗ {message.what}")


class PredictScreen(ModalScreen[int | None]):
    """Predict-then-run: pick an answer before the engine shows what really happens."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")] + [
        Binding(str(n), f"choose({n - 1})", show=False) for n in range(1, 10)
    ]

    def __init__(self, question: Question) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Predict, then run", classes="dialog-title")
            yield Label(self.question.prompt, id="question")
            yield OptionList(
                *(f"{n}) {choice}" for n, choice in enumerate(self.question.choices, 1)),
                id="choices",
            )
            yield Label("Enter or a number chooses · Esc cancels", classes="dialog-help")

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)

    def action_choose(self, index: int) -> None:
        if 0 <= index < len(self.question.choices):
            self.dismiss(index)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question (skip a step, show a solution, reset a lesson)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.text, id="confirm-text")
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes ⟨y⟩", id="yes", variant="primary", compact=True)
                yield Button("No ⟨n⟩", id="no", compact=True)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class BlockedScreen(Screen[None]):
    """Shown when ``kit doctor`` says this machine cannot run containers: what is missing and
    how to fix it, instead of lessons that would only fail."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "Quit"),
        Binding("r", "recheck", "Check again"),
    ]

    def __init__(self, explanation: str, lines: list[str]) -> None:
        super().__init__()
        self.explanation = explanation
        self.lines = lines

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # only this rare screen needs a Markdown parser

        yield Header()
        checks = "\n".join(self.lines)
        yield Markdown(
            "# This machine cannot run kit's containers yet\n\n"
            f"{self.explanation}\n\n"
            "## What `kit doctor` found\n\n"
            f"```\n{checks}\n```\n\n"
            "Fix the lines marked ✗, then press **r** to check again (or **q** to quit). "
            "`python tui.py --plain 1` shows the lessons as text.",
            id="blocked",
        )
        yield Footer()

    def action_recheck(self) -> None:
        self.app.pop_screen()
        self.app.run_doctor()  # type: ignore[attr-defined]
