"""cgroups: v1, v2 or hybrid; where the memory, pids and cpu controllers are; and whether
this user may set limits with them.

The mode changes what the resource-limit lessons show, not whether they run as root: on v1
(and hybrid) a container gets a directory in each controller's own hierarchy and limits are
``memory.limit_in_bytes``, ``pids.max``, ``cpu.cfs_quota_us``; on v2 there is one tree and
limits are ``memory.max``, ``pids.max``, ``cpu.max``. Lessons that need the unified tree itself
(``cgroup:v2``: subtree_control, memory.events) only run on v2. Without root, limits need v2
and controllers that systemd delegated to the user.
"""

from __future__ import annotations

from typing import Any

from kit.doctor.check import Check
from kit.doctor.context import Context
from kit.doctor.parsing import LESSON_CONTROLLERS, CgroupLayout
from kit.doctor.readers import read

#: What a lesson about limits touches in each mode.
LIMIT_FILES = {
    "v1": {
        "memory": "memory.limit_in_bytes",
        "pids": "pids.max",
        "cpu": "cpu.cfs_quota_us + cpu.cfs_period_us",
    },
    "v2": {"memory": "memory.max", "pids": "pids.max", "cpu": "cpu.max"},
}

_MODES = {
    "v1": (
        "v1: one hierarchy per controller, a container gets a directory in each and joins "
        "every one via cgroup.procs"
    ),
    "v2": (
        "v2: one tree; controllers are handed to children through cgroup.subtree_control, a "
        "cgroup with children holds no processes; memory.events counts OOM kills"
    ),
}


def lesson_changes(layout: CgroupLayout) -> str:
    """How the resource-limit lessons differ on this machine's cgroup mode."""
    files = [
        f"{c}: {LIMIT_FILES[version][c]} ({version})"
        for c in LESSON_CONTROLLERS
        if (version := layout.version_of(c))
    ]
    if not files:
        return "resource-limit lessons find none of memory, pids, cpu here"
    text = "resource-limit lessons write " + ", ".join(files)
    if layout.mode != "v2":
        text += (
            "; lessons about the unified v2 tree itself (cgroup:v2) cannot run on "
            f"{layout.mode} cgroups"
        )
    return text


def check_cgroups(ctx: Context) -> Check:
    """The cgroup mode, where the memory, pids and cpu controllers are, and who may use them."""
    layout = ctx.cgroup_layout()
    wsl = "wsl2" in ctx.environment_hints()
    enabled = {}
    for line in (read("/proc/cgroups") or "").splitlines()[1:]:
        parts = line.split()
        if len(parts) == 4:
            enabled[parts[0]] = parts[3] == "1"
    where = {c: layout.where(c) for c in LESSON_CONTROLLERS}
    data: dict[str, Any] = {
        "mode": layout.mode,
        "v1": layout.v1,
        "v2": layout.v2,
        "v2_controllers": list(layout.v2_controllers),
        "controllers": where,
        "read_only": list(layout.read_only),
        "usable": dict.fromkeys(LESSON_CONTROLLERS, False),
    }
    if layout.mode == "none":
        return Check(
            "cgroups",
            "warn",
            "no cgroup filesystem is mounted: containers run without resource limits",
            ctx.host.as_root("mount -t cgroup2 none /sys/fs/cgroup"),
            data,
        )
    found = ", ".join(f"{c} ({w})" for c, w in where.items() if w)
    parts = [f"{layout.mode}: {found or 'none of memory, pids, cpu'}"]
    if layout.mode == "hybrid":
        offered = " ".join(layout.v2_controllers) or "none"
        parts.append(
            f"the v2 tree at {layout.v2} mostly groups processes (controllers it offers: "
            f"{offered}); memory, pids and cpu limits go through v1 here. " + _MODES["v1"]
        )
    else:
        parts.append(_MODES["v1" if layout.mode == "v1" else "v2"])
    parts.append(lesson_changes(layout))
    if layout.mode != "v2":
        parts.append(f"to get cgroup v2: {ctx.host.cgroup_v2_fix(wsl=wsl)}")
    missing = [c for c, w in where.items() if not w]
    if layout.read_only:
        parts.append("mounted read-only: " + " ".join(layout.read_only))
        return Check(
            "cgroups",
            "warn",
            "; ".join(parts),
            "run kit where the cgroup tree is writable (Docker: --privileged or "
            "--cgroupns=private with a writable /sys/fs/cgroup)",
            data,
        )
    if ctx.euid != 0:
        return _rootless(ctx, layout, parts, data, wsl)
    data["usable"] = {c: c not in missing for c in LESSON_CONTROLLERS}
    if missing:
        off = [c for c in missing if enabled.get(c) is False]
        parts.append(
            "missing: "
            + " ".join(missing)
            + (f" (disabled at boot: {' '.join(off)})" if off else "")
        )
        if "memory" in off:
            fix = ctx.host.kernel_parameter("cgroup_enable=memory")
        elif layout.mode == "v2" and layout.v2:
            fix = ctx.host.as_root(
                "sh -c 'echo "
                + " ".join(f"+{c}" for c in missing)
                + f" > {layout.v2}/cgroup.subtree_control'"
            )
        else:
            fix = f"use a kernel with the {' '.join(missing)} controller(s) enabled"
        return Check("cgroups", "warn", "; ".join(parts), fix, data)
    return Check("cgroups", "ok", "; ".join(parts), data=data)


def _rootless(
    ctx: Context, layout: CgroupLayout, parts: list[str], data: dict[str, Any], wsl: bool
) -> Check:
    """Without root, limits work only in a v2 cgroup this user owns, with delegated
    controllers: v1 hierarchies belong to root and have no delegation."""
    root_fix = f"run the tutorial as root ({ctx.host.as_root('kit-tutorial')})"
    if layout.mode != "v2":
        parts.append(
            f"as uid {ctx.euid} (rootless) kit cannot set limits on {layout.mode} cgroups: every "
            "v1 hierarchy belongs to root and has no delegation"
        )
        return Check(
            "cgroups",
            "warn",
            "; ".join(parts),
            f"{root_fix}, or switch to cgroup v2: {ctx.host.cgroup_v2_fix(wsl=wsl)}",
            data,
        )
    delegated = ctx.delegated_controllers()
    data["delegated"] = list(delegated)
    data["usable"] = {c: c in delegated for c in LESSON_CONTROLLERS}
    lacking = [c for c in LESSON_CONTROLLERS if c not in delegated]
    shown = " ".join(delegated) or "none"
    if not lacking:
        parts.append(f"controllers delegated to uid {ctx.euid}: {shown}; rootless limits work")
        return Check("cgroups", "ok", "; ".join(parts), data=data)
    parts.append(
        f"controllers delegated to uid {ctx.euid}: {shown}; rootless containers cannot limit "
        + " ".join(lacking)
    )
    return Check(
        "cgroups",
        "warn",
        "; ".join(parts),
        f"{ctx.host.delegate_fix(lacking)} (or {root_fix})",
        data,
    )
