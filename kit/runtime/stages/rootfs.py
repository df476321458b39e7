"""Stage ``rootfs``: make the root filesystem a mount point of its own.

pivot_root(2) only accepts a *mount point* as the new root (EINVAL otherwise). A directory on
the host disk is not one, so kit bind-mounts the directory onto itself: same files, but now a
separate mount that can become ``/`` and can get its own flags (read-only, for instance).

A container made from an image (``kit run IMAGE``) gets an **overlay** instead: the image's
layers, read-only, stacked under the container's own writable layer (see :mod:`kit.overlay`).
It is mounted here, inside the container's new mount namespace, so the host's mount table
never shows it, and it disappears with the namespace when the container ends: nothing to
unmount, nothing to leak. An overlay mount is a mount point already, no bind needed.

With a user namespace there are two cases:

* **root asked for it** (``kit run --userns IMAGE``): the init parent already built the overlay
  with host privileges, detached, its layers idmapped so the image's root-owned files belong
  to the container's root (:func:`kit.security.userns.pin_overlay`); this stage attaches it.
* **rootless** (kit run by an ordinary user): nobody outside may mount overlayfs, so it is
  mounted here, by root of the container's user namespace, with ``userxattr``: overlayfs
  then reads and writes its marks as ``user.overlay.*``, the only xattrs an unprivileged
  mounter may touch, on layers the user unpacked and owns.
"""

from __future__ import annotations

import os

from kit.errors import KitError
from kit.linux.flags import MS_BIND, MS_REC
from kit.linux.mount import mount
from kit.runtime.context import InitContext
from kit.security import userns


def run(ctx: InitContext) -> None:
    # In a user namespace, the init parent opened the directory from outside: attach it.
    if userns.attach_rootfs(ctx):
        return
    if not os.path.isdir(ctx.rootfs):
        raise KitError(
            f"root filesystem {ctx.rootfs} is not a directory",
            fix="build one with `kit rootfs build DIR` and pass --rootfs DIR",
        )
    layers = ctx.spec.kit.overlay
    if layers is not None:
        from kit import overlay

        # Mounted inside a user namespace (rootless), overlayfs may only keep its marks in
        # user.* xattrs: that is what userxattr says.
        userxattr = layers.userxattr or ctx.spec.has_namespace("user")
        overlay.mount_overlay(
            ctx.rootfs, layers.lowers, layers.upper, layers.work, userxattr=userxattr
        )
        return
    mount(
        ctx.rootfs,
        ctx.rootfs,
        None,
        MS_BIND | MS_REC,
        note="bind the root filesystem onto itself so it is a mount point",
    )
