"""Author-time validation of every lesson, on the real engine.

For every step of every lesson in the catalog: its check fails on a pristine machine and passes
after the step ran. A challenge's check also fails right after its setup (the learner has not
acted yet) and passes once its solution was run in its container, the way a learner would.
Then reset must leave nothing behind: no process, no mount, no file of the lesson.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import mounts
from kit.trace import Event
from lessons import kernel
from lessons.catalog import LESSON_MODULES, all_lessons
from lessons.model import Lesson
from lessons.session import Session
from lessons.workspace import processes_inside

pytestmark = pytest.mark.usefixtures("kit_root")


def _session(lesson: Lesson) -> Iterator[Session]:
    session = Session(lesson)
    try:
        yield session
    finally:
        session.reset()


@pytest.mark.parametrize("lesson", all_lessons(), ids=lambda lesson: lesson.id)
def test_every_check_fails_pristine_and_passes_after_its_step(lesson: Lesson) -> None:
    for session in _session(lesson):
        for index, step in enumerate(lesson.steps):
            verdict = session.check(index)
            assert not verdict.passed, f"{step.id}: passes on a pristine machine: {verdict.detail}"
        for index, step in enumerate(lesson.steps):
            outcome = session.run_step(index)
            assert outcome.ok, f"{step.id}: the step failed: {outcome.error}"
            verdict = session.check(index)
            if step.is_challenge:
                assert not verdict.passed, f"{step.id}: passes before the learner acted"
                done = session.solve(index)
                assert done.returncode == 0, f"{step.id}: solution failed: {done.stderr}"
                verdict = session.check(index)
            assert verdict.passed, f"{step.id}: fails after its step: {verdict.detail}"
            assert outcome.observations or outcome.remarks, f"{step.id}: shows nothing"


@pytest.mark.parametrize("lesson", all_lessons(), ids=lambda lesson: lesson.id)
def test_reset_tears_everything_down(lesson: Lesson) -> None:
    session = Session(lesson)
    for index in range(len(lesson.steps)):
        session.run_step(index)
    pids = [obj.host_pid for obj in session.objects.values()]
    assert all(kernel.alive(pid) for pid in pids)
    workspace = session.workspace
    session.reset()
    assert not any(kernel.alive(pid) for pid in pids)
    assert not [m for m in mounts.read() if kernel.under(m.mount_point, str(workspace))]
    assert not workspace.exists()
    assert session.objects == {}
    for index in range(len(lesson.steps)):
        assert not session.check(index).passed


def test_a_later_step_replays_the_earlier_ones() -> None:
    """A learner coming back at step 5 (after a restart) finds the kernel as step 5 expects."""
    lesson = next(lesson for lesson in all_lessons() if lesson.id == "mounts")
    index = lesson.index("devices")
    for session in _session(lesson):
        seen: list[Event] = []
        outcome = session.run_step(index, on_event=seen.append)
        assert outcome.ok, outcome.error
        replayed = [e.message for e in seen if e.name == "replay"]
        assert len(replayed) == index, replayed
        for earlier in range(index + 1):
            assert session.check(earlier).passed, lesson.steps[earlier].id
        # Going back to an earlier step starts from a clean kernel, then replays.
        outcome = session.run_step(lesson.index("copy"))
        assert outcome.ok, outcome.error
        assert session.check(lesson.index("copy")).passed
        assert not session.check(lesson.index("propagation")).passed


def test_processes_inside_finds_only_the_lessons(tmp_path: Path) -> None:
    lesson = next(lesson for lesson in all_lessons() if lesson.id == "rootfs")
    for session in _session(lesson):
        session.run_step(lesson.index("chroot"))
        chrooted = session.objects["chrooted"].host_pid
        assert processes_inside(session.workspace) == [chrooted]
        assert processes_inside(tmp_path / "elsewhere") == []


def test_the_catalog_lists_importable_lessons_with_prose() -> None:
    lessons = all_lessons()
    assert len(lessons) == len(LESSON_MODULES)
    assert [lesson.number for lesson in lessons] == list(range(1, len(lessons) + 1))
    assert len({lesson.id for lesson in lessons}) == len(lessons)
    for lesson in lessons:
        assert lesson.intro_text().startswith("# ")
        for step in lesson.steps:
            assert lesson.prose(step).strip(), f"{lesson.id}/{step.prose_file} is empty"
            if step.question is not None:
                assert 0 <= step.question.answer < len(step.question.choices)
            if step.is_challenge:
                assert step.hints and step.solution  # type: ignore[attr-defined]
