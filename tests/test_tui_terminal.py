"""The real terminal: tmux starts ``python tui.py``, keys are sent, the screen is read back.

This is the one test where "open a shell here" really suspends the app and hands the terminal
to a shell inside the container: the test types ``hostname`` into it and reads the answer off
the screen. tmux runs on a private socket, so nothing is shared with other tmux users.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit import mounts
from lessons import kernel

REPO = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 120, 40

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """One tmux server on a private socket, one window running the app."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, check=False
        )
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "kit")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "kit", *keys)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Poll the screen until ``text`` shows (the app is a separate process: no other way
        to know when it has drawn)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen shows:\n{self.screen()}")

    def alive(self) -> bool:
        return "kit" in self.run("list-sessions", "-F", "#{session_name}")


def test_tui_in_a_real_terminal(kit_root: Path, tmp_path: Path) -> None:
    tmux = Tmux(tmp_path / "tmux.sock")
    env = {
        "KIT_ROOT": str(kit_root),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
    }
    command = " ".join(
        [
            "env",
            "-i",
            *(f"{key}={value}" for key, value in env.items()),
            sys.executable,
            str(REPO / "tui.py"),
        ]
    )
    tmux.run(
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "kit",
        "-x",
        str(WIDTH),
        "-y",
        str(HEIGHT),
        command,
    )
    try:
        tmux.wait_for("What a container sees")
        tmux.wait_for("Run ⟨r⟩")
        tmux.keys("r")
        tmux.wait_for("Predict, then run")
        tmux.keys("2")
        tmux.wait_for("Check passed")
        tmux.wait_for("Your prediction: Right.")
        tmux.wait_for("A container is running: host PID")  # the end of the syscall log

        # Open a shell in the container: the app steps aside, the shell owns the terminal.
        tmux.keys("s")
        tmux.wait_for("[lesson 1] #")
        tmux.keys("hostname; echo pid1=$(cat /proc/1/comm)", "Enter")
        screen = tmux.wait_for("pid1=sleep")
        assert "lesson-1" in screen
        # Joined like kit exec: the container's seccomp filter and capabilities, its terminal.
        tmux.keys(
            "grep -q 'Seccomp:.2' /proc/self/status && "
            '[ "$(grep CapEff /proc/self/status)" = "$(grep CapEff /proc/1/status)" ] && '
            "echo confined=$(tty)",
            "Enter",
        )
        tmux.wait_for("confined=/dev/pts/0")
        tmux.keys("exit", "Enter")
        tmux.wait_for("Back from the container's shell")

        # Next, then leave; the app stops what the lesson kept running.
        tmux.keys("n")
        tmux.wait_for("step 2/6")
        workspace = kit_root / "lessons"
        tmux.keys("q")
        deadline = time.monotonic() + 15
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.alive(), tmux.screen()
        progress = list((tmp_path / "state" / "kit").glob("progress-*.json"))
        assert len(progress) == 1 and '"start"' in progress[0].read_text()
        assert not [m for m in mounts.read() if kernel.under(m.mount_point, str(workspace))]
    finally:
        tmux.run("kill-server")
