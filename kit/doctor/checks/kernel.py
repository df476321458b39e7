"""The kernel's container features: namespaces, overlayfs, mount propagation."""

from __future__ import annotations

import errno as E
import os
import platform
from typing import Any

from kit.doctor.check import Check
from kit.doctor.checks.identity import short_error
from kit.doctor.context import Context, confined
from kit.doctor.distro import CONTAINER_FIX
from kit.doctor.parsing import filesystem_of, root_propagation
from kit.doctor.probes import NAMESPACE_KINDS, REQUIRED_NAMESPACES
from kit.doctor.readers import read
from kit.paths import data_root


def check_namespaces(ctx: Context) -> Check:
    """Every namespace type: present in /proc/self/ns and creatable with unshare.

    A type missing from /proc/self/ns is missing from the kernel (a newer or differently built
    kernel fixes it); a type the kernel has but unshare refuses (EPERM) is a matter of
    privileges, usually a container engine that took CAP_SYS_ADMIN away.
    """
    available: list[str] = []
    missing: dict[str, str] = {}
    absent: list[str] = []
    denied: list[str] = []
    for kind, (ns_file, _, option) in NAMESPACE_KINDS.items():
        outcome = ctx.result(f"ns_{kind}")
        present = os.path.exists(f"/proc/self/ns/{ns_file}")
        if outcome and outcome.get("ok"):
            available.append(kind)
        elif not present:
            config = ctx.config.get(option, "unknown") if option.startswith("CONFIG_") else ""
            missing[kind] = f"no /proc/self/ns/{ns_file} ({option}={config})"
            absent.append(kind)
        elif outcome is None:
            available.append(kind)  # the probe did not run; the kernel has the type
        else:
            number = outcome.get("errno")
            name = E.errorcode.get(number, "an error") if isinstance(number, int) else "an error"
            missing[kind] = f"unshare refused it with {name}"
            denied.append(kind)
    data = {"available": available, "missing": missing}
    detail = "unshare works for " + (" ".join(available) or "no namespace type")
    if ctx.config.get("CONFIG_TIME_NS") == "y" and "time" in available:
        detail += " (time: CONFIG_TIME_NS=y)"
    if not missing:
        return Check("namespaces", "ok", detail, data=data)
    fixes = []
    if denied:
        detail += (
            f"; refused although the kernel has them: {' '.join(denied)} (creating a namespace "
            "needs CAP_SYS_ADMIN, or a user namespace first; see `privileges`)"
        )
        fixes.append(
            CONTAINER_FIX
            if confined(ctx)
            else f"run kit as root ({ctx.host.as_root('kit ...')}), or see `user namespaces`"
        )
    if absent:
        detail += "; not in this kernel: " + "; ".join(f"{k}: {missing[k]}" for k in absent)
        configs = [NAMESPACE_KINDS[k][2] for k in absent if NAMESPACE_KINDS[k][2][:7] == "CONFIG_"]
        fixes.append(ctx.host.newer_kernel("5.6") + " built with " + ", ".join(configs))
    fix = "; ".join(fixes)
    if any(kind in REQUIRED_NAMESPACES for kind in missing):
        return Check("namespaces", "fail", detail, fix, data)
    return Check("namespaces", "warn", detail + " (lessons about these will say so)", fix, data)


def _overlay_listed() -> tuple[bool, str]:
    text = read("/proc/filesystems") or ""
    if any(line.split()[-1:] == ["overlay"] for line in text.splitlines()):
        return True, "listed in /proc/filesystems"
    release = platform.release()
    for index in (f"/lib/modules/{release}/modules.dep", f"/lib/modules/{release}/modules.builtin"):
        if "overlay.ko" in (read(index) or ""):
            return True, "not loaded yet, but the overlay module is installed (modprobe overlay)"
    return False, "not in /proc/filesystems and no overlay module installed"


_ELSEWHERE = "give kit a data root that is not on overlayfs: kit --root /some/volume ..."


def check_overlay(ctx: Context) -> Check:
    """overlayfs: present, a real mount works, and whether userxattr and lowerdir+ work."""
    name = "overlayfs"
    listed, where = _overlay_listed()
    store = data_root()
    store_fs = filesystem_of(store, ctx.mountinfo)
    data: dict[str, Any] = {"listed": listed, "data_root": str(store), "data_root_fs": store_fs}
    without = (
        ": containers from a root filesystem directory still run, but image and layer lessons "
        "(which stack layers with overlayfs) cannot"
    )
    if ctx.config.get("CONFIG_OVERLAY_FS") == "n":
        load = ctx.host.newer_kernel("5.11") + " built with CONFIG_OVERLAY_FS"
    else:
        load = ctx.host.load_module("overlay")
    if not listed:
        return Check(name, "warn", f"overlayfs is {where}{without}", load, data)
    result = ctx.result("overlay")
    if result is None and ctx.euid != 0:
        # Without root the overlay was tried inside a user namespace, where userxattr is
        # what an unprivileged overlay uses.
        rootless = ctx.result("userns_self") or {}
        if rootless.get("overlay"):
            result = {
                "mount": rootless["overlay"],
                "userxattr": rootless["overlay"],
                "lowerdir+": rootless.get("overlay lowerdir+") or {},
            }
            where += " (tried in a user namespace, as rootless kit will)"
    if result is None or ctx.probe_error:
        reason = ctx.probe_error or "not tried"
        return Check(name, "warn", f"{where}; the test mount could not run: {reason}", "", data)
    if result.get("ok") is False:  # the probe child failed before any overlay attempt
        result = {"mount": result}
    mounted = result.get("mount") or {}
    userxattr = result.get("userxattr") or {}
    plus = result.get("lowerdir+") or {}
    data.update(
        mount=bool(mounted.get("ok")),
        userxattr=bool(userxattr.get("ok")),
        userxattr_verified=bool(userxattr.get("verified")),
        lowerdir_plus=bool(plus.get("ok")),
    )
    if not mounted.get("ok"):
        fix = load
        if confined(ctx):
            fix = CONTAINER_FIX
            if store_fs == "overlay":
                fix += f"; and {_ELSEWHERE}"
        elif store_fs == "overlay":
            fix = _ELSEWHERE
        elif ctx.euid != 0:
            # Mounting overlayfs inside a user namespace is allowed from Linux 5.11 (Ubuntu's
            # kernels allowed it earlier with a patch).
            fix = (
                f"run the tutorial as root ({ctx.host.as_root('kit-tutorial')}), or "
                + ctx.host.newer_kernel("5.11")
            )
        return Check(
            name,
            "warn",
            f"{where}, but a test mount failed: {short_error(mounted)}{without}",
            fix,
            data,
        )
    parts = [
        f"{where}; a test mount works (two layers merged, copy-up, whiteout as "
        f"{mounted.get('whiteout')})"
    ]
    missing: list[str] = []
    if userxattr.get("ok"):
        how = "user.overlay.opaque seen" if userxattr.get("verified") else "accepted"
        parts.append(f"userxattr works ({how}: rootless overlays keep their marks in user.*)")
    else:
        parts.append(f"userxattr is refused: {userxattr.get('error')}")
        missing.append("userxattr (Linux 5.11)")
    if "lowerdir+" in result and plus.get("ok"):
        parts.append("lowerdir+ works with fsopen/fsconfig (layers added one by one, no limit)")
    elif "lowerdir+" in result:
        parts.append(
            f"lowerdir+ is refused: {plus.get('error')} — kit falls back to lowerdir= "
            "with short layer links, which limits how many layers fit in one page"
        )
        missing.append("lowerdir+ (Linux 6.8)")
    parts.append(f"kit's data root {store} is on {store_fs}")
    if store_fs == "overlay":
        parts.append(
            "an overlay upper directory cannot live on overlayfs, so containers need their "
            "writable layer elsewhere"
        )
        return Check(
            name,
            "warn",
            "; ".join(parts),
            "put kit's data on another filesystem: kit --root /some/volume "
            "(Docker: -v kit-data:/var/lib/kit)",
            data,
        )
    if missing:
        return Check(
            name,
            "warn",
            "; ".join(parts),
            ctx.host.newer_kernel(missing[-1].split("(Linux ")[1].rstrip(")")),
            data,
        )
    return Check(name, "ok", "; ".join(parts), data=data)


def check_propagation(ctx: Context) -> Check:
    """Whether / is shared, and why that matters to a container runtime."""
    kind, tags = root_propagation(ctx.mountinfo)
    data = {"propagation": kind, "tags": tags}
    if kind in ("shared", "shared+slave"):
        detail = (
            f"/ is {kind} ({tags}), as systemd sets it up: mounts made below it propagate to "
            "its peers, including from a new mount namespace. kit therefore makes the "
            "container's tree private (mount --make-rprivate /) before mounting anything; "
            "without that the container's mounts would appear on the host and pivot_root "
            "would refuse with EINVAL"
        )
    elif kind == "unknown":
        return Check(
            "mount propagation",
            "warn",
            "/ is not in /proc/self/mountinfo (chrooted?)",
            "run kit outside a chroot",
            data,
        )
    else:
        detail = (
            f"/ is {kind}: mounts do not propagate between this namespace and others. On a "
            "systemd host / is shared (shared:1), which is why kit makes the container's tree "
            "private before pivot_root; propagation lessons will show `private` here where a "
            "laptop shows `shared`"
        )
    return Check("mount propagation", "ok", detail, data=data)
