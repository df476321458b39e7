"""Instructor mode: every lesson and step open, solutions shown, and ``--check-all`` to
validate a VM image before class.

    python tui.py --instructor [LESSON]   the tutorial with every step unlocked and each
                                          challenge's solution shown without a confirmation
    python tui.py --check-all [--json]    run every lesson on this machine against its reference
                                          solution; exit 0 when all of them pass

``--check-all`` does what a class will do, from scratch: in a fresh kit root of its own (so it
neither uses nor touches anybody's progress, files or root filesystem), for each lesson it
first asks the doctor whether the lesson's requirements are met here, then checks that every
step's check fails before the step (a check that passes on a pristine machine proves nothing),
runs the step, solves each challenge with its reference solution in its container the way a
learner would, checks again, and tears everything down for real.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from kit.doctor.requirements import Facts
from kit.errors import KitError
from lessons.catalog import all_lessons, find
from lessons.model import Lesson
from lessons.readiness import assess
from lessons.session import Session
from lessons.users import fresh_root

#: Set (to "1") in instructor mode; read by the TUI's rules (which steps are open).
ENV = "KIT_INSTRUCTOR"


def active() -> bool:
    """Whether the tutorial runs in instructor mode."""
    return os.environ.get(ENV) == "1"


def enable() -> None:
    """Turn instructor mode on for this process (and the processes it starts)."""
    os.environ[ENV] = "1"


def solutions(lesson: Lesson) -> list[tuple[str, str]]:
    """``(challenge title, solution)`` of every challenge of a lesson."""
    return [
        (step.title, step.solution)  # type: ignore[attr-defined]
        for step in lesson.steps
        if step.is_challenge
    ]


@dataclass
class StepCheck:
    """One step on this machine: fails before, passes after (with its solution, if any)."""

    step: str
    title: str
    challenge: bool
    failed_before: bool = False
    passed_after: bool = False
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.failed_before and self.passed_after


@dataclass
class LessonCheck:
    """One lesson on this machine."""

    id: str
    number: int
    title: str
    requires: list[str]
    blocked: str = ""
    steps: list[StepCheck] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.blocked and not self.error and all(s.ok for s in self.steps)

    def line(self) -> str:
        passed = sum(s.ok for s in self.steps)
        head = f"{'✓' if self.ok else '✗'} {self.number:>2}. {self.title}"
        needs = f"  (needs: {', '.join(self.requires) or 'nothing special'})"
        if self.blocked:
            return f"{head}: blocked here{needs}\n{_indent(self.blocked)}"
        text = f"{head}: {passed}/{len(self.steps)} steps{needs}"
        for step in self.steps:
            if not step.ok:
                text += f"\n    ✗ {step.title}: {step.detail}"
        if self.error:
            text += f"\n    ✗ {self.error}"
        return text


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def check_lesson(lesson: Lesson, facts: Facts) -> LessonCheck:
    """Validate one lesson on this machine (see the module docstring)."""
    result = LessonCheck(lesson.id, lesson.number, lesson.title, list(lesson.requires))
    assessment = assess(lesson, facts)
    if not assessment.runnable:
        result.blocked = assessment.explain()
        return result
    session = Session(lesson)
    try:
        session.close()  # leftovers of an earlier, interrupted run
        checks = [StepCheck(s.id, s.title, s.is_challenge) for s in lesson.steps]
        result.steps = checks
        for index, check in enumerate(checks):
            verdict = session.check(index)
            check.failed_before = not verdict.passed
            if verdict.passed:
                check.detail = f"passes before the step ran: {verdict.detail}"
        for index, check in enumerate(checks):
            outcome = session.run_step(index)
            if outcome.error is not None:
                check.passed_after = False
                check.detail = f"the step failed: {outcome.error}"
                continue
            if check.challenge:
                if session.check(index).passed:
                    check.failed_before = False
                    check.detail = "passes before the learner acted"
                    continue
                done = session.solve(index)
                if done.returncode != 0:
                    check.detail = f"the reference solution failed: {done.stderr.strip()}"
                    continue
            verdict = session.check(index)
            check.passed_after = verdict.passed
            if not verdict.passed:
                check.detail = f"fails after the step: {verdict.detail}"
            elif not check.detail:
                check.detail = verdict.detail
    except KitError as error:
        result.error = str(error)
    finally:
        session.reset()
    return result


def check_all(
    lessons: list[Lesson] | None = None,
    *,
    facts: Facts | None = None,
    on_lesson: Callable[[LessonCheck], None] | None = None,
) -> list[LessonCheck]:
    """Validate lessons (default: all) on this machine, one after the other."""
    facts = facts or Facts.gather()
    results = []
    for lesson in lessons or all_lessons():
        result = check_lesson(lesson, facts)
        results.append(result)
        if on_lesson is not None:
            on_lesson(result)
    return results


def _report(results: list[LessonCheck]) -> dict[str, Any]:
    lessons = []
    for result in results:
        entry = asdict(result)
        entry["ok"] = result.ok
        lessons.append(entry)
    return {"ok": all(r.ok for r in results), "lessons": lessons}


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """``python tui.py --check-all [--json] [LESSON ...]``"""
    parser = argparse.ArgumentParser(
        prog="tui.py --check-all",
        description="Validate every lesson on this machine against its reference solution.",
    )
    parser.add_argument("lessons", nargs="*", help="lesson numbers or ids (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    stream = out or sys.stdout
    try:
        chosen = [find(key) for key in args.lessons] or all_lessons()
    except KeyError as error:
        sys.stderr.write(f"tui.py --check-all: {error.args[0]}\n")
        return 2
    with fresh_root("check-all") as scratch:
        facts = Facts.gather()
        if not args.json:
            stream.write(f"Checking {len(chosen)} lesson(s) on this machine (kit root {scratch})\n")
        results = check_all(
            chosen,
            facts=facts,
            on_lesson=None if args.json else lambda r: stream.write(r.line() + "\n"),
        )
    report = _report(results)
    if args.json:
        stream.write(json.dumps(report, indent=1) + "\n")
    else:
        good = sum(r.ok for r in results)
        stream.write(f"\n{good}/{len(results)} lessons pass on this machine.\n")
    return 0 if report["ok"] else 1
