"""Stage ``console``: a terminal for ``-t``, created inside the container.

The pty comes from the container's own /dev/ptmx (its new devpts instance). Its slave side is
also bind-mounted on /dev/console, as programs that write to "the console" expect, and becomes
the controlling terminal and stdin/stdout/stderr of the container process.
"""

from __future__ import annotations

import os

from kit.errors import KitError
from kit.linux import fs
from kit.linux.flags import MS_BIND
from kit.linux.mount import mount
from kit.runtime.console import make_controlling_terminal, open_pty, send_fd
from kit.runtime.context import InitContext


def run(ctx: InitContext) -> None:
    process = ctx.spec.process
    if not process.terminal:
        return
    if ctx.channels.console < 0:
        raise KitError(
            "a terminal was requested but nobody is there to receive it",
            fix="run with -t from a terminal, or pass --console-socket",
        )
    size = process.console_size
    master, slave = open_pty(size.height if size else 24, size.width if size else 80)
    console = ctx.path("/dev/console")
    if not os.path.lexists(console):
        fs.create_file(console, 0o600)
    mount(f"/proc/self/fd/{slave}", console, None, MS_BIND, note="/dev/console is our pty")
    send_fd(ctx.channels.console, master)
    os.close(master)
    os.close(ctx.channels.console)
    ctx.channels.console = -1
    make_controlling_terminal(slave)
