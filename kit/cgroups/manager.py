"""Choosing the cgroup version and making a container's cgroup from its spec."""

from __future__ import annotations

from kit.cgroups import devices
from kit.cgroups.base import ContainerCgroup, Directory
from kit.cgroups.device_rules import DevicePolicy
from kit.cgroups.layout import Layout, read
from kit.cgroups.limits import describe, has_limits
from kit.cgroups.v1 import V1Cgroup
from kit.cgroups.v2 import V2Cgroup
from kit.errors import KitError
from kit.spec import Spec


def cgroup_path(spec: Spec, container_id: str) -> str:
    """The container's cgroup path inside each tree: the spec's ``cgroupsPath`` or
    ``/kit/<root tag>-<container id>``."""
    from kit.paths import root_tag

    path = spec.linux.cgroups_path or f"/kit/{root_tag()}-{container_id}"
    parts = [p for p in path.split("/") if p]
    if not path.startswith("/") or not parts or any(p in (".", "..") for p in parts):
        raise KitError(
            f"invalid cgroupsPath {path!r}",
            cause="kit takes an absolute path inside the cgroup tree, without . or ..",
            fix="write e.g. /kit/my-container",
        )
    return "/" + "/".join(parts)


def _needed(spec: Spec) -> tuple[str, ...]:
    r = spec.linux.resources
    assert r is not None
    out = []
    if r.memory is not None:
        out.append("memory")
    if r.pids is not None:
        out.append("pids")
    if r.cpu is not None:
        out.append("cpu")
    return tuple(out)


def choose(layout: Layout, needed: tuple[str, ...]) -> int:
    """The cgroup version that holds every needed controller, or a clear error."""
    version = layout.version_for(needed)
    if version is not None:
        return version
    missing = [c for c in needed if c not in layout.v1 and c not in layout.v2_controllers]
    raise KitError(
        f"the {', '.join(missing) or ' and '.join(needed)} cgroup controller is not available "
        f"here (cgroup mode: {layout.mode})",
        cause="the limit cannot be enforced without its controller: no cgroup tree on this "
        "host offers it (v2 offers a controller only when the root's cgroup.controllers "
        "lists it)",
        fix="drop the limit, or enable the controller on the host; `kit doctor` shows the "
        "cgroup layout",
    )


def open_cgroup(
    spec: Spec, container_id: str, layout: Layout | None = None
) -> ContainerCgroup | None:
    """Create the container's cgroup, write its limits and its device policy.

    None when there is nothing to apply: no limits, and no device policy (rootless, or rules
    that allow every device). Must run with write access to the cgroup trees (the init
    parent, outside the user namespace). The caller puts the container process in it with
    :meth:`open_join_files` / :meth:`join_self` and removes it with :meth:`remove` when the
    container has ended.
    """
    limited = has_limits(spec)
    policy = devices.policy_to_enforce(spec)
    if not limited and policy is None:
        return None
    layout = layout or read()
    cgroup = _make(spec, container_id, layout, limited, policy)
    cgroup.create()
    try:
        if limited:
            assert spec.linux.resources is not None
            try:
                cgroup.apply(spec.linux.resources)
            except KitError as error:
                raise KitError(
                    f"the kernel refused a limit ({', '.join(describe(spec))}): {error.what}",
                    errno=error.errno,
                    cause=error.cause,
                    fix=error.fix,
                ) from None
        if policy is not None:
            cgroup.restrict_devices(policy)
    except BaseException:
        cgroup.remove()
        raise
    return cgroup


def _make(
    spec: Spec, container_id: str, layout: Layout, limited: bool, policy: DevicePolicy | None
) -> ContainerCgroup:
    """The container's directories: in the trees its limits need (v1 or v2, whichever holds
    all of them), and where its device policy goes (v1's devices tree if mounted, else v2)."""
    path = cgroup_path(spec, container_id)
    needed = _needed(spec) if limited else ()
    devices_version = devices.version_for(layout) if policy is not None else None
    version = choose(layout, needed) if limited else devices_version
    if version == 2:
        v2 = V2Cgroup.for_layout(layout, path, needed)
        if policy is not None:
            v2.devices = v2.directory
        return v2
    v1 = V1Cgroup.for_layout(layout, path, needed, devices=devices_version == 1)
    if devices_version == 2:
        # A hybrid host whose v1 trees lack the devices controller: the device program goes
        # on a directory of the unified tree (BPF needs no controller there).
        assert layout.v2 is not None
        v1.devices = Directory(layout.v2, path, unified=True)
        v1.directories.append(v1.devices)
    return v1
