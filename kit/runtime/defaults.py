"""What a container gets when nobody says otherwise.

These defaults follow what runc's ``runc spec`` and Docker give a container, so what a learner
sees in kit matches what they will meet in real engines: the same kernel filesystems with the
same flags, the same namespaces.
"""

from __future__ import annotations

import os

from kit.spec import (
    DEFAULT_PATH,
    DeviceRule,
    Linux,
    Mount,
    Namespace,
    Process,
    Resources,
    Root,
    Spec,
)

#: Namespaces of a container: all but user (root mode) and time, like Docker.
DEFAULT_NAMESPACES = ("pid", "network", "ipc", "uts", "mount", "cgroup")


def kernel_filesystem_mounts() -> list[Mount]:
    """/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue and /sys, with Docker's flags."""
    return [
        # The process table of the container's PID namespace. noexec/nosuid/nodev: nothing in
        # /proc is a program, a setuid binary or a device.
        Mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        # /dev is a small tmpfs holding only the device nodes kit creates (never the host's).
        Mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        # A private instance of devpts (newinstance): the container's ptys are its own.
        Mount(
            "/dev/pts",
            "devpts",
            "devpts",
            ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        Mount(
            "/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        ),
        Mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        # sysfs read-only: the container may look at the hardware, never reconfigure it.
        Mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
    ]


def tmp_mount() -> Mount:
    """kit's /tmp: a per-container tmpfs, so scratch files never land in the root filesystem."""
    return Mount("/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=1777"])


#: Hidden in every container: /dev/null over files, an empty read-only tmpfs over directories
#: (see kit.runtime.stages.masked_paths). runc's default list, as `runc spec` prints it.
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
)

#: Read-only in every container (see kit.runtime.stages.readonly_paths); runc's default list.
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def new_container_id() -> str:
    """64 hex digits like Docker's; the first 12 are the short id and default hostname."""
    return os.urandom(32).hex()


def default_spec(
    args: list[str],
    rootfs: str,
    *,
    hostname: str | None = None,
    env: list[str] | None = None,
    cwd: str = "/",
    terminal: bool = False,
    namespaces: tuple[str, ...] = DEFAULT_NAMESPACES,
) -> Spec:
    """A complete spec for running ``args`` in ``rootfs`` the way ``kit run`` does."""
    environment = [f"PATH={DEFAULT_PATH}", "HOME=/root"]
    if hostname:
        environment.append(f"HOSTNAME={hostname}")
    if terminal:
        environment.append("TERM=xterm")
    environment += env or []
    spec = Spec(
        root=Root(path=rootfs),
        process=Process(args=list(args), env=environment, cwd=cwd, terminal=terminal),
        hostname=hostname,
        mounts=kernel_filesystem_mounts(),
        linux=Linux(
            namespaces=[Namespace(kind) for kind in namespaces],
            rootfs_propagation="rprivate",
        ),
    )
    spec.mounts.append(tmp_mount())
    apply_security_defaults(spec)
    return spec


def apply_security_defaults(spec: Spec) -> None:
    """Docker's capabilities and a seccomp profile like Docker's; runc's masked and read-only
    paths; no_new_privs on (kit's choice, explained in kit.runtime.stages.no_new_privs); and
    the device rule every engine writes first, "deny every device" (the runtime then allows
    the standard ones, see kit.cgroups.device_rules)."""
    from kit.security.capabilities import DEFAULT_CAPABILITIES, container_capabilities
    from kit.security.seccomp_default import resolved_default_profile

    spec.process.capabilities = container_capabilities(list(DEFAULT_CAPABILITIES))
    spec.process.no_new_privileges = True
    spec.linux.masked_paths = list(MASKED_PATHS)
    spec.linux.readonly_paths = list(READONLY_PATHS)
    spec.linux.seccomp = resolved_default_profile(list(DEFAULT_CAPABILITIES))
    # CAP_MKNOD stays (Docker's 14), so the device policy is what keeps root in the container
    # from creating and opening a node for the host's disk.
    resources = spec.linux.resources or Resources()
    resources.devices = [DeviceRule(allow=False, access="rwm")]  # type "a": every device
    spec.linux.resources = resources
