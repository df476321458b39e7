"""Lesson 10 (identity and resources), validated on the real engine like every lesson.

The same rules as tests/test_lessons_validate.py: every check fails on a pristine machine and
passes after its step (a challenge's only after its solution ran in its container), and reset
leaves nothing behind. Once lessons 8 and 9 are in the catalog, lesson 10 joins it and that
file validates it too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kit import mounts
from lessons import kernel
from lessons.l10_isolation import LESSON
from lessons.session import Session

pytestmark = pytest.mark.usefixtures("kit_root")


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


def test_every_check_fails_pristine_and_passes_after_its_step() -> None:
    session = Session(LESSON)
    try:
        for index, step in enumerate(LESSON.steps):
            verdict = session.check(index)
            assert not verdict.passed, f"{step.id}: passes on a pristine machine: {verdict.detail}"
        for index, step in enumerate(LESSON.steps):
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
    finally:
        session.reset()


def test_what_the_steps_show() -> None:
    session = Session(LESSON)
    try:
        texts = {}
        for index, step in enumerate(LESSON.steps):
            outcome = session.run_step(index)
            assert outcome.ok, outcome.error
            texts[step.id] = "\n".join(o.text() for o in outcome.observations)
        assert "uid=0(root)" in texts["userns"]
        assert "Permission denied" in texts["host-file"]
        assert "appended" in texts["host-file"]  # the control wrote
        assert "Permission denied" in texts["landlock"]
        memory = [line.split() for line in texts["memory"].splitlines()]
        assert ["OOMKilled", "True"] in memory and ["OOMKilled", "False"] in memory
        assert ["exit", "status", "137"] in memory
        assert any(line[-1].endswith(":/") for line in memory if "says" in line)  # cgroupns
        pids = [line.split() for line in texts["pids"].splitlines()]
        assert ["pids.max", "16"] in pids
    finally:
        session.reset()


def test_reset_tears_everything_down() -> None:
    session = Session(LESSON)
    for index in range(len(LESSON.steps)):
        session.run_step(index)
    pids = [obj.host_pid for obj in session.objects.values()]
    assert pids and all(kernel.alive(pid) for pid in pids)
    workspace = session.workspace
    session.reset()
    assert not any(kernel.alive(pid) for pid in pids)
    assert not [m for m in mounts.read() if kernel.under(m.mount_point, str(workspace))]
    assert not workspace.exists()
    for index in range(len(LESSON.steps)):
        assert not session.check(index).passed


def test_prose_and_questions() -> None:
    assert LESSON.intro_text().startswith("# ")
    for step in LESSON.steps:
        assert LESSON.prose(step).strip()
        if step.question is not None:
            assert 0 <= step.question.answer < len(step.question.choices)
