"""Stage ``rootfs``: make the root filesystem a mount point of its own.

pivot_root(2) only accepts a *mount point* as the new root (EINVAL otherwise). A directory on
the host disk is not one, so kit bind-mounts the directory onto itself: same files, but now a
separate mount that can become ``/`` and can get its own flags (read-only, for instance).
"""

from __future__ import annotations

import os

from kit.errors import KitError
from kit.linux.flags import MS_BIND, MS_REC
from kit.linux.mount import mount
from kit.runtime.context import InitContext


def run(ctx: InitContext) -> None:
    if not os.path.isdir(ctx.rootfs):
        raise KitError(
            f"root filesystem {ctx.rootfs} is not a directory",
            fix="build one with `kit rootfs build DIR` and pass --rootfs DIR",
        )
    mount(
        ctx.rootfs,
        ctx.rootfs,
        None,
        MS_BIND | MS_REC,
        note="bind the root filesystem onto itself so it is a mount point",
    )
