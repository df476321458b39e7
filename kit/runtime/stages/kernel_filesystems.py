"""Stage ``kernel-filesystems``: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys.

None of these live on a disk; each is the kernel presenting its own state as files, and each
is mounted fresh for the container rather than borrowed from the host:

* /proc is mounted *by a process inside the new PID namespace*, so it lists that namespace's
  processes only. (The host's /proc, still visible in the copied mount table, shows them all.)
* /dev is a small tmpfs, so the container sees only the device nodes kit creates next.
* /dev/pts is a new devpts instance: ptys opened in the container are numbered from 0 and are
  invisible to the host's devpts.
* /sys is read-only: a container may read hardware information but not reconfigure it.
"""

from __future__ import annotations

from kit.runtime.context import InitContext
from kit.runtime.mounting import apply_mount, is_kernel_filesystem


def run(ctx: InitContext) -> None:
    for entry in ctx.spec.mounts:
        if is_kernel_filesystem(entry):
            apply_mount(ctx, entry)
