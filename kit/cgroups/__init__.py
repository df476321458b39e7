"""Control groups: limits on what a container's processes may use together.

A cgroup is a directory in a special filesystem (cgroupfs). Processes are put in it by
writing their PIDs to its ``cgroup.procs``; limits are files in it (``memory.max``,
``pids.max``). Every process a member starts is a member too, so a limit holds for the whole
container, however many processes it forks. The kernel enforces the limits: the OOM killer
ends a process when the group's memory is used up, fork(2) fails with EAGAIN at the pids limit,
the scheduler throttles a group that used its CPU quota.

Two versions exist, and hosts use either or both:

* **v1** (:mod:`kit.cgroups.v1`): one tree per controller (``/sys/fs/cgroup/memory``,
  ``/sys/fs/cgroup/pids`` ...), so a container has one directory in each.
* **v2** (:mod:`kit.cgroups.v2`): one unified tree; a parent hands controllers down to its
  children through ``cgroup.subtree_control``, and only leaves hold processes.

kit places a container at ``kit/<root tag>-<container id>`` in each tree it uses (see
:func:`kit.paths.root_tag`): the trees of the controllers its limits need, and the one that
holds its device policy, which every container kit runs as root has
(:mod:`kit.cgroups.devices`: v1's devices controller, or a BPF program on a v2 cgroup). A
rootless container without limits has no cgroup of its own.
"""

from __future__ import annotations

from kit.cgroups.manager import ContainerCgroup, cgroup_path, open_cgroup

__all__ = ["ContainerCgroup", "cgroup_path", "open_cgroup"]
