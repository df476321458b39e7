"""Running kit as an ordinary user (rootless mode) from a root test session.

The tests run as root, so "an ordinary user" is uid/gid 65534 (nobody): setpriv drops to it,
with no capabilities and no supplementary groups, and kit runs with HOME and the XDG
directories in a temporary directory that user owns. pytest's own temporary directories are
private to root (mode 0700), so the rootfs and those directories live in a world-searchable
directory of their own under /tmp, removed afterwards.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534


def _usable_by_others(path: str) -> bool:
    """Whether anyone may reach ``path``: every directory on the way, both as written (a
    venv's python is a link inside a private directory) and after following its links."""
    for current in {Path(os.path.abspath(path)), Path(path).resolve()}:
        for parent in current.parents:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return False
    return True


@functools.cache
def readable_checkout() -> Path:
    """This checkout as an ordinary user can read it: the checkout itself when every directory
    on its way is searchable by anyone; otherwise (a clone under /root, or in a mode-0750
    home) a copy of its files made once per test session and removed at exit."""
    if _usable_by_others(str(REPO)):
        return REPO
    copy = Path(tempfile.mkdtemp(prefix="kit-readable-checkout-", dir="/tmp"))
    atexit.register(shutil.rmtree, copy, True)
    copy.chmod(0o755)
    skip = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", ".*cache")
    shutil.copytree(REPO, copy / "kit-checkout", ignore=skip, symlinks=True)
    for directory, subdirs, files in os.walk(copy / "kit-checkout"):
        for name in subdirs + files:  # readable (and searchable where it was executable)
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(path, stat.S_IMODE(mode) | 0o444 | (0o111 if mode & 0o100 else 0))
    return copy / "kit-checkout"


def interpreter() -> str:
    """A Python >= 3.11 that uid 65534 may run (kit's init needs only the standard library)."""
    if _usable_by_others(sys.executable):
        return sys.executable
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if not os.path.exists(candidate) or not _usable_by_others(candidate):
            continue
        done = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info >= (3, 11))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.stdout.strip() == "True":
            return candidate
    raise RuntimeError("no Python 3.11+ that an ordinary user may run (install python3)")


@dataclass
class Unprivileged:
    """A world-searchable scratch directory with a rootfs and nobody's HOME/XDG dirs."""

    base: Path
    rootfs: Path
    home: Path
    python: str

    @property
    def runtime_dir(self) -> Path:
        return self.home / "run"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "XDG_DATA_HOME": str(self.data_dir),
            "PYTHONPATH": str(readable_checkout()),
        }

    def command(self, *kit_args: str, env_extra: dict[str, str] | None = None) -> list[str]:
        """The argv that runs ``kit KIT_ARGS`` as uid and gid 65534 (``env_extra``: more
        variables, e.g. a KIT_ROOT)."""
        env = [f"{k}={v}" for k, v in {**self.env(), **(env_extra or {})}.items()]
        return [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--inh-caps=-all",
            "env",
            "-i",
            *env,
            self.python,
            "-m",
            "kit",
            *kit_args,
        ]

    def kit(  # type: ignore[no-untyped-def]
        self,
        *kit_args: str,
        prefix: tuple[str, ...] = (),
        env_extra: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        """Run ``kit KIT_ARGS`` as nobody; ``prefix`` wraps it (e.g. ``unshare -m ...``)."""
        options: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 120}
        options.update(kwargs)
        argv = [*prefix, *self.command(*kit_args, env_extra=env_extra)]
        return subprocess.run(argv, check=False, cwd="/", **options)


def with_subordinate_ids(ranges: Path, line: str) -> tuple[str, ...]:
    """A command prefix that runs the rest with ``line`` (``NAME:FIRST:COUNT``) as the only
    entry of /etc/subuid and /etc/subgid: ``ranges`` (written here) is bound over both files
    in a private mount namespace, so the host's files are untouched."""
    ranges.write_text(line + "\n")
    ranges.chmod(0o644)  # newuidmap reads it as the user, not as root
    return (
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount --bind {ranges} /etc/subuid && mount --bind {ranges} /etc/subgid && exec "$@"',
        "sh",
    )


@contextmanager
def unprivileged_area() -> Iterator[Unprivileged]:
    from kit.rootfs import build_rootfs

    base = Path(tempfile.mkdtemp(prefix="kit-rootless-test-", dir="/tmp"))
    try:
        base.chmod(0o755)
        rootfs = base / "rootfs"
        build_rootfs(rootfs, "busybox")
        home = base / "home"
        home.mkdir(mode=0o700)
        (home / "run").mkdir(mode=0o700)
        for path in (home, home / "run"):
            os.chown(path, NOBODY, NOBODY)
        yield Unprivileged(base, rootfs, home, interpreter())
    finally:
        shutil.rmtree(base, ignore_errors=True)
