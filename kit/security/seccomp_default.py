"""kit's default seccomp profile: an allow-list in the spirit of Docker's.

Everything not listed fails with EPERM. What is listed is what ordinary programs need: files,
memory, processes, signals, clocks, sockets, the IPC that the IPC namespace isolates. Left out
are calls that reach kernel state no namespace isolates, or that have been a favourite way
into the kernel:

* ``keyctl``, ``add_key``, ``request_key``: the kernel keyring is not namespaced;
* ``mount``, ``umount2``, ``pivot_root``, ``unshare``, ``setns``, ``fsopen``...: allowed only
  with CAP_SYS_ADMIN (a container that was given it is trusted with them anyway);
* ``clone`` with namespace flags: same; ``clone3`` answers ENOSYS instead, because its flags
  sit in memory the filter cannot read, and ENOSYS makes the C library fall back to ``clone``;
* ``reboot``, ``init_module``, ``settimeofday``, ``acct``, ``ptrace`` (before kernel 4.8,
  ptrace could bypass seccomp), ``ioperm``: only with the matching capability;
* ``io_uring_*``: a second system call interface the filter cannot see into (Docker removed it
  from its default profile in 2023 for that reason); ``userfaultfd``, ``kexec_load``,
  ``bpf``, ``perf_event_open``: kernel attack surface that containers rarely need;
* ``socket(AF_VSOCK, ...)``: talks to the hypervisor, not a namespaced network.

The profile is written in Docker's format (rules that depend on capabilities say so in
``includes``/``excludes``); :func:`kit.security.seccomp_profile.resolve_docker` turns it into
the OCI form for one container, given that container's capabilities.
"""

from __future__ import annotations

from typing import Any

_FILES = [
    # open, read, write, close and their variants
    "open", "openat", "openat2", "creat", "close", "close_range", "read", "readv", "pread64",
    "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "lseek",
    "_llseek", "pipe", "pipe2", "dup", "dup2", "dup3", "fcntl", "fcntl64", "ioctl", "flock",
    "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "readahead", "fadvise64",
    "fadvise64_64", "fallocate", "truncate", "truncate64", "ftruncate", "ftruncate64",
    "sendfile", "sendfile64", "splice", "tee", "vmsplice", "copy_file_range",
    # names in directories
    "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "newfstatat", "fstatat64",
    "statx", "statfs", "statfs64", "fstatfs", "fstatfs64", "access", "faccessat",
    "faccessat2", "getcwd", "chdir", "fchdir", "getdents", "getdents64", "mkdir", "mkdirat",
    "rmdir", "link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink",
    "readlinkat", "rename", "renameat", "renameat2", "umask", "name_to_handle_at",
    # device nodes: the filter lets mknod through, CAP_MKNOD decides
    "mknod", "mknodat",
    # ownership, modes, times (the capabilities decide who may)
    "chmod", "fchmod", "fchmodat", "chown", "chown32", "fchown", "fchown32", "fchownat",
    "lchown", "lchown32", "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
    # extended attributes
    "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr", "listxattr",
    "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
]  # fmt: skip

_WAITING = [
    "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait",
    "epoll_wait_old", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd",
    "signalfd4", "timerfd_create", "timerfd_settime", "timerfd_settime64", "timerfd_gettime",
    "timerfd_gettime64", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "fanotify_mark",
    # the older asynchronous I/O interface (its requests are plain reads and writes)
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64",
]  # fmt: skip

_MEMORY = [
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
    "mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages", "membarrier",
    "memfd_create", "memfd_secret", "pkey_alloc", "pkey_free", "pkey_mprotect",
]  # fmt: skip

_PROCESSES = [
    # life and death
    "execve", "execveat", "fork", "vfork", "exit", "exit_group", "wait4", "waitid",
    "waitpid", "restart_syscall",
    # who am I, who are my relatives
    "getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid", "setsid",
    "getcpu", "uname", "sysinfo", "getrandom",
    # user and group ids (CAP_SETUID/CAP_SETGID decide who may change them)
    "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid",
    "getegid32", "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups",
    "getgroups32", "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32",
    "setregid", "setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32",
    "setgroups", "setgroups32", "setfsuid", "setfsuid32", "setfsgid", "setfsgid32",
    # threads and their synchronisation
    "futex", "futex_time64", "futex_waitv", "set_tid_address", "set_robust_list",
    "get_robust_list", "rseq", "get_thread_area", "set_thread_area",
    # scheduling and limits
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr",
    "sched_setattr", "sched_getparam", "sched_setparam", "sched_getscheduler",
    "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "getpriority", "setpriority",
    "ioprio_get", "ioprio_set", "getrlimit", "ugetrlimit", "setrlimit", "prlimit64",
    "getrusage", "times",
    # giving up privileges is always allowed: capabilities, seccomp, Landlock, prctl
    "capget", "capset", "prctl", "seccomp", "landlock_create_ruleset", "landlock_add_rule",
    "landlock_restrict_self",
    # process file descriptors
    "pidfd_open", "pidfd_send_signal", "process_mrelease",
]  # fmt: skip

_SIGNALS = [
    "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
    "rt_sigpending", "rt_sigsuspend", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "sigaltstack", "sigprocmask", "sigreturn",
    "pause", "alarm", "getitimer", "setitimer",
]  # fmt: skip

_TIME = [
    # reading clocks and sleeping; setting them needs CAP_SYS_TIME (and a rule below)
    "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres",
    "clock_getres_time64", "clock_nanosleep", "clock_nanosleep_time64", "nanosleep",
    "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
    "timer_settime", "timer_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64",
]  # fmt: skip

_NETWORK = [
    # sockets in the container's own network namespace (socket itself has a rule below)
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "sendto", "sendmsg", "sendmmsg", "recvfrom",
    "recvmsg", "recvmmsg", "recvmmsg_time64", "shutdown", "socketcall",
]  # fmt: skip

_IPC = [
    # System V and POSIX message queues, semaphores, shared memory: per IPC namespace
    "ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "semctl", "shmget", "shmat", "shmdt", "shmctl", "mq_open",
    "mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
]  # fmt: skip

CLONE_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
AF_VSOCK = 40
ENOSYS = 38

#: (system calls, the capability that makes them available)
# fmt: off
_WITH_CAPABILITY: list[tuple[list[str], str]] = [
    (["open_by_handle_at"], "CAP_DAC_READ_SEARCH"),
    (
        [
            "mount",
            "umount",
            "umount2",
            "mount_setattr",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "sethostname",
            "setdomainname",
            "quotactl",
            "quotactl_fd",
            "fanotify_init",
            "lookup_dcookie",
            "syslog",
            "bpf",
            "perf_event_open",
        ],
        "CAP_SYS_ADMIN",
    ),
    (["reboot"], "CAP_SYS_BOOT"),
    (["chroot"], "CAP_SYS_CHROOT"),
    (["init_module", "finit_module", "delete_module"], "CAP_SYS_MODULE"),
    (["acct"], "CAP_SYS_PACCT"),
    (
        [
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
        ],
        "CAP_SYS_PTRACE",
    ),
    (["iopl", "ioperm"], "CAP_SYS_RAWIO"),
    (["settimeofday", "stime", "clock_settime", "clock_settime64"], "CAP_SYS_TIME"),
    (["vhangup"], "CAP_SYS_TTY_CONFIG"),
    (["mbind", "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node"], "CAP_SYS_NICE"),
    (["syslog"], "CAP_SYSLOG"),
    (["bpf"], "CAP_BPF"),
    (["perf_event_open"], "CAP_PERFMON"),
]
# fmt: on


def _allow(names: list[str], comment: str, **extra: Any) -> dict[str, Any]:
    return {"names": names, "action": "SCMP_ACT_ALLOW", "comment": comment, **extra}


def _arg(index: int, value: int, op: str) -> dict[str, Any]:
    return {"index": index, "value": value, "op": op}


def default_profile() -> dict[str, Any]:
    """A fresh copy of the default profile, in Docker's profile format."""
    syscalls = [
        _allow(_FILES, "files and directories"),
        _allow(_WAITING, "waiting for files, timers and events"),
        _allow(_MEMORY, "memory"),
        _allow(_PROCESSES, "processes, threads, ids and limits"),
        _allow(_SIGNALS, "signals"),
        _allow(_TIME, "clocks and timers"),
        _allow(_NETWORK, "sockets"),
        _allow(_IPC, "System V and POSIX IPC"),
        _allow(
            ["socket"],
            "any socket but AF_VSOCK, which reaches the hypervisor",
            args=[_arg(0, AF_VSOCK, "SCMP_CMP_NE")],
        ),
        # ptrace was allowed by Docker's profile once kernel 4.8 made seccomp re-check the
        # calls a tracer changes; it still needs a process to trace that belongs to the user.
        _allow(
            ["ptrace", "process_vm_readv", "process_vm_writev"],
            "tracing one's own processes (kernel >= 4.8 re-checks traced calls)",
            includes={"minKernel": "4.8"},
        ),
    ]
    # personality(2): only the harmless personas (Linux, 32-bit Linux, uname26) and the query
    # 0xffffffff; the others change how the kernel treats the process (e.g. READ_IMPLIES_EXEC).
    for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        syscalls.append(
            _allow(["personality"], "harmless personas", args=[_arg(0, persona, "SCMP_CMP_EQ")])
        )
    syscalls += [
        _allow(["arch_prctl"], "x86_64 thread-local storage", includes={"arches": ["amd64"]}),
        _allow(["modify_ldt"], "x86 segment tables", includes={"arches": ["amd64"]}),
    ]
    for names, capability in _WITH_CAPABILITY:
        syscalls.append(_allow(names, f"with {capability} only", includes={"caps": [capability]}))
    syscalls += [
        _allow(
            ["clone"],
            "new threads and processes, but no new namespaces without CAP_SYS_ADMIN",
            args=[_arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")],
            excludes={"caps": ["CAP_SYS_ADMIN"]},
        ),
        {
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": ENOSYS,
            "comment": "clone3's flags are in memory the filter cannot read: answer 'not "
            "implemented' so the C library falls back to clone",
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        },
    ]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,  # EPERM
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []},
        ],
        "syscalls": syscalls,
    }


def resolved_default_profile(capabilities: list[str]) -> dict[str, Any]:
    """The default profile in OCI form, for a container with these capabilities."""
    from kit.security.seccomp_profile import resolve_docker

    return resolve_docker(default_profile(), capabilities=capabilities, source="kit's default")
