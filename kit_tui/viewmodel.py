"""What the TUI shows, as plain text and plain rules, without Textual.

The screen asks this module for every label and every "may the learner do X now?" answer, so
those rules are tested as text (``tests/test_tui_viewmodel.py``) and the widgets stay dumb.
"""

from __future__ import annotations

from lessons import instructor
from lessons.model import Lesson, Step
from lessons.progress import LessonProgress

DONE, SKIPPED, TODO, CURRENT = "✓", "↷", "·", "▸"


def lesson_label(lesson: Lesson, progress: LessonProgress) -> str:
    """``✓ 1. What a container sees  6/6``"""
    done = sum(1 for step in lesson.steps if progress.done(step.id))
    total = len(lesson.steps)
    mark = DONE if done == total else ("◐" if done else TODO)
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


def reachable(lesson: Lesson, progress: LessonProgress) -> int:
    """The furthest step the learner may open: the first one not done yet (every step in
    instructor mode)."""
    if instructor.active():
        return len(lesson.steps) - 1
    for index, step in enumerate(lesson.steps):
        if not progress.done(step.id):
            return index
    return len(lesson.steps) - 1


def can_advance(lesson: Lesson, progress: LessonProgress, index: int) -> bool:
    """Next is available only once the step's check passed (or it was skipped), or always
    in instructor mode."""
    done = instructor.active() or progress.done(lesson.steps[index].id)
    return index + 1 < len(lesson.steps) and done


def title(lesson: Lesson, index: int) -> str:
    return f"Lesson {lesson.number} · {lesson.title} — step {index + 1}/{len(lesson.steps)}"


def prose(lesson: Lesson, index: int) -> str:
    """The Markdown of a step; the first step also carries the lesson's introduction."""
    text = lesson.prose(lesson.steps[index])
    if index == 0:
        goals = "\n".join(f"* {goal}" for goal in lesson.goals)
        text = f"{lesson.intro_text().rstrip()}\n\n**You will learn**\n\n{goals}\n\n---\n\n{text}"
    return text


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
