"""The container's security controls as this kernel offers them: seccomp, Landlock, and
the Linux security modules (AppArmor, SELinux) that may stand in kit's way."""

from __future__ import annotations

import ctypes
import errno as E
import os
import platform
from typing import Any

from kit.doctor.check import Check
from kit.doctor.context import Context
from kit.doctor.readers import read, read_int, status_field
from kit.errors import KitError
from kit.linux import process
from kit.linux.landlock import CREATE_RULESET_VERSION
from kit.linux.syscall import raw_syscall, traced
from kit.security import bpf

PR_GET_SECCOMP = 21  # not in kit.linux.flags yet

#: seccomp actions worth knowing about, and their SECCOMP_RET_* values.
SECCOMP_ACTIONS = {
    "KILL_PROCESS": bpf.SECCOMP_RET_KILL_PROCESS,
    "KILL_THREAD": bpf.SECCOMP_RET_KILL_THREAD,
    "TRAP": bpf.SECCOMP_RET_TRAP,
    "ERRNO": bpf.SECCOMP_RET_ERRNO,
    "USER_NOTIF": bpf.SECCOMP_RET_USER_NOTIF,
    "TRACE": bpf.SECCOMP_RET_TRACE,
    "LOG": bpf.SECCOMP_RET_LOG,
    "ALLOW": bpf.SECCOMP_RET_ALLOW,
}
SECCOMP_GET_ACTION_AVAIL = 2

#: The AUDIT_ARCH_* value a seccomp filter must compare ``seccomp_data.arch`` with.
AUDIT_ARCH = {
    "x86_64": ("AUDIT_ARCH_X86_64", 0xC000003E),
    "aarch64": ("AUDIT_ARCH_AARCH64", 0xC00000B7),
}


def _seccomp_action_available(action: int) -> bool:
    value = ctypes.c_uint32(action)
    try:
        traced(
            "seccomp",
            ["SECCOMP_GET_ACTION_AVAIL", "0", f"[{action:#x}]"],
            lambda: raw_syscall(
                "seccomp",
                ctypes.c_uint(SECCOMP_GET_ACTION_AVAIL),
                ctypes.c_uint(0),
                ctypes.byref(value),
            ),
        )
    except KitError:
        return False
    return True


def check_seccomp(ctx: Context) -> Check:
    """seccomp filter mode, the actions the kernel offers, and the architecture."""
    machine = platform.machine()
    arch_name, arch_value = AUDIT_ARCH.get(machine, ("unknown", 0))
    mode_field = status_field("Seccomp")
    filters = status_field("Seccomp_filters")
    data: dict[str, Any] = {
        "status_field": mode_field,
        "filters": filters,
        "arch": machine,
        "audit_arch": arch_name,
    }
    try:
        mode = process.prctl(PR_GET_SECCOMP)
    except KitError as error:
        data["prctl"] = None
        return Check(
            "seccomp",
            "warn",
            f"prctl(PR_GET_SECCOMP) failed ({error.errno_name}): this kernel has no seccomp; "
            "the seccomp lessons cannot run",
            ctx.host.newer_kernel("3.17") + " built with CONFIG_SECCOMP_FILTER=y",
            data,
        )
    data["prctl"] = mode
    actions = [name for name, value in SECCOMP_ACTIONS.items() if _seccomp_action_available(value)]
    data["actions"] = actions
    detail = (
        f"filter mode available (Seccomp: {mode_field} in /proc/self/status, prctl says {mode}); "
        f"actions: {' '.join(actions)}; architecture {machine}, so filters check "
        f"seccomp_data.arch == {arch_name} ({arch_value:#x})"
    )
    if machine == "x86_64":
        detail += " and refuse the i386/x32 entry points"
    if "ERRNO" not in actions or "KILL_PROCESS" not in actions:
        return Check(
            "seccomp",
            "warn",
            detail + "; this kernel lacks actions kit's filters use",
            ctx.host.newer_kernel("4.14"),
            data,
        )
    if mode == 2:
        return Check(
            "seccomp",
            "warn",
            detail + f"; kit already runs under {filters or 'some'} seccomp filter(s) (a "
            "container's default profile?): calls kit teaches (unshare, mount, keyctl) may be "
            "refused with EPERM",
            "run the outer container with --security-opt seccomp=unconfined",
            data,
        )
    return Check("seccomp", "ok", detail, data=data)


def landlock_abi() -> tuple[int, int | None]:
    """The Landlock ABI version (0 when unavailable) and the errno that said so."""
    try:
        abi = traced(
            "landlock_create_ruleset",
            ["NULL", "0", "LANDLOCK_CREATE_RULESET_VERSION"],
            lambda: raw_syscall(
                "landlock_create_ruleset",
                None,
                ctypes.c_size_t(0),
                ctypes.c_uint32(CREATE_RULESET_VERSION),
            ),
            note="asks for the ABI version; creates nothing",
        )
    except KitError as error:
        return 0, error.errno
    return int(abi), None


def _lsm_list(ctx: Context) -> tuple[list[str] | None, str]:
    """The active LSMs and where the list came from."""
    text = read("/sys/kernel/security/lsm")
    if text is not None:
        return text.strip().split(","), "/sys/kernel/security/lsm"
    probed = ctx.result("securityfs")
    if probed and probed.get("ok"):
        return probed["lsm"].split(","), (
            "securityfs, which this host has not mounted: the probe mounted it in a private "
            "namespace"
        )
    for word in (read("/proc/cmdline") or "").split():
        if word.startswith("lsm="):
            return word[4:].split(","), "the lsm= boot parameter"
    default = ctx.config.get("CONFIG_LSM")
    if default:
        return default.split(","), (
            "the kernel's build default CONFIG_LSM (securityfs is not mounted and only root "
            "may mount it; modules not built in are skipped)"
        )
    return None, "the LSM list is unknown (securityfs is not mounted and only root may mount it)"


def check_landlock(ctx: Context) -> Check:
    """Landlock's ABI version, and whether it is in the active LSM list."""
    abi, err = landlock_abi()
    lsms, source = _lsm_list(ctx)
    listed = lsms is not None and "landlock" in lsms
    data = {"abi": abi, "errno": err, "in_lsm_list": listed, "lsm_source": source}
    where = f"{'in' if listed else 'not in'} the LSM list from {source}" if lsms else source
    if abi >= 1:
        return Check("landlock", "ok", f"Landlock ABI {abi}; {where}", data=data)
    if err == E.EOPNOTSUPP:
        return Check(
            "landlock",
            "warn",
            f"Landlock is built in but not enabled at boot (EOPNOTSUPP); {where}",
            "add landlock to the lsm= boot parameter: in /etc/default/grub set "
            'GRUB_CMDLINE_LINUX="lsm=landlock,lockdown,yama,integrity,apparmor,bpf", '
            f"run {ctx.host.as_root('update-grub')} and reboot",
            data,
        )
    return Check(
        "landlock",
        "warn",
        f"this kernel has no Landlock ({E.errorcode.get(err or 0, err)}); {where}; "
        "the Landlock lessons cannot run",
        ctx.host.newer_kernel("5.13") + " built with CONFIG_SECURITY_LANDLOCK=y",
        data,
    )


def check_lsms(ctx: Context) -> Check:
    """AppArmor, SELinux and the active LSM list, and what they mean for kit."""
    lsms, source = _lsm_list(ctx)
    apparmor = (read("/sys/module/apparmor/parameters/enabled") or "").strip() == "Y"
    probed = ctx.result("securityfs") or {}
    apparmor_fs = os.path.isdir("/sys/kernel/security/apparmor") or bool(probed.get("apparmor"))
    enforce = read_int("/sys/fs/selinux/enforce")
    confinement = (
        read("/proc/self/attr/apparmor/current") or read("/proc/self/attr/current") or ""
    ).strip("\0\n ")
    data = {
        "lsm": lsms,
        "lsm_source": source,
        "apparmor": apparmor,
        "apparmor_fs": apparmor_fs,
        "selinux_enforce": enforce,
        "confinement": confinement or None,
    }
    if not lsms:
        parts = [source]
    elif "CONFIG_LSM" in source:
        parts = [f"LSMs this kernel enables by default: {','.join(lsms)} (from {source})"]
    else:
        parts = [f"active LSMs: {','.join(lsms)} (read from {source})"]
    parts.append(
        "AppArmor: enabled"
        + (" (profiles in /sys/kernel/security/apparmor)" if apparmor_fs else "")
        if apparmor
        else "AppArmor: off"
    )
    parts.append(
        {None: "SELinux: off", 0: "SELinux: permissive", 1: "SELinux: enforcing"}.get(
            enforce, f"SELinux: enforce={enforce}"
        )
    )
    if confinement:
        parts.append(f"kit runs as {confinement}")
    if enforce == 1:
        return Check(
            "security modules",
            "warn",
            "; ".join(parts) + ": kit sets no SELinux labels, so bind mounts and overlay "
            "layers may be denied (AVC messages in the audit log)",
            "for the course: "
            + ctx.host.as_root("setenforce 0")
            + " (permissive until reboot), or label kit's data: "
            + ctx.host.as_root("chcon -R -t container_file_t /var/lib/kit"),
            data,
        )
    if (
        confinement
        and confinement not in ("unconfined", "kernel")
        and "unconfined" not in confinement
    ):
        return Check(
            "security modules",
            "warn",
            "; ".join(parts) + ": a confining profile may refuse mount and unshare",
            "run kit unconfined (Docker: --security-opt apparmor=unconfined)",
            data,
        )
    parts.append("nothing here restricts what kit does; kit's containers run without a profile")
    return Check("security modules", "ok", "; ".join(parts), data=data)
