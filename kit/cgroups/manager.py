"""Choosing the cgroup version and making a container's cgroup from its spec."""

from __future__ import annotations

from kit.cgroups.base import ContainerCgroup
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
    """Create the container's cgroup and write its limits; None when it has no limits.

    Must run with write access to the cgroup trees (the init parent, outside the user
    namespace). The caller puts the container process in it with :meth:`join` and removes
    it with :meth:`remove` when the container has ended.
    """
    if not has_limits(spec):
        return None
    assert spec.linux.resources is not None
    layout = layout or read()
    path = cgroup_path(spec, container_id)
    version = choose(layout, _needed(spec))
    cgroup: ContainerCgroup
    if version == 2:
        cgroup = V2Cgroup.for_layout(layout, path)
    else:
        cgroup = V1Cgroup.for_layout(layout, path)
    cgroup.create()
    try:
        cgroup.apply(spec.linux.resources)
    except KitError as error:
        cgroup.remove()
        raise KitError(
            f"the kernel refused a limit ({', '.join(describe(spec))}): {error.what}",
            errno=error.errno,
            cause=error.cause,
            fix=error.fix,
        ) from None
    except BaseException:
        cgroup.remove()
        raise
    return cgroup
