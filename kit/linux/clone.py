"""clone(2) with namespace flags: a fork whose child starts inside new namespaces.

``unshare(CLONE_NEWUSER)`` would move the *calling* process into the new user namespace. The
init parent must stay outside it: only a process in the parent namespace can write the child's
uid and gid maps (the kernel's rule, see user_namespaces(7)), and the parent keeps its host
privileges to manage cgroups. So the container process is created with clone(2) and the
namespace flags, the way runc's nsexec does: the kernel creates the user namespace first and
makes every other new namespace (mount, PID, UTS, IPC, network) *owned* by it, so root of the
user namespace may later mount /proc for its PID namespace, set its hostname, and so on. With
CLONE_NEWPID the child is PID 1 of the new PID namespace.

Python has no ``os.clone``. ``os.fork`` is libc's fork() wrapped in three interpreter hooks
(``PyOS_BeforeFork``, ``PyOS_AfterFork_Child``/``_Parent``: the import lock, the GIL and
``os.register_at_fork`` handlers); this module calls the same hooks around the raw clone
system call, which, with no new stack, behaves exactly like fork(). Only for single-threaded
processes, as with fork.
"""

from __future__ import annotations

import ctypes
import os
import signal

from kit.linux.flags import CLONE
from kit.linux.syscall import libc, syscall_number, traced


def _raw_clone(flags: int) -> int:
    number = syscall_number("clone")
    ctypes.pythonapi.PyOS_BeforeFork()
    pid = libc.syscall(
        ctypes.c_long(number),
        ctypes.c_ulong(flags | signal.SIGCHLD),  # SIGCHLD: the parent is told when it exits
        None,  # no new stack: the child continues on a copy of ours, like fork()
        # parent_tid, child_tid, tls: unused (their order differs between architectures)
        None,
        None,
        ctypes.c_ulong(0),
    )
    err = ctypes.get_errno()
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
    else:
        ctypes.pythonapi.PyOS_AfterFork_Parent()
    if pid == -1:
        raise OSError(err, os.strerror(err))
    return int(pid)


def fork_into_namespaces(flags: int) -> int:
    """Fork a child that starts in new namespaces (``flags``: CLONE_NEW* bits).

    Returns the child's PID (as this process sees it) in the parent and 0 in the child. Only
    the parent reports the call in the trace (the child would report the same call again).
    """
    shown = [f"flags={CLONE.render(flags)}|SIGCHLD", "child_stack=NULL"]
    context = {"flags": CLONE.render(flags)}
    try:
        pid = _raw_clone(flags)
    except OSError as failure:
        traced("clone", shown, lambda error=failure: _fail(error), context=context)
        raise AssertionError("unreachable") from None
    if pid == 0:
        return 0
    return traced(
        "clone", shown, lambda: pid, context=context, note=f"child is PID {pid} on the host"
    )


def _fail(error: OSError) -> int:
    raise error
