"""Who runs kit, and what that allows: the Python, root or rootless (user namespaces), and
the subordinate id ranges rootless students need."""

from __future__ import annotations

import os
import pwd
import sys
from typing import Any

from kit.doctor.check import Check
from kit.doctor.context import Context, confined
from kit.doctor.distro import CONTAINER_FIX, userns_blockers
from kit.doctor.readers import read, which
from kit.security.userns import is_privileged, parse_subids


def check_python(ctx: Context) -> Check:
    """Python >= 3.11 (kit uses 3.11 syntax and stdlib)."""
    version = ".".join(map(str, sys.version_info[:3]))
    detail = f"Python {version} ({sys.executable})"
    # Checked at run time on purpose: this module still imports on older Pythons, and the
    # doctor is what should tell a learner which Python they need.
    if sys.version_info >= (3, 11):  # noqa: UP036
        return Check("python", "ok", detail, data={"version": version})
    return Check(
        "python",
        "fail",
        detail + ": kit needs 3.11 or newer",
        ctx.host.python_fix(),
        {"version": version},
    )


def _blockers(ctx: Context) -> tuple[list[str], str]:
    """Reasons user namespaces are refused to unprivileged users, and the first fix."""
    found = userns_blockers(ctx.userns_sysctls(), ctx.host)
    return [b.reason for b in found], (found[0].fix if found else "")


def short_error(outcome: dict[str, Any]) -> str:
    """A probe failure without its explanation: ``unshare(CLONE_NEWUSER): EPERM (...)``."""
    return str(outcome.get("error") or "unknown error").split(" — ")[0]


def userns_summary(result: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether a userns probe got as far as mounting, and a phrase saying how far it got."""
    if not result:
        return False, "not tried"
    for step, phrase in (("unshare", "unshare(CLONE_NEWUSER)"), ("mount", "mounting inside it")):
        outcome = result.get(step)
        if not outcome:
            return False, f"{phrase}: not reached"
        if not outcome.get("ok"):
            failed = short_error(outcome)
            return False, failed if failed.startswith(phrase) else f"{phrase}: {failed}"
    overlay = result.get("overlay") or {}
    if overlay.get("ok"):
        return True, "user namespace, id maps, tmpfs and overlay (userxattr) mounts all work"
    return True, f"user namespace and mounts work; overlay failed: {short_error(overlay)}"


def check_privileges(ctx: Context) -> Check:
    """Root with CAP_SYS_ADMIN, or a user namespace usable without root."""
    euid = ctx.euid
    admin = ctx.has_cap_sys_admin()
    data: dict[str, Any] = {"euid": euid, "cap_sys_admin": admin}
    if euid == 0 and admin:
        return Check(
            "privileges",
            "ok",
            "running as root with CAP_SYS_ADMIN: kit creates every namespace directly",
            data=data,
        )
    works, how = userns_summary(ctx.result("userns_self"))
    data["rootless"] = works
    who = "root without CAP_SYS_ADMIN" if euid == 0 else f"uid {euid}"
    if works:
        return Check(
            "privileges",
            "ok",
            f"running as {who}: rootless mode (a user namespace first, then the rest): {how}",
            data=data,
        )
    blockers, fix = _blockers(ctx)
    why = "; ".join([how, *blockers])
    if ctx.probe_error:
        why = ctx.probe_error
    if confined(ctx):
        why += (
            "; a container engine took CAP_SYS_ADMIN away or filters system calls "
            "(see `environment`)"
        )
        fix = CONTAINER_FIX
    return Check(
        "privileges",
        "fail",
        f"running as {who}, and user namespaces are not usable: {why}",
        fix
        or f"run kit as root ({ctx.host.as_root('kit ...')}), or allow unprivileged user "
        "namespaces (see the `user namespaces` check)",
        data,
    )


def check_user_namespaces(ctx: Context) -> Check:
    """Whether user namespaces work, for this user and (as root) for an unprivileged one."""
    name = "user namespaces"
    sysctls = ctx.userns_sysctls()
    shown = ", ".join(f"{k}={v}" for k, v in sysctls.items() if v is not None)
    data: dict[str, Any] = {"sysctls": sysctls}
    if not os.path.exists("/proc/self/ns/user"):
        return Check(
            name,
            "fail",
            "this kernel has no user namespaces (no /proc/self/ns/user; CONFIG_USER_NS is off)",
            ctx.host.newer_kernel("3.8") + " built with CONFIG_USER_NS=y",
            data,
        )
    if ctx.probe_error:
        return Check(name, "warn", f"could not test: {ctx.probe_error}", "run `kit doctor` again")
    self_works, self_how = userns_summary(ctx.result("userns_self"))
    data["self"] = self_works
    blockers, fix = _blockers(ctx)
    data["blockers"] = blockers
    if confined(ctx) and not self_works:
        fix = CONTAINER_FIX
    if ctx.euid != 0:
        detail = f"as uid {ctx.euid}: {self_how} ({shown})"
        if self_works:
            return Check(name, "ok", detail, data=data)
        # The `privileges` check carries the failure; this one says what to change.
        return Check(name, "warn", detail + "; " + "; ".join(blockers), fix, data)
    other = ctx.result("userns_unprivileged") or {}
    other_works, other_how = userns_summary(other)
    data["unprivileged"] = other_works
    user = other.get("user", "nobody")
    detail = (
        f"as root: {self_how}; as {user} (uid {other.get('uid')}), what a student without "
        f"sudo gets: {other_how} ({shown})"
    )
    if other_works:
        return Check(name, "ok", detail + "; rootless mode will work", data=data)
    if blockers:
        detail += "; " + "; ".join(blockers)
    return Check(
        name,
        "warn",
        detail + "; rootless students cannot run containers (root mode, with sudo, still works)",
        fix or "allow unprivileged user namespaces (see your distribution's hardening notes)",
        data,
    )


def check_subids(ctx: Context) -> Check:
    """Subordinate id ranges (/etc/subuid, /etc/subgid) and newuidmap, for rootless ranges."""
    name = "subordinate ids"
    user = os.environ.get("SUDO_USER") if ctx.euid == 0 else None
    uid = int(os.environ.get("SUDO_UID", "0") or 0) if user else ctx.euid
    if not user:
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
    subuid = parse_subids(read("/etc/subuid") or "", user, uid)
    subgid = parse_subids(read("/etc/subgid") or "", user, uid)
    tools = {tool: which(tool) for tool in ("newuidmap", "newgidmap")}
    usable = {t: bool(p and is_privileged(p)) for t, p in tools.items()}
    data = {"user": user, "subuid": subuid, "subgid": subgid, "tools": tools, "usable": usable}
    found = []
    for tool, path in tools.items():
        if not path:
            found.append(f"{tool} missing")
        else:
            found.append(f"{tool} at {path}" + (" (setuid)" if usable[tool] else " (not setuid!)"))
    shown = f"{user}: subuid {subuid or 'none'}, subgid {subgid or 'none'}; " + ", ".join(found)
    add_ranges = ctx.host.as_root(
        f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "
        f"{user if user != 'root' else 'STUDENT'}"
    )
    if uid == 0:
        return Check(
            name,
            "ok",
            f"running as root: kit writes any uid/gid map itself and needs no ranges ({shown}). "
            f"Students running rootless need ranges: {add_ranges} (scripts/lab-setup.sh "
            "--students N gives every student its own)",
            data=data,
        )
    if subuid and subgid and all(usable.values()):
        return Check(
            name,
            "ok",
            shown + ": rootless containers can map a range of users (newuidmap writes the maps)",
            data=data,
        )
    fixes = []
    if not (subuid and subgid):
        fixes.append(add_ranges)
    if not all(usable.values()):
        fixes.append(ctx.host.install("uidmap"))
    return Check(
        name,
        "warn",
        shown + ": rootless containers map only your own uid (one user inside); lessons with "
        "several users need ranges",
        " and ".join(fixes),
        data,
    )
