"""Capabilities: root's power, cut into named pieces, and which pieces a container keeps.

On Linux, "root" is not one privilege but about forty (capabilities(7)). A container's root
keeps only a few: Docker's default list of 14 below, enough to run ordinary software as
root (change file owners, bind port 80, send signals) and nothing that reaches beyond the
container (load kernel modules, mount filesystems, set the clock, trace other processes).

``--cap-drop``/``--cap-add`` change the list the way Docker does: names with or without the
``CAP_`` prefix, in any case, and ``ALL``. The stage that applies the list is
:mod:`kit.runtime.stages.capabilities`.
"""

from __future__ import annotations

from kit.errors import KitError
from kit.linux.caps import CAP_NAMES, CAP_NUMBERS
from kit.spec import Capabilities

#: What each capability allows, in a few words (for errors, reports and the lessons).
MEANINGS: dict[str, str] = {
    "CAP_CHOWN": "change any file's owner and group",
    "CAP_DAC_OVERRIDE": "ignore file read/write/execute permission bits",
    "CAP_DAC_READ_SEARCH": "read any file and search any directory; open_by_handle_at",
    "CAP_FOWNER": "act as the owner of any file (chmod, utime, ...)",
    "CAP_FSETID": "keep setuid/setgid bits when modifying a file",
    "CAP_KILL": "send signals to processes of other users",
    "CAP_SETGID": "change group ids",
    "CAP_SETUID": "change user ids",
    "CAP_SETPCAP": "drop capabilities from the bounding set; grant inheritable ones",
    "CAP_LINUX_IMMUTABLE": "set the immutable and append-only file attributes",
    "CAP_NET_BIND_SERVICE": "bind ports below 1024",
    "CAP_NET_BROADCAST": "broadcast and listen to multicast",
    "CAP_NET_ADMIN": "configure interfaces, routes, firewalls",
    "CAP_NET_RAW": "use raw and packet sockets (ping, packet capture)",
    "CAP_IPC_LOCK": "lock memory (mlock) beyond the limit",
    "CAP_IPC_OWNER": "bypass permission checks on System V IPC objects",
    "CAP_SYS_MODULE": "load and unload kernel modules",
    "CAP_SYS_RAWIO": "raw I/O ports and /dev/mem, /proc/kcore",
    "CAP_SYS_CHROOT": "use chroot",
    "CAP_SYS_PTRACE": "trace and inspect any process",
    "CAP_SYS_PACCT": "switch process accounting on and off",
    "CAP_SYS_ADMIN": "mount, create namespaces, and a long list of administration",
    "CAP_SYS_BOOT": "reboot the machine, load a new kernel",
    "CAP_SYS_NICE": "raise priorities, set other processes' scheduling and CPU affinity",
    "CAP_SYS_RESOURCE": "exceed resource limits and quotas",
    "CAP_SYS_TIME": "set the system clock",
    "CAP_SYS_TTY_CONFIG": "vhangup and configure terminals",
    "CAP_MKNOD": "create device nodes",
    "CAP_LEASE": "take file leases on files of other users",
    "CAP_AUDIT_WRITE": "write records to the kernel audit log",
    "CAP_AUDIT_CONTROL": "configure the audit subsystem",
    "CAP_SETFCAP": "set file capabilities",
    "CAP_MAC_OVERRIDE": "override mandatory access control (Smack)",
    "CAP_MAC_ADMIN": "configure mandatory access control (Smack)",
    "CAP_SYSLOG": "read and clear the kernel log",
    "CAP_WAKE_ALARM": "set alarms that wake the system",
    "CAP_BLOCK_SUSPEND": "block system suspend",
    "CAP_AUDIT_READ": "read the audit log over netlink",
    "CAP_PERFMON": "use performance monitoring (perf_event_open)",
    "CAP_BPF": "load BPF programs and create maps",
    "CAP_CHECKPOINT_RESTORE": "checkpoint/restore features (set_tid, map_files)",
}

#: Docker's default capability list: what a container's root keeps unless told otherwise.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

ALL = "ALL"


def normalize(name: str, *, option: str = "capability") -> str:
    """``net_admin`` / ``NET_ADMIN`` / ``cap_net_admin`` -> ``CAP_NET_ADMIN``; ``all`` -> ALL."""
    text = name.strip().upper()
    if text == ALL:
        return ALL
    if not text.startswith("CAP_"):
        text = "CAP_" + text
    if text not in CAP_NUMBERS:
        raise KitError(
            f"unknown {option} {name!r}",
            cause="valid capabilities are: " + ", ".join(n[4:] for n in CAP_NAMES) + " (or ALL)",
            fix="use one of those names, with or without CAP_ (see capabilities(7))",
            exit_code=2,
        )
    return text


def resolve(
    add: list[str],
    drop: list[str],
    base: tuple[str, ...] = DEFAULT_CAPABILITIES,
    everything: list[str] | None = None,
) -> list[str]:
    """The capability list after ``--cap-add``/``--cap-drop``, with Docker's rules.

    ``--cap-add ALL`` starts from every capability and removes the drops; ``--cap-drop ALL``
    starts from nothing and adds the adds; otherwise the drops leave the default list and the
    adds join it. The same capability both added and dropped is a contradiction and refused.

    ``everything`` is what ALL means (default: every capability kit knows); ``kit run`` passes
    what this process can actually give (:func:`available`).
    """
    adds = [normalize(n, option="--cap-add capability") for n in add]
    drops = [normalize(n, option="--cap-drop capability") for n in drop]
    both = sorted((set(adds) & set(drops)) - {ALL}) or (
        [ALL] if ALL in adds and ALL in drops else []
    )
    if both:
        raise KitError(
            f"--cap-add and --cap-drop both name {', '.join(both)}",
            cause="a capability cannot be both kept and removed",
            fix="give each capability to only one of the two options",
            exit_code=2,
        )
    if ALL in adds:
        return [c for c in (everything or CAP_NAMES) if c not in drops]
    if ALL in drops:
        start: list[str] = []
    else:
        start = [c for c in base if c not in drops]
    return start + [c for c in adds if c not in start]


def available() -> list[str]:
    """The capabilities this process can give a container: its own bounding set.

    A process can pass on only what it has. kit as root on a normal host holds every
    capability; inside another container or a restricted service, some are missing (the
    CapBnd line of /proc/self/status), and a container cannot get them back.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return [name for number, name in enumerate(CAP_NAMES) if mask >> number & 1]
    return list(CAP_NAMES)


def check_available(names: list[str], have: list[str]) -> None:
    """Refuse capabilities kit cannot give (they are not in its own bounding set)."""
    missing = [name for name in names if name not in have]
    if missing:
        raise KitError(
            f"kit cannot give the container {', '.join(missing)}",
            cause="kit does not hold "
            + ("it" if len(missing) == 1 else "them")
            + " itself (see CapBnd in /proc/self/status): this host, or the container kit "
            "runs in, has removed "
            + ("it" if len(missing) == 1 else "them")
            + " for good, and no process can hand on what it does not have",
            fix="leave " + ("it" if len(missing) == 1 else "them") + " out of --cap-add",
            exit_code=125,
        )


def container_capabilities(names: list[str]) -> Capabilities:
    """The OCI capability sets for a container's process, as Docker fills them.

    The list goes into bounding, permitted and effective. Inheritable stays empty (Docker
    stopped filling it after CVE-2022-24769: an inheritable set lets a program with file
    capabilities gain them after execve even when the container asked for less), and so does
    ambient: a non-root user in the container gets no capabilities, as on any Linux system.
    """
    ordered = sorted(set(names), key=CAP_NUMBERS.__getitem__)
    return Capabilities(
        bounding=list(ordered), effective=list(ordered), permitted=list(ordered), inheritable=[]
    )
