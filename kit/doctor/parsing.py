"""Pure parsing behind the checks: os-release, cgroup layouts, propagation, container hints.

Nothing here reads the machine: callers pass the text of the files, so every rule can be
tested on sample texts from other distributions (an Ubuntu 24.04 os-release, a cgroup v2 mount
table, a Docker container's /proc/1/cgroup) on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kit import mounts

# ----------------------------------------------------------------------------------------------
# The distribution
# ----------------------------------------------------------------------------------------------


def parse_os_release(text: str) -> dict[str, str]:
    """``/etc/os-release`` as a dict (``ID``, ``ID_LIKE``, ``VERSION_ID``, ``PRETTY_NAME`` ...)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip("\"'")
    return values


def distro_family(os_release: dict[str, str]) -> str:
    """``debian``, ``fedora``, ``arch``, ``alpine``, ``suse`` or ``unknown``."""
    ids = [os_release.get("ID", ""), *os_release.get("ID_LIKE", "").split()]
    for ident in ids:
        if ident in ("debian", "ubuntu", "raspbian", "linuxmint", "pop"):
            return "debian"
        if ident in ("fedora", "rhel", "centos", "rocky", "almalinux"):
            return "fedora"
        if ident in ("arch", "manjaro", "endeavouros"):
            return "arch"
        if ident == "alpine":
            return "alpine"
        if ident.startswith(("opensuse", "suse", "sles")):
            return "suse"
    return "unknown"


def version_tuple(version: str) -> tuple[int, ...]:
    """``"24.04"`` -> ``(24, 4)``; ``"12"`` -> ``(12,)``; junk -> ``()``.

    Only the leading dotted numbers count (``"11 (bullseye)"`` -> ``(11,)``).
    """
    numbers: list[int] = []
    for part in version.strip().split(" ")[0].split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


# ----------------------------------------------------------------------------------------------
# cgroups
# ----------------------------------------------------------------------------------------------

#: cgroup v1 controllers (what may appear as super options of a ``cgroup`` mount).
V1_CONTROLLERS = (
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
)

#: The controllers kit's lessons use for limits.
LESSON_CONTROLLERS = ("memory", "pids", "cpu")


@dataclass(frozen=True)
class CgroupLayout:
    """How cgroups are mounted: ``v1``, ``v2``, ``hybrid`` (v1 controllers + a v2 tree) or
    ``none``; where each v1 controller is; the v2 mount and the controllers it offers."""

    mode: str
    v1: dict[str, str]
    named: dict[str, str]
    v2: str | None
    v2_controllers: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()

    def where(self, controller: str) -> str | None:
        """``v1 /sys/fs/cgroup/memory`` or ``v2 /sys/fs/cgroup``, or None when absent."""
        if self.v2 and controller in self.v2_controllers:
            return f"v2 {self.v2}"
        if controller in self.v1:
            return f"v1 {self.v1[controller]}"
        return None

    def version_of(self, controller: str) -> str | None:
        """``v1`` or ``v2``: which interface files a lesson about ``controller`` meets here."""
        where = self.where(controller)
        return where.split()[0] if where else None


def parse_cgroup_layout(mountinfo: str, v2_controllers: str = "") -> CgroupLayout:
    """Find the cgroup mode from the text of a mountinfo file.

    ``v2_controllers`` is the text of ``cgroup.controllers`` at the root of the v2 mount (the
    controllers the unified tree offers; in hybrid mode usually none, since a controller can be
    bound to only one hierarchy and the v1 hierarchies hold them).
    """
    v1: dict[str, str] = {}
    named: dict[str, str] = {}
    v2: str | None = None
    read_only: list[str] = []
    for entry in mounts.parse(mountinfo):
        if entry.fstype == "cgroup2":
            if v2 is None:
                v2 = entry.mount_point
                if entry.read_only:
                    read_only.append(entry.mount_point)
        elif entry.fstype == "cgroup":
            for option in entry.super_options:
                if option in V1_CONTROLLERS:
                    v1.setdefault(option, entry.mount_point)
                elif option.startswith("name="):
                    named.setdefault(option, entry.mount_point)
            if entry.read_only:
                read_only.append(entry.mount_point)
    if v1:
        mode = "hybrid" if v2 else "v1"
    elif v2:
        mode = "v2"
    else:
        mode = "v1" if named else "none"
    return CgroupLayout(
        mode=mode,
        v1=v1,
        named=named,
        v2=v2,
        v2_controllers=tuple(v2_controllers.split()),
        read_only=tuple(read_only),
    )


def v2_cgroup_path(proc_cgroup: str) -> str | None:
    """This process's place in the v2 tree, from /proc/self/cgroup (the ``0::PATH`` line)."""
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            return path or "/"
    return None


# ----------------------------------------------------------------------------------------------
# The mount table
# ----------------------------------------------------------------------------------------------


def root_propagation(mountinfo: str) -> tuple[str, str]:
    """The propagation of ``/`` (``shared``, ``slave``, ``private`` ...) and its raw tags."""
    root = mounts.find(mounts.parse(mountinfo), "/")
    if root is None:
        return "unknown", ""
    return root.propagation, " ".join(root.optional)


def filesystem_of(path: Path, mountinfo: str) -> str:
    """The filesystem type holding ``path`` (or its nearest existing parent), from the text
    of a mountinfo file. kit's data root must not be on overlayfs (an upper dir cannot be)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    resolved = str(path.resolve())
    best = None
    for entry in mounts.parse(mountinfo):
        point = entry.mount_point
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = entry
    return best.fstype if best else "unknown"


# ----------------------------------------------------------------------------------------------
# Containers, WSL
# ----------------------------------------------------------------------------------------------

#: Words in /proc/1/cgroup that name a container engine's cgroups.
_ENGINE_CGROUP_WORDS = ("docker", "kubepods", "containerd", "libpod", "lxc", "crio", "garden")


def container_hints(
    *,
    dockerenv: bool,
    containerenv: bool,
    pid1_cgroup: str,
    pid1_environ: str,
    proc_version: str,
    self_status: str = "",
) -> dict[str, str]:
    """Evidence that kit runs inside a container or WSL: ``{hint: what it shows}``.

    Keys: ``dockerenv``, ``containerenv``, ``cgroup``, ``environ``, ``wsl1``, ``wsl2``, and
    from ``self_status`` (the text of /proc/self/status): ``capabilities`` (uid 0 without
    CAP_SYS_ADMIN: an engine dropped capabilities) and ``seccomp`` (a filter is already on).
    """
    hints: dict[str, str] = {}
    status = dict(
        (key, value.strip())
        for key, _, value in (line.partition(":") for line in self_status.splitlines())
    )
    uid = (status.get("Uid") or "").split()  # real, effective, saved, filesystem
    caps = int(status.get("CapEff") or "0", 16)
    if len(uid) > 1 and uid[1] == "0" and "CapEff" in status and not caps & (1 << 21):
        hints["capabilities"] = (  # bit 21: CAP_SYS_ADMIN
            f"root without CAP_SYS_ADMIN (CapEff {status['CapEff']}): a container engine "
            "dropped capabilities"
        )
    if status.get("Seccomp") == "2":
        hints["seccomp"] = "a seccomp filter is already applied (Seccomp: 2 in /proc/self/status)"
    if dockerenv:
        hints["dockerenv"] = "/.dockerenv exists (Docker creates it in every container)"
    if containerenv:
        hints["containerenv"] = "/run/.containerenv exists (podman creates it)"
    for line in pid1_cgroup.splitlines():
        path = line.split(":", 2)[-1]
        word = next((w for w in _ENGINE_CGROUP_WORDS if w in path), None)
        if word:
            hints["cgroup"] = f"PID 1's cgroup {path} names {word}"
            break
    for variable in pid1_environ.split("\0"):
        if variable.startswith("container="):
            hints["environ"] = f"PID 1 has {variable} in its environment"
    lowered = proc_version.lower()
    if "microsoft" in lowered:
        if "wsl2" in lowered or "microsoft-standard" in lowered:
            hints["wsl2"] = "/proc/version names a Microsoft WSL2 kernel"
        else:
            hints["wsl1"] = "/proc/version names Microsoft (WSL1: no real Linux kernel)"
    return hints
