"""Stage ``pivot-root``: make the root filesystem ``/`` and detach the host's root entirely.

chroot(2) only changes where path lookups start; the host's root stays mounted in the
namespace, and a root process can climb back out. pivot_root(2) swaps the root *mount* of the
namespace instead; after the old root is unmounted, no path leads to the host's files.

kit uses the "pivot_root(".", ".")" form (as runc does): with the new root as the current
directory, the old root is stacked on top of it at the same place, and unmounting "." removes
exactly that old root. No directory inside the root filesystem is needed for the old root, so
this works on read-only root filesystems too.
"""

from __future__ import annotations

from kit.linux.flags import MNT_DETACH, MS_REC, MS_SLAVE
from kit.linux.mount import mount, pivot_root, umount2
from kit.linux.process import chdir
from kit.runtime.context import InitContext


def run(ctx: InitContext) -> None:
    chdir(ctx.rootfs)
    pivot_root(".", ".", note="new root = cwd; the old root is stacked on top of it")
    # The old root may contain shared mounts; making it a slave first means unmounting it
    # here cannot propagate the unmount to the host's mounts.
    mount(None, ".", None, MS_SLAVE | MS_REC, note="old root: receive, never send, propagation")
    umount2(".", MNT_DETACH, note="detach the old root: the host's / is now unreachable")
    chdir("/")
    ctx.rootfs = "/"
    ctx.pivoted = True
