"""Capabilities and privilege switches: capget/capset(2) and the prctl(2) options for them.

A process has five capability sets (capabilities(7)), each a bit mask indexed by capability
number (``CAP_CHOWN`` is bit 0):

* **effective**: what the kernel checks right now;
* **permitted**: the most the process may make effective;
* **inheritable**: what may pass through execve to a program whose file grants it;
* **bounding**: a ceiling; what is not here can never be gained again, not even by execve of
  a setuid-root program (changed one capability at a time with ``PR_CAPBSET_DROP``);
* **ambient**: what passes through execve of *ordinary* programs to a non-root user.

Three more switches matter to a container init: ``PR_SET_KEEPCAPS`` (keep the permitted set
across a change from uid 0 to another uid), ``PR_SET_NO_NEW_PRIVS`` (execve may never grant
anything: setuid bits and file capabilities stop working) and the capability numbers this
kernel knows (``/proc/sys/kernel/cap_last_cap``).
"""

from __future__ import annotations

import ctypes
import errno as E
import functools
from dataclasses import dataclass

from kit.linux.explain import EXPLANATIONS
from kit.linux.flags import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    PR_CAPBSET_READ,
    PR_GET_NO_NEW_PRIVS,
    PR_SET_KEEPCAPS,
    PR_SET_NO_NEW_PRIVS,
)
from kit.linux.syscall import check, libc, traced

#: Capability names by number, from include/uapi/linux/capability.h (kernel ABI).
CAP_NAMES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS: dict[str, int] = {name: number for number, name in enumerate(CAP_NAMES)}

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def cap_name(number: int) -> str:
    return CAP_NAMES[number] if number < len(CAP_NAMES) else f"CAP_{number}"


def numbers_of(mask: int) -> list[int]:
    return [bit for bit in range(64) if mask >> bit & 1]


def render_mask(mask: int) -> str:
    """``CAP_CHOWN|CAP_KILL`` (or ``0``), the way strace prints a capability set."""
    if mask == 0:
        return "0"
    return "|".join(cap_name(n) for n in numbers_of(mask))


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


# Version 3 of the interface takes two 32-bit words per set: capabilities 0-31, then 32-63.
_DataPair = _Data * 2
libc.capget.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]
libc.capset.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


@dataclass(frozen=True)
class CapSets:
    """The three sets capget/capset handle, as 64-bit masks."""

    effective: int
    permitted: int
    inheritable: int

    def render(self) -> str:
        return (
            f"{{effective={render_mask(self.effective)}, permitted={render_mask(self.permitted)}"
            f", inheritable={render_mask(self.inheritable)}}}"
        )


def capget() -> CapSets:
    """This process's effective, permitted and inheritable sets."""
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _DataPair()

    def call() -> CapSets:
        check(libc.capget(ctypes.byref(header), data))
        return CapSets(
            data[0].effective | data[1].effective << 32,
            data[0].permitted | data[1].permitted << 32,
            data[0].inheritable | data[1].inheritable << 32,
        )

    return traced(
        "capget",
        ["{version=_LINUX_CAPABILITY_VERSION_3, pid=0}"],
        call,
        render_result=lambda sets: f"0  {sets.render()}",
    )


def capset(sets: CapSets, *, note: str | None = None) -> None:
    """Set this process's effective, permitted and inheritable sets at once."""
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _DataPair()
    for index, shift in ((0, 0), (1, 32)):
        data[index].effective = sets.effective >> shift & 0xFFFFFFFF
        data[index].permitted = sets.permitted >> shift & 0xFFFFFFFF
        data[index].inheritable = sets.inheritable >> shift & 0xFFFFFFFF
    traced(
        "capset",
        ["{version=_LINUX_CAPABILITY_VERSION_3, pid=0}", sets.render()],
        lambda: check(libc.capset(ctypes.byref(header), data)),
        note=note,
    )


def _prctl(shown: list[str], option: int, arg2: int = 0, arg3: int = 0, **kw: object) -> int:
    return traced(
        "prctl",
        shown,
        lambda: check(libc.prctl(option, arg2, arg3, 0, 0)),
        **kw,  # type: ignore[arg-type]
    )


def bounding_has(cap: int) -> bool:
    """Whether ``cap`` is still in the bounding set (reading it needs no privilege)."""
    return bool(check(libc.prctl(PR_CAPBSET_READ, cap, 0, 0, 0)))


def bounding_drop(cap: int) -> None:
    """Remove ``cap`` from the bounding set, for good (needs CAP_SETPCAP in effective)."""
    _prctl(["PR_CAPBSET_DROP", cap_name(cap)], PR_CAPBSET_DROP, cap)


def ambient_clear_all() -> None:
    _prctl(
        ["PR_CAP_AMBIENT", "PR_CAP_AMBIENT_CLEAR_ALL", "0"],
        PR_CAP_AMBIENT,
        PR_CAP_AMBIENT_CLEAR_ALL,
    )


def ambient_raise(cap: int) -> None:
    """Add ``cap`` to the ambient set; it must already be permitted and inheritable."""
    _prctl(
        ["PR_CAP_AMBIENT", "PR_CAP_AMBIENT_RAISE", cap_name(cap)],
        PR_CAP_AMBIENT,
        PR_CAP_AMBIENT_RAISE,
        cap,
        context={"cap": cap_name(cap)},
    )


def set_keepcaps(keep: bool) -> None:
    """Keep (or not) the permitted set when the uids change from 0 to non-zero."""
    _prctl(["PR_SET_KEEPCAPS", "1" if keep else "0"], PR_SET_KEEPCAPS, int(keep))


def set_no_new_privs() -> None:
    """From now on, execve never grants privileges; this cannot be undone (and is inherited)."""
    _prctl(
        ["PR_SET_NO_NEW_PRIVS", "1"],
        PR_SET_NO_NEW_PRIVS,
        1,
        note="setuid bits and file capabilities no longer elevate",
    )


def no_new_privs() -> bool:
    return bool(check(libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)))


@functools.cache
def last_cap() -> int:
    """The highest capability number the running kernel knows.

    Read once and remembered: the container process asks before pivot_root, while /proc is
    still the host's, so a container without /proc can still drop capabilities.
    """
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


EXPLANATIONS.update(
    {
        ("capset", E.EPERM): (
            "a capability was asked for that the process does not have in its permitted set "
            "(a process can only keep or give up capabilities, never add new ones), or an "
            "inheritable capability is outside the bounding set",
            "ask only for capabilities kit itself holds (see /proc/self/status CapPrm)",
        ),
        ("prctl", E.EPERM): (
            "dropping from the bounding set needs CAP_SETPCAP in the effective set; raising an "
            "ambient capability ({cap}) needs it in both the permitted and inheritable sets",
            "drop bounding capabilities before giving up CAP_SETPCAP; list ambient "
            "capabilities in the permitted and inheritable sets too",
        ),
    }
)
