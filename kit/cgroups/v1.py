"""cgroup v1: one tree per controller, one directory of the container in each.

    /sys/fs/cgroup/memory/kit/<tag>-<id>/memory.limit_in_bytes     the memory limit
    /sys/fs/cgroup/memory/kit/<tag>-<id>/memory.memsw.limit_in_bytes  memory + swap
    /sys/fs/cgroup/pids/kit/<tag>-<id>/pids.max                    the process limit
    /sys/fs/cgroup/cpu/kit/<tag>-<id>/cpu.cfs_quota_us             CPU time per period
    /sys/fs/cgroup/cpu/kit/<tag>-<id>/cpu.cfs_period_us
    /sys/fs/cgroup/devices/kit/<tag>-<id>/devices.deny    "a": no device, then devices.allow
                                                         "c 1:3 rwm" ... (kit.cgroups.devices)

A container is in the trees of the controllers its limits need, and in the devices tree: a
container without limits costs one directory.

When the memory limit is reached and nothing can be reclaimed, the kernel's OOM killer kills
the biggest process of the group and counts it in ``memory.oom_control`` (``oom_kill N``).
"""

from __future__ import annotations

from kit.cgroups.base import ContainerCgroup, Directory, counter, limit_text
from kit.cgroups.layout import CONTROLLERS, Layout
from kit.spec import Resources


class V1Cgroup(ContainerCgroup):
    version = 1

    @classmethod
    def for_layout(
        cls,
        layout: Layout,
        path: str,
        controllers: tuple[str, ...] = CONTROLLERS,
        *,
        devices: bool = False,
    ) -> V1Cgroup:
        """One directory per mounted tree that holds one of ``controllers`` (cpu and cpuacct
        often share a tree: then it is one directory), plus the devices tree's if ``devices``
        (it then holds the device policy)."""
        mounts: list[str] = []
        for controller in (*controllers, "devices") if devices else controllers:
            mount = layout.v1.get(controller)
            if mount and mount not in mounts:
                mounts.append(mount)
        cgroup = cls([Directory(mount, path) for mount in mounts])
        if devices:
            cgroup.devices = next(d for d in cgroup.directories if d.mount == layout.v1["devices"])
        return cgroup

    def _holding(self, filename: str) -> Directory | None:
        """The container's directory in the tree whose controller provides ``filename``."""
        for d in self.directories:
            if d.has(filename):
                return d
        return None

    def apply(self, resources: Resources) -> None:
        memory_dir = self._holding("memory.limit_in_bytes")
        if resources.memory is not None and memory_dir is not None:
            memory = resources.memory
            if memory.limit is not None:
                memory_dir.write(
                    "memory.limit_in_bytes", str(memory.limit), note="the memory limit"
                )
            # memsw exists only with swap accounting (swapaccount=1); without it, swap is not
            # limited separately (and this machine has none).
            if memory.swap is not None and memory_dir.has("memory.memsw.limit_in_bytes"):
                memory_dir.write(
                    "memory.memsw.limit_in_bytes",
                    str(memory.swap),
                    note="memory + swap (-1: unlimited)",
                )
            if memory.swappiness is not None:
                memory_dir.write("memory.swappiness", str(memory.swappiness))
        pids_dir = self._holding("pids.max")
        if resources.pids is not None and pids_dir is not None:
            pids_dir.write(
                "pids.max",
                limit_text(resources.pids.limit),
                note="fork fails with EAGAIN beyond this",
            )
        cpu_dir = self._holding("cpu.cfs_quota_us")
        if resources.cpu is not None and cpu_dir is not None:
            cpu = resources.cpu
            if cpu.period is not None:
                cpu_dir.write("cpu.cfs_period_us", str(cpu.period), note="the CFS period (us)")
            if cpu.quota is not None:
                cpu_dir.write(
                    "cpu.cfs_quota_us", str(cpu.quota), note="CPU time allowed per period (us)"
                )
            if cpu.shares is not None:
                cpu_dir.write("cpu.shares", str(cpu.shares))

    def oom_kills(self) -> int:
        memory_dir = self._holding("memory.oom_control")
        if memory_dir is None:
            return 0
        return counter(memory_dir.read("memory.oom_control"), "oom_kill")
