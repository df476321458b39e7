"""Checking a root filesystem before a container starts from it."""

from __future__ import annotations

import errno
import os

from kit.errors import KitError


def check_rootfs(path: str) -> str:
    """The absolute path of a usable root filesystem directory, or a KitError saying why not."""
    absolute = os.path.abspath(path)
    try:
        os.stat(absolute)
    except PermissionError:
        raise KitError(
            f"cannot reach root filesystem {path}",
            errno=errno.EACCES,
            cause="a directory on the way to it is not searchable by this user",
            fix="move the root filesystem where you can reach it, or run as its owner",
            exit_code=125,
        ) from None
    except OSError:
        pass
    if not os.path.exists(absolute):
        raise KitError(
            f"root filesystem {path} does not exist",
            fix=f"build one with `kit rootfs build {path}`",
            exit_code=125,
        )
    if not os.path.isdir(absolute):
        raise KitError(
            f"root filesystem {path} is not a directory",
            cause="a container's root must be a directory tree (a tar file must be extracted)",
            fix=f"unpack it with `kit rootfs build DIR --from tar {path}` and pass --rootfs DIR",
            exit_code=125,
        )
    if absolute == "/":
        raise KitError(
            "the host's / cannot be a container's root filesystem",
            cause="the container would share every host file, and pivot_root onto the current "
            "root is refused (EBUSY)",
            fix="build a separate root filesystem with `kit rootfs build DIR`",
            exit_code=125,
        )
    return absolute
