"""Why a system call failed, and what to do about it.

The kernel answers a refused call with a bare errno. The man pages list many reasons for each;
this table keeps the ones a container runtime actually meets, phrased for the situation kit is
in. ``{name}`` fields are filled from the call's raw arguments.
"""

from __future__ import annotations

import errno as E
from typing import Any

from kit.errors import KitError

# (syscall, errno) -> (likely cause, fix)
EXPLANATIONS: dict[tuple[str, int], tuple[str, str]] = {
    ("pivot_root", E.EINVAL): (
        "new_root {new_root} is not a mount point, put_old is not underneath it, or a mount "
        "involved has shared propagation (the kernel refuses to pivot a shared tree because "
        "the change would propagate to other namespaces)",
        "bind-mount the new root onto itself (mount --bind DIR DIR) and make the tree private "
        "first (mount --make-rprivate /)",
    ),
    ("pivot_root", E.EBUSY): (
        "new_root or put_old is the current root, or something is already mounted on put_old",
        "pivot into a directory other than the current root, with an empty put_old",
    ),
    ("pivot_root", E.EPERM): (
        "the caller lacks CAP_SYS_ADMIN in the user namespace that owns this mount namespace",
        "run as root, or in a new user namespace (kit run --userns)",
    ),
    ("pivot_root", E.ENOTDIR): (
        "new_root or put_old is not a directory",
        "pass directories: the root filesystem and a directory inside it",
    ),
    ("mount", E.EPERM): (
        "the caller lacks CAP_SYS_ADMIN in the user namespace that owns this mount namespace, or "
        "it tried to clear a flag (ro, nosuid, nodev, noexec) that is locked because the mount "
        "came from a more privileged namespace",
        "run as root (sudo), or create a user and mount namespace first; when remounting, keep "
        "the locked flags",
    ),
    ("mount", E.EBUSY): (
        "{target} is busy: the source is already mounted there, or a read-only remount is "
        "blocked by a file open for writing",
        "unmount what is there first, or close the files that are open for writing",
    ),
    ("mount", E.ENOENT): (
        "the mount point {target} or the source {source} does not exist",
        "create the directory (or the file, for a file bind mount) before mounting",
    ),
    ("mount", E.ENOTDIR): (
        "a component of {target} is not a directory, or a directory was bind-mounted onto a file",
        "bind directories onto directories and files onto files",
    ),
    ("mount", E.ENODEV): (
        "the filesystem type {fstype} is not supported by this kernel",
        "load its module (modprobe {fstype}) or use a kernel built with it",
    ),
    ("mount", E.EINVAL): (
        "the flags do not fit together (a propagation change must be made alone; MS_MOVE needs "
        "a mount point as source) or the filesystem rejected its options {data}",
        "check the flags and options; change propagation in a separate call",
    ),
    ("mount", E.EACCES): (
        "a component of {target} cannot be searched, or the source lies on a read-only or "
        "nodev filesystem",
        "check permissions on the path and the mount options of its filesystem",
    ),
    ("umount2", E.EBUSY): (
        "{target} is in use (a process has its cwd or an open file there)",
        "use MNT_DETACH to unmount lazily, or stop what is using it",
    ),
    ("umount2", E.EINVAL): (
        "{target} is not a mount point, or it is locked because it was inherited from a more "
        "privileged mount namespace",
        "check the mount table (/proc/self/mountinfo) for the exact mount point",
    ),
    ("unshare", E.EPERM): (
        "creating these namespaces needs CAP_SYS_ADMIN; without root only a user namespace may "
        "be created, and a security module (AppArmor's "
        "kernel.apparmor_restrict_unprivileged_userns) or a sysctl may forbid even that",
        "run as root (sudo), or use rootless mode (kit run --userns); `kit doctor` shows what "
        "blocks user namespaces here",
    ),
    ("unshare", E.EINVAL): (
        "a flag is unknown to this kernel (namespace type not built in), or CLONE_NEWUSER was "
        "asked for in a multi-threaded process",
        "kit starts a fresh single-threaded interpreter for this; do not call unshare from a "
        "threaded program, and check `kit doctor` for missing namespace types",
    ),
    ("unshare", E.ENOSPC): (
        "the per-user limit of namespaces (/proc/sys/user/max_*_namespaces) is reached",
        "remove stale containers (kit ps -a; kit rm) or raise the limit",
    ),
    ("unshare", E.EUSERS): (
        "user namespaces are nested too deeply (the kernel allows 32 levels)",
        "run kit from a less nested environment",
    ),
    ("setns", E.EINVAL): (
        "the file descriptor is not a namespace of the requested type, or joining it is not "
        "allowed from here (a multi-threaded process cannot join a user namespace)",
        "pass /proc/PID/ns/<type> of a running container and the matching CLONE_NEW* flag",
    ),
    ("setns", E.EPERM): (
        "joining needs CAP_SYS_ADMIN in the target namespace's owning user namespace",
        "run as root, or as the user that owns the container",
    ),
    ("mknod", E.EPERM): (
        "creating device nodes needs CAP_MKNOD in the initial user namespace; inside a user "
        "namespace the kernel never allows it",
        "run as root without a user namespace, or bind-mount the host's device node instead",
    ),
    ("mknod", E.EEXIST): (
        "{path} already exists",
        "remove it first, or reuse it",
    ),
    ("sethostname", E.EINVAL): (
        "the name is longer than 64 bytes (HOST_NAME_MAX)",
        "choose a shorter hostname",
    ),
    ("sethostname", E.EPERM): (
        "changing the hostname needs CAP_SYS_ADMIN in the UTS namespace's owning user namespace",
        "run the container with its own UTS namespace as root",
    ),
    ("chroot", E.EPERM): (
        "chroot needs CAP_SYS_CHROOT",
        "run as root",
    ),
    ("execve", E.EACCES): (
        "{path} is not executable: its mode lacks x, it is not a regular file, or it sits on "
        "a mount with noexec",
        "chmod +x the file, or run it from a mount without noexec",
    ),
    ("execve", E.ENOEXEC): (
        "{path} is not a binary this kernel can run (wrong architecture, or a script without "
        "a #! line)",
        "add a #! line to the script, or use a binary built for this machine",
    ),
    ("setuid", E.EPERM): (
        "changing user needs CAP_SETUID",
        "keep CAP_SETUID until the user is switched, or run as root",
    ),
    ("setgid", E.EPERM): (
        "changing group needs CAP_SETGID",
        "keep CAP_SETGID until the group is switched, or run as root",
    ),
    ("setgroups", E.EPERM): (
        "setgroups is denied: CAP_SETGID is missing, or /proc/PID/setgroups says deny in a user "
        "namespace",
        "write the gid map as root, or leave the supplementary groups alone",
    ),
    # --- user namespaces, cgroups, Landlock (kit.security, kit.cgroups) ------------------------
    ("setresuid", E.EINVAL): (
        "uid {uid} has no mapping in the container's user namespace (the kernel cannot name "
        "it outside)",
        "choose a mapped user (see /proc/self/uid_map inside), or map more ids: --uidmap, or "
        "subordinate ranges in /etc/subuid used through newuidmap (`kit doctor` shows yours)",
    ),
    ("setresgid", E.EINVAL): (
        "gid {gid} has no mapping in the container's user namespace (the kernel cannot name "
        "it outside)",
        "choose a mapped group (--user UID:GID; see /proc/self/gid_map inside), or map more "
        "ids: --gidmap, or ranges in /etc/subgid used through newgidmap",
    ),
    ("clone", E.EPERM): (
        "creating these namespaces was refused: without root only a user namespace may be "
        "created, and a security module or sysctl may forbid even that",
        "run as root, or use rootless mode (kit run --userns); `kit doctor` shows what blocks "
        "user namespaces here",
    ),
    ("clone", E.ENOSPC): (
        "the limit of namespaces of a kind is reached (/proc/sys/user/max_*_namespaces), or "
        "user namespaces are disabled by setting that limit to 0",
        "remove stale containers (kit ps -a; kit rm) or raise the limit; `kit doctor` checks "
        "user namespaces",
    ),
    ("clone", E.EUSERS): (
        "user namespaces are nested too deeply (the kernel allows 32 levels)",
        "run kit from a less nested environment",
    ),
    ("clone", E.EINVAL): (
        "a namespace type is unknown to this kernel, or CLONE_NEWUSER was asked for by a "
        "multi-threaded process",
        "check `kit doctor` for missing namespace types",
    ),
    ("write", E.EPERM): (
        "the kernel refused to write {value!r} to {path}: an id map may be written once, by a "
        "process in the parent user namespace, naming only ids the writer may map",
        "map only your own uid and gid, or let newuidmap/newgidmap write ranges from "
        "/etc/subuid and /etc/subgid",
    ),
    ("write", E.EINVAL): (
        "the kernel rejected the value {value!r} for {path} (out of range, or malformed)",
        "check the value; for a cgroup limit see the cgroup documentation of that file",
    ),
    ("write", E.EBUSY): (
        "the kernel cannot apply {value!r} to {path} now: the cgroup already uses more than the "
        "new limit",
        "choose a larger limit",
    ),
    ("write", E.EACCES): (
        "{path} is not writable by this process (cgroup files belong to root unless a subtree "
        "is delegated)",
        "run as root, or drop the resource limits",
    ),
    ("landlock_restrict_self", E.EPERM): (
        "Landlock needs no_new_privs (or CAP_SYS_ADMIN) before a process may restrict itself",
        "set no_new_privs first (kit does so unless told otherwise)",
    ),
    ("landlock_create_ruleset", E.EOPNOTSUPP): (
        "Landlock is built into this kernel but not enabled at boot",
        "add landlock to the lsm= boot parameter; `kit doctor` shows how",
    ),
    ("landlock_add_rule", E.EINVAL): (
        "the rule for {path} allows rights this ruleset does not handle, or rights that make no "
        "sense on a file",
        "give directory rights only to directories",
    ),
}

# errno -> (cause, fix) used when no entry above matches
GENERIC: dict[int, tuple[str, str]] = {
    E.EPERM: ("the operation needs a privilege the caller lacks", "run as root (sudo)"),
    E.EACCES: ("permission to a path was denied", "check the path's permissions and mounts"),
    E.ENOENT: ("a path does not exist", "check the path"),
    E.ENOSYS: (
        "this kernel does not implement the call",
        "use a newer kernel; `kit doctor` lists what this one supports",
    ),
}


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def explain(name: str, args: list[str], errno: int, context: dict[str, Any]) -> KitError:
    """Build the KitError for a failed call ``name(args)``."""
    cause, fix = EXPLANATIONS.get((name, errno)) or GENERIC.get(errno) or (None, None)
    fields = _Missing({key: _show(value) for key, value in context.items()})
    return KitError(
        f"{name}({', '.join(args)})",
        errno=errno,
        cause=cause.format_map(fields) if cause else None,
        fix=fix.format_map(fields) if fix else None,
    )


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
