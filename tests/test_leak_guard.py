"""The leak guard itself: a test that leaves a mount or a process behind must fail.

Each case runs a deliberately leaky test in a separate pytest (pytester) with this project's
conftest, and checks the guard reported it (and cleaned it up, so this test stays clean).
"""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")


def run_leaky(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_leaky=body)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_a_leftover_mount_fails_the_test(pytester: pytest.Pytester) -> None:
    result = run_leaky(
        pytester,
        """
import subprocess

def test_leaves_a_mount(tmp_path):
    target = tmp_path / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "leak", str(target)], check=True)
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*leak guard: mounts left on the host*"])


def test_a_leftover_process_fails_the_test(pytester: pytest.Pytester) -> None:
    result = run_leaky(
        pytester,
        """
import subprocess

def test_leaves_a_process():
    subprocess.Popen(["sleep", "300"])
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*leak guard: processes left running: *sleep 300*"])


def test_a_clean_test_passes(pytester: pytest.Pytester) -> None:
    result = run_leaky(
        pytester,
        """
import subprocess

def test_cleans_up(tmp_path):
    target = tmp_path / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "clean", str(target)], check=True)
    subprocess.run(["umount", str(target)], check=True)
    subprocess.run(["true"], check=True)
""",
    )
    result.assert_outcomes(passed=1)
