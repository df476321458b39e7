"""Stage ``devices``: the few device nodes a container gets, and the /dev symlinks.

Programs expect /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom and /dev/tty to
exist (the OCI runtime spec requires them). A device node is just a name for a (type, major,
minor) number triple; mknod(2) creates one. It needs CAP_MKNOD in the *initial* user namespace,
so inside a user namespace kit bind-mounts the host's node over an empty file instead, as runc
does. kit creates no disk device unless ``--device`` asks for one, and a node root makes
itself is no way in either: the device cgroup (:mod:`kit.cgroups.devices`) refuses to open
any device it does not allow.
"""

from __future__ import annotations

import errno
import os

from kit.errors import KitError
from kit.linux import fs
from kit.linux.flags import MS_BIND
from kit.linux.mount import mount
from kit.runtime.context import InitContext
from kit.spec import Device

#: name -> (major, minor): the character devices every container gets (see devices.txt in the
#: kernel's Documentation/admin-guide).
DEFAULT_DEVICES: dict[str, tuple[int, int]] = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}

#: /dev symlinks into /proc/self: each process sees its own file descriptors there.
DEV_SYMLINKS: dict[str, str] = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",  # the new devpts instance's multiplexer, not the host's /dev/ptmx
    "core": "/proc/kcore",
}


def run(ctx: InitContext) -> None:
    devices = [
        Device(f"/dev/{name}", "c", major, minor, 0o666)
        for name, (major, minor) in DEFAULT_DEVICES.items()
    ]
    listed = {d.path for d in ctx.spec.linux.devices}
    devices = [d for d in devices if d.path not in listed] + list(ctx.spec.linux.devices)
    for device in devices:
        create_device(ctx, device)
    for name, target in DEV_SYMLINKS.items():
        path = ctx.path(f"/dev/{name}")
        if not os.path.lexists(path):
            fs.symlink(target, path)


def create_device(ctx: InitContext, device: Device) -> None:
    path = ctx.path(device.path)
    if os.path.lexists(path):
        os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = device.file_mode if device.file_mode is not None else 0o666
    try:
        fs.mknod(path, "b" if device.type == "b" else "c", device.major, device.minor, mode)
    except KitError as error:
        if error.errno != errno.EPERM:  # no CAP_MKNOD here (a user namespace): bind instead
            raise
        host_node = device.path
        if not os.path.exists(host_node):
            raise
        fs.create_file(path, 0o000)
        mount(host_node, path, None, MS_BIND, note="no CAP_MKNOD: bind the host's device node")
        return
    # mknod applies the umask; set the exact mode the spec asks for.
    fs.chmod(path, mode)
    if device.uid is not None or device.gid is not None:
        fs.chown(path, device.uid or 0, device.gid or 0)
