"""The TUI's view model as plain text: labels, marks, and the rules for moving on."""

from __future__ import annotations

import pytest

from kit.doctor.requirements import Assessment, Unmet
from kit_tui import viewmodel
from lessons import instructor
from lessons.catalog import find
from lessons.progress import LessonProgress


@pytest.fixture(autouse=True)
def learner_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(instructor.ENV, raising=False)


def test_instructor_mode_opens_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    lesson = find("container-view")
    monkeypatch.setenv(instructor.ENV, "1")
    assert viewmodel.reachable(lesson, LessonProgress()) == len(lesson.steps) - 1
    assert viewmodel.can_advance(lesson, LessonProgress(), 0)


def test_lesson_and_step_labels_follow_progress() -> None:
    lesson = find("container-view")
    progress = LessonProgress()
    assert viewmodel.lesson_label(lesson, progress) == "· 1. What a container sees  0/6"
    progress.mark_passed("start")
    progress.mark_skipped("root")
    assert viewmodel.lesson_label(lesson, progress) == "◐ 1. What a container sees  2/6"
    labels = [viewmodel.step_label(s, i, progress, 2) for i, s in enumerate(lesson.steps)]
    assert labels == [
        "✓ 1. Start a container",
        "↷ 2. Two different /",
        "▸ 3. A name of its own",
        "· 4. Processes: PID 1 again",
        "· 5. A mount table of its own",
        "· 6. Challenge: who is PID 1? ★",
    ]
    for step in lesson.steps:
        progress.mark_passed(step.id)
    assert viewmodel.lesson_label(lesson, progress) == "✓ 1. What a container sees  6/6"


def test_next_waits_for_the_check_and_reach_stops_at_the_first_open_step() -> None:
    lesson = find("container-view")
    progress = LessonProgress()
    assert viewmodel.reachable(lesson, progress) == 0
    assert not viewmodel.can_advance(lesson, progress, 0)
    progress.mark_passed("start")
    assert viewmodel.can_advance(lesson, progress, 0)
    assert viewmodel.reachable(lesson, progress) == 1
    progress.mark_skipped("root")
    assert viewmodel.reachable(lesson, progress) == 2
    for step in lesson.steps:
        progress.mark_passed(step.id)
    last = len(lesson.steps) - 1
    assert viewmodel.reachable(lesson, progress) == last
    assert not viewmodel.can_advance(lesson, progress, last)  # nothing after the last step


def test_prose_of_the_first_step_carries_the_introduction() -> None:
    lesson = find("container-view")
    first = viewmodel.prose(lesson, 0)
    assert first.startswith("# What a container sees")
    assert "**You will learn**" in first and "## Start a container" in first
    assert viewmodel.prose(lesson, 1).startswith("## Two different")
    assert viewmodel.title(lesson, 1) == "Lesson 1 · What a container sees — step 2/6"


def test_hints_and_prediction_feedback() -> None:
    lesson = find("container-view")
    challenge = lesson.steps[lesson.index("find-pid1")]
    assert viewmodel.hints_text(challenge, 1).startswith("Hint 1/3: ")
    assert viewmodel.hints_text(challenge, 2).count("Hint ") == 2
    assert "no hints" in viewmodel.hints_text(lesson.steps[0], 1)
    start = lesson.steps[0]
    right = viewmodel.prediction_feedback(start, 1)
    wrong = viewmodel.prediction_feedback(start, 0)
    assert right is not None and right.startswith("Right.")
    assert wrong is not None and wrong.startswith("Not quite: the answer is “user and time”")
    assert viewmodel.prediction_feedback(start, None) is None


def test_a_lesson_that_cannot_run_here_is_marked_and_explained() -> None:
    lesson = find("rootfs")
    progress = LessonProgress()
    progress.mark_passed(lesson.steps[0].id)
    blocked = Assessment(
        ("root", "tool:gadget"),
        (Unmet("tool:gadget", "a program gadget", "gadget is not installed", "apt install it"),),
        ("cgroup v1 here: limits live in one hierarchy per controller",),
    )
    runnable = Assessment(("root",), (), ("cgroup v1 here: limits live in v1 files",))
    assert viewmodel.lesson_label(lesson, progress, blocked).startswith("⊘ 2. ")
    assert viewmodel.lesson_label(lesson, progress, runnable).startswith("◐ 2. ")
    assert viewmodel.lesson_label(lesson, progress, None).startswith("◐ 2. ")  # not known yet

    text = viewmodel.readiness_markdown(blocked).splitlines()
    assert text[0] == "> **⊘ This lesson cannot run on this machine yet.**"
    assert "> * **a program gadget** (`tool:gadget`): gadget is not installed." in text
    assert ">   **Fix:** apt install it" in text
    assert "> **On this machine:** cgroup v1 here: limits live in one hierarchy per controller" in (
        text
    )
    # Above every step of a blocked lesson; a runnable one's notes head its first step only.
    assert viewmodel.prose(lesson, 2, blocked).startswith("> **⊘ This lesson cannot run")
    assert viewmodel.prose(lesson, 0, runnable).startswith("> **On this machine:** cgroup v1")
    assert viewmodel.prose(lesson, 2, runnable) == viewmodel.prose(lesson, 2)
    status = viewmodel.blocked_status(lesson, blocked)
    assert status.startswith("⊘ Lesson 2 cannot run on this machine: a program gadget missing.")
    # It can be read from end to end (nothing runs), never run.
    assert viewmodel.reachable(lesson, progress) == 1
    assert viewmodel.reachable(lesson, progress, readonly=True) == len(lesson.steps) - 1
    assert viewmodel.can_advance(lesson, progress, 1, readonly=True)
    assert not viewmodel.can_advance(lesson, progress, 1)
    assert viewmodel.blocked(blocked) and not viewmodel.blocked(runnable)
    assert not viewmodel.blocked(None)
