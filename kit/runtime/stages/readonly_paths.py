"""Stage ``readonly-paths``: make parts of /proc read-only (linux.readonlyPaths).

/proc mixes harmless files (the container's own processes) with knobs of the whole machine:
/proc/sys holds kernel settings, /proc/sysrq-trigger can reboot the host, /proc/irq steers
interrupts. Most of /proc/sys is not namespaced, so a write there changes the host. kit does
what runc does: bind-mount each such path onto itself, then remount that bind read-only.
The rest of /proc stays as it was. A path missing on this kernel is skipped.

The remount repeats the flags the mount already has (nosuid, nodev, noexec): a remount
without them would ask the kernel to *clear* them, which it refuses for locked flags.
"""

from __future__ import annotations

import os

from kit.linux.flags import MS_BIND, MS_REC
from kit.linux.mount import mount
from kit.runtime.context import InitContext
from kit.runtime.mounting import remount_read_only
from kit.trace import Event, tracer


def run(ctx: InitContext) -> None:
    log = tracer()
    for path in ctx.spec.linux.readonly_paths:
        target = ctx.path(path)
        if not os.path.lexists(target):
            if log.active:
                log.emit(Event("info", "info", message=f"{path} does not exist here: skipped"))
            continue
        mount(target, target, None, MS_BIND | MS_REC, note=f"{path} onto itself")
        remount_read_only(target, note=f"{path} read-only")
