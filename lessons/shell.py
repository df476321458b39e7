"""Entering a lesson's container: the command behind "open a shell here".

A shell in a container is a process that joins the container's namespaces and root. kit's
own ``kit exec`` is not written yet, so this uses util-linux's ``nsenter``: it opens
``/proc/PID/ns/*`` of the container's PID 1, calls setns(2) for each, chroots to
``/proc/PID/root``, changes to ``/proc/PID/cwd``, forks (so the shell is inside the PID
namespace) and execs the shell found *inside* the container. The same command, with ``sh -c``,
runs a challenge's solution and a step's look inside.
"""

from __future__ import annotations

import os
import shutil

from kit.errors import KitError
from kit.spec import DEFAULT_PATH

#: nsenter's option for each namespace it can join.
_NSENTER_OPTION = {
    "mnt": "--mount",
    "uts": "--uts",
    "ipc": "--ipc",
    "net": "--net",
    "pid": "--pid",
    "cgroup": "--cgroup",
    # A container with its own user namespace is entered as its root (nsenter then becomes
    # uid 0 inside), so the shell sees what the container's processes see.
    "user": "--user",
}


def nsenter() -> str:
    found = shutil.which("nsenter") or (
        "/usr/bin/nsenter" if os.path.exists("/usr/bin/nsenter") else None
    )
    if found is None:
        raise KitError(
            "nsenter is not installed",
            cause="kit's lessons use util-linux's nsenter to enter a container",
            fix="sudo apt-get install util-linux",
        )
    return found


def enter_argv(
    pid: int, argv: list[str], namespaces: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """The command that runs ``argv`` inside process ``pid``'s ``namespaces`` and root."""
    options = [_NSENTER_OPTION[name] for name in namespaces if name in _NSENTER_OPTION]
    return [nsenter(), f"--target={pid}", *options, "--root", "--wd", "--", *argv]


def shell_environment(label: str) -> dict[str, str]:
    """A clean environment for a shell inside: nothing of the host's leaks in."""
    return {
        "PATH": DEFAULT_PATH,
        "HOME": "/root",
        "TERM": os.environ.get("TERM", "xterm"),
        "PS1": f"[{label}] # ",
        "KIT_LESSON_SHELL": label,
    }
