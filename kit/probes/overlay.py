"""An overlay mounted by hand, in a mount namespace of its own (lesson 5's experiment).

The experiment process unshares a mount namespace, makes every mount in it private (so
nothing it mounts can reach the host), and mounts an overlay of two lower directories and an
upper directory, all inside the lesson's scratch directory. Then it stays alive, holding the
namespace: the lesson (and the learner's shell) reach the merged view through
``/proc/PID/root``, while the upper directory, a plain directory on the host, shows what
overlayfs writes there.
"""

from __future__ import annotations

import os

from kit.linux.flags import CLONE_NEWNS, MS_PRIVATE, MS_REC
from kit.linux.mount import mount
from kit.linux.namespaces import namespace_ids, unshare
from kit.overlay import mount_overlay


def mount_by_hand(lowers: list[str], upper: str, work: str, merged: str) -> dict[str, object]:
    """Mount ``lowers`` (top first) + ``upper`` at ``merged`` in a new mount namespace."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE, note="nothing mounted here reaches the host")
    method = mount_overlay(merged, lowers, upper, work)
    os.chdir(merged)  # a shell opened in this process starts in the merged view
    return {"method": method, "mnt": namespace_ids()["mnt"], "merged": sorted(os.listdir(merged))}
