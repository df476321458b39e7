"""What the TUI shows, as plain text and plain rules, without Textual.

The screen asks this module for every label and every "may the learner do X now?" answer, so
those rules are tested as text (``tests/test_tui_viewmodel.py``) and the widgets stay dumb.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lessons import instructor
from lessons.model import Lesson, Step
from lessons.progress import LessonProgress

if TYPE_CHECKING:  # the doctor is imported when a lesson is assessed, not at start
    from kit.doctor.requirements import Assessment

DONE, SKIPPED, TODO, CURRENT, BLOCKED = "✓", "↷", "·", "▸", "⊘"


def blocked(assessment: Assessment | None) -> bool:
    """Whether the doctor said this lesson cannot run here (unknown yet: not blocked)."""
    return assessment is not None and not assessment.runnable


def lesson_label(
    lesson: Lesson, progress: LessonProgress, assessment: Assessment | None = None
) -> str:
    """``✓ 1. What a container sees  6/6``; ``⊘`` first when it cannot run on this machine."""
    done = sum(1 for step in lesson.steps if progress.done(step.id))
    total = len(lesson.steps)
    mark = DONE if done == total else ("◐" if done else TODO)
    if blocked(assessment):
        mark = BLOCKED
    return f"{mark} {lesson.number}. {lesson.title}  {done}/{total}"


def step_label(step: Step, index: int, progress: LessonProgress, current: int) -> str:
    """``▸ 2. Two different /`` (current), ``✓`` passed, ``↷`` skipped, ``·`` to do."""
    if index == current:
        mark = CURRENT
    elif step.id in progress.passed:
        mark = DONE
    elif step.id in progress.skipped:
        mark = SKIPPED
    else:
        mark = TODO
    kind = " ★" if step.is_challenge else ""
    return f"{mark} {index + 1}. {step.title}{kind}"


def reachable(lesson: Lesson, progress: LessonProgress, *, readonly: bool = False) -> int:
    """The furthest step the learner may open: the first one not done yet (every step in
    instructor mode, and in a lesson that cannot run here, ``readonly``: it can only be read)."""
    if instructor.active() or readonly:
        return len(lesson.steps) - 1
    for index, step in enumerate(lesson.steps):
        if not progress.done(step.id):
            return index
    return len(lesson.steps) - 1


def can_advance(
    lesson: Lesson, progress: LessonProgress, index: int, *, readonly: bool = False
) -> bool:
    """Next is available only once the step's check passed (or it was skipped), or always
    in instructor mode and in a lesson that can only be read here (``readonly``)."""
    done = instructor.active() or readonly or progress.done(lesson.steps[index].id)
    return index + 1 < len(lesson.steps) and done


def title(lesson: Lesson, index: int) -> str:
    return f"Lesson {lesson.number} · {lesson.title} — step {index + 1}/{len(lesson.steps)}"


def prose(lesson: Lesson, index: int, assessment: Assessment | None = None) -> str:
    """The Markdown of a step; the first step also carries the lesson's introduction. A lesson
    that cannot run here says why above every step (:func:`readiness_markdown`)."""
    text = lesson.prose(lesson.steps[index])
    if index == 0:
        goals = "\n".join(f"* {goal}" for goal in lesson.goals)
        text = f"{lesson.intro_text().rstrip()}\n\n**You will learn**\n\n{goals}\n\n---\n\n{text}"
    readiness = readiness_markdown(assessment, first_step=index == 0)
    return f"{readiness}\n\n{text}" if readiness else text


def readiness_markdown(assessment: Assessment | None, *, first_step: bool = True) -> str:
    """What blocks a lesson on this machine and the fix, and how the lesson differs here
    (``kit doctor``'s requirements, :mod:`lessons.readiness`); "" when there is nothing to say.

    A runnable lesson's differences (cgroup v1 files instead of v2's...) head its first step.
    """
    if assessment is None:
        return ""
    notes = [f"> **On this machine:** {note}" for note in assessment.notes]
    if assessment.runnable:
        return "\n>\n".join(notes) if first_step else ""
    lines = [f"> **{BLOCKED} This lesson cannot run on this machine yet.**", ">"]
    for unmet in assessment.unmet:
        lines.append(f"> * **{unmet.title}** (`{unmet.key}`): {unmet.found}.")
        if unmet.fix:
            lines.append(f">   **Fix:** {unmet.fix}")
    for note in notes:
        lines += [">", note]
    lines += [
        ">",
        "> Its steps can be read; Run stays off, so nothing fails halfway. After the fix, "
        "start the tutorial again.",
    ]
    return "\n".join(lines)


def blocked_status(lesson: Lesson, assessment: Assessment) -> str:
    """The status line of a lesson that cannot run here."""
    missing = ", ".join(unmet.title for unmet in assessment.unmet)
    return (
        f"{BLOCKED} Lesson {lesson.number} cannot run on this machine: {missing} missing. "
        "What blocks it and the fix are at the top of the lesson's text."
    )


def hints_text(step: Step, shown: int) -> str:
    """The hints revealed so far, numbered."""
    hints = getattr(step, "hints", ())
    if not hints:
        return "This step has no hints: run it and read what the kernel shows."
    lines = [f"Hint {i + 1}/{len(hints)}: {hint}" for i, hint in enumerate(hints[:shown])]
    return "\n".join(lines)


def prediction_feedback(step: Step, choice: int | None) -> str | None:
    question = step.question
    if question is None or choice is None:
        return None
    right = question.choices[question.answer]
    verdict = "Right" if question.is_right(choice) else f"Not quite: the answer is “{right}”"
    return f"{verdict}. {question.explain}"
