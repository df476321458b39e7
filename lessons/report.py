"""A learner's progress report, for an instructor to collect: ``python tui.py --report [--json]``.

What it says, per lesson: the steps passed and skipped, whether the lesson is complete, each
challenge (passed or not, hints used, solution revealed) and each prediction (the choice and
whether it was right). Challenges recorded as passed are **re-verified** against the kernel:
their check runs again now. Kernel state does not outlive everything (a container ends with
the tutorial that started it), so a challenge reads either "re-verified now" or "passed in the
tutorial; the kernel state is gone now", with what the check sees.

The report reads the same progress file the tutorial writes (per user and kit root, see
:mod:`lessons.progress` and :mod:`lessons.users`): run it the way the tutorial is run
(``kit-tutorial --report`` or ``sudo kit-tutorial --report``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from kit import paths
from lessons.catalog import all_lessons
from lessons.model import Lesson, Verdict
from lessons.progress import LessonProgress, Progress
from lessons.session import Session
from lessons.users import mode, settle
from lessons.workspace import user_name


@dataclass
class ChallengeReport:
    """One challenge: recorded, re-verified, how much help was used."""

    step: str
    title: str
    passed: bool
    #: True: the check passes now; False: it does not (state gone, or never done).
    verified_now: bool
    #: What the check sees now.
    detail: str
    hints_used: int
    solution_seen: bool
    #: What the kernel showed when the tutorial checked it passed (and when).
    evidence: str = ""

    @property
    def status(self) -> str:
        if self.passed and self.verified_now:
            return "passed, re-verified now"
        if self.passed:
            return "passed in the tutorial; the kernel state is gone now"
        if self.verified_now:
            return "done, but not yet checked in the tutorial"
        return "not done"


@dataclass
class PredictionReport:
    """One predict-then-run question the learner answered."""

    step: str
    prompt: str
    choice: str
    right: bool


@dataclass
class LessonReport:
    """One lesson's progress."""

    id: str
    number: int
    title: str
    steps: int
    passed: list[str]
    skipped: list[str]
    challenges: list[ChallengeReport] = field(default_factory=list)
    predictions: list[PredictionReport] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return len(set(self.passed) | set(self.skipped)) == self.steps

    @property
    def started(self) -> bool:
        return bool(self.passed or self.skipped or self.predictions)


@dataclass
class Report:
    """Everything an instructor collects from one learner."""

    learner: str
    mode: str
    host: str
    kit_root: str
    progress_file: str
    generated: str
    lessons: list[LessonReport]

    def totals(self) -> dict[str, int]:
        challenges = [c for lesson in self.lessons for c in lesson.challenges]
        predictions = [p for lesson in self.lessons for p in lesson.predictions]
        return {
            "lessons": len(self.lessons),
            "lessons_completed": sum(lesson.completed for lesson in self.lessons),
            "steps": sum(lesson.steps for lesson in self.lessons),
            "steps_passed": sum(len(lesson.passed) for lesson in self.lessons),
            "challenges": len(challenges),
            "challenges_passed": sum(c.passed for c in challenges),
            "challenges_verified_now": sum(c.passed and c.verified_now for c in challenges),
            "predictions": len(predictions),
            "predictions_right": sum(p.right for p in predictions),
        }

    def to_dict(self) -> dict[str, Any]:
        lessons = []
        for lesson in self.lessons:
            entry = asdict(lesson)
            entry["completed"] = lesson.completed
            for raw, challenge in zip(entry["challenges"], lesson.challenges, strict=True):
                raw["status"] = challenge.status
            lessons.append(entry)
        data = {k: v for k, v in asdict(self).items() if k != "lessons"}
        return {**data, "totals": self.totals(), "lessons": lessons}

    def text(self) -> str:
        totals = self.totals()
        lines = [
            f"kit progress report: {self.learner} ({self.mode} mode) on {self.host}, "
            f"{self.generated}",
            f"kit root {self.kit_root}; progress in {self.progress_file}",
            "",
            f"Lessons completed: {totals['lessons_completed']}/{totals['lessons']}   "
            f"steps passed: {totals['steps_passed']}/{totals['steps']}   "
            f"challenges: {totals['challenges_passed']}/{totals['challenges']} "
            f"({totals['challenges_verified_now']} re-verified now)   "
            f"predictions right: {totals['predictions_right']}/{totals['predictions']}",
        ]
        for lesson in self.lessons:
            mark = "✓" if lesson.completed else ("◐" if lesson.started else "·")
            skipped = f", {len(lesson.skipped)} skipped" if lesson.skipped else ""
            lines.append("")
            lines.append(
                f"{mark} {lesson.number}. {lesson.title}: {len(lesson.passed)}/{lesson.steps} "
                f"steps passed{skipped}"
            )
            for c in lesson.challenges:
                help_used = f"hints {c.hints_used}" + (", solution seen" if c.solution_seen else "")
                lines.append(f"    ★ {c.title}: {c.status} ({help_used})")
                if c.evidence:
                    lines.append(f"      when it passed: {c.evidence}")
                if c.passed and not c.verified_now:
                    lines.append(f"      the check now: {c.detail}")
            for p in lesson.predictions:
                lines.append(
                    f"    ? {p.prompt} -> {p.choice} ({'right' if p.right else 'not right'})"
                )
        return "\n".join(lines)


def _check(session: Session, index: int) -> Verdict:
    try:
        return session.check(index)
    except Exception as error:  # a report must not die on one lesson's check
        return Verdict.no(f"could not check: {type(error).__name__}: {error}")


def lesson_report(
    lesson: Lesson,
    progress: LessonProgress,
    *,
    verify: bool = True,
    session: Session | None = None,
) -> LessonReport:
    """The report of one lesson; ``verify`` re-runs the checks of its challenges now, in
    ``session`` when the lesson is live (the TUI's), else in a fresh one, which sees what
    outlived the tutorial."""
    report = LessonReport(
        id=lesson.id,
        number=lesson.number,
        title=lesson.title,
        steps=len(lesson.steps),
        passed=[s.id for s in lesson.steps if s.id in progress.passed],
        skipped=[s.id for s in lesson.steps if s.id in progress.skipped],
    )
    if verify and session is None:
        session = Session(lesson)
    elif not verify:
        session = None
    for index, step in enumerate(lesson.steps):
        if step.is_challenge:
            verdict = _check(session, index) if session is not None else None
            report.challenges.append(
                ChallengeReport(
                    step=step.id,
                    title=step.title,
                    passed=step.id in progress.passed,
                    verified_now=bool(verdict and verdict.passed),
                    detail=verdict.detail if verdict else "not checked",
                    hints_used=progress.hints.get(step.id, 0),
                    solution_seen=step.id in progress.solutions_seen,
                    evidence=progress.evidence.get(step.id, ""),
                )
            )
        question = step.question
        if question is not None and step.id in progress.predictions:
            choice = progress.predictions[step.id]
            shown = question.choices[choice] if 0 <= choice < len(question.choices) else "?"
            report.predictions.append(
                PredictionReport(step.id, question.prompt, shown, question.is_right(choice))
            )
    return report


def build(
    progress: Progress | None = None,
    *,
    verify: bool = True,
    sessions: dict[str, Session] | None = None,
) -> Report:
    """The report of this learner (the progress file the tutorial writes, by default).
    ``sessions`` are live lessons (by id) whose kernel state the checks can still see."""
    progress = progress or Progress.load()
    sessions = sessions or {}
    return Report(
        learner=user_name(),
        mode=mode(),
        host=platform.node(),
        kit_root=str(paths.data_root()),
        progress_file=str(progress.path),
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        lessons=[
            lesson_report(
                lesson, progress.lesson(lesson.id), verify=verify, session=sessions.get(lesson.id)
            )
            for lesson in all_lessons()
        ],
    )


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """``python tui.py --report [--json] [--no-verify]``"""
    parser = argparse.ArgumentParser(
        prog="tui.py --report", description="This learner's progress, for the instructor."
    )
    parser.add_argument("--json", action="store_true", help="print JSON (for collecting)")
    parser.add_argument(
        "--no-verify", action="store_true", help="do not re-run the challenges' checks"
    )
    args = parser.parse_args(argv)
    settle()
    report = build(verify=not args.no_verify)
    stream = out or sys.stdout
    if args.json:
        stream.write(json.dumps(report.to_dict(), indent=1) + "\n")
    else:
        stream.write(report.text() + "\n")
    return 0
