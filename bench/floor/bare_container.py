"""The least a container start in Python can cost: a floor for kit's start-up figure.

    python3 bare_container.py ROOTFS PROGRAM

No kit here, and almost nothing of a real engine: new namespaces, the root filesystem, /proc,
pivot_root, execve, and a wait. It skips what kit and runc both do besides (cgroups and their
device policy, /dev, masked and read-only paths, capabilities, no_new_privs, seccomp, a
hostname, a record for `ps`), and it imports only ctypes. Timed next to runc, it shows how much
of runc's time a Python engine has already spent before doing any of that.

    python3 bare_container.py --design-imports ROOTFS PROGRAM

also imports the standard-library modules kit's design cannot do without (argparse for the
command line, dataclasses for the spec, json for the events and the record) before starting
the same bare container: the floor for an engine built the way kit is, before any of its own
code.
"""

import ctypes
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x20000000, 0x40000000
MS_BIND, MS_REC, MS_PRIVATE, MNT_DETACH = 0x1000, 0x4000, 0x40000, 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}[os.uname().machine]


def check(result: int, what: str) -> None:
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ["--design-imports"]:
        arguments.pop(0)
        import argparse  # noqa: F401
        import dataclasses  # noqa: F401
        import json  # noqa: F401
    if len(arguments) != 2:
        sys.exit("usage: bare_container.py [--design-imports] ROOTFS PROGRAM (run as root)")
    rootfs, program = os.fsencode(arguments[0]), arguments[1]
    # The same namespaces `runc spec` asks for. A new PID namespace applies to the children
    # of the process that unshares, so the container is the child forked next (its PID 1).
    flags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID
    check(libc.unshare(flags | CLONE_NEWNET), "unshare")
    pid = os.fork()
    if pid == 0:
        # Keep the container's mounts from propagating back to the host.
        check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        # pivot_root needs the new root to be a mount point.
        check(libc.mount(rootfs, rootfs, None, MS_BIND | MS_REC, None), "bind the rootfs")
        os.chdir(rootfs)
        check(libc.mount(b"proc", b"proc", b"proc", 0, None), "mount /proc")
        # pivot_root(".", "."): the old root ends up stacked under the new one; detach it.
        check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
        check(libc.umount2(b".", MNT_DETACH), "detach the old root")
        os.chdir("/")
        os.execv(program, [program])
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
