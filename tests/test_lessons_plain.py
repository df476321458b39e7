"""The plain runner: every lesson end to end as plain text, on the real engine.

Run as a learner (or a script) would, in its own process: ``python -m lessons N`` and
``python tui.py --plain N``. No Textual is imported on that path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lessons.catalog import all_lessons
from lessons.model import Lesson

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("kit_root")


def plain(
    *args: str, entry: tuple[str, ...] = ("-m", "lessons")
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *entry, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )


@pytest.mark.parametrize("lesson", all_lessons(), ids=lambda lesson: lesson.id)
def test_every_lesson_runs_end_to_end_in_plain_mode(lesson: Lesson) -> None:
    result = plain(str(lesson.number), "--width", "100")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    out = result.stdout
    total = len(lesson.steps)
    assert f"lesson {lesson.number}: {total}/{total} steps passed" in out
    assert out.count("✓ check:") == total
    for step in lesson.steps:
        assert step.title in out
        if step.question is not None:
            assert f"? Predict: {step.question.prompt}" in out
            assert "→ Answer:" in out
    # The system calls the engine made are part of the text.
    assert "  | " in out and "= 0" in out
    # Leaving a lesson tears down what it kept running.
    assert "teardown: stopped" in out


def test_tui_plain_entry_runs_a_lesson_without_textual() -> None:
    code = (
        "import runpy, sys; sys.argv = ['tui.py', '--plain', '1', '--no-trace', '--width', '90'];"
        "rc = 0\n"
        "try:\n    runpy.run_path('tui.py', run_name='__main__')\n"
        "except SystemExit as stop:\n    rc = stop.code\n"
        "assert 'textual' not in sys.modules, 'tui.py --plain imported textual'\n"
        "sys.exit(rc)"
    )
    result = plain("-c", code, entry=())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "lesson 1: 6/6 steps passed" in result.stdout
    assert "  | " not in result.stdout  # --no-trace


def test_list_and_unknown_lesson() -> None:
    listed = plain()
    assert listed.returncode == 0
    for lesson in all_lessons():
        assert lesson.title in listed.stdout
    unknown = plain("nine-hundred")
    assert unknown.returncode == 2
    assert "no lesson 'nine-hundred'" in unknown.stderr


def test_a_challenge_left_undone_fails_the_run() -> None:
    result = plain("1", "--no-solve", "--no-trace")
    assert result.returncode == 1
    assert "lesson 1: 5/6 steps passed" in result.stdout
    assert "Check before anything was done: ✗" in result.stdout
