"""What ``nsenter`` does, in a child interpreter: join a process's namespaces, nothing else.

``nsenter --target PID --all`` opens ``/proc/PID/ns/*`` and calls setns(2) for each. It does
not take on the process's capabilities, no_new_privs, seccomp filter, Landlock domain or
cgroups: the entered process keeps the caller's (host root's). ``kit exec`` does both halves.
The lesson keeps this child alive so that its /proc entries can be compared with the
container's.
"""

from __future__ import annotations

import os

from kit.linux.flags import CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS
from kit.linux.namespaces import setns

NS_FILES = ("mnt", "uts", "ipc", "net", "cgroup", "pid")

#: /proc/PID/ns name -> flag; mount last (it moves our root into the container).
_ORDER = (
    ("ipc", CLONE_NEWIPC),
    ("uts", CLONE_NEWUTS),
    ("net", CLONE_NEWNET),
    ("cgroup", CLONE_NEWCGROUP),
    ("mnt", CLONE_NEWNS),
)


def _status(proc: int, fields: tuple[str, ...]) -> dict[str, str]:
    out = {}
    fd = os.open("status", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
    with os.fdopen(fd) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in fields:
                out[key] = value.strip()
    return out


def join_namespaces(pid: int) -> dict[str, object]:
    """setns into ``pid``'s IPC, UTS, network, cgroup and mount namespaces (like nsenter;
    the PID namespace would apply only to a child). Returns what we then are."""
    # Our own /proc entry, opened now: once we are in the container's mount namespace,
    # /proc is the container's procfs, where this process (outside its PID namespace) is not.
    proc = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    fds = {
        name: os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC) for name, _ in _ORDER
    }
    for name, flag in _ORDER:
        setns(fds[name], flag, path=f"/proc/{pid}/ns/{name}")
        os.close(fds[name])
    ids = {name: os.stat(f"ns/{name}", dir_fd=proc).st_ino for name in NS_FILES}
    status = _status(proc, ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp"))
    os.close(proc)
    return {"namespaces": ids, "status": status}
