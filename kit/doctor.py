"""``kit doctor``: can this machine run containers, and which lessons will work here?

Each check reads real kernel and system state (``/proc``, ``/sys``, the mount table) or makes a
real, harmless attempt (create a user namespace, mount an overlay) and reports a :class:`Check`:
``ok``, ``warn`` (something optional is missing; some lessons will say so) or ``fail`` (kit
cannot run a container here). Every non-ok check carries the exact command that fixes it.

Attempts that change process state (unshare, setresuid, mounts) never happen in the calling
process: they run in a fresh interpreter (``python -m kit.doctor --probe all``), which forks
one child per attempt, each child in its own private mount namespace, so nothing can leak to
the host and the caller may be multi-threaded (the TUI's worker). The probe streams back its
results and the system calls it made, which are re-emitted on this process's tracer.
"""

from __future__ import annotations

import argparse
import ctypes
import errno as E
import gzip
import json
import os
import platform
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kit import elf, mounts
from kit.errors import KitError
from kit.linux import newmount, process
from kit.linux.flags import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    PR_SET_DUMPABLE,
)
from kit.linux.mount import mount
from kit.linux.namespaces import unshare
from kit.linux.syscall import quote, raw_syscall, traced
from kit.paths import data_root
from kit.trace import Event, tracer

STATUSES = ("ok", "warn", "fail")
MARKS = {"ok": "✓", "warn": "!", "fail": "✗"}


@dataclass
class Check:
    """The outcome of one check.

    ``status`` is ``ok``, ``warn`` (an optional feature is missing) or ``fail`` (containers
    cannot run). ``fix`` is the command or step that fixes a non-ok outcome. ``data`` holds the
    facts behind the detail for programs (the TUI, tests, ``kit doctor --json``).
    """

    name: str
    status: str
    detail: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status must be one of {STATUSES}, not {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``kit doctor --json``)."""
        return asdict(self)

    def line(self) -> str:
        """``✓ overlayfs: works ...`` followed by ``fix: ...`` when not ok."""
        text = f"{MARKS[self.status]} {self.name}: {self.detail}"
        if self.status != "ok" and self.fix:
            text += f"\n    fix: {self.fix}"
        return text


# ----------------------------------------------------------------------------------------------
# Small readers
# ----------------------------------------------------------------------------------------------


def _read(path: str | Path) -> str | None:
    """The text of a file, or None when it does not exist or cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _read_int(path: str | Path) -> int | None:
    text = _read(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _status_field(name: str, text: str | None = None) -> str | None:
    """A field of /proc/self/status, e.g. ``Seccomp``."""
    text = text if text is not None else _read("/proc/self/status") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return None


def _kernel_config() -> dict[str, str]:
    """The kernel's build configuration from /proc/config.gz or /boot/config-RELEASE."""
    text = None
    try:
        with gzip.open("/proc/config.gz", "rt", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = _read(f"/boot/config-{platform.release()}")
    config: dict[str, str] = {}
    for line in (text or "").splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            config[key] = value.strip().strip('"')
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            config[line[2:].split()[0]] = "n"
    return config


def _which(name: str) -> str | None:
    """Find a program on PATH, also in the sbin directories a non-root PATH lacks."""
    path = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin"
    return shutil.which(name, path=path)


# ----------------------------------------------------------------------------------------------
# The distribution, for fix commands
# ----------------------------------------------------------------------------------------------

#: Package names per distribution family.
PACKAGES: dict[str, dict[str, str]] = {
    "busybox": {
        "debian": "busybox-static",
        "fedora": "busybox",
        "arch": "busybox",
        "alpine": "busybox-static",
        "suse": "busybox-static",
    },
    "runc": dict.fromkeys(("debian", "fedora", "arch", "alpine", "suse"), "runc"),
    "umoci": dict.fromkeys(("debian", "fedora", "arch", "alpine", "suse"), "umoci"),
    "skopeo": dict.fromkeys(("debian", "fedora", "arch", "alpine", "suse"), "skopeo"),
    "tmux": dict.fromkeys(("debian", "fedora", "arch", "alpine", "suse"), "tmux"),
    "uidmap": {
        "debian": "uidmap",
        "fedora": "shadow-utils",
        "arch": "shadow",
        "alpine": "shadow-uidmap",
        "suse": "shadow",
    },
}

_INSTALLERS = {
    "debian": "apt install",
    "fedora": "dnf install",
    "arch": "pacman -S",
    "alpine": "apk add",
    "suse": "zypper install",
}


def parse_os_release(text: str) -> dict[str, str]:
    """``/etc/os-release`` as a dict (``ID``, ``ID_LIKE``, ``PRETTY_NAME`` ...)."""
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


@dataclass(frozen=True)
class Host:
    """What fix commands depend on: the distribution and whether we already are root."""

    family: str
    pretty_name: str
    root: bool

    @classmethod
    def detect(cls) -> Host:
        release = parse_os_release(_read("/etc/os-release") or _read("/usr/lib/os-release") or "")
        return cls(
            family=distro_family(release),
            pretty_name=release.get("PRETTY_NAME", "this Linux"),
            root=os.geteuid() == 0,
        )

    def as_root(self, command: str) -> str:
        """Prefix ``sudo`` when not already root."""
        return command if self.root else f"sudo {command}"

    def install(self, tool: str) -> str:
        """The exact install command for ``tool`` on this distribution."""
        installer = _INSTALLERS.get(self.family)
        package = PACKAGES.get(tool, {}).get(self.family)
        if installer and package:
            return self.as_root(f"{installer} {package}")
        return f"install the {tool} package with your distribution's package manager"

    def sysctl(self, key: str, value: str | int) -> str:
        """Set a sysctl now and keep it after reboot."""
        now = self.as_root(f"sysctl -w {key}={value}")
        keep = self.as_root(f"sh -c 'echo {key}={value} > /etc/sysctl.d/60-kit.conf'")
        return f"{now} (to keep it after reboot: {keep})"

    def newer_kernel(self, version: str) -> str:
        """How to get a kernel of at least ``version``."""
        if self.family == "debian":
            return (
                f"boot Linux {version} or newer (Debian 12: "
                f"{self.as_root('apt install -t bookworm-backports linux-image-amd64')} after "
                "enabling bookworm-backports; Ubuntu: the HWE kernel, "
                f"{self.as_root('apt install linux-generic-hwe-22.04')}), then reboot"
            )
        return f"boot Linux {version} or newer from your distribution, then reboot"


# ----------------------------------------------------------------------------------------------
# Pure parsing: cgroups, propagation, container hints, subordinate ids, ELF
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


def read_cgroup_layout() -> CgroupLayout:
    """The cgroup layout of this machine, as this process's mount namespace sees it."""
    text = _read("/proc/self/mountinfo") or ""
    layout = parse_cgroup_layout(text)
    if layout.v2:
        controllers = _read(os.path.join(layout.v2, "cgroup.controllers")) or ""
        layout = parse_cgroup_layout(text, controllers)
    return layout


def root_propagation(mountinfo: str) -> tuple[str, str]:
    """The propagation of ``/`` (``shared``, ``slave``, ``private`` ...) and its raw tags."""
    root = mounts.find(mounts.parse(mountinfo), "/")
    if root is None:
        return "unknown", ""
    return root.propagation, " ".join(root.optional)


#: Words in /proc/1/cgroup that name a container engine's cgroups.
_ENGINE_CGROUP_WORDS = ("docker", "kubepods", "containerd", "libpod", "lxc", "crio", "garden")


def container_hints(
    *,
    dockerenv: bool,
    containerenv: bool,
    pid1_cgroup: str,
    pid1_environ: str,
    proc_version: str,
) -> dict[str, str]:
    """Evidence that kit runs inside a container or WSL: ``{hint: what it shows}``.

    Pure: the caller reads the files. Keys: ``dockerenv``, ``containerenv``, ``cgroup``,
    ``environ``, ``wsl1``, ``wsl2``.
    """
    hints: dict[str, str] = {}
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


def parse_subids(text: str, user: str, uid: int) -> list[tuple[int, int]]:
    """Ranges ``(start, count)`` for a user in /etc/subuid or /etc/subgid text."""
    ranges: list[tuple[int, int]] = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (user, str(uid)):
            continue
        try:
            ranges.append((int(parts[1]), int(parts[2])))
        except ValueError:
            continue
    return ranges


# ----------------------------------------------------------------------------------------------
# The probe: real attempts, in a fresh interpreter, one forked child per attempt
# ----------------------------------------------------------------------------------------------

#: In a probe child's private mount namespace a tmpfs covers this directory, so test mounts
#: and their files never touch the host's disk.
SCRATCH = "/tmp"

#: Namespace kinds: (name in /proc/self/ns, clone flag, kernel config option).
NAMESPACE_KINDS: dict[str, tuple[str, int, str]] = {
    "mount": ("mnt", CLONE_NEWNS, "always built in"),
    "pid": ("pid", CLONE_NEWPID, "CONFIG_PID_NS"),
    "uts": ("uts", CLONE_NEWUTS, "CONFIG_UTS_NS"),
    "ipc": ("ipc", CLONE_NEWIPC, "CONFIG_IPC_NS"),
    "network": ("net", CLONE_NEWNET, "CONFIG_NET_NS"),
    "cgroup": ("cgroup", CLONE_NEWCGROUP, "CONFIG_CGROUPS"),
    "user": ("user", CLONE_NEWUSER, "CONFIG_USER_NS"),
    "time": ("time", CLONE_NEWTIME, "CONFIG_TIME_NS"),
}

#: A container needs these; the others make some lessons unavailable.
REQUIRED_NAMESPACES = ("mount", "pid", "uts", "ipc", "network")

PR_GET_SECCOMP = 21  # not in kit.linux.flags yet

PROBE_TIMEOUT = 60.0


def _failure(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, KitError):
        return {"ok": False, "errno": exc.errno, "error": str(exc)}
    if isinstance(exc, OSError):
        return {"ok": False, "errno": exc.errno, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": False, "errno": None, "error": f"{type(exc).__name__}: {exc}"}


def _step(results: dict[str, Any], name: str, action: Callable[[], dict[str, Any] | None]) -> bool:
    """Run one attempt; record ``{"ok": True, ...}`` or the failure. Returns success."""
    try:
        extra = action() or {}
    except Exception as exc:
        results[name] = _failure(exc)
        return False
    results[name] = {"ok": True, **extra}
    return True


def _in_child(action: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``action`` in a forked child; return its result and the events it emitted.

    Only called inside the probe interpreter, which is single-threaded, so fork is safe. The
    child's namespaces, mounts and credentials die with it.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 0
        try:
            os.close(read_end)
            tracer().reset()
            with tracer().capture() as events:
                try:
                    result = action()
                except BaseException as exc:
                    result = _failure(exc)
            payload = json.dumps(
                {"result": result, "events": [asdict(e) for e in events]}, default=str
            ).encode()
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view) :]
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as reader:
        while chunk := reader.read(65536):
            chunks.append(chunk)
    _, wait_status = os.waitpid(pid, 0)
    try:
        data = json.loads(b"".join(chunks))
    except ValueError:
        code = os.waitstatus_to_exitcode(wait_status)
        return {"ok": False, "errno": None, "error": f"probe child died ({code})"}, []
    return data["result"], data["events"]


def _write_proc(path: str, text: str) -> None:
    def write() -> None:
        with open(path, "w") as f:
            f.write(text)

    traced("write", [quote(path), quote(text)], write, context={"path": path})


def _enter_userns(uid: int, gid: int) -> None:
    """unshare(CLONE_NEWUSER) and map ``uid``/``gid`` to root inside, as rootless kit does."""
    unshare(CLONE_NEWUSER)
    _write_proc("/proc/self/setgroups", "deny")
    _write_proc("/proc/self/uid_map", f"0 {uid} 1")
    _write_proc("/proc/self/gid_map", f"0 {gid} 1")


def _private_scratch() -> None:
    """Make every mount private, then cover SCRATCH with a tmpfs (this namespace only).

    Everything the probes use is imported at the top of this module, not lazily: kit itself
    may live below SCRATCH, which is hidden from here on.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE, note="nothing below may propagate to the host")
    mount(
        "kit-doctor",
        SCRATCH,
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        "mode=0755",
        note="scratch space that vanishes with this mount namespace",
    )


def _layers(name: str) -> dict[str, str]:
    """Two lower layers with files, and empty upper/work/merged directories."""
    base = os.path.join(SCRATCH, name)
    paths = {
        key: os.path.join(base, key) for key in ("lower1", "lower2", "upper", "work", "merged")
    }
    for path in paths.values():
        os.makedirs(path)
    os.makedirs(os.path.join(paths["lower1"], "dir"))
    Path(paths["lower1"], "dir", "inside").write_text("lower1\n")
    Path(paths["lower1"], "from-lower1").write_text("lower1\n")
    Path(paths["lower2"], "from-lower2").write_text("lower2\n")
    return paths


def _sees_both_layers(merged: str) -> dict[str, Any]:
    names = sorted(os.listdir(merged))
    if not {"from-lower1", "from-lower2"} <= set(names):
        raise KitError(
            "the overlay mounted but does not show both lower layers",
            cause=f"the merged directory holds {names}",
            fix="report this kernel's behaviour; kit expects the union of the layers",
        )
    return {"merged": names}


def _probe_overlay_classic(userxattr: bool = False) -> dict[str, Any]:
    """mount(2) an overlay; check the union, copy-up and a whiteout."""
    p = _layers("classic-userxattr" if userxattr else "classic")
    data = f"lowerdir={p['lower1']}:{p['lower2']},upperdir={p['upper']},workdir={p['work']}"
    if userxattr:
        data += ",userxattr"
    mount("overlay", p["merged"], "overlay", 0, data, note="doctor: a real overlay mount")
    seen = _sees_both_layers(p["merged"])
    Path(p["merged"], "written").write_text("new\n")
    os.unlink(os.path.join(p["merged"], "from-lower1"))
    whiteout = os.lstat(os.path.join(p["upper"], "from-lower1"))
    is_whiteout = stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    result: dict[str, Any] = {
        **seen,
        "copy_up": os.path.exists(os.path.join(p["upper"], "written")),
        "whiteout": "char 0/0" if is_whiteout else stat.filemode(whiteout.st_mode),
    }
    if userxattr:
        # Replacing a lower directory makes an opaque directory in upper; with userxattr the
        # kernel marks it with user.overlay.opaque instead of trusted.overlay.opaque.
        shutil.rmtree(os.path.join(p["merged"], "dir"))
        os.mkdir(os.path.join(p["merged"], "dir"))
        names = os.listxattr(os.path.join(p["upper"], "dir"))
        result["opaque_xattrs"] = sorted(names)
        result["verified"] = "user.overlay.opaque" in names
    return result


def _probe_overlay_lowerdir_plus(userxattr: bool = False) -> dict[str, Any]:
    """Build an overlay with the new mount API, adding each layer with ``lowerdir+``."""
    p = _layers("lowerdir-plus")
    fd = newmount.fsopen("overlay")
    try:
        newmount.set_string(fd, "lowerdir+", p["lower1"])
        newmount.set_string(fd, "lowerdir+", p["lower2"])
        newmount.set_string(fd, "upperdir", p["upper"])
        newmount.set_string(fd, "workdir", p["work"])
        if userxattr:
            newmount.set_flag(fd, "userxattr")
        newmount.create(fd)
        mount_fd = newmount.fsmount(fd)
    finally:
        os.close(fd)
    try:
        newmount.attach(mount_fd, p["merged"], note="doctor: overlay built layer by layer")
    finally:
        os.close(mount_fd)
    return _sees_both_layers(p["merged"])


def _probe_overlay() -> dict[str, Any]:
    """Everything about overlayfs, as root in a private mount namespace."""
    results: dict[str, Any] = {}
    unshare(CLONE_NEWNS)
    _private_scratch()
    _step(results, "mount", _probe_overlay_classic)
    _step(results, "userxattr", lambda: _probe_overlay_classic(userxattr=True))
    _step(results, "lowerdir+", _probe_overlay_lowerdir_plus)
    return results


def _probe_userns(uid: int, gid: int, switch: bool) -> dict[str, Any]:
    """Create a user namespace as ``uid`` (switching to it first when ``switch``), then try
    what rootless kit does in it: map ids, mount a tmpfs, mount an overlay with userxattr."""
    results: dict[str, Any] = {"uid": uid, "gid": gid}
    if switch:
        process.setgroups([])
        process.setresgid(gid)
        process.setresuid(uid)
        # setuid made us non-dumpable, which makes /proc/self/* root's; undo that so this
        # process may write its own uid_map, like any process a user starts.
        process.prctl(PR_SET_DUMPABLE, 1)
    if not _step(results, "unshare", lambda: _enter_userns(uid, gid)):
        return results

    def mount_in_userns() -> None:
        unshare(CLONE_NEWNS)
        _private_scratch()

    if _step(results, "mount", mount_in_userns):
        _step(results, "overlay", lambda: _probe_overlay_classic(userxattr=True))
        _step(results, "overlay lowerdir+", lambda: _probe_overlay_lowerdir_plus(userxattr=True))
    return results


def _probe_namespace(flag: int) -> dict[str, Any]:
    if os.geteuid() != 0 and flag != CLONE_NEWUSER:
        flag |= CLONE_NEWUSER  # without root, every other namespace needs a user namespace
    unshare(flag)
    return {"ok": True}


def _probe_securityfs() -> dict[str, Any]:
    """Mount securityfs privately to read the active LSM list when the host has not."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount(
        "securityfs",
        "/sys/kernel/security",
        "securityfs",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        note="doctor: read the LSM list",
    )
    text = _read("/sys/kernel/security/lsm")
    return {
        "ok": text is not None,
        "lsm": (text or "").strip(),
        "apparmor": os.path.isdir("/sys/kernel/security/apparmor"),
    }


def _unprivileged_ids() -> tuple[int, int, str]:
    """Whose rootless experience to test when running as root: the sudo user, else nobody."""
    try:
        uid = int(os.environ.get("SUDO_UID", ""))
        gid = int(os.environ.get("SUDO_GID", ""))
        if uid > 0:
            return uid, gid, os.environ.get("SUDO_USER", str(uid))
    except ValueError:
        pass
    return 65534, 65534, "nobody"


def run_probes(which: str = "all") -> dict[str, Any]:
    """Make the real attempts (in this process's forked children). Probe-interpreter only.

    Returns ``{"results": {...}, "events": [...]}``; see :func:`probe` for the caller side.
    """
    results: dict[str, Any] = {}
    events: list[dict[str, Any]] = []

    def child(name: str, action: Callable[[], dict[str, Any]], title: str) -> None:
        def announced() -> dict[str, Any]:
            tracer().info(f"doctor probe: {title}")
            return action()

        results[name], emitted = _in_child(announced)
        events.extend(emitted)

    root = os.geteuid() == 0
    if which in ("all", "userns"):
        uid, gid = os.geteuid(), os.getegid()
        child(
            "userns_self",
            lambda: _probe_userns(uid, gid, switch=False),
            f"a user namespace as this user (uid {uid})",
        )
        if root:
            uid, gid, user = _unprivileged_ids()
            child(
                "userns_unprivileged",
                lambda: _probe_userns(uid, gid, switch=True),
                f"a user namespace as {user} (uid {uid}), what rootless students get",
            )
            results["userns_unprivileged"]["user"] = user
    if which in ("all", "namespaces"):
        for kind, (_, flag, _) in NAMESPACE_KINDS.items():
            child(f"ns_{kind}", lambda flag=flag: _probe_namespace(flag), f"a {kind} namespace")
    if which in ("all", "overlay") and root:
        child("overlay", _probe_overlay, "overlay mounts in a private mount namespace")
    if (
        which in ("all", "lsm")
        and root
        and _read("/sys/kernel/security/lsm") is None
        and os.path.isdir("/sys/kernel/security")
    ):
        child("securityfs", _probe_securityfs, "the LSM list from a private securityfs")
    return {"results": results, "events": events}


def probe(which: str = "all", timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """Run the probe in a fresh interpreter and return its results.

    A fresh interpreter because the caller may have threads (the TUI), where fork is unsafe and
    unshare(CLONE_NEWUSER) fails with EINVAL. The probe's system calls are re-emitted on this
    process's tracer, so ``--trace`` and the TUI's syscall log show them.
    """
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "kit.doctor", "--probe", which]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"the probe ({' '.join(command)}) did not finish in {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"the probe exited with {done.returncode}: {' / '.join(tail)}"}
    try:
        data = json.loads(done.stdout)
    except ValueError:
        return {"error": f"the probe wrote no JSON: {done.stdout[:200]!r}"}
    log = tracer()
    if log.active:
        for raw in data.get("events", []):
            try:
                log.emit(Event(**raw))
            except TypeError:
                continue
    return data.get("results", {})


# ----------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What several checks share: the host, the probe results, the mount table."""

    host: Host
    probes: dict[str, Any]
    mountinfo: str
    config: dict[str, str]

    @classmethod
    def gather(cls) -> Context:
        return cls(
            host=Host.detect(),
            probes=probe(),
            mountinfo=_read("/proc/self/mountinfo") or "",
            config=_kernel_config(),
        )

    def result(self, name: str) -> dict[str, Any] | None:
        value = self.probes.get(name)
        return value if isinstance(value, dict) else None

    @property
    def probe_error(self) -> str | None:
        error = self.probes.get("error")
        return str(error) if error else None


def check_python(ctx: Context) -> Check:
    """Python >= 3.11 (kit uses 3.11 syntax and stdlib)."""
    version = ".".join(map(str, sys.version_info[:3]))
    detail = f"Python {version} ({sys.executable})"
    # Checked at run time on purpose: this module still imports on older Pythons, and the
    # doctor is what should tell a learner which Python they need.
    if sys.version_info >= (3, 11):  # noqa: UP036
        return Check("python", "ok", detail, data={"version": version})
    fix = "install Python 3.11 or newer and reinstall kit with it: python3.11 -m pip install -e ."
    if ctx.host.family == "debian":
        fix = (
            f"{ctx.host.as_root('apt install python3.11 python3.11-venv')}, then "
            "python3.11 -m pip install -e ."
        )
    return Check("python", "fail", detail + ": kit needs 3.11 or newer", fix, {"version": version})


def _cap_sys_admin() -> bool:
    caps = int(_status_field("CapEff") or "0", 16)
    return bool(caps & (1 << 21))


def _userns_blockers(host: Host) -> tuple[list[str], str]:
    """Sysctls that forbid unprivileged user namespaces, and the command undoing the first."""
    blockers: list[str] = []
    fix = ""
    max_userns = _read_int("/proc/sys/user/max_user_namespaces")
    if max_userns == 0:
        blockers.append("user.max_user_namespaces is 0")
        fix = host.sysctl("user.max_user_namespaces", 15000)
    clone = _read_int("/proc/sys/kernel/unprivileged_userns_clone")
    if clone == 0:
        blockers.append("kernel.unprivileged_userns_clone is 0 (a Debian/Ubuntu kernel switch)")
        fix = fix or host.sysctl("kernel.unprivileged_userns_clone", 1)
    apparmor = _read_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    if apparmor == 1:
        blockers.append(
            "kernel.apparmor_restrict_unprivileged_userns is 1 (Ubuntu 23.10+): unshare "
            "succeeds, but the new namespace gets no capabilities, so mounts fail"
        )
        fix = fix or host.sysctl("kernel.apparmor_restrict_unprivileged_userns", 0)
    return blockers, fix


def _userns_summary(result: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether a userns probe got as far as mounting, and a phrase saying how far it got."""
    if not result:
        return False, "not tried"
    for step, phrase in (("unshare", "unshare(CLONE_NEWUSER)"), ("mount", "mounting inside it")):
        outcome = result.get(step)
        if not outcome:
            return False, f"{phrase}: not reached"
        if not outcome.get("ok"):
            return False, f"{phrase} failed: {outcome.get('error')}"
    overlay = result.get("overlay") or {}
    if overlay.get("ok"):
        return True, "user namespace, id maps, tmpfs and overlay (userxattr) mounts all work"
    return True, f"user namespace and mounts work; overlay failed: {overlay.get('error')}"


def check_privileges(ctx: Context) -> Check:
    """Root with CAP_SYS_ADMIN, or a user namespace usable without root."""
    euid = os.geteuid()
    admin = _cap_sys_admin()
    data: dict[str, Any] = {"euid": euid, "cap_sys_admin": admin}
    if euid == 0 and admin:
        return Check(
            "privileges",
            "ok",
            "running as root with CAP_SYS_ADMIN: kit creates every namespace directly",
            data=data,
        )
    works, how = _userns_summary(ctx.result("userns_self"))
    data["rootless"] = works
    who = "root without CAP_SYS_ADMIN" if euid == 0 else f"uid {euid}"
    if works:
        return Check(
            "privileges",
            "ok",
            f"running as {who}: rootless mode (a user namespace first, then the rest): {how}",
            data=data,
        )
    blockers, fix = _userns_blockers(ctx.host)
    why = "; ".join(blockers) or how
    if ctx.probe_error:
        why = ctx.probe_error
    return Check(
        "privileges",
        "fail",
        f"running as {who}, and user namespaces are not usable: {why}",
        fix
        or f"run kit as root ({ctx.host.as_root('kit ...')}), or allow unprivileged user "
        "namespaces (see the `user namespaces` check)",
        data,
    )


def check_user_namespaces(ctx: Context) -> Check:
    """Whether user namespaces work, for this user and (as root) for an unprivileged one."""
    name = "user namespaces"
    sysctls = {
        "user.max_user_namespaces": _read_int("/proc/sys/user/max_user_namespaces"),
        "kernel.unprivileged_userns_clone": _read_int("/proc/sys/kernel/unprivileged_userns_clone"),
        "kernel.apparmor_restrict_unprivileged_userns": _read_int(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
        ),
    }
    shown = ", ".join(f"{k}={v}" for k, v in sysctls.items() if v is not None)
    data: dict[str, Any] = {"sysctls": sysctls}
    if not os.path.exists("/proc/self/ns/user"):
        return Check(
            name,
            "fail",
            "this kernel has no user namespaces (no /proc/self/ns/user; CONFIG_USER_NS is off)",
            ctx.host.newer_kernel("3.8") + " built with CONFIG_USER_NS=y",
            data,
        )
    if ctx.probe_error:
        return Check(name, "warn", f"could not test: {ctx.probe_error}", "run `kit doctor` again")
    self_works, self_how = _userns_summary(ctx.result("userns_self"))
    data["self"] = self_works
    if os.geteuid() != 0:
        blockers, fix = _userns_blockers(ctx.host)
        detail = f"as uid {os.geteuid()}: {self_how} ({shown})"
        if self_works:
            return Check(name, "ok", detail, data=data)
        # The `privileges` check carries the failure; this one says what to change.
        return Check(name, "warn", detail + "; " + "; ".join(blockers), fix, data)
    other = ctx.result("userns_unprivileged") or {}
    other_works, other_how = _userns_summary(other)
    data["unprivileged"] = other_works
    user = other.get("user", "nobody")
    detail = (
        f"as root: {self_how}; as {user} (uid {other.get('uid')}), what a student without "
        f"sudo gets: {other_how} ({shown})"
    )
    if other_works:
        return Check(name, "ok", detail + "; rootless mode will work", data=data)
    blockers, fix = _userns_blockers(ctx.host)
    if blockers:
        detail += "; " + "; ".join(blockers)
    return Check(
        name,
        "warn",
        detail + "; rootless lessons will not work (kit itself runs as root)",
        fix or "allow unprivileged user namespaces (see your distribution's hardening notes)",
        data,
    )


def check_namespaces(ctx: Context) -> Check:
    """Every namespace type: present in /proc/self/ns and creatable with unshare."""
    available: list[str] = []
    missing: dict[str, str] = {}
    for kind, (ns_file, _, option) in NAMESPACE_KINDS.items():
        outcome = ctx.result(f"ns_{kind}")
        present = os.path.exists(f"/proc/self/ns/{ns_file}")
        if outcome and outcome.get("ok"):
            available.append(kind)
        elif not present:
            config = ctx.config.get(option, "unknown") if option.startswith("CONFIG_") else ""
            missing[kind] = f"no /proc/self/ns/{ns_file} ({option}={config})"
        elif outcome is None:
            available.append(kind)  # the probe did not run; the kernel has the type
        else:
            missing[kind] = f"unshare failed: {outcome.get('error')}"
    data = {"available": available, "missing": missing}
    detail = "unshare works for " + " ".join(available)
    if ctx.config.get("CONFIG_TIME_NS") == "y" and "time" in available:
        detail += " (time: CONFIG_TIME_NS=y)"
    if not missing:
        return Check("namespaces", "ok", detail, data=data)
    detail += "; missing: " + "; ".join(f"{k}: {v}" for k, v in missing.items())
    required = [kind for kind in missing if kind in REQUIRED_NAMESPACES]
    fix = (
        ctx.host.newer_kernel("5.6")
        + " built with "
        + ", ".join(
            NAMESPACE_KINDS[k][2] for k in missing if NAMESPACE_KINDS[k][2].startswith("CONFIG_")
        )
    )
    if required:
        return Check("namespaces", "fail", detail, fix, data)
    return Check("namespaces", "warn", detail + " (lessons about these will say so)", fix, data)


def _overlay_listed() -> tuple[bool, str]:
    text = _read("/proc/filesystems") or ""
    if any(line.split()[-1:] == ["overlay"] for line in text.splitlines()):
        return True, "listed in /proc/filesystems"
    release = platform.release()
    for index in (f"/lib/modules/{release}/modules.dep", f"/lib/modules/{release}/modules.builtin"):
        if "overlay.ko" in (_read(index) or ""):
            return True, "not loaded yet, but the overlay module is installed (modprobe overlay)"
    return False, "not in /proc/filesystems and no overlay module installed"


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


def check_overlay(ctx: Context) -> Check:
    """overlayfs: present, a real mount works, and whether userxattr and lowerdir+ work."""
    name = "overlayfs"
    listed, where = _overlay_listed()
    store = data_root()
    store_fs = filesystem_of(store, ctx.mountinfo)
    data: dict[str, Any] = {"listed": listed, "data_root": str(store), "data_root_fs": store_fs}
    modprobe = ctx.host.as_root("modprobe overlay")
    if not listed:
        return Check(name, "fail", f"overlayfs is {where}", modprobe, data)
    result = ctx.result("overlay")
    if result is None and os.geteuid() != 0:
        # Without root the overlay was tried inside a user namespace, where userxattr is
        # what an unprivileged overlay uses.
        rootless = ctx.result("userns_self") or {}
        if rootless.get("overlay"):
            result = {
                "mount": rootless["overlay"],
                "userxattr": rootless["overlay"],
                "lowerdir+": rootless.get("overlay lowerdir+") or {},
            }
            where += " (tried in a user namespace, as rootless kit will)"
    if result is None or ctx.probe_error:
        reason = ctx.probe_error or "not tried"
        return Check(name, "warn", f"{where}; the test mount could not run: {reason}", "", data)
    mounted = result.get("mount") or {}
    userxattr = result.get("userxattr") or {}
    plus = result.get("lowerdir+") or {}
    data.update(
        mount=bool(mounted.get("ok")),
        userxattr=bool(userxattr.get("ok")),
        userxattr_verified=bool(userxattr.get("verified")),
        lowerdir_plus=bool(plus.get("ok")),
    )
    if not mounted.get("ok"):
        fix = modprobe
        if store_fs == "overlay":
            fix = "give kit a data root that is not on overlayfs: kit --root /some/volume ..."
        return Check(
            name, "fail", f"{where}, but a test mount failed: {mounted.get('error')}", fix, data
        )
    parts = [
        f"{where}; a test mount works (two layers merged, copy-up, whiteout as "
        f"{mounted.get('whiteout')})"
    ]
    missing: list[str] = []
    if userxattr.get("ok"):
        how = "user.overlay.opaque seen" if userxattr.get("verified") else "accepted"
        parts.append(f"userxattr works ({how}: rootless overlays keep their marks in user.*)")
    else:
        parts.append(f"userxattr is refused: {userxattr.get('error')}")
        missing.append("userxattr (Linux 5.11)")
    if "lowerdir+" in result and plus.get("ok"):
        parts.append("lowerdir+ works with fsopen/fsconfig (layers added one by one, no limit)")
    elif "lowerdir+" in result:
        parts.append(
            f"lowerdir+ is refused: {plus.get('error')} — kit falls back to lowerdir= "
            "with short layer links, which limits how many layers fit in one page"
        )
        missing.append("lowerdir+ (Linux 6.8)")
    parts.append(f"kit's data root {store} is on {store_fs}")
    if store_fs == "overlay":
        parts.append(
            "an overlay upper directory cannot live on overlayfs, so containers need their "
            "writable layer elsewhere"
        )
        return Check(
            name,
            "warn",
            "; ".join(parts),
            "put kit's data on another filesystem: kit --root /some/volume "
            "(Docker: -v kit-data:/var/lib/kit)",
            data,
        )
    if missing:
        return Check(
            name,
            "warn",
            "; ".join(parts),
            ctx.host.newer_kernel(missing[-1].split("(Linux ")[1].rstrip(")")),
            data,
        )
    return Check(name, "ok", "; ".join(parts), data=data)


def check_propagation(ctx: Context) -> Check:
    """Whether / is shared, and why that matters to a container runtime."""
    kind, tags = root_propagation(ctx.mountinfo)
    data = {"propagation": kind, "tags": tags}
    if kind in ("shared", "shared+slave"):
        detail = (
            f"/ is {kind} ({tags}), as systemd sets it up: mounts made below it propagate to "
            "its peers, including from a new mount namespace. kit therefore makes the "
            "container's tree private (mount --make-rprivate /) before mounting anything; "
            "without that the container's mounts would appear on the host and pivot_root "
            "would refuse with EINVAL"
        )
    elif kind == "unknown":
        return Check(
            "mount propagation",
            "warn",
            "/ is not in /proc/self/mountinfo (chrooted?)",
            "run kit outside a chroot",
            data,
        )
    else:
        detail = (
            f"/ is {kind}: mounts do not propagate between this namespace and others. On a "
            "systemd host / is shared (shared:1), which is why kit makes the container's tree "
            "private before pivot_root; propagation lessons will show `private` here where a "
            "laptop shows `shared`"
        )
    return Check("mount propagation", "ok", detail, data=data)


_CGROUP_LESSONS = {
    "v1": (
        "v1: one hierarchy per controller, a container gets a directory in each and joins "
        "every one via cgroup.procs; limits are memory.limit_in_bytes, pids.max and "
        "cpu.cfs_quota_us/cpu.cfs_period_us"
    ),
    "v2": (
        "v2: one tree; controllers are handed to children through cgroup.subtree_control, a "
        "cgroup with children holds no processes; limits are memory.max, pids.max and "
        "cpu.max ('quota period'); memory.events counts OOM kills"
    ),
}


def check_cgroups(ctx: Context) -> Check:
    """The cgroup mode, and where the memory, pids and cpu controllers are."""
    layout = read_cgroup_layout()
    enabled = {}
    for line in (_read("/proc/cgroups") or "").splitlines()[1:]:
        parts = line.split()
        if len(parts) == 4:
            enabled[parts[0]] = parts[3] == "1"
    where = {c: layout.where(c) for c in LESSON_CONTROLLERS}
    data: dict[str, Any] = {
        "mode": layout.mode,
        "v1": layout.v1,
        "v2": layout.v2,
        "v2_controllers": list(layout.v2_controllers),
        "controllers": where,
        "read_only": list(layout.read_only),
    }
    if layout.mode == "none":
        return Check(
            "cgroups",
            "warn",
            "no cgroup filesystem is mounted: containers run without resource limits",
            ctx.host.as_root("mount -t cgroup2 none /sys/fs/cgroup"),
            data,
        )
    found = ", ".join(f"{c} ({w})" for c, w in where.items() if w)
    parts = [f"{layout.mode}: {found or 'none of memory, pids, cpu'}"]
    if layout.mode == "hybrid":
        offered = " ".join(layout.v2_controllers) or "none"
        parts.append(
            f"the v2 tree at {layout.v2} mostly groups processes (controllers it offers: "
            f"{offered}); memory, pids and cpu limits go through v1 here. " + _CGROUP_LESSONS["v1"]
        )
    else:
        parts.append(_CGROUP_LESSONS["v1" if layout.mode == "v1" else "v2"])
    missing = [c for c, w in where.items() if not w]
    if layout.read_only:
        parts.append("mounted read-only: " + " ".join(layout.read_only))
        return Check(
            "cgroups",
            "warn",
            "; ".join(parts),
            "run kit where the cgroup tree is writable (Docker: --privileged or "
            "--cgroupns=private with a writable /sys/fs/cgroup)",
            data,
        )
    if missing:
        off = [c for c in missing if enabled.get(c) is False]
        parts.append(
            "missing: "
            + " ".join(missing)
            + (f" (disabled at boot: {' '.join(off)})" if off else "")
        )
        if "memory" in off:
            fix = (
                "add cgroup_enable=memory to GRUB_CMDLINE_LINUX in /etc/default/grub, "
                f"{ctx.host.as_root('update-grub')} and reboot"
            )
        elif layout.mode == "v2" and layout.v2:
            fix = ctx.host.as_root(
                "sh -c 'echo "
                + " ".join(f"+{c}" for c in missing)
                + f" > {layout.v2}/cgroup.subtree_control'"
            )
        else:
            fix = f"use a kernel with the {' '.join(missing)} controller(s) enabled"
        return Check("cgroups", "warn", "; ".join(parts), fix, data)
    return Check("cgroups", "ok", "; ".join(parts), data=data)


#: seccomp actions worth knowing about, and their SECCOMP_RET_* values.
SECCOMP_ACTIONS = {
    "KILL_PROCESS": 0x80000000,
    "KILL_THREAD": 0x00000000,
    "TRAP": 0x00030000,
    "ERRNO": 0x00050000,
    "USER_NOTIF": 0x7FC00000,
    "TRACE": 0x7FF00000,
    "LOG": 0x7FFC0000,
    "ALLOW": 0x7FFF0000,
}
SECCOMP_GET_ACTION_AVAIL = 2

#: The AUDIT_ARCH_* value a seccomp filter must compare ``seccomp_data.arch`` with.
AUDIT_ARCH = {
    "x86_64": ("AUDIT_ARCH_X86_64", 0xC000003E),
    "aarch64": ("AUDIT_ARCH_AARCH64", 0xC00000B7),
}


def _seccomp_action_available(action: int) -> bool:
    value = ctypes.c_uint32(action)
    try:
        traced(
            "seccomp",
            ["SECCOMP_GET_ACTION_AVAIL", "0", f"[{action:#x}]"],
            lambda: raw_syscall(
                "seccomp",
                ctypes.c_uint(SECCOMP_GET_ACTION_AVAIL),
                ctypes.c_uint(0),
                ctypes.byref(value),
            ),
        )
    except KitError:
        return False
    return True


def check_seccomp(ctx: Context) -> Check:
    """seccomp filter mode, the actions the kernel offers, and the architecture."""
    machine = platform.machine()
    arch_name, arch_value = AUDIT_ARCH.get(machine, ("unknown", 0))
    mode_field = _status_field("Seccomp")
    filters = _status_field("Seccomp_filters")
    data: dict[str, Any] = {
        "status_field": mode_field,
        "filters": filters,
        "arch": machine,
        "audit_arch": arch_name,
    }
    try:
        mode = process.prctl(PR_GET_SECCOMP)
    except KitError as error:
        data["prctl"] = None
        return Check(
            "seccomp",
            "warn",
            f"prctl(PR_GET_SECCOMP) failed ({error.errno_name}): this kernel has no seccomp; "
            "the seccomp lessons cannot run",
            ctx.host.newer_kernel("3.17") + " built with CONFIG_SECCOMP_FILTER=y",
            data,
        )
    data["prctl"] = mode
    actions = [name for name, value in SECCOMP_ACTIONS.items() if _seccomp_action_available(value)]
    data["actions"] = actions
    detail = (
        f"filter mode available (Seccomp: {mode_field} in /proc/self/status, prctl says {mode}); "
        f"actions: {' '.join(actions)}; architecture {machine}, so filters check "
        f"seccomp_data.arch == {arch_name} ({arch_value:#x})"
    )
    if machine == "x86_64":
        detail += " and refuse the i386/x32 entry points"
    if "ERRNO" not in actions or "KILL_PROCESS" not in actions:
        return Check(
            "seccomp",
            "warn",
            detail + "; this kernel lacks actions kit's filters use",
            ctx.host.newer_kernel("4.14"),
            data,
        )
    if mode == 2:
        return Check(
            "seccomp",
            "warn",
            detail + f"; kit already runs under {filters or 'some'} seccomp filter(s) (a "
            "container's default profile?): calls kit teaches (unshare, mount, keyctl) may be "
            "refused with EPERM",
            "run the outer container with --security-opt seccomp=unconfined",
            data,
        )
    return Check("seccomp", "ok", detail, data=data)


LANDLOCK_CREATE_RULESET_VERSION = 1 << 0


def landlock_abi() -> tuple[int, int | None]:
    """The Landlock ABI version (0 when unavailable) and the errno that said so."""
    try:
        abi = traced(
            "landlock_create_ruleset",
            ["NULL", "0", "LANDLOCK_CREATE_RULESET_VERSION"],
            lambda: raw_syscall(
                "landlock_create_ruleset",
                None,
                ctypes.c_size_t(0),
                ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
            ),
            note="asks for the ABI version; creates nothing",
        )
    except KitError as error:
        return 0, error.errno
    return int(abi), None


def _lsm_list(ctx: Context) -> tuple[list[str] | None, str]:
    """The active LSMs and where the list came from."""
    text = _read("/sys/kernel/security/lsm")
    if text is not None:
        return text.strip().split(","), "/sys/kernel/security/lsm"
    probed = ctx.result("securityfs")
    if probed and probed.get("ok"):
        return probed["lsm"].split(","), (
            "securityfs, which this host has not mounted: the probe mounted it in a private "
            "namespace"
        )
    for word in (_read("/proc/cmdline") or "").split():
        if word.startswith("lsm="):
            return word[4:].split(","), "the lsm= boot parameter"
    default = ctx.config.get("CONFIG_LSM")
    if default:
        return default.split(","), (
            "the kernel's build default CONFIG_LSM (securityfs is not mounted and only root "
            "may mount it; modules not built in are skipped)"
        )
    return None, "the LSM list is unknown (securityfs is not mounted and only root may mount it)"


def check_landlock(ctx: Context) -> Check:
    """Landlock's ABI version, and whether it is in the active LSM list."""
    abi, err = landlock_abi()
    lsms, source = _lsm_list(ctx)
    listed = lsms is not None and "landlock" in lsms
    data = {"abi": abi, "errno": err, "in_lsm_list": listed, "lsm_source": source}
    where = f"{'in' if listed else 'not in'} the LSM list from {source}" if lsms else source
    if abi >= 1:
        return Check("landlock", "ok", f"Landlock ABI {abi}; {where}", data=data)
    if err == E.EOPNOTSUPP:
        return Check(
            "landlock",
            "warn",
            f"Landlock is built in but not enabled at boot (EOPNOTSUPP); {where}",
            "add landlock to the lsm= boot parameter: in /etc/default/grub set "
            'GRUB_CMDLINE_LINUX="lsm=landlock,lockdown,yama,integrity,apparmor,bpf", '
            f"run {ctx.host.as_root('update-grub')} and reboot",
            data,
        )
    return Check(
        "landlock",
        "warn",
        f"this kernel has no Landlock ({E.errorcode.get(err or 0, err)}); {where}; "
        "the Landlock lessons cannot run",
        ctx.host.newer_kernel("5.13") + " built with CONFIG_SECURITY_LANDLOCK=y",
        data,
    )


def check_lsms(ctx: Context) -> Check:
    """AppArmor, SELinux and the active LSM list, and what they mean for kit."""
    lsms, source = _lsm_list(ctx)
    apparmor = (_read("/sys/module/apparmor/parameters/enabled") or "").strip() == "Y"
    probed = ctx.result("securityfs") or {}
    apparmor_fs = os.path.isdir("/sys/kernel/security/apparmor") or bool(probed.get("apparmor"))
    enforce = _read_int("/sys/fs/selinux/enforce")
    confinement = (
        _read("/proc/self/attr/apparmor/current") or _read("/proc/self/attr/current") or ""
    ).strip("\0\n ")
    data = {
        "lsm": lsms,
        "lsm_source": source,
        "apparmor": apparmor,
        "apparmor_fs": apparmor_fs,
        "selinux_enforce": enforce,
        "confinement": confinement or None,
    }
    if not lsms:
        parts = [source]
    elif "CONFIG_LSM" in source:
        parts = [f"LSMs this kernel enables by default: {','.join(lsms)} (from {source})"]
    else:
        parts = [f"active LSMs: {','.join(lsms)} (read from {source})"]
    parts.append(
        "AppArmor: enabled"
        + (" (profiles in /sys/kernel/security/apparmor)" if apparmor_fs else "")
        if apparmor
        else "AppArmor: off"
    )
    parts.append(
        {None: "SELinux: off", 0: "SELinux: permissive", 1: "SELinux: enforcing"}.get(
            enforce, f"SELinux: enforce={enforce}"
        )
    )
    if confinement:
        parts.append(f"kit runs as {confinement}")
    if enforce == 1:
        return Check(
            "security modules",
            "warn",
            "; ".join(parts) + ": kit sets no SELinux labels, so bind mounts and overlay "
            "layers may be denied (AVC messages in the audit log)",
            "for the course: "
            + ctx.host.as_root("setenforce 0")
            + " (permissive until reboot), or label kit's data: "
            + ctx.host.as_root("chcon -R -t container_file_t /var/lib/kit"),
            data,
        )
    if (
        confinement
        and confinement not in ("unconfined", "kernel")
        and "unconfined" not in confinement
    ):
        return Check(
            "security modules",
            "warn",
            "; ".join(parts) + ": a confining profile may refuse mount and unshare",
            "run kit unconfined (Docker: --security-opt apparmor=unconfined)",
            data,
        )
    parts.append("nothing here restricts what kit does; kit's containers run without a profile")
    return Check("security modules", "ok", "; ".join(parts), data=data)


def check_environment(ctx: Context) -> Check:
    """Whether kit runs inside a container or WSL, and what that means."""
    hints = container_hints(
        dockerenv=os.path.exists("/.dockerenv"),
        containerenv=os.path.exists("/run/.containerenv"),
        pid1_cgroup=_read("/proc/1/cgroup") or "",
        pid1_environ=_read("/proc/1/environ") or "",
        proc_version=_read("/proc/version") or "",
    )
    data: dict[str, Any] = {"hints": hints}
    if not hints:
        return Check(
            "environment",
            "ok",
            "not inside a container or WSL (no /.dockerenv or /run/.containerenv, PID 1's "
            "cgroups name no container engine)",
            data=data,
        )
    if "wsl1" in hints:
        return Check(
            "environment",
            "fail",
            hints["wsl1"] + ": WSL1 translates Linux calls and has no namespaces or overlayfs",
            "convert the distribution to WSL2 (in PowerShell: wsl --set-version <distro> 2)",
            data,
        )
    if "wsl2" in hints:
        return Check(
            "environment",
            "warn",
            hints["wsl2"] + ": a real Linux kernel in a VM; namespaces and overlay work, "
            "but cgroups and / propagation may differ from a laptop's",
            "nothing required; for cgroup v2 add kernelCommandLine = "
            "cgroup_no_v1=all to .wslconfig",
            data,
        )
    strong = {k: v for k, v in hints.items() if k in ("containerenv", "cgroup", "environ")}
    meaning = (
        "inside a container kit needs the outer engine's privileges (docker run --privileged, "
        "or --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt "
        "apparmor=unconfined) and a data root that is not on the container's overlayfs"
    )
    detail = "; ".join(hints.values())
    if not strong:
        detail += (
            ", but nothing else points to a container engine (PID 1's cgroups and environment "
            "name none): this may be a VM or machine built from a container image. If it is a "
            "container: " + meaning
        )
    else:
        detail += ": probably inside a container; " + meaning
    return Check(
        "environment",
        "warn",
        detail,
        "nothing to do if kit's other checks pass; for Docker: docker run --privileged "
        "-v kit-data:/var/lib/kit ...",
        data,
    )


def _has_setuid_or_caps(path: str) -> bool:
    try:
        if os.stat(path).st_mode & stat.S_ISUID:
            return True
        return bool(os.getxattr(path, "security.capability"))
    except OSError:
        return False


def check_subids(ctx: Context) -> Check:
    """Subordinate id ranges (/etc/subuid, /etc/subgid) and newuidmap, for rootless ranges."""
    name = "subordinate ids"
    user = os.environ.get("SUDO_USER") if os.geteuid() == 0 else None
    uid = int(os.environ.get("SUDO_UID", "0") or 0) if user else os.getuid()
    if not user:
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
    subuid = parse_subids(_read("/etc/subuid") or "", user, uid)
    subgid = parse_subids(_read("/etc/subgid") or "", user, uid)
    tools = {tool: _which(tool) for tool in ("newuidmap", "newgidmap")}
    usable = {t: bool(p and _has_setuid_or_caps(p)) for t, p in tools.items()}
    data = {"user": user, "subuid": subuid, "subgid": subgid, "tools": tools, "usable": usable}
    found = []
    for tool, path in tools.items():
        if not path:
            found.append(f"{tool} missing")
        else:
            found.append(f"{tool} at {path}" + (" (setuid)" if usable[tool] else " (not setuid!)"))
    shown = f"{user}: subuid {subuid or 'none'}, subgid {subgid or 'none'}; " + ", ".join(found)
    add_ranges = ctx.host.as_root(
        f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "
        f"{user if user != 'root' else 'STUDENT'}"
    )
    if uid == 0:
        return Check(
            name,
            "ok",
            f"running as root: kit writes any uid/gid map itself and needs no ranges ({shown}). "
            f"Students running rootless need ranges: {add_ranges}",
            data=data,
        )
    if subuid and subgid and all(usable.values()):
        return Check(
            name,
            "ok",
            shown + ": rootless containers can map a range of users (newuidmap writes the maps)",
            data=data,
        )
    fixes = []
    if not (subuid and subgid):
        fixes.append(add_ranges)
    if not all(usable.values()):
        fixes.append(ctx.host.install("uidmap"))
    return Check(
        name,
        "warn",
        shown + ": rootless containers map only your own uid (one user inside); lessons with "
        "several users need ranges",
        " and ".join(fixes),
        data,
    )


_TOOL_USES = {
    "runc": "the reference runtime; lessons compare kit with it",
    "umoci": "unpacks and repacks OCI images; image lessons use it as an oracle",
    "skopeo": "copies images between registries and layouts; image lessons use it",
    "tmux": "the real terminal for interactive lessons and their tests",
}


def _check_tool(ctx: Context, tool: str) -> Check:
    path = _which(tool)
    if path:
        return Check(tool, "ok", f"{path}: {_TOOL_USES[tool]}", data={"path": path})
    return Check(
        tool,
        "warn",
        f"not installed (optional: {_TOOL_USES[tool]})",
        ctx.host.install(tool),
        {"path": None},
    )


def check_busybox(ctx: Context) -> Check:
    """busybox, statically linked: a whole userland in one file for a root filesystem."""
    path = _which("busybox")
    data: dict[str, Any] = {"path": path, "static": None}
    if not path:
        return Check(
            "busybox",
            "warn",
            "not installed: kit builds root filesystems from host binaries and their "
            "libraries instead, and the busybox lessons cannot run",
            ctx.host.install("busybox"),
            data,
        )
    try:
        static: bool | None = elf.is_static(os.path.realpath(path))
    except KitError:
        static = None  # not an ELF file (a wrapper script?)
    data["static"] = static
    if static:
        return Check(
            "busybox",
            "ok",
            f"{path}, statically linked: one file is a root filesystem's whole userland",
            data=data,
        )
    return Check(
        "busybox",
        "warn",
        f"{path} is dynamically linked: copied alone into a rootfs it cannot start (its loader "
        "and libc are missing)",
        ctx.host.install("busybox"),
        data,
    )


def _checks() -> list[tuple[str, Callable[[Context], Check]]]:
    return [
        ("python", check_python),
        ("privileges", check_privileges),
        ("user namespaces", check_user_namespaces),
        ("namespaces", check_namespaces),
        ("overlayfs", check_overlay),
        ("mount propagation", check_propagation),
        ("cgroups", check_cgroups),
        ("seccomp", check_seccomp),
        ("landlock", check_landlock),
        ("security modules", check_lsms),
        ("environment", check_environment),
        ("subordinate ids", check_subids),
        ("busybox", check_busybox),
        *[(tool, lambda ctx, tool=tool: _check_tool(ctx, tool)) for tool in _TOOL_USES],
    ]


def run_checks() -> list[Check]:
    """Run every check on this machine (one probe interpreter; about a second)."""
    ctx = Context.gather()
    results: list[Check] = []
    for name, check in _checks():
        try:
            results.append(check(ctx))
        except Exception as exc:  # a doctor that crashes helps nobody
            results.append(
                Check(
                    name,
                    "warn",
                    f"the check itself failed: {type(exc).__name__}: {exc}",
                    "report this as a kit bug, with the output of `kit doctor --json`",
                )
            )
    return results


def can_run_containers(checks: list[Check]) -> bool:
    """True when no check failed: a failed check is one that stops every container."""
    return not any(check.status == "fail" for check in checks)


def explain_blockers(checks: list[Check]) -> str:
    """One paragraph: why this machine cannot run containers and what to do, or that it can."""
    failed = [c for c in checks if c.status == "fail"]
    warned = [c for c in checks if c.status == "warn"]
    if not failed:
        text = "This machine can run kit's containers."
        if warned:
            names = ", ".join(c.name for c in warned)
            text += (
                f" Warnings ({names}) concern single lessons or setups: each says what it "
                "means here and how to fix it; lessons that need a missing feature say so."
            )
        return text
    reasons = " ".join(
        f"{c.name.capitalize()}: {c.detail}." + (f" To fix: {c.fix}." if c.fix else "")
        for c in failed
    )
    return (
        "This machine cannot run containers with kit yet. A container is made of kernel "
        "features (namespaces, mounts, overlayfs), so kit checks that the kernel offers them "
        f"to this user before starting. {reasons} Then run `kit doctor` again."
    )


def _main(argv: list[str] | None = None) -> int:
    """``python -m kit.doctor --probe all``: the probe interpreter (see :func:`probe`)."""
    parser = argparse.ArgumentParser(prog="python -m kit.doctor")
    parser.add_argument(
        "--probe",
        choices=("all", "userns", "namespaces", "overlay", "lsm"),
        help="make the real attempts and print their results as JSON",
    )
    args = parser.parse_args(argv)
    if not args.probe:
        checks = run_checks()
        for check in checks:
            print(check.line())
        return 0 if can_run_containers(checks) else 1
    sys.stdout.write(json.dumps(run_probes(args.probe), default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
