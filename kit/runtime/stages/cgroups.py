"""Stage ``cgroups``: put the container in its own cgroups, then give it a cgroup namespace.

Namespaces decide what a container can *see*; cgroups decide how much it may *use*, and which
devices it may touch. The init parent (outside the container, with the host's privileges)
creates ``kit/<tag>-<id>`` in the cgroup trees it needs and writes into it the limits (with
``--memory``, ``--pids-limit`` or ``--cpus``) and the device policy (always, as root: deny
every device but the standard ones, see :mod:`kit.cgroups.devices`). Then the container
process joins it: from that moment the kernel counts everything it and its descendants use
against the limits, and refuses to open or create any device node the policy does not allow,
however privileged the process is.

How it joins matters for speed. Moving *another* process (writing its PID to
``cgroup.procs``) makes the kernel take a global lock whose first step waits for an RCU grace
period: several milliseconds, every time. A single thread moving *itself* (writing ``0`` to
v1's ``tasks``) needs no such lock. So the init parent opens the membership files before the
container process exists, the process inherits them, and at this stage writes ``0`` into
each. (The files were opened by root on the host, and the kernel checks the opener's
credentials, so this works inside a user namespace too. A v2 tree has no ``tasks`` across
cgroups: there ``0`` goes to ``cgroup.procs``, correct but not faster.)

Then the container process unshares its cgroup namespace. The new namespace's root is the
cgroup the process is in *at that moment*, so the order matters: join first, unshare second.
Inside, ``/proc/self/cgroup`` then reads ``/`` instead of ``/kit/<tag>-<id>``, and the
container learns nothing about the host's cgroup layout.

When the container has ended, the init parent reads the OOM killer's count (``OOMKilled``) and
removes the cgroup, which the kernel allows only once no process is left in it.
"""

from __future__ import annotations

from kit.cgroups import ContainerCgroup, open_cgroup
from kit.linux.flags import CLONE_NEWCGROUP
from kit.linux.namespaces import unshare
from kit.runtime.context import InitContext, InitOptions
from kit.spec import Spec
from kit.trace import tracer


def prepare(spec: Spec, options: InitOptions) -> ContainerCgroup | None:
    """In the init parent, before the container process exists: create the container's
    cgroup and open the files through which the process will join it."""
    cgroup = open_cgroup(spec, options.container_id)
    if cgroup is None:
        tracer().info("no limits, no device policy: the container stays in its parent's cgroups")
        return None
    try:
        cgroup.open_join_files()
    except BaseException:
        cgroup.remove()
        raise
    devices = cgroup.devices
    tracer().info(
        f"cgroup {cgroup.path} ready (cgroup v{cgroup.version}); the container process will "
        "join it by itself",
        paths=cgroup.paths(),
        version=cgroup.version,
        devices=None if devices is None else ("v2 bpf" if devices.unified else "v1"),
    )
    return cgroup


def join(cgroup: ContainerCgroup | None) -> None:
    """In the container process: move itself into its cgroup (see the module docstring)."""
    if cgroup is not None:
        cgroup.join_self()


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
