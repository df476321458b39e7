"""Where the cgroup trees are mounted, and which version holds each controller.

Read from the mount table: a ``cgroup`` (v1) mount names its controllers in its super options
(``rw,memory``), a ``cgroup2`` mount is the unified tree, and its root's ``cgroup.controllers``
lists the controllers it offers. A controller lives in only one hierarchy at a time: on a
"hybrid" host (v1 controllers plus an empty v2 tree, like this machine's), v2 offers none of
the ones v1 holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kit import mounts

#: The controllers kit sets limits with.
CONTROLLERS = ("memory", "pids", "cpu")

#: v1 controllers kit also records: cpuacct (often sharing cpu's tree) and devices (every
#: root container's device policy, see kit.cgroups.devices).
OTHER_V1 = ("cpuacct", "devices")


@dataclass(frozen=True)
class Layout:
    """v1 mount point per controller, the v2 mount point and what it offers."""

    v1: dict[str, str] = field(default_factory=dict)
    v2: str | None = None
    v2_controllers: tuple[str, ...] = ()

    @property
    def mode(self) -> str:
        """``v2``, ``v1``, ``hybrid`` (both mounted) or ``none``."""
        if self.v1:
            return "hybrid" if self.v2 else "v1"
        return "v2" if self.v2 else "none"

    def version_for(self, controllers: tuple[str, ...] = CONTROLLERS) -> int | None:
        """2 when the unified tree offers every controller, 1 when v1 mounts hold them all,
        None when neither does."""
        if self.v2 and all(c in self.v2_controllers for c in controllers):
            return 2
        if all(c in self.v1 for c in controllers):
            return 1
        return None


def parse(mountinfo: str, v2_controllers: str = "") -> Layout:
    """The layout described by a mountinfo text (pure)."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for entry in mounts.parse(mountinfo):
        if entry.fstype == "cgroup2" and v2 is None:
            v2 = entry.mount_point
        elif entry.fstype == "cgroup":
            for option in entry.super_options:
                if option in CONTROLLERS or option in OTHER_V1:
                    v1.setdefault(option, entry.mount_point)
    return Layout(v1=v1, v2=v2, v2_controllers=tuple(v2_controllers.split()))


def read() -> Layout:
    """This machine's layout, as this process's mount namespace sees it."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    layout = parse(text)
    if layout.v2:
        try:
            with open(os.path.join(layout.v2, "cgroup.controllers")) as f:
                return parse(text, f.read())
        except OSError:
            pass
    return layout


def directory_of(pid: int | str, controller: str, found: Layout | None = None) -> str | None:
    """The host directory of ``pid``'s cgroup for ``controller`` (None if not mounted).

    ``/proc/PID/cgroup`` lists the process's cgroup in each hierarchy (``4:memory:/kit/...``
    for v1, ``0::/kit/...`` for v2), relative to the *reader's* cgroup namespace root: read
    from the host, it names the path in the host's tree.
    """
    found = found or read()
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if found.v2 and controller in found.v2_controllers and hierarchy == "0":
            return os.path.normpath(found.v2 + path)
        if controller in controllers.split(",") and controller in found.v1:
            return os.path.normpath(found.v1[controller] + path)
    return None
