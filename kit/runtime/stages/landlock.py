"""Stage ``landlock``: the program may reach only the paths the rules list (``--landlock``).

Landlock is a security module any process may use on *itself*. This stage builds a ruleset
that handles every file-system right the kernel knows, allows some of them beneath each rule's
path, and enforces it on the container process just before exec; the program inherits the
restriction and can never lift it. Paths are resolved in the container (after pivot_root).

The kernel insists on no_new_privs before an unprivileged process restricts itself, so that
a setuid program can never be started inside a sandbox it does not know about. kit sets it
by default (the ``no-new-privs`` stage); if it was turned off, this stage sets it anyway and
says so, since the rules cannot be enforced without it.

Without ``--landlock`` the stage does nothing.
"""

from __future__ import annotations

from kit.linux.caps import no_new_privs, set_no_new_privs
from kit.runtime.context import InitContext
from kit.security import landlock
from kit.trace import tracer


def run(ctx: InitContext) -> None:
    rules = ctx.spec.kit.landlock
    if rules is None:
        return
    if not no_new_privs():
        tracer().info(
            "Landlock requires no_new_privs for an unprivileged process: setting it "
            "(setuid programs will not gain privileges in this container)"
        )
        set_no_new_privs()
    abi = landlock.enforce(rules)
    tracer().info(
        f"Landlock ABI {abi}: {len(rules)} rule(s) enforced",
        rules=[{"path": r.path, "access": r.access} for r in rules],
    )
