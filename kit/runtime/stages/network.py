"""Stage ``network``: bring up loopback in the container's new network namespace.

A new network namespace has its own interfaces, routes and ports, and starts with only ``lo``,
down. kit gives containers no other network (``--net host`` shares the host's instead), so
``127.0.0.1`` works inside and nothing else does.
"""

from __future__ import annotations

from kit.linux.net import bring_up
from kit.runtime.context import InitContext


def run(ctx: InitContext) -> None:
    ns = ctx.spec.linux.namespace("network")
    if ns is not None and ns.path is None:
        bring_up("lo")
