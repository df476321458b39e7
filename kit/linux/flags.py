"""The kernel's flag constants, and how to print them the way strace does.

Values come from the kernel's uapi headers (include/uapi/linux/sched.h, mount.h, prctl.h ...);
they are part of the kernel ABI and do not change between kernels or architectures that kit
supports (x86_64 and aarch64).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlagSet:
    """A family of bit flags that can render an integer as ``A|B|C``."""

    names: tuple[tuple[str, int], ...]

    def render(self, value: int) -> str:
        if value == 0:
            return "0"
        parts: list[str] = []
        rest = value
        for name, bit in self.names:
            if bit and value & bit == bit and rest & bit:
                parts.append(name)
                rest &= ~bit
        if rest:
            parts.append(hex(rest))
        return "|".join(parts)

    def __getitem__(self, name: str) -> int:
        for flag, bit in self.names:
            if flag == name:
                return bit
        raise KeyError(name)


# --- namespaces: clone(2), unshare(2), setns(2) -------------------------------------------------
CLONE_NEWNS = 0x00020000  # mount namespace (the first namespace, hence the vague name)
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
CLONE_FILES = 0x00000400
CLONE_FS = 0x00000200

CLONE = FlagSet(
    (
        ("CLONE_NEWNS", CLONE_NEWNS),
        ("CLONE_NEWCGROUP", CLONE_NEWCGROUP),
        ("CLONE_NEWUTS", CLONE_NEWUTS),
        ("CLONE_NEWIPC", CLONE_NEWIPC),
        ("CLONE_NEWUSER", CLONE_NEWUSER),
        ("CLONE_NEWPID", CLONE_NEWPID),
        ("CLONE_NEWNET", CLONE_NEWNET),
        ("CLONE_NEWTIME", CLONE_NEWTIME),
        ("CLONE_FILES", CLONE_FILES),
        ("CLONE_FS", CLONE_FS),
    )
)

#: OCI namespace type -> (clone flag, name of the file in /proc/PID/ns/)
NAMESPACES: dict[str, tuple[int, str]] = {
    "mount": (CLONE_NEWNS, "mnt"),
    "pid": (CLONE_NEWPID, "pid"),
    "uts": (CLONE_NEWUTS, "uts"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "network": (CLONE_NEWNET, "net"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "user": (CLONE_NEWUSER, "user"),
    "time": (CLONE_NEWTIME, "time"),
}

# --- mount(2) ------------------------------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MS = FlagSet(
    (
        ("MS_RDONLY", MS_RDONLY),
        ("MS_NOSUID", MS_NOSUID),
        ("MS_NODEV", MS_NODEV),
        ("MS_NOEXEC", MS_NOEXEC),
        ("MS_SYNCHRONOUS", MS_SYNCHRONOUS),
        ("MS_REMOUNT", MS_REMOUNT),
        ("MS_MANDLOCK", MS_MANDLOCK),
        ("MS_DIRSYNC", MS_DIRSYNC),
        ("MS_NOSYMFOLLOW", MS_NOSYMFOLLOW),
        ("MS_NOATIME", MS_NOATIME),
        ("MS_NODIRATIME", MS_NODIRATIME),
        ("MS_BIND", MS_BIND),
        ("MS_MOVE", MS_MOVE),
        ("MS_REC", MS_REC),
        ("MS_SILENT", MS_SILENT),
        ("MS_UNBINDABLE", MS_UNBINDABLE),
        ("MS_PRIVATE", MS_PRIVATE),
        ("MS_SLAVE", MS_SLAVE),
        ("MS_SHARED", MS_SHARED),
        ("MS_RELATIME", MS_RELATIME),
        ("MS_STRICTATIME", MS_STRICTATIME),
        ("MS_LAZYTIME", MS_LAZYTIME),
    )
)

#: Mount option words (as in fstab, mount(8) and OCI config.json) -> (flag, clears_it).
#: ``clears_it`` means the word removes the flag (``rw`` clears MS_RDONLY).
MOUNT_OPTION_FLAGS: dict[str, tuple[int, bool]] = {
    "ro": (MS_RDONLY, False),
    "rw": (MS_RDONLY, True),
    "nosuid": (MS_NOSUID, False),
    "suid": (MS_NOSUID, True),
    "nodev": (MS_NODEV, False),
    "dev": (MS_NODEV, True),
    "noexec": (MS_NOEXEC, False),
    "exec": (MS_NOEXEC, True),
    "sync": (MS_SYNCHRONOUS, False),
    "async": (MS_SYNCHRONOUS, True),
    "dirsync": (MS_DIRSYNC, False),
    "remount": (MS_REMOUNT, False),
    "mand": (MS_MANDLOCK, False),
    "nomand": (MS_MANDLOCK, True),
    "noatime": (MS_NOATIME, False),
    "atime": (MS_NOATIME, True),
    "nodiratime": (MS_NODIRATIME, False),
    "diratime": (MS_NODIRATIME, True),
    "relatime": (MS_RELATIME, False),
    "norelatime": (MS_RELATIME, True),
    "strictatime": (MS_STRICTATIME, False),
    "nostrictatime": (MS_STRICTATIME, True),
    "nosymfollow": (MS_NOSYMFOLLOW, False),
    "bind": (MS_BIND, False),
    "rbind": (MS_BIND | MS_REC, False),
}

#: Propagation words -> flags (applied by a separate mount call, see mount_namespaces(7)).
PROPAGATION_FLAGS: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# --- umount2(2) ----------------------------------------------------------------------------------
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

UMOUNT = FlagSet(
    (
        ("MNT_FORCE", MNT_FORCE),
        ("MNT_DETACH", MNT_DETACH),
        ("MNT_EXPIRE", MNT_EXPIRE),
        ("UMOUNT_NOFOLLOW", UMOUNT_NOFOLLOW),
    )
)

# --- prctl(2) ------------------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_GET_KEEPCAPS = 7
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

PRCTL_OPTIONS: dict[int, str] = {
    PR_SET_PDEATHSIG: "PR_SET_PDEATHSIG",
    PR_GET_DUMPABLE: "PR_GET_DUMPABLE",
    PR_SET_DUMPABLE: "PR_SET_DUMPABLE",
    PR_GET_KEEPCAPS: "PR_GET_KEEPCAPS",
    PR_SET_KEEPCAPS: "PR_SET_KEEPCAPS",
    PR_SET_NAME: "PR_SET_NAME",
    PR_CAPBSET_READ: "PR_CAPBSET_READ",
    PR_CAPBSET_DROP: "PR_CAPBSET_DROP",
    PR_SET_SECUREBITS: "PR_SET_SECUREBITS",
    PR_SET_CHILD_SUBREAPER: "PR_SET_CHILD_SUBREAPER",
    PR_SET_NO_NEW_PRIVS: "PR_SET_NO_NEW_PRIVS",
    PR_GET_NO_NEW_PRIVS: "PR_GET_NO_NEW_PRIVS",
    PR_CAP_AMBIENT: "PR_CAP_AMBIENT",
}

# --- close_range(2) ------------------------------------------------------------------------------
CLOSE_RANGE_UNSHARE = 1 << 1
CLOSE_RANGE_CLOEXEC = 1 << 2

CLOSE_RANGE = FlagSet(
    (("CLOSE_RANGE_UNSHARE", CLOSE_RANGE_UNSHARE), ("CLOSE_RANGE_CLOEXEC", CLOSE_RANGE_CLOEXEC))
)

# --- openat2(2) ----------------------------------------------------------------------------------
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

RESOLVE = FlagSet(
    (
        ("RESOLVE_NO_XDEV", RESOLVE_NO_XDEV),
        ("RESOLVE_NO_MAGICLINKS", RESOLVE_NO_MAGICLINKS),
        ("RESOLVE_NO_SYMLINKS", RESOLVE_NO_SYMLINKS),
        ("RESOLVE_BENEATH", RESOLVE_BENEATH),
        ("RESOLVE_IN_ROOT", RESOLVE_IN_ROOT),
    )
)

# --- open(2) flags, for printing -----------------------------------------------------------------
O_FLAGS = FlagSet(
    (
        ("O_WRONLY", 0o1),
        ("O_RDWR", 0o2),
        ("O_CREAT", 0o100),
        ("O_EXCL", 0o200),
        ("O_NOCTTY", 0o400),
        ("O_TRUNC", 0o1000),
        ("O_APPEND", 0o2000),
        ("O_NONBLOCK", 0o4000),
        ("O_DIRECTORY", 0o200000),
        ("O_NOFOLLOW", 0o400000),
        ("O_CLOEXEC", 0o2000000),
        ("O_PATH", 0o10000000),
    )
)


def render_open_flags(flags: int) -> str:
    """``O_RDONLY`` is 0, so it is named explicitly when no access bits are set."""
    text = O_FLAGS.render(flags)
    if flags & 0o3 == 0:
        return "O_RDONLY" if text == "0" else "O_RDONLY|" + text
    return text


# --- mknod(2) file types -------------------------------------------------------------------------
S_IFCHR = 0o020000
S_IFBLK = 0o060000
S_IFIFO = 0o010000
