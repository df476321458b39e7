"""The plain runner: any lesson as plain text, without Textual.

For projectors, ssh sessions, scripts and tests::

    python -m lessons                 # the list of lessons
    python -m lessons 2               # run lesson 2 (by number or id) on the real engine
    python -m lessons all --no-trace  # every lesson, without the system-call trace
    python tui.py --plain 3           # the same, through the TUI's entry point

Each step prints its prose, asks its question (the answer follows the run), runs on the real
engine, prints the system calls and what it observed, and checks the kernel state. Challenges
print their task and hints, then (unless ``--no-solve``) run the solution in the container
the way a learner would, and check. The exit status is 0 when every check passed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import TextIO

from kit.errors import KitError
from kit.trace import Event
from lessons.catalog import all_lessons, find
from lessons.model import Lesson
from lessons.observe import as_text
from lessons.readiness import assess
from lessons.session import Session


def traced(event: Event) -> bool:
    """Whether a plain trace shows ``event``: system calls, errors, exits and replays (not
    stage, pause or info events). The handouts (:mod:`lessons.export`) show the same."""
    return event.kind in ("syscall", "error", "exit") or event.name == "replay"


class PlainRunner:
    """Runs lessons and writes them as text to ``out``."""

    def __init__(
        self,
        out: TextIO,
        *,
        trace: bool = True,
        solve: bool = True,
        pause: bool = False,
        width: int = 100,
    ) -> None:
        self.out = out
        self.trace = trace
        self.solve = solve
        self.pause = pause
        self.width = width

    def write(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def rule(self, title: str, char: str = "─") -> None:
        self.write(f"{char * 2} {title} " + char * max(0, self.width - len(title) - 4))

    def on_event(self, event: Event) -> None:
        if self.trace and traced(event):
            self.write("  | " + event.format())

    def run(self, lesson: Lesson) -> bool:
        """Run every step of ``lesson``; True if every check passed."""
        self.rule(f"Lesson {lesson.label}", "═")
        self.write(lesson.intro_text().rstrip())
        self.write("\nYou will learn:")
        for goal in lesson.goals:
            self.write(f"  • {goal}")
        readiness = assess(lesson)
        if not readiness.runnable:  # say what blocks it and the fix, rather than fail halfway
            self.write("\n" + readiness.explain())
            self.rule(f"lesson {lesson.number}: blocked on this machine", "═")
            return False
        session = Session(lesson)
        session.close()  # leftovers of an earlier run (a crash) go first
        passed = 0
        try:
            for index in range(len(lesson.steps)):
                if self.run_step(session, index):
                    passed += 1
        finally:
            for line in session.close():
                self.write(f"  teardown: {line}")
        total = len(lesson.steps)
        self.rule(f"lesson {lesson.number}: {passed}/{total} steps passed", "═")
        return passed == total

    def run_step(self, session: Session, index: int) -> bool:
        lesson = session.lesson
        step = lesson.steps[index]
        self.write()
        self.rule(f"Step {index + 1}/{len(lesson.steps)}: {step.title}")
        self.write(lesson.prose(step).rstrip())
        if self.pause:
            input("\n[Enter] runs the step ")
        if step.question is not None:
            self.write(f"\n? Predict: {step.question.prompt}")
            for number, choice in enumerate(step.question.choices, 1):
                self.write(f"    {number}) {choice}")
        self.write()
        outcome = session.run_step(index, on_event=self.on_event)
        for remark in outcome.remarks:
            self.write(f"  {remark}")
        for observation in outcome.observations:
            self.write()
            self.write(as_text(observation))
        if outcome.error is not None:
            self.write(f"\n✗ the step failed: {outcome.error}")
            return False
        if step.question is not None:
            right = step.question.choices[step.question.answer]
            self.write(f"\n→ Answer: {step.question.answer + 1}) {right}. {step.question.explain}")
        if step.is_challenge:
            self.write("\nHints:")
            for number, hint in enumerate(step.hints, 1):  # type: ignore[attr-defined]
                self.write(f"  {number}. {hint}")
            before = session.check(index)
            self.write(
                f"\nCheck before anything was done: {'✓' if before.passed else '✗'} {before.detail}"
            )
            if not self.solve:
                return before.passed
            self.write(f"Solution, run in the container: {step.solution}")  # type: ignore[attr-defined]
            done = session.solve(index)
            if done.stdout.strip() or done.stderr.strip():
                self.write((done.stdout + done.stderr).rstrip())
        verdict = session.check(index)
        self.write(f"\n{'✓' if verdict.passed else '✗'} check: {verdict.detail}")
        return verdict.passed


def list_lessons(out: TextIO) -> None:
    for lesson in all_lessons():
        out.write(
            f"{lesson.number:>2}  {lesson.id:<16} {lesson.title}  ({len(lesson.steps)} steps)\n"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lessons",
        description="Run kit's lessons as plain text, on the real engine (no Textual needed).",
    )
    parser.add_argument(
        "lesson", nargs="?", help="lesson number or id, or 'all' (default: list them)"
    )
    parser.add_argument("--no-trace", action="store_true", help="do not print system calls")
    parser.add_argument("--no-solve", action="store_true", help="do not solve challenges")
    parser.add_argument("--pause", action="store_true", help="wait for Enter before each step")
    parser.add_argument("--width", type=int, default=None, help="line width (default: terminal)")
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    stream = out or sys.stdout
    if not args.lesson:
        list_lessons(stream)
        return 0
    width = args.width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    runner = PlainRunner(
        stream, trace=not args.no_trace, solve=not args.no_solve, pause=args.pause, width=width
    )
    try:
        chosen = all_lessons() if args.lesson == "all" else [find(args.lesson)]
    except KeyError as error:
        sys.stderr.write(f"lessons: {error.args[0]}\n")
        return 2
    ok = True
    try:
        for lesson in chosen:
            ok = runner.run(lesson) and ok
    except KitError as error:
        sys.stderr.write(f"lessons: error: {error}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("lessons: interrupted\n")
        return 130
    except BrokenPipeError:  # `python -m lessons 1 | head`: the reader left; teardown is done
        return 141
    return 0 if ok else 1
