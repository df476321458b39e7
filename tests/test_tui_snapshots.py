"""Snapshot tests of the TUI's main screens at a fixed size (pytest-textual-snapshot).

The app is built by a dedicated entry point (:func:`snapshot_app`) with a fixed doctor verdict
and private state, so the pictures depend on nothing but the code. A step's outcome is canned
(fixed namespace ids and events): the real engine's PIDs and inode numbers change every run.
Update after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and look at the pictures (``tests/__snapshots__/``) before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from kit.doctor.requirements import Assessment, Unmet
from kit.trace import Event
from kit_tui.app import KitApp
from kit_tui.messages import CheckFinished, StepFinished
from lessons import catalog, instructor
from lessons.catalog import find
from lessons.model import Lesson, Verdict
from lessons.observe import Facts, Namespaces, Node, Output, Tree
from lessons.progress import Progress
from lessons.session import StepOutcome

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KIT_ROOT", str(tmp_path / "kit-root"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv(instructor.ENV, raising=False)  # a learner's screens
    # The pictures show the first four lessons only, so adding a lesson to the catalog does
    # not change them.
    monkeypatch.setattr(catalog, "LESSON_MODULES", catalog.LESSON_MODULES[:4])
    monkeypatch.setattr(catalog, "_loaded", None)
    return tmp_path


def every_lesson_runs(lesson: Lesson) -> Assessment:
    return Assessment(tuple(lesson.requires), (), ())


def snapshot_app(**kwargs: object) -> KitApp:
    kwargs.setdefault("doctor", lambda: (True, "This machine can run kit's containers.", []))
    kwargs.setdefault("readiness", every_lesson_runs)
    return KitApp(**kwargs)  # type: ignore[arg-type]


def canned_outcome() -> StepOutcome:
    lesson = find("container-view")
    host = {"mnt": 4026531841, "pid": 4026531836, "uts": 4026531838, "user": 4026531837}
    inside = {"mnt": 4026532301, "pid": 4026532304, "uts": 4026532302, "user": 4026531837}
    root = Node("/", "dir", children=[Node("bin", "symlink", "-> usr/bin"), Node("etc", "dir")])
    return StepOutcome(
        lesson.steps[0],
        events=[
            Event("stage", "namespaces", phase="start", stage="namespaces"),
            Event(
                "syscall",
                "unshare",
                args=["CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWPID"],
                result="0",
                stage="namespaces",
            ),
            Event("stage", "namespaces", phase="end", stage="namespaces"),
        ],
        observations=[
            Namespaces("namespaces: host vs container", inside, host),
            Facts(
                "the container is a process", [("host PID", "4242"), ("program", "sleep infinity")]
            ),
            Tree("the container's /", root),
            Output("ps, run inside the container", "PID COMMAND\n  1 sleep"),
        ],
        remarks=["A container is running: host PID 4242, running `sleep infinity`."],
    )


def test_main_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app(), terminal_size=SIZE)


def test_predict_dialog(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app(), press=["r"], terminal_size=SIZE)


def test_after_a_step(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def finish_step(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        outcome = canned_outcome()
        screen._on_event(outcome.events[0])  # type: ignore[attr-defined]
        for event in outcome.events[1:]:
            screen._on_event(event)  # type: ignore[attr-defined]
        screen.post_message(StepFinished("container-view", 0, outcome, 0.1))
        verdict = Verdict.ok("PID 4242 has its own namespaces: mnt, pid, uts")
        screen.post_message(CheckFinished("container-view", 0, verdict))
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=finish_step)


def test_a_challenge_with_hints(snap_compare, private_state: Path) -> None:  # type: ignore[no-untyped-def]
    progress = Progress.load()
    lesson = find("mounts")
    for step in lesson.steps[:-1]:
        progress.lesson(lesson.id).mark_passed(step.id)
    progress.lesson(lesson.id).position = len(lesson.steps) - 1
    progress.current = lesson.id
    progress.save()
    assert snap_compare(snapshot_app(), press=["h", "h"], terminal_size=SIZE)


def test_cannot_run_containers_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = snapshot_app(
        doctor=lambda: (
            False,
            "This machine cannot run containers with kit yet. Privileges: not root, and user "
            "namespaces are disabled. To fix: sudo sysctl kernel.unprivileged_userns_clone=1.",
            [
                "✓ python: 3.11.7",
                "✗ privileges: not root, and user namespaces are disabled",
                "    fix: sudo sysctl kernel.unprivileged_userns_clone=1",
                "✓ overlayfs: works",
            ],
        )
    )

    async def doctor_done(pilot: Pilot[None]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=doctor_done)


def test_a_lesson_that_cannot_run_here(snap_compare, private_state: Path) -> None:  # type: ignore[no-untyped-def]
    progress = Progress.load()
    progress.current = "rootfs"
    progress.save()

    def readiness(lesson: Lesson) -> Assessment:
        if lesson.id != "rootfs":
            return every_lesson_runs(lesson)
        gadget = Unmet(
            "tool:kit-test-gadget",
            "a program kit-test-gadget",
            "kit-test-gadget is not installed",
            "sudo apt-get install kit-test-gadget",
        )
        return Assessment(
            ("root", "tool:kit-test-gadget"),
            (gadget,),
            ("cgroup v1 here: one tree per controller",),
        )

    async def assessed(pilot: Pilot[None]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    app = snapshot_app(readiness=readiness)
    assert snap_compare(app, terminal_size=SIZE, run_before=assessed)
