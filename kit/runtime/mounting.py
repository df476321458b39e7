"""Turning one ``mounts[]`` entry of the spec into mount(2) calls.

An entry says where (destination), what (type and source) and how (options). Options are of
three kinds, and the kernel wants them apart:

* flag words (``ro``, ``nosuid``, ``noexec``, ...) become MS_* bits of mount(2);
* propagation words (``rprivate``, ``shared``, ...) need a separate mount(2) call of their own;
* everything else (``mode=755``, ``size=64m``, ``newinstance``) is filesystem data, passed
  through as a comma-separated string.

A bind mount ignores most flags on its first call: they are applied by a second "remount"
call with MS_REMOUNT|MS_BIND. Skipping that remount is a classic bug (a "read-only" bind mount
that is writable), so kit always does it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from kit.errors import KitError
from kit.linux import fs
from kit.linux.flags import (
    MOUNT_OPTION_FLAGS,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    PROPAGATION_FLAGS,
)
from kit.linux.mount import mount
from kit.linux.newmount import attach
from kit.runtime.context import InitContext
from kit.security import userns
from kit.spec import Mount


@dataclass
class MountOptions:
    flags: int
    data: str | None
    propagation: list[int]
    bind: bool


def parse_options(options: list[str], fstype: str | None = None) -> MountOptions:
    flags = 0
    data: list[str] = []
    propagation: list[int] = []
    for word in options:
        if word in PROPAGATION_FLAGS:
            propagation.append(PROPAGATION_FLAGS[word])
        elif word in MOUNT_OPTION_FLAGS:
            bit, clears = MOUNT_OPTION_FLAGS[word]
            flags = flags & ~bit if clears else flags | bit
        else:
            data.append(word)
    bind = bool(flags & MS_BIND) or fstype == "bind"
    if fstype == "bind":
        flags |= MS_BIND
    return MountOptions(flags, ",".join(data) or None, propagation, bind)


def _prepare_target(
    target: str, source: str | None, bind: bool, source_is_dir: bool | None = None
) -> None:
    """Create the mount point: a directory, or an empty file when binding a file."""
    if os.path.lexists(target):
        return
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755, exist_ok=True)
    if source_is_dir is None:
        source_is_dir = source is None or os.path.isdir(source)
    if bind and not source_is_dir:
        fs.create_file(target)
    else:
        fs.mkdir(target, 0o755)


def apply_mount(ctx: InitContext, entry: Mount, *, note: str | None = None) -> None:
    """Mount one spec entry at its destination inside the container's root."""
    options = parse_options(entry.options, entry.type)
    target = ctx.path(entry.destination)
    # In a user namespace, the init parent opened bind sources from outside (see
    # kit.security.userns.pin_bind_sources): attach that copy instead of walking the path.
    pinned = userns.pinned_source(entry) if options.bind else None
    if pinned is not None:
        _prepare_target(target, None, True, stat.S_ISDIR(os.fstat(pinned).st_mode))
        attach(pinned, target, note=f"bind {entry.source} at {entry.destination}, opened outside")
    else:
        if options.bind and entry.source is not None and not os.path.exists(entry.source):
            raise KitError(
                f"bind mount source {entry.source} does not exist",
                fix=f"create {entry.source} on the host first, or correct the path",
            )
        _prepare_target(target, entry.source, options.bind)
        label = note or f"{entry.type or 'bind'} at {entry.destination}"
        if options.bind:
            bind_flags = MS_BIND | (options.flags & MS_REC)
            mount(entry.source, target, None, bind_flags, note=label)
        else:
            mount(entry.source, target, entry.type, options.flags, options.data, note=label)
    if options.bind:
        _remount_bind(target, options.flags)
    for flag in options.propagation:
        mount(None, target, None, flag, note="set propagation")


def _remount_bind(target: str, flags: int) -> None:
    extra = flags & ~(MS_BIND | MS_REC)
    if extra:
        # Flags on a bind mount only take effect through a second, remount call.
        mount(
            None,
            target,
            None,
            MS_REMOUNT | MS_BIND | extra,
            note=f"apply {','.join(_flag_words(extra))} to the bind mount",
        )


#: Per-mount flags a remount must repeat: a remount sets the mount's flags anew, so leaving
#: one out asks the kernel to clear it (refused with EPERM when the flag is locked, as for
#: mounts inherited from a more privileged namespace; silently weaker otherwise).
_KEPT_ON_REMOUNT = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC))


def remount_read_only(path: str, *, note: str) -> None:
    """Make the mount at ``path`` read-only, keeping its nosuid/nodev/noexec flags."""
    current = os.statvfs(path).f_flag
    keep = 0
    for st_flag, ms_flag in _KEPT_ON_REMOUNT:
        if current & st_flag:
            keep |= ms_flag
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, note=note)


def _flag_words(flags: int) -> list[str]:
    return [
        word
        for word, (bit, clears) in MOUNT_OPTION_FLAGS.items()
        if not clears and word not in ("bind", "rbind", "remount") and flags & bit == bit
    ]


#: Destinations the kernel-filesystems stage owns; everything else is a volume.
KERNEL_PREFIXES = ("/proc", "/dev", "/sys")


def is_kernel_filesystem(entry: Mount) -> bool:
    dest = os.path.normpath(entry.destination)
    if entry.type in ("bind", None) or "bind" in entry.options or "rbind" in entry.options:
        return False
    return any(dest == p or dest.startswith(p + "/") for p in KERNEL_PREFIXES)
