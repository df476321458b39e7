"""Landlock's three system calls, and its access rights per ABI version.

Landlock (a Linux security module since 5.13) lets a process restrict *itself*: no privilege
is needed, and the restriction can never be lifted, only tightened, by it or its children.

1. ``landlock_create_ruleset(attr)`` returns a file descriptor for a new ruleset that
   *handles* some access rights: those rights become denied everywhere, except where a rule
   allows them.
2. ``landlock_add_rule(ruleset, LANDLOCK_RULE_PATH_BENEATH, {allowed, parent_fd})`` allows
   some of the handled rights for everything beneath an open file or directory.
3. ``landlock_restrict_self(ruleset)`` enforces the ruleset on the calling thread (and on
   everything it execs or forks later). The kernel requires no_new_privs for this, unless the
   caller has CAP_SYS_ADMIN: an unprivileged process must not be able to confuse a setuid
   program by sandboxing it.

Each kernel release that extended Landlock raised its ABI version; a ruleset may only handle
rights the running kernel knows (``landlock_create_ruleset(NULL, 0, VERSION)`` asks which).
"""

from __future__ import annotations

import ctypes

from kit.errors import KitError
from kit.linux.syscall import raw_syscall, traced

# --- access rights for files (include/uapi/linux/landlock.h) ------------------------------------
EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2: link or rename a file into another directory
TRUNCATE = 1 << 14  # ABI 3: truncate(2), ftruncate(2), open with O_TRUNC
IOCTL_DEV = 1 << 15  # ABI 5: ioctl(2) on character and block devices

ACCESS_NAMES: dict[int, str] = {
    EXECUTE: "EXECUTE",
    WRITE_FILE: "WRITE_FILE",
    READ_FILE: "READ_FILE",
    READ_DIR: "READ_DIR",
    REMOVE_DIR: "REMOVE_DIR",
    REMOVE_FILE: "REMOVE_FILE",
    MAKE_CHAR: "MAKE_CHAR",
    MAKE_DIR: "MAKE_DIR",
    MAKE_REG: "MAKE_REG",
    MAKE_SOCK: "MAKE_SOCK",
    MAKE_FIFO: "MAKE_FIFO",
    MAKE_BLOCK: "MAKE_BLOCK",
    MAKE_SYM: "MAKE_SYM",
    REFER: "REFER",
    TRUNCATE: "TRUNCATE",
    IOCTL_DEV: "IOCTL_DEV",
}

#: Every file-system right each ABI version knows (versions 4, 6 and 7 added network,
#: scoping and logging features, no new file rights).
_ABI1 = (1 << 13) - 1
FS_RIGHTS_BY_ABI: dict[int, int] = {
    1: _ABI1,
    2: _ABI1 | REFER,
    3: _ABI1 | REFER | TRUNCATE,
    4: _ABI1 | REFER | TRUNCATE,
    5: _ABI1 | REFER | TRUNCATE | IOCTL_DEV,
}

#: The rights that make sense on a file (not a directory); a rule on a file may grant only
#: these (EINVAL otherwise).
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

RULE_PATH_BENEATH = 1
CREATE_RULESET_VERSION = 1 << 0


def fs_rights(abi: int) -> int:
    """The file-system rights a kernel with this ABI version handles."""
    if abi <= 0:
        return 0
    return FS_RIGHTS_BY_ABI[min(abi, max(FS_RIGHTS_BY_ABI))]


def render_access(mask: int) -> str:
    """``LANDLOCK_ACCESS_FS_READ_FILE|LANDLOCK_ACCESS_FS_READ_DIR``, as strace prints it."""
    names = [f"LANDLOCK_ACCESS_FS_{name}" for bit, name in ACCESS_NAMES.items() if mask & bit]
    return "|".join(names) or "0"


class RulesetAttr(ctypes.Structure):
    """struct landlock_ruleset_attr (fields after handled_access_fs: ABI 4 and 6)."""

    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class PathBeneathAttr(ctypes.Structure):
    """struct landlock_path_beneath_attr (packed: 12 bytes)."""

    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled at boot."""
    try:
        return int(
            traced(
                "landlock_create_ruleset",
                ["NULL", "0", "LANDLOCK_CREATE_RULESET_VERSION"],
                lambda: raw_syscall(
                    "landlock_create_ruleset",
                    None,
                    ctypes.c_size_t(0),
                    ctypes.c_uint32(CREATE_RULESET_VERSION),
                ),
                note="which Landlock ABI does this kernel speak? (creates nothing)",
            )
        )
    except KitError:
        return 0


def create_ruleset(handled_fs: int) -> int:
    """A new ruleset (a file descriptor) that handles ``handled_fs``."""
    attr = RulesetAttr(handled_fs, 0, 0)
    return int(
        traced(
            "landlock_create_ruleset",
            [f"{{handled_access_fs={render_access(handled_fs)}}}", str(ctypes.sizeof(attr)), "0"],
            lambda: raw_syscall(
                "landlock_create_ruleset",
                ctypes.byref(attr),
                ctypes.c_size_t(ctypes.sizeof(attr)),
                ctypes.c_uint32(0),
            ),
            note="these rights are now denied everywhere, except where a rule allows them",
        )
    )


def add_path_rule(ruleset_fd: int, allowed: int, parent_fd: int, path: str) -> None:
    """Allow ``allowed`` beneath the file or directory open on ``parent_fd``."""
    attr = PathBeneathAttr(allowed, parent_fd)
    traced(
        "landlock_add_rule",
        [
            str(ruleset_fd),
            "LANDLOCK_RULE_PATH_BENEATH",
            f"{{allowed_access={render_access(allowed)}, parent_fd={parent_fd}<{path}>}}",
            "0",
        ],
        lambda: raw_syscall(
            "landlock_add_rule",
            ctypes.c_int(ruleset_fd),
            ctypes.c_int(RULE_PATH_BENEATH),
            ctypes.byref(attr),
            ctypes.c_uint32(0),
        ),
        context={"path": path},
    )


def restrict_self(ruleset_fd: int) -> None:
    """Enforce the ruleset on this thread and every process it starts from now on."""
    traced(
        "landlock_restrict_self",
        [str(ruleset_fd), "0"],
        lambda: raw_syscall("landlock_restrict_self", ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)),
        note="from now on, only the rules' paths are reachable (for the handled rights)",
    )
