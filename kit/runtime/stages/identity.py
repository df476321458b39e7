"""Stage ``identity``: become the user the container runs as.

Order matters: supplementary groups and the group id must be changed while still root, since
setting the user id away from 0 drops the right to change either afterwards.

Changing the user id from 0 to anything else also empties the permitted and effective
capability sets. When the spec lists capabilities, PR_SET_KEEPCAPS keeps the permitted set
through the change, so that the ``capabilities`` stage that follows can hand the listed ones
to a non-root user too; the flag is switched off again at once.

A user given by name (``-u learner``) is looked up first, in the container's own /etc/passwd
and /etc/group (see :mod:`kit.security.users`). In a user namespace whose gid map an ordinary
user wrote, setgroups(2) is disabled for good; the groups are then left as they are.
"""

from __future__ import annotations

import os
import signal

from kit.errors import KitError
from kit.linux.caps import set_keepcaps
from kit.linux.process import set_parent_death_signal, setgroups, setresgid, setresuid
from kit.runtime.context import InitContext
from kit.security import userns, users


def run(ctx: InitContext) -> None:
    users.resolve_in_container(ctx.spec)
    user = ctx.spec.process.user
    keep = ctx.spec.process.capabilities is not None and user.uid != 0
    if keep:
        set_keepcaps(True)
    _set_groups(list(user.additional_gids))
    setresgid(user.gid)
    setresuid(user.uid)
    # A change of effective uid clears the parent-death signal: set it again.
    set_parent_death_signal(signal.SIGKILL)
    if keep:
        set_keepcaps(False)
    if user.umask is not None:
        os.umask(user.umask)


def _set_groups(groups: list[int]) -> None:
    if userns.setgroups_allowed():
        setgroups(groups)
    elif groups:
        raise KitError(
            f"cannot set the supplementary groups {groups} in this user namespace",
            cause="its gid map was written without privilege, which requires setgroups(2) "
            "to be disabled (/proc/self/setgroups says deny)",
            fix="map a range of gids (newgidmap with ranges in /etc/subgid; `kit doctor` "
            "shows yours), or run without the extra groups",
        )
