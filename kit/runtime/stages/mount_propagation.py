"""Stage ``mount-propagation``: give mounts back the propagation they asked for.

pivot_root ends by making the new root's whole tree a *slave* (``MS_SLAVE|MS_REC``): nothing
the container unmounts from then on can propagate back to the host. That also overwrites the
propagation a mount asked for (``-v /src:/data:rshared``): a shared mount became a slave, or
private when it had no peer outside. This stage applies each requested mode again, now that
it cannot leak to the host's tree, and then the root's own mode when the spec wants it shared
(``linux.rootfsPropagation``), as runc does after pivot_root.

What a mode can still mean here depends on what came before: the ``propagation`` stage made
the host's mounts in this namespace rprivate or rslave. With rslave (which ``kit run`` picks
when a mount asks for slave propagation, as Docker does), a slave bind mount keeps receiving
mounts the host makes under its source; a shared one is shared with its peers in the
container only.
"""

from __future__ import annotations

from kit.linux.flags import PROPAGATION_FLAGS
from kit.linux.mount import mount
from kit.runtime.context import InitContext
from kit.runtime.mounting import is_kernel_filesystem


def run(ctx: InitContext) -> None:
    for entry in ctx.spec.mounts:
        if is_kernel_filesystem(entry):
            continue
        for word in entry.options:
            if word in PROPAGATION_FLAGS and word not in ("private", "rprivate"):
                mount(
                    None,
                    ctx.path(entry.destination),
                    None,
                    PROPAGATION_FLAGS[word],
                    note=f"{entry.destination} asked for {word}",
                )
    mode = ctx.spec.linux.rootfs_propagation
    if mode in ("shared", "rshared"):
        mount(None, "/", None, PROPAGATION_FLAGS[mode], note=f"the root asked for {mode}")
