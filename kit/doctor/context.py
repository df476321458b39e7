"""What the checks share: the host, the probe results and the system state they read.

Every input a check decides from is a field here. :meth:`Context.gather` reads them from this
machine; a test builds a Context from sample values instead (an Ubuntu 24.04 os-release, a
cgroup v2 mount table, AppArmor's userns sysctl set to 1) and runs the same checks on it.
Fields left as None are read from this machine when first needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from kit.doctor import readers
from kit.doctor.distro import Host
from kit.doctor.parsing import (
    CgroupLayout,
    container_hints,
    parse_cgroup_layout,
    v2_cgroup_path,
)
from kit.doctor.probes import probe


@dataclass
class Context:
    """What several checks share: the host, the probe results, the mount table, sysctls."""

    host: Host
    probes: dict[str, Any]
    mountinfo: str
    config: dict[str, str]
    #: The effective uid the checks speak for (lambda: tests may monkeypatch os.geteuid).
    euid: int = field(default_factory=lambda: os.geteuid())
    #: Whether this process holds CAP_SYS_ADMIN (read from /proc/self/status when None).
    cap_sys_admin: bool | None = None
    #: The user-namespace sysctls (None per key where this kernel has no such switch).
    sysctls: dict[str, int | None] | None = None
    #: The text of cgroup.controllers at the root of the v2 mount.
    cgroup_controllers: str | None = None
    #: Controllers this (unprivileged) user may use in its own v2 cgroup.
    delegated: tuple[str, ...] | None = None
    #: Evidence of running inside a container or WSL (see parsing.container_hints).
    hints: dict[str, str] | None = None

    @classmethod
    def gather(cls) -> Context:
        """This machine, with one probe interpreter run."""
        return cls(
            host=Host.detect(),
            probes=probe(),
            mountinfo=readers.read("/proc/self/mountinfo") or "",
            config=readers.kernel_config(),
        )

    def result(self, name: str) -> dict[str, Any] | None:
        """One probe's result, or None when it did not run."""
        value = self.probes.get(name)
        return value if isinstance(value, dict) else None

    @property
    def probe_error(self) -> str | None:
        error = self.probes.get("error")
        return str(error) if error else None

    def has_cap_sys_admin(self) -> bool:
        if self.cap_sys_admin is None:
            caps = int(readers.status_field("CapEff") or "0", 16)
            self.cap_sys_admin = bool(caps & (1 << 21))  # bit 21: CAP_SYS_ADMIN
        return self.cap_sys_admin

    def userns_sysctls(self) -> dict[str, int | None]:
        if self.sysctls is None:
            self.sysctls = readers.read_sysctls()
        return self.sysctls

    def cgroup_layout(self) -> CgroupLayout:
        """The cgroup mode and controllers, from the mount table and cgroup.controllers."""
        layout = parse_cgroup_layout(self.mountinfo)
        if layout.v2 and self.cgroup_controllers is None:
            path = os.path.join(layout.v2, "cgroup.controllers")
            self.cgroup_controllers = readers.read(path) or ""
        return parse_cgroup_layout(self.mountinfo, self.cgroup_controllers or "")

    def delegated_controllers(self) -> tuple[str, ...]:
        """The v2 controllers an unprivileged user may use below its own cgroup.

        systemd gives each logged-in user a cgroup (``user@UID.service``) owned by that user:
        the user may create child cgroups there and, for the controllers systemd delegated
        (listed in that cgroup's ``cgroup.controllers``), set limits in them.
        """
        if self.delegated is None:
            self.delegated = _read_delegated(self.cgroup_layout(), self.euid)
        return self.delegated

    def environment_hints(self) -> dict[str, str]:
        if self.hints is None:
            self.hints = container_hints(
                dockerenv=os.path.exists("/.dockerenv"),
                containerenv=os.path.exists("/run/.containerenv"),
                pid1_cgroup=readers.read("/proc/1/cgroup") or "",
                pid1_environ=readers.read("/proc/1/environ") or "",
                proc_version=readers.read("/proc/version") or "",
                self_status=readers.read("/proc/self/status") or "",
            )
        return self.hints


def confined(ctx: Context) -> bool:
    """Whether a container engine took what kit needs away (capabilities, seccomp)."""
    hints = ctx.environment_hints()
    return "capabilities" in hints or "seccomp" in hints


def _read_delegated(layout: CgroupLayout, uid: int) -> tuple[str, ...]:
    """Walk up from this process's v2 cgroup to the highest directory ``uid`` owns."""
    if not layout.v2:
        return ()
    place = v2_cgroup_path(readers.read("/proc/self/cgroup") or "")
    if place is None:
        return ()
    owned: str | None = None
    path = os.path.normpath(layout.v2 + place)
    while path.startswith(layout.v2) and path != layout.v2:
        try:
            if os.stat(path).st_uid == uid:
                owned = path
        except OSError:
            pass
        path = os.path.dirname(path)
    if owned is None:
        return ()
    return tuple((readers.read(os.path.join(owned, "cgroup.controllers")) or "").split())
