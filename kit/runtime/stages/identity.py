"""Stage ``identity``: become the user the container runs as.

Order matters: supplementary groups and the group id must be changed while still root, since
setting the user id away from 0 drops the right to change either afterwards.
"""

from __future__ import annotations

import os

from kit.linux.process import setgroups, setresgid, setresuid
from kit.runtime.context import InitContext


def run(ctx: InitContext) -> None:
    user = ctx.spec.process.user
    setgroups(list(user.additional_gids))
    setresgid(user.gid)
    setresuid(user.uid)
    if user.umask is not None:
        os.umask(user.umask)
