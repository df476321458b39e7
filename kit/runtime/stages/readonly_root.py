"""Stage ``readonly-root``: with ``--read-only``, make ``/`` read-only, and only ``/``.

The root filesystem became a mount of its own in the ``rootfs`` stage (a bind mount of the
directory onto itself), so it can get its own flags without touching the host's copy of the
same files. A bind mount takes flags through a *remount* (MS_REMOUNT|MS_BIND|MS_RDONLY).
Without MS_REC the remount changes this one mount: everything mounted on top of it (/proc,
/dev, /tmp, volumes, tmpfs mounts) keeps its own flags, which is how "read-only, except for
the places I chose" works.
"""

from __future__ import annotations

from kit.runtime.context import InitContext
from kit.runtime.mounting import remount_read_only


def run(ctx: InitContext) -> None:
    if not ctx.spec.root.readonly:
        return
    remount_read_only("/", note="the root filesystem is read-only; mounts on top keep theirs")
