"""``kit run -it`` in a real terminal (tmux): a pty of the container's own, window size, job
control, resizing, and the exit status."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lifecycle_helpers import wait_for

pytestmark = pytest.mark.usefixtures("kit_root")


class Tmux:
    """One tmux server (own socket) running one command, read with capture-pane."""

    def __init__(self, socket: Path, command: str, width: int = 100, height: int = 30) -> None:
        self.base = ["tmux", "-S", str(socket)]
        subprocess.run(
            [
                *self.base,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                str(width),
                "-y",
                str(height),
                command,
            ],
            check=True,
        )

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "t", *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(
            [*self.base, "capture-pane", "-t", "t", "-p"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """Poll the screen until ``predicate`` holds (a terminal has no completion event)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"screen never matched; it shows:\n{screen}")

    def resize(self, width: int, height: int) -> None:
        subprocess.run(
            [*self.base, "resize-window", "-t", "t", "-x", str(width), "-y", str(height)],
            check=True,
        )

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, capture_output=True)


@pytest.fixture
def terminal(tmp_path: Path, host_rootfs: Path) -> Iterator[Tmux]:
    command = " ".join(
        shlex.quote(part)
        for part in [
            sys.executable,
            "-m",
            "kit",
            "run",
            "--rm",
            "-it",
            "--rootfs",
            str(host_rootfs),
            "/bin/bash",
            "--norc",
            "-i",
        ]
    )
    done = tmp_path / "status"
    tmux = Tmux(tmp_path / "tmux.sock", f"{command}; echo $? > {done}; sleep 60")
    tmux.status_file = done  # type: ignore[attr-defined]
    try:
        yield tmux
    finally:
        tmux.kill()


def test_interactive_shell_has_a_real_terminal(terminal: Tmux) -> None:
    terminal.wait_for(lambda s: "#" in s or "$" in s)
    terminal.keys("tty; stty size; echo pid=$$", "Enter")
    screen = terminal.wait_for(lambda s: "pid=1" in s)
    assert "/dev/pts/0" in screen  # the container's own devpts instance
    assert "30 100" in screen  # rows cols: the outer terminal's size was passed in


def test_job_control_and_resize(terminal: Tmux) -> None:
    terminal.wait_for(lambda s: "#" in s or "$" in s)
    terminal.keys("sleep 300", "Enter")
    time.sleep(0.3)
    terminal.keys("C-z")
    terminal.wait_for(lambda s: "Stopped" in s)
    # bash registers the stopped job and later its death asynchronously (SIGCHLD): repeat the
    # kill (harmless once the job is gone) and ask again until bash reports it.
    deadline = time.monotonic() + 20
    while "Killed" not in terminal.screen():
        assert time.monotonic() < deadline, terminal.screen()
        terminal.keys("kill -9 %1 2>/dev/null; jobs", "Enter")
        time.sleep(0.2)
    terminal.resize(80, 24)
    terminal.keys("stty size", "Enter")
    terminal.wait_for(lambda s: "24 80" in s)


def test_exit_status_from_the_terminal(terminal: Tmux) -> None:
    terminal.wait_for(lambda s: "#" in s or "$" in s)
    terminal.keys("exit 7", "Enter")
    status_file: Path = terminal.status_file  # type: ignore[attr-defined]
    wait_for(status_file.exists, timeout=20, what="kit to write the exit status")
    assert status_file.read_text().strip() == "7"


def test_ctrl_c_reaches_the_foreground_job_not_kit(terminal: Tmux) -> None:
    terminal.wait_for(lambda s: "#" in s or "$" in s)
    terminal.keys("sleep 300; echo after-sleep", "Enter")
    time.sleep(0.3)
    terminal.keys("C-c")
    terminal.keys("echo still-here", "Enter")
    screen = terminal.wait_for(lambda s: "still-here" in s.splitlines())
    # Ctrl-C interrupted the whole command list inside the container; kit kept running.
    assert "after-sleep" not in screen.splitlines()


def test_closing_the_terminal_ends_the_container(terminal: Tmux, kit_root: Path) -> None:
    terminal.wait_for(lambda s: "#" in s or "$" in s)
    terminal.keys("echo ready", "Enter")
    terminal.wait_for(lambda s: "ready" in s.splitlines())
    terminal.kill()  # the terminal goes away: kit gets SIGHUP, its stdin hangs up
    containers = kit_root / "run" / "containers"
    # kit run --rm ended and removed the container; the leak guard checks no process is left.
    wait_for(
        lambda: not any(p.is_dir() for p in containers.iterdir()),
        timeout=20,
        what="kit run --rm to remove the container",
    )
