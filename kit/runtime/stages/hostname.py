"""Stage ``hostname``: give the container its own name in its own UTS namespace.

The UTS namespace holds the hostname and NIS domain name; changing them here changes nothing
on the host.
"""

from __future__ import annotations

from kit.errors import KitError
from kit.linux.process import setdomainname, sethostname
from kit.runtime.context import InitContext


def run(ctx: InitContext) -> None:
    spec = ctx.spec
    if spec.hostname is None:
        return
    if not spec.has_namespace("uts"):
        raise KitError(
            "a hostname was given but the container shares the host's UTS namespace",
            cause="setting it would rename the host",
            fix="drop --hostname, or give the container its own UTS namespace",
        )
    sethostname(spec.hostname)
    if spec.domainname:
        setdomainname(spec.domainname)
