"""Stage ``masked-paths``: hide files and directories of /proc and /sys (linux.maskedPaths).

Some kernel files tell a container too much about the host or let it poke the hardware:
/proc/kcore (the machine's memory as a core file), /proc/keys, /proc/timer_list (every timer
of every process on the host), /proc/sched_debug, /sys/firmware (firmware tables), ...
Masking puts something empty on top, so the name exists but shows nothing:

* a **file** gets /dev/null bind-mounted over it: reading gives end-of-file at once;
* a **directory** gets an empty read-only tmpfs mounted over it.

The container cannot undo this: unmounting needs CAP_SYS_ADMIN, which it does not keep. A
path this kernel does not have is skipped (runc's list names files of older kernels too).
"""

from __future__ import annotations

import os
import stat

from kit.linux.flags import MS_BIND, MS_RDONLY
from kit.linux.mount import mount
from kit.runtime.context import InitContext
from kit.trace import Event, tracer


def run(ctx: InitContext) -> None:
    log = tracer()
    for path in ctx.spec.linux.masked_paths:
        target = ctx.path(path)
        try:
            info = os.lstat(target)
        except FileNotFoundError:
            if log.active:
                log.emit(Event("info", "info", message=f"{path} does not exist here: skipped"))
            continue
        if stat.S_ISDIR(info.st_mode):
            mount("tmpfs", target, "tmpfs", MS_RDONLY, note=f"hide the directory {path}")
        else:
            mount(ctx.path("/dev/null"), target, None, MS_BIND, note=f"hide the file {path}")
