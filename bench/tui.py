#!/usr/bin/env python3
"""Benchmark of the tutorial app: time to first frame, and step latency without the engine.

1. **First frame**: ``python tui.py`` is started in a pseudo-terminal (as a learner starts it)
   with ``KIT_TUI_FIRST_FRAME=FILE``: the app writes the time once its first frame is drawn,
   and leaves. Measured: from just before the process is spawned to that moment.
2. **Step latency, engine excluded**: the app is driven in-process (Textual's Pilot) through
   lesson 1. For each step: the time from the key press until the screen has shown the
   outcome and the check, minus the time the engine spent (the worker measures it). That is
   what the UI adds. Moving to the next step (``n``) is pure UI and is measured as it is.

Targets on the reference machine: first frame < 1 s, UI latency per step < 100 ms.

    python bench/tui.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def first_frame(runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            marker = Path(tmp) / "frame"
            primary, secondary = pty.openpty()
            os.set_blocking(primary, False)
            started = time.time()
            process = subprocess.Popen(
                [sys.executable, str(REPO / "tui.py")],
                stdin=secondary,
                stdout=secondary,
                stderr=secondary,
                env={**env, "KIT_TUI_FIRST_FRAME": str(marker), "TERM": "xterm-256color"},
                cwd=REPO,
            )
            os.close(secondary)
            while process.poll() is None:  # drain the terminal so the app never blocks
                try:
                    os.read(primary, 65536)
                except BlockingIOError:
                    time.sleep(0.002)
                except OSError:
                    break
            os.close(primary)
            process.wait(timeout=30)
            if process.returncode != 0 or not marker.exists():
                raise SystemExit(f"tui.py failed (status {process.returncode})")
            times.append(float(marker.read_text()) - started)
    return times


async def step_latency() -> tuple[list[tuple[str, float, float]], list[float]]:
    from kit_tui.app import KitApp
    from kit_tui.messages import CheckFinished
    from kit_tui.screens import MainScreen, PredictScreen
    from lessons.catalog import find

    marks: list[float] = []

    class TimedScreen(MainScreen):
        """Notes when the frame showing a check's result, or a new step, has been drawn."""

        def _mark(self) -> None:
            self.call_after_refresh(lambda: marks.append(time.perf_counter()))

        def on_check_finished(self, message: CheckFinished) -> None:
            super().on_check_finished(message)
            self._mark()

        def refresh_all(self) -> None:
            super().refresh_all()
            self._mark()

    class TimedApp(KitApp):
        def get_default_screen(self) -> MainScreen:
            return TimedScreen()

    app = TimedApp(doctor=None)
    rows: list[tuple[str, float, float]] = []
    nexts: list[float] = []
    lesson = find("container-view")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TimedScreen)
        for index, step in enumerate(lesson.steps):
            if step.question is not None:  # predict first (not part of the latency)
                await pilot.press("r")
                await pilot.pause()
                assert isinstance(app.screen, PredictScreen)
                key = "1"
            else:
                key = "r"
            marks.clear()
            started = time.perf_counter()
            await pilot.press(key)
            await app.workers.wait_for_complete()
            while not marks:
                await pilot.pause()
            rows.append((step.id, marks[0] - started, screen.last_engine_seconds))
            if index + 1 < len(lesson.steps):
                marks.clear()
                started = time.perf_counter()
                await pilot.press("n")
                while not marks:
                    await pilot.pause()
                nexts.append(marks[0] - started)
                assert screen.index == index + 1, f"{step.id} did not pass: cannot move on"
    return rows, nexts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="first-frame runs (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        env = {**os.environ, "KIT_ROOT": f"{tmp}/root", "XDG_STATE_HOME": f"{tmp}/state"}
        os.environ.update(KIT_ROOT=env["KIT_ROOT"], XDG_STATE_HOME=env["XDG_STATE_HOME"])
        from kit.rootfs import default_rootfs

        default_rootfs()  # built once, outside every measurement
        frames = first_frame(args.runs, env)
        print(f"first frame (python tui.py -> drawn), {len(frames)} runs:")
        print(
            f"  median {statistics.median(frames) * 1000:.0f} ms, "
            f"min {min(frames) * 1000:.0f} ms, max {max(frames) * 1000:.0f} ms   (target < 1000 ms)"
        )
        rows, nexts = asyncio.run(step_latency())
        print("lesson 1, per step: key press -> outcome and check on screen")
        print(f"  {'step':<12} {'total':>9} {'engine':>9} {'UI':>9}")
        overheads = []
        for step_id, total, engine in rows:
            overheads.append(total - engine)
            print(
                f"  {step_id:<12} {total * 1000:>7.0f}ms {engine * 1000:>7.0f}ms "
                f"{(total - engine) * 1000:>7.0f}ms"
            )
        print(
            f"  UI latency per step: median {statistics.median(overheads) * 1000:.0f} ms, "
            f"max {max(overheads) * 1000:.0f} ms   (target < 100 ms)"
        )
        print(
            f"next step (n, pure UI): median {statistics.median(nexts) * 1000:.0f} ms, "
            f"max {max(nexts) * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
