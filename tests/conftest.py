"""Shared fixtures: a private KIT_ROOT per test, and a leak guard around every test.

The leak guard fails any test that leaves behind, on the host: a mount, a process it started
(directly or through kit), a kit cgroup, or a kit directory outside the test's own temp dir.
Several test sessions may run on one machine at once, so the guard only looks at what could be
this session's: mounts outside other sessions' temp dirs, processes descending from this
pytest or naming this test's KIT_ROOT, cgroups named after it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import mounts
from kit.paths import root_tag

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]  # tests/test_leak_guard.py runs the guard on purpose-leaky tests

HOST_KIT_DIRS = (Path("/var/lib/kit"), Path("/run/kit"))
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _session_temp_root(config: pytest.Config) -> Path:
    factory = config._tmp_path_factory  # type: ignore[attr-defined]
    return Path(factory.getbasetemp()).resolve()


def _foreign_temp(path: str, ours: Path) -> bool:
    """A mount under another pytest session's temp dir (another session running at once), or
    under a benchmark's scratch dir (bench/common.py: /tmp/kit-bench-*, podman's overlays)."""
    where = Path(path)
    for temp in {Path("/tmp"), Path(tempfile.gettempdir())}:
        first = where.relative_to(temp).parts[:1] if where.is_relative_to(temp) else ()
        if first and first[0].startswith("kit-bench-"):
            return True
        if first and first[0].startswith("pytest-of-"):
            return not where.is_relative_to(ours)
    return False


def _restricted(directory: str) -> bool:
    flags = os.statvfs(directory).f_flag
    return bool(flags & (os.ST_NODEV | os.ST_NOEXEC | os.ST_NOSUID))


def pytest_configure(config: pytest.Config) -> None:
    """Tests make device nodes, run programs and setuid helpers in their temp dirs. Where /tmp
    is mounted nodev, noexec or nosuid (a tmpfs /tmp: Debian 13, systemd's tmp.mount, a
    container), they use /var/tmp, on the root filesystem, instead."""
    if (
        config.option.basetemp is None
        and _restricted(tempfile.gettempdir())
        and os.path.isdir("/var/tmp")
        and not _restricted("/var/tmp")
    ):
        os.environ["TMPDIR"] = "/var/tmp"
        tempfile.tempdir = None  # forget the directory tempfile chose before


def _descendants(root_pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    stack = [root_pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _processes_naming(marker: str) -> set[int]:
    """Processes whose command line or environment mentions ``marker`` (orphans included)."""
    found: set[int] = set()
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            try:
                with open(f"/proc/{entry}/{name}", "rb") as f:
                    if needle in f.read():
                        found.add(int(entry))
                        break
            except OSError:
                continue
    return found


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _kit_cgroups(tag: str) -> list[Path]:
    """cgroup directories named with a KIT_ROOT's tag (see kit.paths.root_tag), any hierarchy."""
    found: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return found
    for hierarchy in [CGROUP_ROOT, *CGROUP_ROOT.iterdir()]:
        base = hierarchy / "kit"
        if base.is_dir():
            found += [p for p in base.iterdir() if p.is_dir() and tag in p.name]
    return found


@pytest.fixture
def kit_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty KIT_ROOT for this test (also set in the environment)."""
    root = tmp_path / "kit-root"
    root.mkdir()
    monkeypatch.setenv("KIT_ROOT", str(root))
    return root


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_STATE_HOME for this test: where lesson progress is kept."""
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def leak_guard(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    ours = _session_temp_root(request.config)
    host_dirs_before = {p for p in HOST_KIT_DIRS if p.exists()}
    mounts_before = {m.key for m in mounts.read()}
    children_before = _descendants(os.getpid())
    yield
    problems: list[str] = []

    # Processes: give exiting processes a moment to be reaped, then kill and report leftovers.
    deadline = time.monotonic() + 2.0
    leftover: set[int] = set()
    while True:
        leftover = (_descendants(os.getpid()) - children_before) | _processes_naming(str(tmp_path))
        leftover = {pid for pid in leftover if not _zombie(pid)}
        if not leftover or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if leftover:
        details = []
        for pid in sorted(leftover):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace")
                details.append(f"{pid}: {command[:120]}")
            except OSError:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if details:
            problems.append("processes left running: " + "; ".join(details))

    # Mounts on the host (this process's mount namespace).
    new_mounts = [
        m
        for m in mounts.read()
        if m.key not in mounts_before and not _foreign_temp(m.mount_point, ours)
    ]
    if new_mounts:
        problems.append("mounts left on the host: " + ", ".join(m.mount_point for m in new_mounts))
        for m in sorted(new_mounts, key=lambda m: -len(m.mount_point)):
            subprocess.run(["umount", "-l", m.mount_point], check=False, capture_output=True)

    # kit directories outside the test's KIT_ROOT.
    created = {p for p in HOST_KIT_DIRS if p.exists()} - host_dirs_before
    if created:
        problems.append("kit wrote outside KIT_ROOT: " + ", ".join(map(str, created)))

    # cgroups named after this test's containers.
    cgroups = _kit_cgroups(root_tag(tmp_path / "kit-root"))
    if cgroups:
        problems.append("cgroups left behind: " + ", ".join(map(str, cgroups)))

    if problems:
        pytest.fail("leak guard: " + " | ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def host_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root filesystem built from the host's programs (kit's default kind), shared by the
    session: tests must not write into it (a container's /tmp is a tmpfs; use that)."""
    from kit.rootfs import build_rootfs

    dest = tmp_path_factory.mktemp("rootfs") / "host"
    build_rootfs(dest, "host")
    return dest


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root filesystem, shared by the session (read-only by convention)."""
    from kit.rootfs import build_rootfs

    dest = tmp_path_factory.mktemp("rootfs") / "busybox"
    build_rootfs(dest, "busybox")
    return dest
