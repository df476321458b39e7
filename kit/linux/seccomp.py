"""seccomp(2): hand the kernel a BPF filter that judges every later system call.

Once installed, a filter can never be removed, only joined by more filters (all of them run;
the strictest answer wins), and it is inherited by every child and kept across execve.
Installing one needs either no_new_privs (so a filtered setuid program cannot be tricked
into misbehaving by a refused call) or CAP_SYS_ADMIN.
"""

from __future__ import annotations

import ctypes
import errno as E

from kit.linux.explain import EXPLANATIONS
from kit.linux.flags import FlagSet
from kit.linux.syscall import raw_syscall, traced

SECCOMP_SET_MODE_FILTER = 1

FILTER_FLAGS = FlagSet(
    (
        ("SECCOMP_FILTER_FLAG_TSYNC", 1),
        ("SECCOMP_FILTER_FLAG_LOG", 2),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
    )
)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def set_mode_filter(program: bytes, flags: int = 0, *, note: str | None = None) -> None:
    """Install ``program`` (struct sock_filter[] as bytes) as a seccomp filter."""
    count = len(program) // 8
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(count, ctypes.cast(buffer, ctypes.c_void_p))
    traced(
        "seccomp",
        ["SECCOMP_SET_MODE_FILTER", FILTER_FLAGS.render(flags), f"{{len={count}, filter=...}}"],
        lambda: raw_syscall(
            "seccomp",
            ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
            ctypes.c_uint(flags),
            ctypes.byref(fprog),
        ),
        note=note,
    )


def mode(pid: int | str = "self") -> int:
    """The Seccomp field of /proc/PID/status: 0 off, 1 strict, 2 filter."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    return 0


EXPLANATIONS.update(
    {
        ("seccomp", E.EACCES): (
            "installing a filter needs no_new_privs or CAP_SYS_ADMIN, and this process has "
            "neither (the capabilities were dropped before the filter was installed)",
            "keep no-new-privileges on (kit's default), or install the filter while the "
            "process still holds CAP_SYS_ADMIN",
        ),
        ("seccomp", E.EINVAL): (
            "the kernel refused the filter program: an invalid instruction, a jump past the "
            "end, a program without a final return, or an unknown flag",
            "report this with the output of `kit seccomp show`",
        ),
        ("seccomp", E.ENOMEM): (
            "the filters of this process together exceed the kernel's size limit",
            "use a smaller profile",
        ),
    }
)
