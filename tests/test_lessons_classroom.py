"""Classroom features on the real engine: students apart in root mode, the progress report
(re-verified against kernel state), instructor mode and ``--check-all``, Markdown handouts.

(HTML handouts in Chromium: tests/test_lessons_handout.py; offline: tests/test_lessons_offline.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit.doctor.requirements import Facts
from kit_tui import viewmodel
from lessons import instructor, report, users
from lessons.catalog import all_lessons, find
from lessons.model import Challenge, Lesson, Step, Verdict
from lessons.progress import LessonProgress, Progress, progress_path, state_dir
from lessons.session import Session

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("kit_root")


def tui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "tui.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
    )


# ----------------------------------------------------------------------------------------------
# Students apart
# ----------------------------------------------------------------------------------------------


def test_root_mode_learners_get_a_kit_root_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIT_ROOT")
    monkeypatch.setenv("SUDO_USER", "alice")
    assert users.sudo_learner() == "alice"
    assert users.personal_root() == Path("/var/lib/kit/users/alice")
    monkeypatch.setenv("SUDO_USER", "root")  # `sudo -i` then sudo again: nobody to keep apart
    assert users.personal_root() is None
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.setenv("KIT_ROOT", "/somewhere")  # set by hand: it wins
    assert users.personal_root() is None and users.settle() is None


def test_root_mode_progress_lives_in_the_kit_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("KIT_ROOT", str(tmp_path / "users" / "alice"))
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.setenv("HOME", "/home/alice")  # sudo may keep it: root must not write there
    assert state_dir() == tmp_path / "users" / "alice" / "state"
    assert progress_path().name.startswith("progress-alice-")
    monkeypatch.delenv("SUDO_USER")
    assert state_dir() == Path("/home/alice/.local/state/kit")


def _as_student(name: str, var_lib: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as root behind sudo for ``name``, with /var/lib private to the test:
    in a mount namespace of its own, a test directory is bound over /var/lib."""
    env = {k: v for k, v in os.environ.items() if k not in ("KIT_ROOT", "XDG_STATE_HOME")}
    env.update(SUDO_USER=name, SUDO_UID="1000", SUDO_GID="1000", COLUMNS="100")
    script = f'mount --bind "{var_lib}" /var/lib && exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_two_students_in_root_mode_never_share_state(tmp_path: Path) -> None:
    var_lib = tmp_path / "var-lib"
    var_lib.mkdir()
    for student in ("alice", "bob"):
        done = _as_student(student, var_lib, sys.executable, "tui.py", "--plain", "3", "--no-trace")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        listed = _as_student(student, var_lib, sys.executable, "tui.py", "--report", "--json")
        assert listed.returncode == 0, listed.stderr
        answer = json.loads(listed.stdout)
        assert answer["learner"] == student and answer["mode"] == "root"
        assert answer["kit_root"] == f"/var/lib/kit/users/{student}"
        assert answer["progress_file"].startswith(f"/var/lib/kit/users/{student}/state/")
    users_dir = var_lib / "kit" / "users"
    assert sorted(p.name for p in users_dir.iterdir()) == ["alice", "bob"]
    roots = [users_dir / s / "rootfs" / "default" for s in ("alice", "bob")]
    assert all((root / "bin").is_dir() for root in roots)
    # Different directories, not links to one: a student's `rm` in a container stays theirs.
    assert roots[0].stat().st_ino != roots[1].stat().st_ino
    assert (users_dir / "alice" / "lessons" / "alice").is_dir()
    assert not (var_lib / "kit" / "rootfs").exists()  # nothing in the shared root


# ----------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------


def _progress(path: Path) -> Progress:
    """Lesson 1 done (challenge with two hints and its evidence), one right and one wrong
    prediction; lesson 3 half done, with its challenge's solution seen but not passed."""
    progress = Progress(path)
    first = find(1)
    one = progress.lesson(first.id)
    for step in first.steps:
        one.mark_passed(
            step.id, "right: PID 1 is tail (host PID 4242)" if step.is_challenge else ""
        )
    one.hints["find-pid1"] = 2
    asked = [s for s in first.steps if s.question is not None]
    one.predictions[asked[0].id] = asked[0].question.answer  # type: ignore[union-attr]
    wrong = (asked[1].question.answer + 1) % len(asked[1].question.choices)  # type: ignore[union-attr]
    one.predictions[asked[1].id] = wrong
    third = find(3)
    three = progress.lesson(third.id)
    for step in third.steps[:3]:
        three.mark_passed(step.id)
    three.solutions_seen.append("make-proc")
    return progress


def test_report_counts_lessons_challenges_and_predictions(tmp_path: Path) -> None:
    built = report.build(_progress(tmp_path / "p.json"))
    totals = built.totals()
    assert totals["lessons"] == len(all_lessons())
    assert totals["lessons_completed"] == 1
    assert totals["steps_passed"] == len(find(1).steps) + 3
    assert totals["predictions"] == 2 and totals["predictions_right"] == 1
    assert totals["challenges_passed"] == 1
    first = built.lessons[0]
    assert first.completed
    (challenge,) = first.challenges
    assert challenge.passed and challenge.hints_used == 2
    # The tutorial's containers ended with it: the kernel state is gone, the evidence stays.
    assert not challenge.verified_now
    assert challenge.status == "passed in the tutorial; the kernel state is gone now"
    assert challenge.evidence.endswith("right: PID 1 is tail (host PID 4242)")
    third = built.lessons[2]
    assert not third.completed
    assert third.challenges[0].solution_seen and third.challenges[0].status == "not done"
    text = built.text()
    assert "✓ 1. What a container sees: 6/6 steps passed" in text
    assert "solution seen" in text and "(not right)" in text and "(right)" in text
    data = built.to_dict()
    assert data["lessons"][0]["completed"] is True
    assert data["lessons"][0]["challenges"][0]["status"].startswith("passed in the tutorial")
    json.dumps(data)  # collectable as JSON


def test_report_re_verifies_a_challenge_against_live_kernel_state(tmp_path: Path) -> None:
    lesson = find(1)
    index = lesson.index("find-pid1")
    progress = Progress(tmp_path / "p.json")
    session = Session(lesson)
    try:
        for i in range(index + 1):
            assert session.run_step(i).ok
        assert session.solve(index).returncode == 0
        verdict = session.check(index)
        assert verdict.passed
        progress.lesson(lesson.id).mark_passed("find-pid1", verdict.detail)
        live = report.build(progress, sessions={lesson.id: session})
        challenge = live.lessons[0].challenges[0]
        assert challenge.verified_now and challenge.status == "passed, re-verified now"
        assert challenge.detail == verdict.detail
    finally:
        session.reset()
    gone = report.build(progress).lessons[0].challenges[0]
    assert not gone.verified_now
    assert gone.status == "passed in the tutorial; the kernel state is gone now"
    assert "not running" in gone.detail or "no " in gone.detail


def test_report_command_reads_the_tutorials_progress_file(state_home: Path) -> None:
    progress = _progress(progress_path())
    progress.save()
    done = tui("--report", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["progress_file"] == str(progress.path)
    assert data["totals"]["lessons_completed"] == 1
    text = tui("--report")
    assert text.returncode == 0
    assert text.stdout.startswith("kit progress report: ")
    assert "Lessons completed: 1/" in text.stdout


# ----------------------------------------------------------------------------------------------
# Instructor mode
# ----------------------------------------------------------------------------------------------


def test_instructor_mode_opens_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    lesson = find(3)
    fresh = LessonProgress()
    monkeypatch.setenv(instructor.ENV, "0")  # restored (unset) after the test, enable() too
    assert viewmodel.reachable(lesson, fresh) == 0
    assert not viewmodel.can_advance(lesson, fresh, 0)
    instructor.enable()
    assert instructor.active()
    assert viewmodel.reachable(lesson, fresh) == len(lesson.steps) - 1
    assert viewmodel.can_advance(lesson, fresh, 0)
    assert not viewmodel.can_advance(lesson, fresh, len(lesson.steps) - 1)
    assert instructor.solutions(lesson) == [
        ("Challenge: make /proc visible", "mount -t proc proc /proc")
    ]


def test_check_all_validates_lessons_in_a_fresh_kit_root(kit_root: Path) -> None:
    done = tui("--check-all", "1", "4", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    answer = json.loads(done.stdout)
    assert answer["ok"] is True
    assert [lesson["number"] for lesson in answer["lessons"]] == [1, 4]
    for lesson in answer["lessons"]:
        assert lesson["requires"] == ["root"]
        assert lesson["steps"] and all(
            s["failed_before"] and s["passed_after"] for s in lesson["steps"]
        )
    # The fresh root is gone again; the learner's own state was never touched.
    assert not [p for p in kit_root.iterdir() if p.name.startswith("check-all-")]
    assert not (kit_root / "lessons").exists()
    text = tui("--check-all", "2")
    assert text.returncode == 0
    assert "1/1 lessons pass on this machine." in text.stdout


def _nothing(ctx: object) -> None:
    return None


def test_check_all_catches_a_bad_check_and_a_blocked_lesson() -> None:
    facts = Facts.gather()
    always = Lesson(
        id="always",
        number=99,
        title="A check that proves nothing",
        goals=(),
        steps=(Step("s", "passes before", _nothing, lambda ctx: Verdict.ok("always")),),
        package="lessons",
    )
    result = instructor.check_lesson(always, facts)
    assert not result.ok
    assert result.steps[0].detail == "passes before the step ran: always"
    blocked = Lesson(
        id="blocked",
        number=98,
        title="Needs a missing tool",
        goals=(),
        steps=(
            Challenge("c", "c", _nothing, lambda ctx: Verdict.no("x"), hints=("h",), solution=":"),
        ),
        package="lessons",
        requires=("root", "tool:kit-no-such-program"),
    )
    result = instructor.check_lesson(blocked, facts)
    assert not result.ok and result.steps == []
    assert "tool:kit-no-such-program" in result.blocked
    assert "Fix: install the kit-no-such-program package" in result.blocked
    assert "blocked here" in result.line()


# ----------------------------------------------------------------------------------------------
# Markdown handouts
# ----------------------------------------------------------------------------------------------


def test_markdown_handout_carries_the_real_run() -> None:
    lesson = find(3)
    done = tui("--export", "3", "--format", "md")
    assert done.returncode == 0, done.stderr[-3000:]
    page = done.stdout
    assert page.startswith(f"# Lesson {lesson.label}\n")
    assert f"{len(lesson.steps)}/{len(lesson.steps)} checks passed" in page
    assert page.count("\n## Step ") == len(lesson.steps)
    assert page.count("✓ **Check:**") == len(lesson.steps)
    assert "**System calls**" in page
    assert "unshare(CLONE_NEWNS" in page and "= 0" in page  # strace-like lines of this run
    for step in lesson.steps:
        assert f": {step.title}\n" in page
    assert "**Solution:**" not in page  # only with --solutions
    solved = tui("--export", "mounts", "--format", "md", "--solutions")
    assert "**Solution:** `mount -t proc proc /proc`" in solved.stdout
    bad = tui("--export", "99")
    assert bad.returncode == 2 and "no lesson '99'" in bad.stderr


def test_the_plain_runner_says_what_blocks_a_lesson_instead_of_failing_halfway() -> None:
    import io

    from lessons.plain import PlainRunner

    def boom(ctx: object) -> None:
        raise AssertionError("a blocked lesson must not run")

    blocked = Lesson(
        id="needs-a-tool",
        number=97,
        title="Needs a missing tool",
        goals=("nothing",),
        steps=(Step("s", "s", boom, lambda ctx: Verdict.no("x")),),
        package="lessons.l01_container_view",
        requires=("root", "tool:kit-no-such-program"),
    )
    out = io.StringIO()
    assert PlainRunner(out, trace=False).run(blocked) is False
    text = out.getvalue()
    assert "This lesson cannot run here yet:" in text
    assert "- a program kit-no-such-program (tool:kit-no-such-program)" in text
    assert "lesson 97: blocked on this machine" in text
