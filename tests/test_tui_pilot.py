"""The TUI driven with Textual's Pilot through lessons 1-4, on the real engine.

Workers run real containers; tests wait for them (``app.workers.wait_for_complete()`` and
``pilot.pause()``), never sleep. "Open a shell here" goes through ``KitApp.open_shell``, which
the tests replace: instead of a person typing, the replacement runs commands through the very
command the app built (a join of the real container like ``kit exec``, or, in a container paused
before it confines itself, of its namespaces, root and cgroup; see lessons/shell.py).
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, RichLog, Static

from kit import mounts
from kit.doctor.requirements import Assessment
from kit_tui.app import KitApp
from kit_tui.messages import EventsArrived
from kit_tui.screens import BlockedScreen, ConfirmScreen, MainScreen, PredictScreen
from lessons import instructor, kernel, readiness
from lessons.catalog import find
from lessons.model import Lesson
from lessons.progress import Progress
from lessons.session import ShellCommand

SIZE = (120, 40)


def pilot_test(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async Pilot test in its own event loop (no pytest plugin needed); fixtures are
    passed through."""

    @functools.wraps(test)
    def run(**fixtures: object) -> None:
        asyncio.run(test(**fixtures))  # type: ignore[arg-type]

    return run


@pytest.fixture(scope="module", autouse=True)
def doctor_facts() -> None:
    """The doctor's checks, run once before the apps start: each app then assesses its lessons
    from them at once (real answers), and no check's probe process is still running when a
    short test ends (the leak guard would rightly complain)."""
    readiness.facts()


@pytest.fixture(autouse=True)
def private_state(kit_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.delenv(instructor.ENV, raising=False)  # a learner's rules, not an instructor's
    return state


def new_app(**kwargs: object) -> KitApp:
    return KitApp(doctor=lambda: (True, "This machine can run kit's containers.", []), **kwargs)  # type: ignore[arg-type]


async def settle(pilot: Pilot[None]) -> None:
    """Let every engine worker finish and every message it posted be handled."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def main(app: KitApp) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen), type(screen)
    return screen


def status(app: KitApp) -> str:
    return str(app.screen.query_one("#status").render())


async def run_step(pilot: Pilot[None], choice: str = "1") -> None:
    await pilot.press("r")
    await pilot.pause()
    if isinstance(pilot.app.screen, PredictScreen):
        await pilot.press(choice)
    await settle(pilot)


def typing(commands: str, calls: list[ShellCommand]) -> Callable[[ShellCommand], int]:
    """A stand-in for the learner at the shell: runs ``commands`` in the container."""

    def shell(command: ShellCommand) -> int:
        calls.append(command)
        assert command.argv[-1] == "/bin/sh"
        done = subprocess.run([*command.argv, "-c", commands], env=command.env, check=False)
        return done.returncode

    return shell


async def pass_lesson(
    pilot: Pilot[None], app: KitApp, lesson_id: str, solve: dict[str, str]
) -> None:
    app.open_lesson(lesson_id)
    await pilot.pause()
    lesson = find(lesson_id)
    screen = main(app)
    assert screen.lesson_id == lesson_id and screen.index == 0
    for index, step in enumerate(lesson.steps):
        assert screen.index == index
        await run_step(pilot)
        if step.is_challenge:
            calls: list[ShellCommand] = []
            app.open_shell = typing(solve[step.id], calls)  # type: ignore[method-assign]
            await pilot.press("s")
            await settle(pilot)
            assert calls, "the shell was never opened"
        assert "✓ Check passed" in status(app), f"{lesson_id}/{step.id}: {status(app)}"
        assert app.progress.lesson(lesson_id).done(step.id)
        if index + 1 < len(lesson.steps):
            assert not screen.query_one("#next", Button).disabled
            await pilot.press("n")
            await pilot.pause()
    assert Progress.load(app.progress.path).lesson(lesson_id).passed == [s.id for s in lesson.steps]


@pilot_test
async def test_lessons_1_to_4_with_a_challenge_failed_then_passed() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = main(app)
        assert screen.lesson_id == "container-view"
        lesson = find("container-view")

        # Lesson 1, up to its challenge.
        for _ in range(len(lesson.steps) - 1):
            await run_step(pilot)
            assert "✓ Check passed" in status(app), status(app)
            await pilot.press("n")
            await pilot.pause()
        assert screen.step.id == "find-pid1"

        # The challenge, failed: the learner writes a wrong answer.
        await run_step(pilot)
        assert "✗ Check" in status(app) and "Your turn" in status(app)
        calls: list[ShellCommand] = []
        app.open_shell = typing("echo init > /tmp/pid1", calls)  # type: ignore[method-assign]
        await pilot.press("s")
        await settle(pilot)
        assert len(calls) == 1 and "--pid" in calls[0].argv
        assert calls[0].confined and calls[0].argv[3] == "exec"  # joined like kit exec
        assert "✗ Check: /tmp/pid1 says 'init'" in status(app)
        assert not app.progress.lesson("container-view").done("find-pid1")
        assert screen.query_one("#next", Button).disabled

        # Hints, one at a time; then the solution, behind a confirmation.
        await pilot.press("h")
        await pilot.press("h")
        await pilot.pause()
        assert "Hint 2/3" in status(app) and "Hint 3/3" not in status(app)
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert "Solution" in status(app) and "cat /proc/1/comm" in status(app)
        assert app.progress.lesson("container-view").solutions_seen == ["find-pid1"]

        # Passed, by the kernel's account.
        app.open_shell = typing("cat /proc/1/comm > /tmp/pid1", calls)  # type: ignore[method-assign]
        await pilot.press("s")
        await settle(pilot)
        assert "✓ Check passed: right: PID 1 is tail" in status(app)

        # Lessons 2-4 from start to end; lesson 3 and 4's challenges passed at the first try.
        await pass_lesson(pilot, app, "rootfs", {})
        await pass_lesson(pilot, app, "mounts", {"make-proc": "mount -t proc proc /proc"})
        await pass_lesson(
            pilot,
            app,
            "pivot-root",
            {"root-source": "awk '$5 == \"/\" {print $4}' /proc/self/mountinfo > /tmp/root-source"},
        )
        labels = [str(option.prompt) for option in screen.query_one("#lessons").options]  # type: ignore[attr-defined]
        assert labels[0].startswith("✓ 1.") and labels[3].startswith("✓ 4.")
        kept = [obj.host_pid for s in app.sessions.values() for obj in s.objects.values()]
        assert kept and all(kernel.alive(pid) for pid in kept)
    # Leaving the app stops every container a lesson kept.
    assert not any(kernel.alive(pid) for pid in kept)


@pilot_test
async def test_next_waits_for_the_check_or_an_explicit_skip() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = main(app)
        assert screen.query_one("#next", Button).disabled
        await pilot.press("n")
        await pilot.pause()
        assert screen.index == 0
        # Steps further on cannot be opened from the list either.
        await pilot.click("#steps", offset=(4, 3))
        await pilot.pause()
        assert screen.index == 0
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert app.progress.lesson("container-view").skipped == ["start"]
        assert not screen.query_one("#next", Button).disabled
        await pilot.click("#next")
        await pilot.pause()
        assert screen.index == 1


@pilot_test
async def test_predict_can_be_cancelled_and_nothing_runs() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, PredictScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert "cancelled" in status(app)
        assert app.sessions == {}


@pilot_test
async def test_the_palette_opens_any_lesson() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"pivot_root")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        screen = main(app)
        assert screen.lesson_id == "pivot-root"
        assert app.progress.current == "pivot-root"


@pilot_test
async def test_progress_survives_a_restart_and_the_kernel_is_replayed() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.open_lesson("mounts")
        await pilot.pause()
        await run_step(pilot)
        await pilot.press("n")
        await pilot.pause()
        workspace = str(app.sessions["mounts"].workspace)
        assert [m for m in mounts.read() if kernel.under(m.mount_point, workspace)]
    # The first app is gone and closed its sessions: step 1's mounts went with it.
    assert not [m for m in mounts.read() if kernel.under(m.mount_point, workspace)]
    again = new_app()
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = main(again)
        assert (screen.lesson_id, screen.index) == ("mounts", 1)
        steps = [str(option.prompt) for option in screen.query_one("#steps").options]  # type: ignore[attr-defined]
        assert steps[0].startswith("✓ 1.") and steps[1].startswith("▸ 2.")
        # Step 2 needs step 1's shared mount point: the session replays step 1 first.
        await run_step(pilot)
        assert "✓ Check passed" in status(again), status(again)
        log = screen.query_one("#log", RichLog)
        assert any("replaying step" in line.text for line in log.lines)


@pilot_test
async def test_reset_tears_down_the_lessons_mounts_and_progress() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.open_lesson("mounts")
        await pilot.pause()
        await run_step(pilot)
        session = app.sessions["mounts"]
        workspace = str(session.workspace)
        assert [m for m in mounts.read() if kernel.under(m.mount_point, workspace)]
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert not [m for m in mounts.read() if kernel.under(m.mount_point, workspace)]
        assert not Path(workspace).exists()
        assert app.progress.lesson("mounts").passed == []
        assert "Lesson reset" in status(app)


@pilot_test
async def test_engine_events_reach_the_log_however_many_arrive() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await run_step(pilot)
        screen = main(app)
        outcome = screen._outcomes[("container-view", 0)]
        log = screen.query_one("#log", RichLog)
        shown = [line.text for line in log.lines]
        syscalls = [e for e in outcome.events if e.kind == "syscall"]
        assert len(syscalls) > 50
        for event in syscalls:
            assert any(event.format() in line for line in shown), event.format()
    assert EventsArrived().can_replace(EventsArrived())


@pilot_test
async def test_shell_needs_something_running() -> None:
    app = new_app()
    calls: list[ShellCommand] = []
    async with app.run_test(size=SIZE) as pilot:
        app.open_shell = typing("true", calls)  # type: ignore[method-assign]
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert calls == []
        await run_step(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert len(calls) == 1


@pilot_test
async def test_a_machine_that_cannot_run_containers_gets_an_explanation() -> None:
    app = KitApp(doctor=lambda: (False, "Namespaces are missing here.", ["✗ namespaces: none"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, BlockedScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code in (0, None)


# --- a lesson this machine cannot run -----------------------------------------------------------

GADGET = "tool:kit-test-gadget"


@pytest.fixture
def missing_gadget() -> Callable[[Lesson], Assessment]:
    """Lesson 2 made unavailable: it needs a program the doctor reports as not installed.

    The program is one no machine has (the doctor's real ``tool:`` check looks for it on PATH),
    and every other requirement of every lesson is assessed from this machine's real checks.
    """
    facts = readiness.facts()

    def assess(lesson: Lesson) -> Assessment:
        extra = (GADGET,) if lesson.id == "rootfs" else ()
        return facts.assess((*lesson.requires, *extra))

    return assess


@pilot_test
async def test_a_blocked_lesson_is_marked_explained_and_never_run(
    missing_gadget: Callable[[Lesson], Assessment],
) -> None:
    app = new_app(readiness=missing_gadget)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # the doctor's worker has assessed every lesson
        screen = main(app)
        labels = [str(option.prompt) for option in screen.query_one("#lessons").options]  # type: ignore[attr-defined]
        assert labels[1].startswith("⊘ 2.")
        assert not any(label.startswith("⊘") for i, label in enumerate(labels) if i != 1)

        app.open_lesson("rootfs")
        await pilot.pause()
        prose = screen.query_one("#prose-text", Static).content.markup  # type: ignore[union-attr]
        assert "This lesson cannot run on this machine yet" in prose
        assert "kit-test-gadget is not installed" in prose and "Fix:" in prose
        assert "cannot run on this machine: a program kit-test-gadget missing" in status(app)
        for button in ("run", "check", "shell"):
            assert screen.query_one(f"#{button}", Button).disabled, button
        await pilot.press("r")
        await settle(pilot)
        assert "rootfs" not in app.sessions  # nothing ran, nothing was set up
        # Its steps can be read, all of them.
        await pilot.click("#steps", offset=(4, 3))
        await pilot.pause()
        assert screen.index == 1
        await pilot.press("n")
        await pilot.pause()
        assert screen.index == 2

        # Asked before the doctor's answer arrived, the engine worker refuses by itself.
        screen.assessments = {}
        await pilot.pause()
        assert not screen.query_one("#run", Button).disabled
        await pilot.press("r")
        await pilot.pause()
        if isinstance(app.screen, PredictScreen):
            await pilot.press("1")
        await settle(pilot)
        assert "rootfs" not in app.sessions
        assert "cannot run on this machine" in status(app)
        assert screen.query_one("#run", Button).disabled
