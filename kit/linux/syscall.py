"""How every system call in kit is made: through libc, traced, and explained when it fails.

Python 3.11 has no ``os.unshare``/``os.setns``/``os.mount``; kit calls libc through ctypes. This
module is the only place that knows about ctypes' errno handling; the wrappers in the sibling
modules describe their arguments and call :func:`traced`.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kit.errors import KitError
from kit.linux.explain import explain
from kit.trace import Event, tracer

T = TypeVar("T")

# The interpreter is linked against libc, so its own symbols include libc's: no need to look
# the library up (ctypes.util.find_library runs external programs and costs milliseconds).
libc = ctypes.CDLL(None, use_errno=True)

# Syscall numbers for calls glibc 2.36 has no wrapper for (or whose wrapper does more than
# the call, like clone's). They differ per architecture.
# (kit/security/syscall_tables.py has every call, generated from the kernel headers for
# seccomp; this short list keeps that big table out of every container start (importing it
# costs ~0.3 ms, which the cache of compiled seccomp filters otherwise spares a start), and
# tests/test_seccomp.py checks that the two agree.)
_SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {
        "clone": 56,
        "pivot_root": 155,
        "close_range": 436,
        "openat2": 437,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "pidfd_open": 434,
        "mount_setattr": 442,
        "landlock_create_ruleset": 444,
        "landlock_add_rule": 445,
        "landlock_restrict_self": 446,
        "seccomp": 317,
        "capget": 125,
        "capset": 126,
        "bpf": 321,
    },
    "aarch64": {
        "clone": 220,
        "pivot_root": 41,
        "close_range": 436,
        "openat2": 437,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "pidfd_open": 434,
        "mount_setattr": 442,
        "landlock_create_ruleset": 444,
        "landlock_add_rule": 445,
        "landlock_restrict_self": 446,
        "seccomp": 277,
        "capget": 90,
        "capset": 91,
        "bpf": 280,
    },
}


def syscall_number(name: str) -> int:
    """The number of a system call on this machine's architecture."""
    machine = os.uname().machine
    try:
        return _SYSCALL_NUMBERS[machine][name]
    except KeyError:
        raise KitError(
            f"no syscall number for {name} on {machine}",
            cause="kit knows the syscall numbers of x86_64 and aarch64 only",
            fix="run kit on x86_64 or aarch64",
        ) from None


def check(result: int) -> int:
    """Turn libc's ``-1`` + errno convention into an OSError."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def raw_syscall(name: str, *args: Any) -> int:
    """Call a system call by name through ``syscall(2)``; raises OSError on failure."""
    return check(libc.syscall(ctypes.c_long(syscall_number(name)), *args))


def quote(value: str | bytes | None) -> str:
    """Render a string argument as strace does: quoted, or ``NULL``."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def traced(
    name: str,
    args: Sequence[str],
    call: Callable[[], T],
    *,
    context: dict[str, Any] | None = None,
    note: str | None = None,
    render_result: Callable[[T], str] | None = None,
) -> T:
    """Make one system call, emit its trace event, and explain a failure.

    ``call`` either returns the result or raises OSError (libc wrappers go through
    :func:`check`). ``context`` carries the raw arguments the explanation may need (paths,
    flags). ``note`` is printed after the call in the trace (e.g. what the call means).
    """
    started = time.perf_counter()
    failure: OSError | None = None
    result: T | None = None
    try:
        result = call()
    except OSError as exc:
        failure = exc
    elapsed_ms = (time.perf_counter() - started) * 1000
    log = tracer()
    if log.active:
        rendered = None
        if failure is None:
            rendered = render_result(result) if render_result else _default_result(result)
        log.emit(
            Event(
                "syscall",
                name,
                args=list(args),
                result=rendered,
                errno=failure.errno if failure else None,
                duration_ms=round(elapsed_ms, 3),
                message=note,
                pid=os.getpid(),
            )
        )
    if failure is not None:
        raise explain(name, list(args), failure.errno or 0, context or {}) from None
    return result  # type: ignore[return-value]


def _default_result(result: object) -> str:
    if result is None:
        return "0"
    if isinstance(result, int):
        return str(result)
    return "0"
