"""Stage ``identity``: become the user the container runs as.

Order matters: supplementary groups and the group id must be changed while still root, since
setting the user id away from 0 drops the right to change either afterwards.

Changing the user id from 0 to anything else also empties the permitted and effective
capability sets. When the spec lists capabilities, PR_SET_KEEPCAPS keeps the permitted set
through the change, so that the ``capabilities`` stage that follows can hand the listed ones
to a non-root user too; the flag is switched off again at once.
"""

from __future__ import annotations

import os

from kit.linux.caps import set_keepcaps
from kit.linux.process import setgroups, setresgid, setresuid
from kit.runtime.context import InitContext


def run(ctx: InitContext) -> None:
    user = ctx.spec.process.user
    keep = ctx.spec.process.capabilities is not None and user.uid != 0
    if keep:
        set_keepcaps(True)
    setgroups(list(user.additional_gids))
    setresgid(user.gid)
    setresuid(user.uid)
    if keep:
        set_keepcaps(False)
    if user.umask is not None:
        os.umask(user.umask)
