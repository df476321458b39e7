"""Stage ``rlimits``: per-process resource limits (``--ulimit``), set with setrlimit(2).

They are set in the container process before it changes user and before exec: the program
inherits them, and so does every process it starts. Lowering a limit always works; raising a
*hard* limit needs CAP_SYS_RESOURCE in the host's user namespace, and when the kernel refuses,
kit stops with the reason rather than run the container with a limit other than the one asked
for. See :mod:`kit.security.rlimits`.
"""

from __future__ import annotations

import errno
import os
import resource

from kit.errors import KitError
from kit.linux.syscall import traced
from kit.runtime.context import InitContext
from kit.security.rlimits import kernel_value, resource_number, shown


def run(ctx: InitContext) -> None:
    for limit in ctx.spec.process.rlimits:
        number = resource_number(limit.type)
        soft, hard = kernel_value(limit.soft), kernel_value(limit.hard)
        current_soft, current_hard = resource.getrlimit(number)
        wanted = f"{{rlim_cur={shown(limit.soft)}, rlim_max={shown(limit.hard)}}}"
        try:
            # prlimit(2) on ourselves (pid 0) is setrlimit(2); Python's prlimit reports the
            # kernel's errno (its setrlimit turns EPERM into a ValueError).
            traced(
                "prlimit64",
                ["0", limit.type, wanted],
                lambda n=number, s=soft, h=hard: resource.prlimit(0, n, (s, h)),
                note=f"was {{rlim_cur={shown(current_soft)}, rlim_max={shown(current_hard)}}}",
                render_result=lambda _: "0",
            )
        except (KitError, ValueError) as error:
            raise _refused(limit.type, limit.hard, current_hard, error) from None


def _refused(name: str, hard: int, current_hard: int, error: Exception) -> KitError:
    wanted = kernel_value(hard)
    raising = current_hard != resource.RLIM_INFINITY and (
        wanted == resource.RLIM_INFINITY or wanted > current_hard
    )
    code = getattr(error, "errno", None)
    if raising and code in (errno.EPERM, None):
        return KitError(
            f"cannot raise the hard {name} limit to {shown(hard)}: this is a limit the "
            "kernel cannot enforce here",
            errno=errno.EPERM,
            cause=f"the hard limit kit inherited is {shown(current_hard)}, and raising a hard "
            "limit needs CAP_SYS_RESOURCE in the host's user namespace, which this process "
            f"{'lacks (even as root here)' if os.geteuid() == 0 else 'lacks'}",
            fix=f"ask for at most {shown(current_hard)} (--ulimit NAME=SOFT:HARD), or raise the "
            "limit of the shell that starts kit (ulimit -H) as a user who may",
        )
    if isinstance(error, KitError):
        return error
    return KitError(f"setrlimit({name}) refused: {error}", fix="check the values")
