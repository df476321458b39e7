"""Mount propagation between namespaces, shown on a mount point kit owns.

A new mount namespace starts as a *copy* of its parent's mount table. Each copied mount keeps
its propagation type: a copy of a **shared** mount is a peer of the original, so a mount made
below it in either namespace appears in the other; a **private** mount sends and receives
nothing. (systemd makes the host's ``/`` shared, which is why every runtime makes the
container's tree private first.)

The lesson never touches the host's ``/``: it makes its *own* shared mount point, a small tmpfs
in its scratch directory (:func:`make_shared_tmpfs`), and runs :func:`mount_below` in a child
that unshares a mount namespace, once leaving the copy shared (the mount leaks back to the
host) and once making it private first (it does not).
"""

from __future__ import annotations

import os

from kit.linux import fs
from kit.linux.flags import CLONE_NEWNS, MS_PRIVATE, MS_SHARED
from kit.linux.mount import mount
from kit.linux.namespaces import namespace_ids, unshare


def make_shared_tmpfs(path: str) -> dict[str, object]:
    """Mount a small tmpfs at ``path`` (in the caller's namespace, i.e. the host's) and make
    it shared: a peer group of its own, so it connects only to copies made from now on."""
    os.makedirs(path, exist_ok=True)
    mount("tmpfs", path, "tmpfs", 0, "size=1m,mode=755", note="the lesson's own mount point")
    # Private first: a new mount under a shared parent would join the parent's peer group.
    mount(None, path, None, MS_PRIVATE, note="no connection to anything yet")
    mount(None, path, None, MS_SHARED, note="a new peer group: copies of this mount stay linked")
    return {"path": path}


def mount_below(shared: str, name: str, make_private: bool) -> dict[str, object]:
    """In a new mount namespace, mount a tmpfs at ``shared/name`` and report what we see.

    With ``make_private`` the copy of ``shared`` is cut from its peers first (MS_PRIVATE), as a
    container runtime's propagation stage does for the whole tree.
    """
    unshare(CLONE_NEWNS)
    if make_private:
        mount(None, shared, None, MS_PRIVATE, note="cut our copy from the host's")
    target = os.path.join(shared, name)
    if not os.path.isdir(target):
        fs.mkdir(target, 0o755)
    mount("tmpfs", target, "tmpfs", 0, "size=1m,mode=755", note="a mount made in the copy")
    with open("/proc/self/mountinfo") as f:
        here = [line.split()[4] for line in f]
    return {"target": target, "mnt": namespace_ids()["mnt"], "mount_points": here}
