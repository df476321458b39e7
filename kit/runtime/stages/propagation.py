"""Stage ``propagation``: stop mounts from travelling between the container and the host.

A new mount namespace starts as a copy of the host's mount table, and copies of *shared* mounts
stay connected to the originals: a mount made under a shared mount propagates to its peers.
systemd makes ``/`` shared, so without this stage the container's /proc would appear on the
host. Making the whole tree private (MS_PRIVATE|MS_REC) cuts every such connection for this
namespace only; the host's own mounts are unchanged.
"""

from __future__ import annotations

from kit.linux.flags import PROPAGATION_FLAGS
from kit.linux.mount import mount
from kit.runtime.context import InitContext


def run(ctx: InitContext) -> None:
    mode = ctx.spec.linux.rootfs_propagation or "rprivate"
    # Until the rootfs is pivoted, nothing may propagate out. A "shared" choice is applied to
    # the container's root after pivot_root (it then only connects container-side mounts).
    first = mode if mode in ("rprivate", "rslave", "private", "slave") else "rprivate"
    mount(
        None,
        "/",
        None,
        PROPAGATION_FLAGS[first],
        note=f"make every mount in this namespace {first.lstrip('r')}",
    )
