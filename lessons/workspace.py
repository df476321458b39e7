"""Where a learner's lesson keeps its files, and how it is torn down for real.

Each lesson gets a scratch directory of its own, per kit root and per user, so several
students on one machine (or several test runs) never meet::

    <kit data root>/lessons/<user>/<lesson id>/

Tearing down means undoing in the kernel what the lesson made there, in the order the kernel
requires: first the processes whose root or working directory is inside (a busy mount cannot be
detached cleanly and a process could recreate files), then every mount below the directory,
deepest first, then the files. Only things *inside this directory* are touched.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import time
from pathlib import Path

from kit import mounts, paths
from kit.errors import KitError
from kit.linux.flags import MNT_DETACH
from kit.linux.mount import umount2
from lessons.kernel import under


def user_name() -> str:
    """The learner: the user behind sudo if any, so students sharing root stay apart."""
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user:
        return sudo_user
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def lessons_root() -> Path:
    """Scratch space of all of this user's lessons under the current kit root."""
    return paths.data_root() / "lessons" / user_name()


def workspace_for(lesson_id: str) -> Path:
    return lessons_root() / lesson_id


def processes_inside(directory: Path) -> list[int]:
    """PIDs whose root or current directory is inside ``directory`` (not ours)."""
    found: list[int] = []
    target = str(directory)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for link in ("root", "cwd"):
            try:
                where = os.readlink(f"/proc/{entry}/{link}")
            except OSError:
                continue
            if under(where, target):
                found.append(int(entry))
                break
    return found


def mounts_inside(directory: Path) -> list[mounts.Mount]:
    """Mounts of our (the host's) namespace at or below ``directory``, deepest first."""
    target = str(directory)
    inside = [m for m in mounts.read() if under(m.mount_point, target)]
    return sorted(inside, key=lambda m: (-m.mount_point.count("/"), -m.mount_id))


def teardown(directory: Path, *, remove_files: bool) -> list[str]:
    """Undo everything under ``directory``; return what was done (for the learner to read)."""
    done: list[str] = []
    if not directory.exists():
        return done
    directory = directory.resolve()
    for pid in processes_inside(directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            done.append(f"killed process {pid} (its root or cwd was inside the lesson)")
    deadline = time.monotonic() + 2.0
    while processes_inside(directory) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Stacked mounts: unmount until nothing is left (each pass removes the topmost ones).
    for _ in range(64):
        found = mounts_inside(directory)
        if not found:
            break
        for m in found:
            with contextlib.suppress(KitError):
                umount2(m.mount_point, MNT_DETACH, note="lesson reset")
                done.append(f"unmounted {m.mount_point}")
    if remove_files:
        if mounts_inside(directory):
            raise KitError(
                f"cannot remove {directory}: something is still mounted inside",
                fix=f"look at `findmnt -R {directory}` and unmount it",
            )
        shutil.rmtree(directory, ignore_errors=False)
        done.append(f"removed {directory}")
    return done
