"""Process attributes: prctl, sethostname/setdomainname, chroot, chdir, ids, close_range and
execve."""

from __future__ import annotations

import ctypes
import os
import signal

from kit.linux.flags import CLOSE_RANGE, PR_SET_NAME, PR_SET_PDEATHSIG, PRCTL_OPTIONS
from kit.linux.syscall import check, libc, quote, raw_syscall, traced

libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2), traced with the option's name."""
    shown = [PRCTL_OPTIONS.get(option, str(option)), str(arg2)]
    if option == PR_SET_PDEATHSIG:
        shown[1] = signal.Signals(arg2).name if arg2 else "0"
    return traced(
        "prctl",
        shown,
        lambda: check(libc.prctl(option, arg2, arg3, arg4, arg5)),
    )


def set_parent_death_signal(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies.

    The "parent" is the parent *thread*: if the thread that forked us exits, the signal fires.
    kit's init processes are single-threaded, so this means the parent process there.
    """
    prctl(PR_SET_PDEATHSIG, sig)


def set_process_name(name: str) -> None:
    """The name ``ps -o comm`` and /proc/PID/comm show (the kernel keeps 15 bytes)."""
    buffer = ctypes.create_string_buffer(name.encode())
    prctl(PR_SET_NAME, ctypes.addressof(buffer))


def sethostname(name: str) -> None:
    data = name.encode()
    traced(
        "sethostname",
        [quote(name), str(len(data))],
        lambda: check(libc.sethostname(data, len(data))),
    )


def setdomainname(name: str) -> None:
    """The NIS domain name, the UTS namespace's other name (``uname -n`` is the hostname)."""
    data = name.encode()
    traced(
        "setdomainname",
        [quote(name), str(len(data))],
        lambda: check(libc.setdomainname(data, len(data))),
    )


def chroot(path: str) -> None:
    traced("chroot", [quote(path)], lambda: os.chroot(path), context={"path": path})


def chdir(path: str) -> None:
    traced("chdir", [quote(path)], lambda: os.chdir(path), context={"path": path})


def setgroups(groups: list[int]) -> None:
    traced(
        "setgroups",
        [str(len(groups)), "[" + ", ".join(map(str, groups)) + "]"],
        lambda: os.setgroups(groups),
    )


def setresgid(gid: int) -> None:
    traced("setresgid", [str(gid)] * 3, lambda: os.setresgid(gid, gid, gid), context={"gid": gid})


def setresuid(uid: int) -> None:
    traced("setresuid", [str(uid)] * 3, lambda: os.setresuid(uid, uid, uid), context={"uid": uid})


def setsid() -> int:
    return traced("setsid", [], os.setsid)


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    """close_range(2); with CLOSE_RANGE_CLOEXEC the fds stay open but close at execve."""
    shown_last = "~0U" if last == 0xFFFFFFFF else str(last)
    traced(
        "close_range",
        [str(first), shown_last, CLOSE_RANGE.render(flags)],
        lambda: raw_syscall(
            "close_range", ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)
        ),
    )


def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
    """execve(2). On success it never returns; the trace event is emitted before the call."""
    from kit.trace import Event, tracer

    log = tracer()
    rendered = [quote(path), "[" + ", ".join(quote(a) for a in argv) + "]", f"{len(env)} vars"]
    if log.active:
        log.emit(
            Event(
                "syscall",
                "execve",
                args=rendered,
                result="…",
                message="replaces the init with the container's program",
                pid=os.getpid(),
            )
        )
    # On failure, traced() emits the failed call with its errno and raises the explanation.
    traced("execve", rendered, lambda: os.execve(path, argv, env), context={"path": path})
