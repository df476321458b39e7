"""Stage ``volumes``: every other mount of the spec (bind mounts, tmpfs, volumes).

They are mounted after the kernel filesystems and before pivot_root, while host paths (the
sources of bind mounts) are still reachable. Destinations are resolved inside the root
filesystem, so a symlink in an image cannot aim a mount at a host directory.
"""

from __future__ import annotations

from kit.runtime.context import InitContext
from kit.runtime.mounting import apply_mount, is_kernel_filesystem


def run(ctx: InitContext) -> None:
    for entry in ctx.spec.mounts:
        if not is_kernel_filesystem(entry):
            apply_mount(ctx, entry)
