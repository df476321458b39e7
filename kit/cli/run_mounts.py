"""``kit run`` options for mounts: -v, --tmpfs, --mount, --read-only.

kit run --rm -v /srv/data:/data:ro --tmpfs /scratch:size=16m --read-only --rootfs DIR sh
kit run --rm -v cache:/var/cache --mount type=tmpfs,target=/run,tmpfs-size=1m IMAGE

Also gives every container its own /etc/hostname, /etc/hosts and /etc/resolv.conf (see
:mod:`kit.runtime.etc_files`).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mounts")
    group.add_argument(
        "-v",
        "--volume",
        action="append",
        default=[],
        metavar="SRC:DEST[:OPTS]",
        help="bind a host path (/path or ./path) or a named volume; OPTS: ro, rw, "
        "a propagation mode (rprivate, rshared, ...), nocopy",
    )
    group.add_argument(
        "--tmpfs",
        action="append",
        default=[],
        metavar="DEST[:OPTS]",
        help="mount an empty tmpfs (nosuid,nodev,noexec unless OPTS say otherwise: exec, "
        "size=16m, mode=1777, ro, ...)",
    )
    group.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="type=..,...",
        help="long form: type=bind|volume|tmpfs,source=..,target=..[,readonly]"
        "[,bind-propagation=..][,volume-nocopy][,tmpfs-size=..][,tmpfs-mode=..]",
    )
    group.add_argument(
        "--read-only",
        action="store_true",
        help="mount the root filesystem read-only (volumes and tmpfs mounts stay writable)",
    )


def apply(args: argparse.Namespace, spec) -> None:  # type: ignore[no-untyped-def]
    from kit.runtime import state
    from kit.runtime.etc_files import add_etc_mounts

    if args.volume or args.tmpfs or args.mount:
        _add_requested_mounts(args, spec)
    if args.read_only:
        spec.root.readonly = True
    container_id = getattr(args, "container_id", None)
    if container_id:
        add_etc_mounts(spec, state.container_dir(container_id), host_network=args.net == "host")


def _add_requested_mounts(args: argparse.Namespace, spec) -> None:  # type: ignore[no-untyped-def]
    """-v, --tmpfs and --mount (their parsers and kit.volumes are imported only when used)."""
    import os

    from kit import volumes
    from kit.runtime.user_mounts import merge, parse_mount, parse_tmpfs, parse_volume

    requested = (
        [parse_volume(text) for text in args.volume]
        + [parse_tmpfs(text) for text in args.tmpfs]
        + [parse_mount(text) for text in args.mount]
    )
    spec.mounts = merge(spec.mounts, requested)
    # As Docker: a bind that wants mounts to travel needs the root's copies of the host's
    # mounts to allow it (kit.runtime.stages.propagation, mount_propagation).
    modes = {word for item in requested for word in item.mount.options}
    if modes & {"shared", "rshared"}:
        spec.linux.rootfs_propagation = "rshared"
    elif modes & {"slave", "rslave"}:
        spec.linux.rootfs_propagation = "rslave"
    for item in requested:
        if item.volume is None:
            continue
        volume = volumes.create(item.volume)  # created on first use, as Docker does
        if not item.nocopy and spec.root.path and os.path.isdir(spec.root.path):
            volumes.populate(volume, spec.root.path, item.mount.destination)
