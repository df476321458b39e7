"""``kit run`` options that isolate identity and limit resources.

    kit run --userns ...                        root inside, an ordinary user outside
    kit run --uidmap 0:100000:65536 ...         explicit id maps (imply --userns)
    kit run --memory 64m --pids-limit 32 --cpus 0.5 ...   cgroup limits
    kit run --ulimit nofile=1024:2048 ...       per-process limits (setrlimit)
    kit run --landlock /bin:rx --landlock /tmp:rw ...      only these paths are reachable
    kit run --device /dev/zero:/dev/myzero:r ...   a host device node in the container
    kit run --device-cgroup-rule 'c 10:200 rwm' ...        allow more devices (cgroup)

Run as an ordinary user, kit always uses a user namespace (rootless mode): nothing else could
create the other namespaces.
"""

from __future__ import annotations

import argparse
import os
import stat

from kit.errors import KitError
from kit.spec import Device, DeviceRule, IdMapping, Resources, Spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("identity and resources")
    group.add_argument(
        "--userns",
        action="store_true",
        help="run in a new user namespace: root inside is your own user outside (or, for "
        "root, its /etc/subuid range, else nobody); automatic when not run as root",
    )
    group.add_argument(
        "--uidmap",
        action="append",
        default=[],
        metavar="CONTAINER:HOST:SIZE",
        help="map container uids to host uids (repeatable; implies --userns)",
    )
    group.add_argument(
        "--gidmap",
        action="append",
        default=[],
        metavar="CONTAINER:HOST:SIZE",
        help="map container gids to host gids (default: like --uidmap)",
    )
    group.add_argument(
        "-m", "--memory", metavar="SIZE", help="memory limit, e.g. 64m (cgroup; at least 6m)"
    )
    group.add_argument(
        "--memory-swap",
        metavar="SIZE",
        help="memory + swap limit (-1: unlimited swap; default: twice --memory, as Docker)",
    )
    group.add_argument(
        "--pids-limit", metavar="N", help="maximum number of processes and threads (cgroup)"
    )
    group.add_argument("--cpus", metavar="N", help="CPU time, in CPUs, e.g. 0.5 (cgroup)")
    group.add_argument(
        "--ulimit",
        action="append",
        default=[],
        metavar="NAME=SOFT[:HARD]",
        help="a per-process limit, e.g. nofile=1024:2048 (repeatable)",
    )
    group.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="HOST[:CONTAINER][:rwm]",
        help="give the container a host device: the node is created inside and the device "
        "cgroup allows it (r read, w write, m mknod; default rwm; repeatable)",
    )
    group.add_argument(
        "--device-cgroup-rule",
        action="append",
        default=[],
        metavar="'TYPE MAJOR:MINOR ACCESS'",
        help="add a rule to the device cgroup's allow-list, e.g. 'c 10:200 rwm' or 'b 8:* r' "
        "(repeatable; every other device stays denied)",
    )
    group.add_argument(
        "--landlock",
        action="append",
        default=None,
        metavar="PATH[:ro|rw|rx|rwx]",
        help="turn Landlock on: only the listed container paths stay reachable, with these "
        "rights (repeatable; default ro)",
    )


def parse_idmap(text: str, flag: str) -> IdMapping:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or int(parts[2]) == 0:
        raise KitError(
            f"invalid {flag} {text!r}",
            cause="a map is CONTAINER_ID:HOST_ID:SIZE, three numbers, SIZE at least 1",
            fix=f"write e.g. {flag} 0:100000:65536",
            exit_code=2,
        )
    return IdMapping(container_id=int(parts[0]), host_id=int(parts[1]), size=int(parts[2]))


def apply(args: argparse.Namespace, spec: Spec) -> None:
    apply_user_namespace(args, spec)
    apply_devices(args, spec)
    apply_limits(args, spec)
    from kit.security.rlimits import add_ulimits

    add_ulimits(spec, args.ulimit)
    apply_landlock(args, spec)


def apply_user_namespace(args: argparse.Namespace, spec: Spec) -> None:
    from kit.security import userns

    wanted = args.userns or args.uidmap or args.gidmap or os.geteuid() != 0
    if not wanted:
        return
    if args.uidmap or args.gidmap:
        uids = [parse_idmap(t, "--uidmap") for t in args.uidmap]
        gids = [parse_idmap(t, "--gidmap") for t in args.gidmap]
        # One flag given: the other map is a copy (separate objects, so that adapting one
        # map never changes the other).
        spec.linux.uid_mappings = uids or _copy(gids)
        spec.linux.gid_mappings = gids or _copy(uids)
    userns.enable(spec)
    userns.check_mappings(spec)
    uid = spec.process.user.uid
    if spec.kit.user is None and not userns.is_mapped(spec.linux.uid_mappings, uid):
        raise KitError(
            f"uid {uid} has no mapping in the user namespace",
            fix="map it with --uidmap, or choose a mapped --user",
            exit_code=2,
        )


def _copy(mappings: list[IdMapping]) -> list[IdMapping]:
    return [IdMapping(m.container_id, m.host_id, m.size) for m in mappings]


def apply_limits(args: argparse.Namespace, spec: Spec) -> None:
    from kit.cgroups import limits

    memory = limits.parse_memory(args.memory) if args.memory else None
    swap = None
    if args.memory_swap is not None:
        swap = limits.parse_memory_swap(args.memory_swap, memory)
    elif memory is not None:
        swap = 2 * memory  # Docker's default: as much swap as memory
    pids = limits.parse_pids_limit(args.pids_limit) if args.pids_limit is not None else None
    cpu = limits.parse_cpus(args.cpus) if args.cpus is not None else None
    limits.set_limits(spec, memory=memory, memory_swap=swap, pids=pids, cpu=cpu)
    if limits.has_limits(spec) and os.geteuid() != 0:
        _check_delegated()


def _check_delegated() -> None:
    """Rootless: limits need a cgroup tree this user may write (a delegated subtree)."""
    from kit.cgroups import layout as cgroup_layout

    found = cgroup_layout.read()
    roots = [found.v2] if found.version_for(("memory",)) == 2 else list(found.v1.values())
    if any(r and os.access(os.path.join(r, "kit"), os.W_OK) for r in roots):
        return
    raise KitError(
        "resource limits cannot be enforced in rootless mode here",
        cause=f"cgroups ({found.mode}) are writable only by root on this host, and nothing is "
        "delegated to you, so the kernel would not apply --memory/--pids-limit/--cpus",
        fix="drop the limits, run kit as root, or use a cgroup v2 host where systemd "
        "delegates a subtree to you; `kit doctor` shows the cgroup setup",
        exit_code=2,
    )


def apply_devices(args: argparse.Namespace, spec: Spec) -> None:
    """--device and --device-cgroup-rule: nodes in the container and rules that allow them,
    after the default "deny every device" (see kit.cgroups.device_rules)."""
    if not args.device and not args.device_cgroup_rule:
        return
    from kit.cgroups.device_rules import parse_rule
    from kit.security import userns

    resources = spec.linux.resources or Resources()
    for text in args.device:
        device, rule = parse_device(text)
        if userns.creates_user_namespace(spec) and device.path != _host_path(text):
            raise KitError(
                f"--device {text}: in a user namespace the node keeps its host path",
                cause="mknod needs CAP_MKNOD in the host's user namespace, so kit bind-mounts "
                "the host's node at the same path instead (as runc does)",
                fix=f"use --device {_host_path(text)} (without a different container path)",
                exit_code=2,
            )
        spec.linux.devices = [d for d in spec.linux.devices if d.path != device.path]
        spec.linux.devices.append(device)
        resources.devices.append(rule)
    for text in args.device_cgroup_rule:
        resources.devices.append(parse_rule(text))
    spec.linux.resources = resources


def _host_path(text: str) -> str:
    return text.split(":", 1)[0]


def parse_device(text: str) -> tuple[Device, DeviceRule]:
    """``/dev/zero:/dev/myzero:r`` -> the node to create and the rule that allows it (Docker's
    syntax: the container path defaults to the host path, the access to rwm)."""
    parts = text.split(":")
    access = "rwm"
    target = ""
    if len(parts) == 3:
        target, access = parts[1], parts[2]
    elif len(parts) == 2:
        if parts[1] and set(parts[1]) <= set("rwm"):
            access = parts[1]
        else:
            target = parts[1]
    elif len(parts) != 1:
        parts = []
    source = parts[0] if parts else ""
    target = target or source
    if not source or not os.path.isabs(target) or not access or set(access) - set("rwm"):
        raise KitError(
            f"invalid --device {text!r}",
            cause="the form is HOST[:CONTAINER][:ACCESS]: HOST and CONTAINER are absolute "
            "paths, ACCESS is some of r (read), w (write), m (mknod)",
            fix="write e.g. --device /dev/zero:/dev/myzero:rw",
            exit_code=2,
        )
    try:
        # Follows symlinks, as Docker does (/dev/disk/by-id/... names the real node).
        info = os.stat(source)
    except OSError as error:
        raise KitError(
            f"--device {text}: cannot read the host's {source}",
            errno=error.errno,
            fix="name an existing device node of the host, e.g. /dev/zero",
            exit_code=2,
        ) from None
    if stat.S_ISCHR(info.st_mode):
        kind = "c"
    elif stat.S_ISBLK(info.st_mode):
        kind = "b"
    else:
        raise KitError(
            f"--device {text}: {source} is not a device node",
            cause="--device gives the container one character or block device",
            fix="name a device node (ls -l shows c or b first), e.g. /dev/zero",
            exit_code=2,
        )
    major, minor = os.major(info.st_rdev), os.minor(info.st_rdev)
    letters = "".join(c for c in "rwm" if c in access)
    device = Device(
        target,
        kind,
        major,
        minor,
        file_mode=stat.S_IMODE(info.st_mode),
        uid=info.st_uid,
        gid=info.st_gid,
    )
    return device, DeviceRule(True, kind, major, minor, letters)


def apply_landlock(args: argparse.Namespace, spec: Spec) -> None:
    if args.landlock is None:
        return
    from kit.security import landlock

    spec.kit.landlock = [landlock.parse_rule(text) for text in args.landlock]
    # The kernel requires no_new_privs to restrict an unprivileged process; say so in the spec.
    spec.process.no_new_privileges = True
