"""pivot_root(2)'s preconditions, tried for real in a throw-away mount namespace.

pivot_root(new_root, put_old) swaps the root *mount* of the calling process's mount namespace.
The kernel checks, in this order (fs/namespace.c):

1. ``new_root`` is not on the same mount as the current root: otherwise EBUSY (a directory
   on the host's root filesystem, say /var/lib/kit/rootfs, fails here);
2. ``new_root`` is the root of a mount (a *mount point*): otherwise EINVAL;
3. ``put_old`` is at or below ``new_root``, and none of the mounts involved is shared (the
   swap would propagate into other namespaces): otherwise EINVAL.

Bind-mounting the directory onto itself satisfies the first two at once: the directory becomes
a mount of its own. :func:`pivot_attempts` shows all three outcomes. It runs in a child
interpreter (:mod:`kit.probes.experiment`) and first unshares a mount namespace and makes it
private, so nothing it does can reach the host; when the child exits, its namespace and every
mount in it disappear.
"""

from __future__ import annotations

import os

from kit.errors import KitError
from kit.linux.flags import CLONE_NEWNS, MNT_DETACH, MS_BIND, MS_PRIVATE, MS_REC, MS_SLAVE
from kit.linux.mount import mount, pivot_root, umount2
from kit.linux.namespaces import unshare
from kit.linux.process import chdir
from kit.probes.escape import identity, listing


def _try_pivot(setup: str) -> dict[str, object]:
    try:
        pivot_root(".", ".", note="new root = cwd; the old root is stacked on top of it")
    except KitError as error:
        return {"setup": setup, "pivoted": False, "errno": error.errno_name, "message": str(error)}
    return {"setup": setup, "pivoted": True, "errno": None, "message": "pivot_root succeeded"}


def pivot_attempts(root: str) -> dict[str, object]:
    """Try pivot_root into ``root`` three times, fixing one precondition each time.

    1. as it is (a plain directory);
    2. with its parent directory made a mount of its own (``root`` is then on another mount
       than ``/``, but still not a mount point itself);
    3. with ``root`` bind-mounted onto itself (now it is a mount point): this one succeeds,
       and the old root is detached.
    """
    root = os.path.abspath(root)
    parent = os.path.dirname(root)
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE, note="nothing done here reaches the host")
    chdir(root)
    attempts = [_try_pivot("a plain directory")]
    mount(parent, parent, None, MS_BIND, note="the parent becomes a mount; the root still is not")
    chdir(root)  # re-enter: the bind mount now covers the old view of the directory
    attempts.append(_try_pivot("a directory on a mount other than /, not a mount point itself"))
    mount(root, root, None, MS_BIND | MS_REC, note="bind the directory onto itself")
    chdir(root)
    attempts.append(_try_pivot("a mount point (bind-mounted onto itself)"))
    result: dict[str, object] = {"attempts": attempts}
    if attempts[-1]["pivoted"]:
        mount(None, ".", None, MS_SLAVE | MS_REC, note="old root: receive, never send, propagation")
        umount2(".", MNT_DETACH, note="detach the old root: no path leads to it any more")
        chdir("/")
        result.update(root=identity("/"), listing=listing("/"))
    return result
