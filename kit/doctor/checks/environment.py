"""Where kit runs: a machine or VM, or inside a container engine or WSL, and what that
means for the lessons."""

from __future__ import annotations

from typing import Any

from kit.doctor.check import Check
from kit.doctor.context import Context

#: What an outer container engine takes away, and so which lessons it stops.
INSIDE_A_CONTAINER = (
    "inside a container, kit needs what the outer engine takes away by default: "
    "CAP_SYS_ADMIN (or every mount fails with EPERM: all lessons), no seccomp profile (the "
    "default one refuses unshare, mount and keyctl), no AppArmor profile (docker-default "
    "denies mount), a writable cgroup tree (resource-limit lessons) and a data root that is not "
    "on the container's own overlayfs (image and layer lessons)"
)

DOCKER_FIX = (
    "docker run --privileged --cgroupns=private -v kit-data:/var/lib/kit ... "
    "(podman: podman run --privileged -v kit-data:/var/lib/kit ...); nothing to do if the "
    "other checks pass"
)


def check_environment(ctx: Context) -> Check:
    """Whether kit runs inside a container or WSL, and what that means."""
    hints = ctx.environment_hints()
    data: dict[str, Any] = {"hints": hints}
    if not hints:
        return Check(
            "environment",
            "ok",
            "not inside a container or WSL (no /.dockerenv or /run/.containerenv, PID 1's "
            "cgroups name no container engine)",
            data=data,
        )
    if "wsl1" in hints:
        data["kind"] = "wsl1"
        return Check(
            "environment",
            "fail",
            hints["wsl1"] + ": WSL1 translates Linux calls and has no namespaces or overlayfs",
            "convert the distribution to WSL2 (in PowerShell: wsl --set-version <distro> 2)",
            data,
        )
    if "wsl2" in hints:
        data["kind"] = "wsl2"
        return Check(
            "environment",
            "warn",
            hints["wsl2"] + ": a real Linux kernel in a VM, so namespaces and overlayfs work; "
            "but WSL2 may boot with hybrid cgroups (resource-limit lessons then show the v1 "
            "files) and without systemd (no cgroup delegation for rootless students)",
            "for cgroup v2: in %UserProfile%\\.wslconfig under [wsl2] set kernelCommandLine = "
            "cgroup_no_v1=all; for systemd: [boot] systemd=true in /etc/wsl.conf; then "
            "wsl --shutdown",
            data,
        )
    strong = {
        k: v
        for k, v in hints.items()
        if k in ("containerenv", "cgroup", "environ", "capabilities", "seccomp")
    }
    detail = "; ".join(hints.values())
    if not strong:
        data["kind"] = "maybe-container"
        detail += (
            ", but nothing else points to a container engine (PID 1's cgroups and environment "
            "name none): this may be a VM or machine built from a container image. If it is a "
            "container: " + INSIDE_A_CONTAINER
        )
    else:
        data["kind"] = "container"
        detail += ": probably inside a container; " + INSIDE_A_CONTAINER
    return Check("environment", "warn", detail, DOCKER_FIX, data)
