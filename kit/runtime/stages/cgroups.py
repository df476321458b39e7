"""Stage ``cgroups``: put the container in its own cgroups, then give it a cgroup namespace.

Namespaces decide what a container can *see*; cgroups decide how much it may *use*, and which
devices it may touch. The init parent (outside the container, with the host's privileges)
creates ``kit/<tag>-<id>`` in the cgroup trees it needs, writes the limits into it (with
``--memory``, ``--pids-limit`` or ``--cpus``) and the device policy (always, as root: deny
every device but the standard ones, see :mod:`kit.cgroups.devices`), and moves the waiting
container process in by writing its PID to ``cgroup.procs``. From then on, the kernel counts
everything that process and its descendants use against the limits, and refuses to open or
create any device node the policy does not allow, however privileged the process is.

Then the container process unshares its cgroup namespace. The new namespace's root is the
cgroup the process is in *at that moment*, so the order matters: join first, unshare second.
Inside, ``/proc/self/cgroup`` then reads ``/`` instead of ``/kit/<tag>-<id>``, and the
container learns nothing about the host's cgroup layout.

When the container has ended, the init parent reads the OOM killer's count (``OOMKilled``) and
removes the cgroup, which the kernel allows only once no process is left in it.
"""

from __future__ import annotations

import errno

from kit.cgroups import ContainerCgroup, open_cgroup
from kit.errors import KitError
from kit.linux.flags import CLONE_NEWCGROUP
from kit.linux.namespaces import unshare
from kit.runtime.context import InitContext, InitOptions
from kit.spec import Spec
from kit.trace import tracer


def attach(spec: Spec, options: InitOptions, pid: int) -> ContainerCgroup | None:
    """In the init parent: create the container's cgroup and move ``pid`` into it."""
    cgroup = open_cgroup(spec, options.container_id)
    if cgroup is None:
        tracer().info("no limits, no device policy: the container stays in its parent's cgroups")
        return None
    try:
        cgroup.join(pid)
    except KitError as error:
        cgroup.remove()
        if error.errno == errno.ESRCH:
            # Killed from outside while its cgroup was made: there is nothing to confine;
            # the init parent reaps it and reports the signal.
            return None
        raise
    except BaseException:
        cgroup.remove()
        raise
    devices = cgroup.devices
    tracer().info(
        f"container process joined cgroup {cgroup.path} (cgroup v{cgroup.version})",
        paths=cgroup.paths(),
        version=cgroup.version,
        devices=None if devices is None else ("v2 bpf" if devices.unified else "v1"),
    )
    return cgroup


def enter_namespace(ctx: InitContext) -> None:
    """In the container process, once it is in its cgroups: a new cgroup namespace."""
    ns = ctx.spec.linux.namespace("cgroup")
    if ns is not None and not ns.path:
        unshare(CLONE_NEWCGROUP)


def finish(cgroup: ContainerCgroup) -> bool:
    """In the init parent, after the container exited: was it OOM-killed? Then remove it."""
    try:
        return cgroup.oom_kills() > 0
    finally:
        cgroup.remove()
