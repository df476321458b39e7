"""Lesson 10 (identity and resources): what its steps show the learner.

tests/test_lessons_validate.py checks every lesson's steps and reset (lesson 10 included);
this file checks that each observation carries the kernel's answer the prose talks about,
the control included.
"""

from __future__ import annotations

import pytest

from lessons.l10_isolation import LESSON
from lessons.session import Session

pytestmark = pytest.mark.usefixtures("kit_root", "state_home")


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


def test_prose_and_questions() -> None:
    assert LESSON.intro_text().startswith("# ")
    for step in LESSON.steps:
        assert LESSON.prose(step).strip()
        if step.question is not None:
            assert 0 <= step.question.answer < len(step.question.choices)
