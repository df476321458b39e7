"""The mount table: reading /proc/PID/mountinfo and comparing two snapshots of it.

Each line of mountinfo (proc(5)) describes one mount as its namespace sees it::

    36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    |  |  |    |     |           |          |        | |    |         super options
    |  |  |    |     |           |          |        | |    source
    |  |  |    |     |           |          |        | filesystem type
    |  |  |    |     |           |          |        separator
    |  |  |    |     |           |          optional fields: propagation (shared:N, master:N)
    |  |  |    |     |           per-mount options
    |  |  |    |     mount point, relative to the process's root
    |  |  |    root of the mount within its filesystem (a bind mount shows a subdirectory)
    |  |  device
    |  parent mount id
    mount id
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(text: str) -> str:
    # The kernel escapes space, tab, newline and backslash as \ooo octal.
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo."""

    mount_id: int
    parent_id: int
    device: str
    root: str
    mount_point: str
    options: tuple[str, ...]
    optional: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...] = field(default=())

    @property
    def propagation(self) -> str:
        """``shared``, ``slave`` (master:N), ``shared+slave``, ``unbindable`` or ``private``."""
        kinds = [tag.split(":")[0] for tag in self.optional]
        if "unbindable" in kinds:
            return "unbindable"
        shared = "shared" in kinds
        slave = "master" in kinds
        if shared and slave:
            return "shared+slave"
        if shared:
            return "shared"
        if slave:
            return "slave"
        return "private"

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity across snapshots and namespaces (mount ids differ between namespaces)."""
        return (self.mount_point, self.root, self.fstype, self.source)

    def describe(self) -> str:
        """``/proc  proc  proc  rw,nosuid,nodev,noexec  private``"""
        where = self.mount_point
        if self.root != "/":
            where += f"  (from {self.root})"
        return (
            f"{where}  {self.fstype}  {self.source}  {','.join(self.options)}  {self.propagation}"
        )


def parse_line(line: str) -> Mount:
    fields = line.split()
    separator = fields.index("-")
    return Mount(
        mount_id=int(fields[0]),
        parent_id=int(fields[1]),
        device=fields[2],
        root=_unescape(fields[3]),
        mount_point=_unescape(fields[4]),
        options=tuple(fields[5].split(",")),
        optional=tuple(fields[6:separator]),
        fstype=fields[separator + 1],
        source=_unescape(fields[separator + 2]),
        super_options=tuple(fields[separator + 3].split(","))
        if len(fields) > separator + 3
        else (),
    )


def parse(text: str) -> list[Mount]:
    """Parse the whole text of a mountinfo file."""
    return [parse_line(line) for line in text.splitlines() if line.strip()]


def read(pid: int | str = "self") -> list[Mount]:
    """The mount table of a process, as that process's namespace sees it."""
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return parse(f.read())


def find(table: list[Mount], mount_point: str) -> Mount | None:
    """The topmost mount at ``mount_point`` (later lines stack on earlier ones)."""
    found = None
    for entry in table:
        if entry.mount_point == mount_point:
            found = entry
    return found


@dataclass
class MountDiff:
    """What changed between two mount tables."""

    added: list[Mount]
    removed: list[Mount]
    changed: list[tuple[Mount, Mount]]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        """Plain text, one mount per line: ``+`` added, ``-`` removed, ``~`` changed."""
        out = [f"+ {m.describe()}" for m in self.added]
        out += [f"- {m.describe()}" for m in self.removed]
        for before, after in self.changed:
            out.append(
                f"~ {after.describe()}   (was {','.join(before.options)} {before.propagation})"
            )
        return out


def diff(before: list[Mount], after: list[Mount]) -> MountDiff:
    """Compare two mount tables by mount point, root, type and source."""
    old = {m.key: m for m in before}
    new = {m.key: m for m in after}
    added = [m for m in after if m.key not in old]
    removed = [m for m in before if m.key not in new]
    changed = [
        (old[m.key], m)
        for m in after
        if m.key in old
        and (old[m.key].options != m.options or old[m.key].propagation != m.propagation)
    ]
    return MountDiff(added, removed, changed)
