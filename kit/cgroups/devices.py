"""The devices cgroup: which device nodes a container may open or create (cgroup v1).

A device node is just a name for a (type, major, minor) triple, and a root process with
CAP_MKNOD (Docker and podman keep it) can create one anywhere it may write: ``mknod /x b 8 0``
names the host's first disk. Namespaces do not stop that; the *devices* controller does. Each
cgroup has an allow-list; opening or creating a node the list does not allow fails with EPERM,
whatever the process's capabilities. An OCI spec states the list as
``linux.resources.devices`` (podman: deny everything), and the runtime adds the nodes every
container needs, as runc does:

    a *:* rwm   denied                          (the spec's first rule)
    c *:* m     allowed: mknod of any character device (but not using it)
    b *:* m     allowed: the same for block devices
    c 1:3 rwm   /dev/null   c 1:5 /dev/zero   c 1:7 /dev/full
    c 1:8 rwm   /dev/random c 1:9 /dev/urandom c 5:0 /dev/tty
    c 5:1 rwm   /dev/console c 5:2 /dev/ptmx    c 136:* /dev/pts/N

In v1 the rules are lines written to ``devices.deny`` and ``devices.allow`` of the
container's directory in the devices hierarchy (``a`` alone means "all"). cgroup v2 has no
such files: there a BPF program attached to the cgroup decides, which kit does not do.
"""

from __future__ import annotations

import errno
import os

from kit.errors import KitError
from kit.linux.kernfs import make_dir, remove_dir, write_text
from kit.spec import DeviceRule, Spec

#: (type, major, minor) of the nodes every container gets (see kit.runtime.stages.devices),
#: plus the terminal devices.
STANDARD_DEVICES: tuple[tuple[str, str, str], ...] = (
    ("c", "1", "3"),
    ("c", "1", "5"),
    ("c", "1", "7"),
    ("c", "1", "8"),
    ("c", "1", "9"),
    ("c", "5", "0"),
    ("c", "5", "1"),
    ("c", "5", "2"),
    ("c", "136", "*"),
)


def rule_line(rule: DeviceRule) -> str:
    """``c 1:3 rwm``; a rule without a type means every device (``a``)."""
    kind = rule.type or "a"
    if kind == "a":
        return "a"
    major = "*" if rule.major is None or rule.major < 0 else str(rule.major)
    minor = "*" if rule.minor is None or rule.minor < 0 else str(rule.minor)
    return f"{kind} {major}:{minor} {rule.access or 'rwm'}"


def rules_for(spec: Spec) -> list[tuple[bool, str]]:
    """(allow, line) in the order to write them: the spec's rules, then the standard ones."""
    resources = spec.linux.resources
    rules = [(r.allow, rule_line(r)) for r in (resources.devices if resources else [])]
    if not rules:
        return []
    rules += [(True, "c *:* m"), (True, "b *:* m")]
    rules += [(True, f"{t} {major}:{minor} rwm") for t, major, minor in STANDARD_DEVICES]
    for device in spec.linux.devices:
        if device.type in ("c", "b"):
            rules.append((True, f"{device.type} {device.major}:{device.minor} rwm"))
    return rules


def devices_mount() -> str | None:
    """Where the v1 devices hierarchy is mounted, if it is."""
    from kit import mounts

    for m in mounts.read():
        if m.fstype == "cgroup" and "devices" in m.super_options:
            return m.mount_point
    return None


class DeviceCgroup:
    """The container's directory in the devices hierarchy."""

    def __init__(self, mount: str, path: str) -> None:
        self.mount = mount
        self.path = "/" + path.strip("/")

    @property
    def host_path(self) -> str:
        return self.mount + self.path

    def create(self, rules: list[tuple[bool, str]]) -> None:
        parts = [p for p in self.path.split("/") if p]
        where = self.mount
        for i, part in enumerate(parts):
            where = f"{where}/{part}"
            try:
                make_dir(where, note="a new devices cgroup" if i == len(parts) - 1 else None)
            except KitError as error:
                if error.errno != errno.EEXIST:
                    raise
        for allow, line in rules:
            name = "devices.allow" if allow else "devices.deny"
            write_text(f"{self.host_path}/{name}", line, note="allow" if allow else "deny")

    def join(self, pid: int) -> None:
        write_text(f"{self.host_path}/cgroup.procs", str(pid), note=f"PID {pid} joins {self.path}")

    def remove(self) -> None:
        if os.path.isdir(self.host_path):
            remove_dir(self.host_path)


def attach(spec: Spec, path: str, pid: int) -> DeviceCgroup | None:
    """Create the devices cgroup for ``spec`` at ``path``, write its rules, move ``pid`` in.

    None when the spec has no device rules. A KitError when it has some and this host
    cannot enforce them (no v1 devices hierarchy): running anyway would quietly give the
    container every device its capabilities reach.
    """
    rules = rules_for(spec)
    if not rules:
        return None
    mount = devices_mount()
    if mount is None:
        raise KitError(
            "the spec restricts devices (linux.resources.devices) and this host has no "
            "cgroup v1 devices hierarchy",
            cause="kit enforces device rules only through the v1 devices controller (on "
            "cgroup v2 it would need a BPF device program, which kit does not write)",
            fix="run on a host with the v1 devices controller, or use runc for this bundle",
        )
    cgroup = DeviceCgroup(mount, path)
    try:
        cgroup.create(rules)
        cgroup.join(pid)
    except BaseException:
        cgroup.remove()
        raise
    return cgroup
