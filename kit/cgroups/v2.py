"""cgroup v2: one unified tree; controllers are handed down, and only leaves hold processes.

    /sys/fs/cgroup/cgroup.subtree_control          "+memory +pids +cpu": children may limit
    /sys/fs/cgroup/kit/cgroup.subtree_control      the same, one level down
    /sys/fs/cgroup/kit/<tag>-<id>/memory.max       the memory limit (bytes or "max")
    /sys/fs/cgroup/kit/<tag>-<id>/memory.swap.max  swap allowed *on top of* memory.max
    /sys/fs/cgroup/kit/<tag>-<id>/pids.max         the process limit
    /sys/fs/cgroup/kit/<tag>-<id>/cpu.max          "QUOTA PERIOD" in microseconds

Two rules shape this. A controller's files appear in a cgroup only if its parent lists the
controller in ``cgroup.subtree_control``, so kit enables them on the way down. And a cgroup
(other than the root) that hands controllers to children must not hold processes itself
("no internal processes"), so ``kit/`` only ever holds container cgroups, never a process.

The OOM killer's kills are counted in ``memory.events`` (``oom_kill N``); ``cgroup.kill``
kills every process of a cgroup in one write. There is no devices file: the device policy is a
BPF program attached to the directory (:mod:`kit.cgroups.devices`), which needs no controller,
so a container without limits still gets a directory here, with no controller handed down.
"""

from __future__ import annotations

from kit.cgroups.base import ContainerCgroup, Directory, counter, limit_text
from kit.cgroups.layout import CONTROLLERS, Layout
from kit.linux.kernfs import read_text, write_text
from kit.spec import Resources


def shares_to_weight(shares: int) -> int:
    """v1 cpu.shares (2..262144, default 1024) -> v2 cpu.weight (1..10000, default 100),
    the conversion runc and systemd use."""
    return 1 + ((shares - 2) * 9999) // 262142


class V2Cgroup(ContainerCgroup):
    version = 2

    def __init__(self, directories: list[Directory], controllers: tuple[str, ...]) -> None:
        super().__init__(directories)
        #: The controllers to hand down (those the tree offers, of the ones kit uses).
        self.controllers = controllers

    @classmethod
    def for_layout(
        cls, layout: Layout, path: str, controllers: tuple[str, ...] = CONTROLLERS
    ) -> V2Cgroup:
        assert layout.v2 is not None
        wanted = tuple(c for c in controllers if c in layout.v2_controllers)
        return cls([Directory(layout.v2, path, unified=True)], wanted)

    @property
    def directory(self) -> Directory:
        return self.directories[0]

    def prepare_parent(self, fd: int, where: str) -> None:
        """Enable kit's controllers for the children of ``where`` (only those not enabled yet,
        so an already delegated tree is left as it was)."""
        if not self.controllers:
            return
        enabled = read_text("cgroup.subtree_control", dir_fd=fd).split()
        missing = [c for c in self.controllers if c not in enabled]
        if missing:
            write_text(
                "cgroup.subtree_control",
                " ".join(f"+{c}" for c in missing),
                dir_fd=fd,
                shown=f"{where}/cgroup.subtree_control",
                note="let child cgroups use these controllers",
            )

    def apply(self, resources: Resources) -> None:
        d = self.directory
        if resources.memory is not None:
            memory = resources.memory
            if memory.limit is not None:
                d.write("memory.max", limit_text(memory.limit), note="the memory limit")
            if memory.swap is not None and d.has("memory.swap.max"):
                # OCI's swap is memory + swap (as v1's memsw); v2 limits swap alone.
                unlimited = memory.swap < 0 or memory.limit is None
                swap = "max" if unlimited else str(memory.swap - (memory.limit or 0))
                d.write("memory.swap.max", swap, note="swap on top of memory.max")
        if resources.pids is not None:
            d.write(
                "pids.max",
                limit_text(resources.pids.limit),
                note="fork fails with EAGAIN beyond this",
            )
        if resources.cpu is not None:
            cpu = resources.cpu
            if cpu.quota is not None or cpu.period is not None:
                quota = "max" if cpu.quota is None or cpu.quota < 0 else str(cpu.quota)
                d.write(
                    "cpu.max",
                    f"{quota} {cpu.period or 100000}",
                    note="CPU time allowed per period (us)",
                )
            if cpu.shares is not None:
                d.write("cpu.weight", str(shares_to_weight(cpu.shares)))

    def oom_kills(self) -> int:
        d = self.directory
        if d.fd < 0 or not d.has("memory.events"):
            return 0
        return counter(d.read("memory.events"), "oom_kill")

    def kill_all(self) -> None:
        d = self.directory
        if d.fd >= 0 and d.has("cgroup.kill"):
            d.write("cgroup.kill", "1", note="kill every process left in the cgroup")
        else:
            super().kill_all()
