"""Stage ``no-new-privs``: from here on, execve can only keep or lose privileges.

Normally execve of a setuid-root program makes the caller root, and a program with file
capabilities gains them. With the no_new_privs bit set (prctl PR_SET_NO_NEW_PRIVS) the
kernel ignores setuid/setgid bits and file capabilities: a user in the container cannot
become root through a setuid binary the image happens to contain. The bit is inherited by
every child and can never be cleared.

kit sets it by default (like ``runc spec``; Docker leaves it off unless asked):
``--security-opt no-new-privileges=false`` turns it off, for the rare container that needs
``su`` or ``sudo`` to work inside.
"""

from __future__ import annotations

from kit.linux.caps import set_no_new_privs
from kit.runtime.context import InitContext


def run(ctx: InitContext) -> None:
    if ctx.spec.process.no_new_privileges:
        set_no_new_privs()
