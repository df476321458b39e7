"""The file-descriptor based mount API: fsopen, fsconfig, fsmount, move_mount, open_tree, ...

mount(2) does everything in one call with one options string. Since Linux 5.2 a mount can be
built step by step instead, each step a file descriptor::

    fd = fsopen("overlay")                                   # a filesystem context
    fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", "/l1")    # one option at a time
    fsconfig(fd, FSCONFIG_CMD_CREATE)                        # make the superblock
    mfd = fsmount(fd)                                        # a mount, attached nowhere yet
    move_mount(mfd, "", AT_FDCWD, "/merged", MOVE_MOUNT_F_EMPTY_PATH)  # put it in the tree

Why a container engine cares: options no longer have to fit into one page of text (overlay's
``lowerdir+`` adds layers one by one, so hundreds of layers fit), a failed option is reported
alone and the kernel explains it in the context's message log (:func:`read_log`), and a mount
can be prepared while detached and attached atomically. ``open_tree`` + ``mount_setattr`` make
bind mounts with per-mount attributes (read-only, idmapped) the same way.

glibc 2.36 has wrappers for some of these but not all, so every call goes through syscall(2).
"""

from __future__ import annotations

import ctypes
import errno as E
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

from kit.errors import KitError
from kit.linux.explain import EXPLANATIONS
from kit.linux.flags import FlagSet
from kit.linux.syscall import quote, raw_syscall, traced

T = TypeVar("T")

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

# --- fsopen(2) / fsmount(2) / fspick(2) ----------------------------------------------------------
FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
FSPICK_CLOEXEC = 0x1
FSPICK_SYMLINK_NOFOLLOW = 0x2
FSPICK_NO_AUTOMOUNT = 0x4
FSPICK_EMPTY_PATH = 0x8

FSOPEN = FlagSet((("FSOPEN_CLOEXEC", FSOPEN_CLOEXEC),))
FSMOUNT = FlagSet((("FSMOUNT_CLOEXEC", FSMOUNT_CLOEXEC),))
FSPICK = FlagSet(
    (
        ("FSPICK_CLOEXEC", FSPICK_CLOEXEC),
        ("FSPICK_SYMLINK_NOFOLLOW", FSPICK_SYMLINK_NOFOLLOW),
        ("FSPICK_NO_AUTOMOUNT", FSPICK_NO_AUTOMOUNT),
        ("FSPICK_EMPTY_PATH", FSPICK_EMPTY_PATH),
    )
)

# --- fsconfig(2) commands ------------------------------------------------------------------------
FSCONFIG_SET_FLAG = 0  # a flag option without value, e.g. "userxattr"
FSCONFIG_SET_STRING = 1  # key=value, e.g. "lowerdir+" = "/layers/1"
FSCONFIG_SET_BINARY = 2
FSCONFIG_SET_PATH = 3
FSCONFIG_SET_PATH_EMPTY = 4
FSCONFIG_SET_FD = 5
FSCONFIG_CMD_CREATE = 6  # all options given: create (or find) the superblock
FSCONFIG_CMD_RECONFIGURE = 7
FSCONFIG_CMD_CREATE_EXCL = 8  # like CREATE, but never reuse an existing superblock (6.6+)

FSCONFIG_COMMANDS: dict[int, str] = {
    FSCONFIG_SET_FLAG: "FSCONFIG_SET_FLAG",
    FSCONFIG_SET_STRING: "FSCONFIG_SET_STRING",
    FSCONFIG_SET_BINARY: "FSCONFIG_SET_BINARY",
    FSCONFIG_SET_PATH: "FSCONFIG_SET_PATH",
    FSCONFIG_SET_PATH_EMPTY: "FSCONFIG_SET_PATH_EMPTY",
    FSCONFIG_SET_FD: "FSCONFIG_SET_FD",
    FSCONFIG_CMD_CREATE: "FSCONFIG_CMD_CREATE",
    FSCONFIG_CMD_RECONFIGURE: "FSCONFIG_CMD_RECONFIGURE",
    FSCONFIG_CMD_CREATE_EXCL: "FSCONFIG_CMD_CREATE_EXCL",
}

# --- mount attributes: fsmount(2) attr_flags and mount_setattr(2) ------------------------------
MOUNT_ATTR_RDONLY = 0x00000001
MOUNT_ATTR_NOSUID = 0x00000002
MOUNT_ATTR_NODEV = 0x00000004
MOUNT_ATTR_NOEXEC = 0x00000008
MOUNT_ATTR__ATIME = 0x00000070  # the atime bits are one field, not independent flags
MOUNT_ATTR_RELATIME = 0x00000000
MOUNT_ATTR_NOATIME = 0x00000010
MOUNT_ATTR_STRICTATIME = 0x00000020
MOUNT_ATTR_NODIRATIME = 0x00000080
MOUNT_ATTR_IDMAP = 0x00100000
MOUNT_ATTR_NOSYMFOLLOW = 0x00200000

MOUNT_ATTR = FlagSet(
    (
        ("MOUNT_ATTR_RDONLY", MOUNT_ATTR_RDONLY),
        ("MOUNT_ATTR_NOSUID", MOUNT_ATTR_NOSUID),
        ("MOUNT_ATTR_NODEV", MOUNT_ATTR_NODEV),
        ("MOUNT_ATTR_NOEXEC", MOUNT_ATTR_NOEXEC),
        ("MOUNT_ATTR__ATIME", MOUNT_ATTR__ATIME),
        ("MOUNT_ATTR_NOATIME", MOUNT_ATTR_NOATIME),
        ("MOUNT_ATTR_STRICTATIME", MOUNT_ATTR_STRICTATIME),
        ("MOUNT_ATTR_NODIRATIME", MOUNT_ATTR_NODIRATIME),
        ("MOUNT_ATTR_IDMAP", MOUNT_ATTR_IDMAP),
        ("MOUNT_ATTR_NOSYMFOLLOW", MOUNT_ATTR_NOSYMFOLLOW),
    )
)

# --- move_mount(2) -------------------------------------------------------------------------------
MOVE_MOUNT_F_SYMLINKS = 0x00000001
MOVE_MOUNT_F_AUTOMOUNTS = 0x00000002
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004  # "from" is the fd itself (a detached mount)
MOVE_MOUNT_T_SYMLINKS = 0x00000010
MOVE_MOUNT_T_AUTOMOUNTS = 0x00000020
MOVE_MOUNT_T_EMPTY_PATH = 0x00000040
MOVE_MOUNT_SET_GROUP = 0x00000100
MOVE_MOUNT_BENEATH = 0x00000200

MOVE_MOUNT = FlagSet(
    (
        ("MOVE_MOUNT_F_SYMLINKS", MOVE_MOUNT_F_SYMLINKS),
        ("MOVE_MOUNT_F_AUTOMOUNTS", MOVE_MOUNT_F_AUTOMOUNTS),
        ("MOVE_MOUNT_F_EMPTY_PATH", MOVE_MOUNT_F_EMPTY_PATH),
        ("MOVE_MOUNT_T_SYMLINKS", MOVE_MOUNT_T_SYMLINKS),
        ("MOVE_MOUNT_T_AUTOMOUNTS", MOVE_MOUNT_T_AUTOMOUNTS),
        ("MOVE_MOUNT_T_EMPTY_PATH", MOVE_MOUNT_T_EMPTY_PATH),
        ("MOVE_MOUNT_SET_GROUP", MOVE_MOUNT_SET_GROUP),
        ("MOVE_MOUNT_BENEATH", MOVE_MOUNT_BENEATH),
    )
)

# --- open_tree(2) --------------------------------------------------------------------------------
OPEN_TREE_CLONE = 0x1  # a detached copy of the mount (a bind mount not yet attached)
OPEN_TREE_CLOEXEC = os.O_CLOEXEC

OPEN_TREE = FlagSet(
    (
        ("OPEN_TREE_CLONE", OPEN_TREE_CLONE),
        ("OPEN_TREE_CLOEXEC", OPEN_TREE_CLOEXEC),
        ("AT_RECURSIVE", AT_RECURSIVE),
        ("AT_EMPTY_PATH", AT_EMPTY_PATH),
        ("AT_SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW),
    )
)
AT_FLAGS = FlagSet(
    (
        ("AT_RECURSIVE", AT_RECURSIVE),
        ("AT_EMPTY_PATH", AT_EMPTY_PATH),
        ("AT_SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW),
    )
)

# Propagation values for struct mount_attr (the same numbers as mount(2)'s MS_* flags).
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
PROPAGATION_NAMES: dict[int, str] = {
    0: "0",
    MS_UNBINDABLE: "MS_UNBINDABLE",
    MS_PRIVATE: "MS_PRIVATE",
    MS_SLAVE: "MS_SLAVE",
    MS_SHARED: "MS_SHARED",
}


class MountAttr(ctypes.Structure):
    """``struct mount_attr`` (MOUNT_ATTR_SIZE_VER0 = 32 bytes)."""

    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


# (syscall, errno) -> (likely cause, fix) of the new mount API, added to kit.linux.explain's.
EXPLANATIONS.update(
    {
        ("fsopen", E.ENODEV): (
            "the filesystem type {fsname} is not known to this kernel",
            "load its module (modprobe {fsname}) or use a kernel built with it",
        ),
        ("fsopen", E.EPERM): (
            "creating a filesystem context needs CAP_SYS_ADMIN in the user namespace that owns the "
            "mount namespace, and {fsname} must allow mounting inside a user namespace",
            "run as root, or create a user and mount namespace first",
        ),
        ("fsconfig", E.EINVAL): (
            "the filesystem rejected {key} (an option this kernel does not know, a value it "
            "refuses, or an option given in the wrong order)",
            "see what the kernel said; `lowerdir+` needs Linux 6.8, `userxattr` Linux 5.11",
        ),
        ("fsconfig", E.ENOENT): (
            "the path given for {key} does not exist",
            "create the directory before configuring the mount",
        ),
        ("fsconfig", E.EBUSY): (
            "the context was already used to create a superblock",
            "open a new context with fsopen for another mount",
        ),
        ("fsconfig", E.EPERM): (
            "the filesystem refused the option for an unprivileged caller",
            "run as root, or use options allowed in a user namespace (overlay: userxattr)",
        ),
        ("fsmount", E.EINVAL): (
            "the context has no superblock yet (FSCONFIG_CMD_CREATE was not called) or an "
            "attribute flag is invalid",
            "call fsconfig(fd, FSCONFIG_CMD_CREATE) before fsmount",
        ),
        ("move_mount", E.EINVAL): (
            "the source is not a mount, or the target's mount is shared and the move would "
            "propagate a detached tree",
            "make the target's parent mount private first (mount --make-rprivate)",
        ),
        ("move_mount", E.ENOENT): (
            "the target {to_path} does not exist",
            "create the mount point first",
        ),
        ("open_tree", E.EPERM): (
            "cloning a mount tree (OPEN_TREE_CLONE) needs CAP_SYS_ADMIN in the mount namespace's "
            "user namespace",
            "run as root, or in a user and mount namespace of your own",
        ),
        ("open_tree", E.EINVAL): (
            "the flags do not fit together (AT_RECURSIVE needs OPEN_TREE_CLONE) or the path is "
            "not reachable",
            "check the flags",
        ),
        ("mount_setattr", E.EINVAL): (
            "an attribute is invalid for this mount (idmapping needs a detached mount from "
            "open_tree and a user namespace fd; the atime bits must be set as one field)",
            "idmap only detached mounts, and pass MOUNT_ATTR__ATIME in attr_clr when setting "
            "an atime mode",
        ),
        ("mount_setattr", E.EPERM): (
            "changing these attributes needs CAP_SYS_ADMIN, and locked flags (from a more "
            "privileged namespace) cannot be cleared",
            "run as root, and keep flags that were locked",
        ),
    }
)


def _fd(fd: int) -> str:
    return "AT_FDCWD" if fd == AT_FDCWD else str(fd)


def read_log(fd: int) -> list[str]:
    """Messages the kernel left in a filesystem context's log (``e ...``, ``w ...``, ``i ...``).

    When fsconfig fails, the errno says little; the log says which option and why, e.g.
    ``e overlay: unknown parameter 'lowerdir+'``. Reading removes the messages.
    """
    messages: list[str] = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break  # ENODATA: the log is empty
        if not data:
            break
        messages.append(data.decode(errors="replace").rstrip("\n"))
    return messages


def _call(
    name: str,
    args: Sequence[str],
    call: Callable[[], T],
    *,
    context: dict[str, object] | None = None,
    note: str | None = None,
    log_fd: int | None = None,
) -> T:
    """:func:`traced`, plus what the kernel wrote in the context's log about a failure."""
    try:
        return traced(name, args, call, context=context, note=note)  # type: ignore[arg-type]
    except KitError as error:
        if log_fd is not None:
            said = read_log(log_fd)
            if said:
                error.cause = (error.cause or "the kernel refused") + (
                    "; the kernel said: " + " / ".join(said)
                )
        raise


def fsopen(fsname: str, flags: int = FSOPEN_CLOEXEC) -> int:
    """fsopen(2): a new, empty filesystem context of type ``fsname``; returns its fd."""
    return _call(
        "fsopen",
        [quote(fsname), FSOPEN.render(flags)],
        lambda: raw_syscall("fsopen", fsname.encode(), ctypes.c_uint(flags)),
        context={"fsname": fsname},
    )


def fspick(dirfd: int, path: str, flags: int = FSPICK_CLOEXEC) -> int:
    """fspick(2): a context for the existing superblock at ``path`` (for reconfiguring)."""
    return _call(
        "fspick",
        [_fd(dirfd), quote(path), FSPICK.render(flags)],
        lambda: raw_syscall("fspick", ctypes.c_int(dirfd), path.encode(), ctypes.c_uint(flags)),
        context={"path": path},
    )


def fsconfig(
    fd: int,
    cmd: int,
    key: str | None = None,
    value: str | None = None,
    aux: int = 0,
    *,
    note: str | None = None,
) -> None:
    """fsconfig(2): set one option on a filesystem context, or run a command on it.

    A failure is explained with the kernel's own message from the context's log.
    """
    encoded_key = key.encode() if key is not None else None
    encoded_value = value.encode() if value is not None else None
    _call(
        "fsconfig",
        [str(fd), FSCONFIG_COMMANDS.get(cmd, str(cmd)), quote(key), quote(value), str(aux)],
        lambda: raw_syscall(
            "fsconfig",
            ctypes.c_int(fd),
            ctypes.c_uint(cmd),
            ctypes.c_char_p(encoded_key),
            ctypes.c_char_p(encoded_value),
            ctypes.c_int(aux),
        ),
        context={"key": key or FSCONFIG_COMMANDS.get(cmd, str(cmd)), "value": value},
        note=note,
        log_fd=fd,
    )


def set_flag(fd: int, key: str) -> None:
    """Set a flag option (one without a value), e.g. overlay's ``userxattr``."""
    fsconfig(fd, FSCONFIG_SET_FLAG, key)


def set_string(fd: int, key: str, value: str) -> None:
    """Set ``key=value``, e.g. ``lowerdir+`` = ``/layers/1``."""
    fsconfig(fd, FSCONFIG_SET_STRING, key, value)


def create(fd: int) -> None:
    """FSCONFIG_CMD_CREATE: all options are set; create the superblock."""
    fsconfig(fd, FSCONFIG_CMD_CREATE)


def fsmount(fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    """fsmount(2): a detached mount of the context's superblock; returns the mount's fd."""
    return _call(
        "fsmount",
        [str(fd), FSMOUNT.render(flags), MOUNT_ATTR.render(attr_flags)],
        lambda: raw_syscall(
            "fsmount", ctypes.c_int(fd), ctypes.c_uint(flags), ctypes.c_uint(attr_flags)
        ),
        log_fd=fd,
    )


def move_mount(
    from_dirfd: int,
    from_path: str,
    to_dirfd: int,
    to_path: str,
    flags: int = 0,
    *,
    note: str | None = None,
) -> None:
    """move_mount(2): attach (or move) a mount to ``to_path``."""
    _call(
        "move_mount",
        [
            _fd(from_dirfd),
            quote(from_path),
            _fd(to_dirfd),
            quote(to_path),
            MOVE_MOUNT.render(flags),
        ],
        lambda: raw_syscall(
            "move_mount",
            ctypes.c_int(from_dirfd),
            from_path.encode(),
            ctypes.c_int(to_dirfd),
            to_path.encode(),
            ctypes.c_uint(flags),
        ),
        context={"from_path": from_path, "to_path": to_path},
        note=note,
    )


def attach(mount_fd: int, target: str, *, note: str | None = None) -> None:
    """Attach a detached mount (from fsmount or open_tree) at ``target``."""
    move_mount(mount_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH, note=note)


def open_tree(dirfd: int, path: str, flags: int = OPEN_TREE_CLOEXEC) -> int:
    """open_tree(2): an fd for the mount at ``path``; with OPEN_TREE_CLONE a detached copy."""
    return _call(
        "open_tree",
        [_fd(dirfd), quote(path), OPEN_TREE.render(flags)],
        lambda: raw_syscall("open_tree", ctypes.c_int(dirfd), path.encode(), ctypes.c_uint(flags)),
        context={"path": path},
    )


def mount_setattr(
    dirfd: int,
    path: str,
    flags: int = 0,
    *,
    attr_set: int = 0,
    attr_clr: int = 0,
    propagation: int = 0,
    userns_fd: int = 0,
) -> None:
    """mount_setattr(2): change attributes (and propagation) of one mount or a whole tree."""
    attr = MountAttr(attr_set, attr_clr, propagation, userns_fd)
    shown = (
        f"{{attr_set={MOUNT_ATTR.render(attr_set)}, attr_clr={MOUNT_ATTR.render(attr_clr)}, "
        f"propagation={PROPAGATION_NAMES.get(propagation, hex(propagation))}, "
        f"userns_fd={userns_fd}}}"
    )
    _call(
        "mount_setattr",
        [_fd(dirfd), quote(path), AT_FLAGS.render(flags), shown, str(ctypes.sizeof(attr))],
        lambda: raw_syscall(
            "mount_setattr",
            ctypes.c_int(dirfd),
            path.encode(),
            ctypes.c_uint(flags),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
        context={"path": path},
    )
