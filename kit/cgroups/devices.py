"""The devices control: the kernel refuses device nodes the container's policy does not allow.

Root in a container keeps CAP_MKNOD (Docker's default), so it can create a node for any
(type, major, minor), the host's disk included, in any directory it may write that is not
mounted ``nodev`` (its own /dev is not). Opening that node would hand it every byte of the
host's filesystem, under no mount namespace at all. What stops it is the cgroup: every open
and mknod of a device node is checked against the policy of the caller's cgroup, and a
device it does not allow fails with EPERM, whatever the capabilities. Every container kit
runs as root gets such a policy (:mod:`kit.cgroups.device_rules`: deny all, then the
standard devices and the ones given with ``--device``); two kernel mechanisms apply it:

* **cgroup v1**, the *devices* controller: the container's directory in the devices hierarchy
  takes the policy as lines, ``a`` written to ``devices.deny`` (deny everything), then each
  exception to ``devices.allow`` (``c 1:3 rwm``); ``devices.list`` reads them back.
* **cgroup v2** has no devices files. Instead a small eBPF program of type
  BPF_PROG_TYPE_CGROUP_DEVICE is attached to the container's cgroup; the kernel runs it on
  every device access and it answers 1 (allow) or 0 (deny). kit writes that program from the
  policy (:mod:`kit.security.device_filter`) and loads it with bpf(2) (:mod:`kit.linux.bpf`).

Which one applies is read from the host's layout: where a v1 hierarchy holds the devices
controller (v1 and hybrid hosts, like this machine), v1, as runc does; otherwise the unified
tree, which takes BPF programs whether or not it has controllers.

**Rootless** kit has no devices cgroup, and needs none: cgroups and BPF programs need the
host's root, and the kernel refuses mknod of any device in a user namespace (CAP_MKNOD counts
only in the initial one). A rootless container sees only the host's own nodes, bind-mounted,
with the host's permissions for the user who runs it.
"""

from __future__ import annotations

import os

from kit.cgroups.base import Directory
from kit.cgroups.device_rules import DevicePolicy, policy_for
from kit.cgroups.layout import Layout
from kit.errors import KitError
from kit.spec import Spec
from kit.trace import tracer


def policy_to_enforce(spec: Spec) -> DevicePolicy | None:
    """The policy the container's cgroup must apply, or None when there is nothing to apply:
    not root of the host (rootless, see the module docstring) or a policy that allows every
    device."""
    from kit.security.userns import host_root

    if not host_root():
        # Rootless, or uid 0 of some user namespace (unshare --map-root-user): no cgroup
        # writes, no BPF, and no mknod either; nothing to enforce.
        tracer().info(
            "rootless: no devices cgroup (mknod is refused in a user namespace, and the "
            "host's device nodes keep the host's permissions)"
        )
        return None
    policy = policy_for(spec)
    if policy.allows_everything:
        tracer().info("the device rules allow every device: no devices cgroup needed")
        return None
    return policy


def version_for(layout: Layout) -> int:
    """1 where a v1 hierarchy holds the devices controller, else 2 where the unified tree is
    mounted; a KitError on a host with neither (the policy could not be enforced)."""
    if "devices" in layout.v1:
        return 1
    if layout.v2:
        return 2
    raise KitError(
        "the container's device rules cannot be enforced: this host mounts neither a v1 "
        "devices hierarchy nor the unified cgroup tree",
        cause="without one, root in the container could mknod and open any device, the "
        "host's disks included",
        fix="mount the cgroup trees (systemd does at boot; by hand: mount -t cgroup2 none "
        "/sys/fs/cgroup), or allow every device explicitly with --device-cgroup-rule 'a' "
        "(the container is then trusted with all of them)",
    )


def v1_lines(policy: DevicePolicy) -> list[tuple[str, str]]:
    """(file, line) for the v1 controller, in order: first the default, then the exceptions
    (a new cgroup starts as a copy of its parent's list)."""
    if policy.default_allow:
        return [("devices.allow", "a")] + [("devices.deny", e.line()) for e in policy.entries]
    return [("devices.deny", "a")] + [("devices.allow", e.line()) for e in policy.entries]


def restrict(directory: Directory, policy: DevicePolicy) -> None:
    """Apply ``policy`` to the container's cgroup ``directory`` (v1 files or a v2 program)."""
    if directory.unified:
        attach_program(directory, policy)
        return
    for name, line in v1_lines(policy):
        note = "deny every device" if line == "a" and name == "devices.deny" else None
        directory.write(name, line, note=note)


def attach_program(directory: Directory, policy: DevicePolicy) -> None:
    """cgroup v2: compile the policy, load it, attach it to the directory, and let the cgroup
    keep it (our file descriptor is closed; removing the cgroup frees the program)."""
    from kit.linux import bpf
    from kit.security.device_filter import compile_policy
    from kit.security.ebpf import encode

    program = compile_policy(policy)
    fd = bpf.prog_load(
        encode(program),
        name="kit_devices",
        note=f"a device filter of {len(program)} instructions",
    )
    try:
        bpf.prog_attach(
            directory.fd,
            fd,
            flags=bpf.BPF_F_ALLOW_MULTI,
            shown=directory.host_path,
            note="every device access in this cgroup now asks the program",
        )
    finally:
        os.close(fd)
