"""Removing kit's own directories (layers, writable layers, container records), whatever
their modes.

Root may delete anything. An ordinary user (rootless kit) cannot list a directory without
read and search permission, nor delete in one without write permission, and kit's trees
hold such directories: image layers (0555 is common), copies the container made of them,
and overlayfs's own ``work/work`` (mode 000). In rootless mode the user owns them all, so kit
first gives itself those permissions back, as ``rm -rf`` cannot.

Files a rootless container created as one of its *other* users belong to the user's
subordinate ids on the host (see :mod:`kit.security.userns`), and the user may not touch
those. Given the container's spec, kit then removes what is left from inside a user namespace
with the same maps, where the user is root over all of those ids (``podman unshare rm -rf``
does the same).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from kit.errors import KitError

if TYPE_CHECKING:
    from kit.spec import Spec


def remove_tree(path: str | os.PathLike[str], *, spec: Spec | None = None) -> None:
    """Remove a directory tree kit made, like ``rm -rf`` (see the module docstring).

    ``spec``: the container whose files these are, for the ones that belong to its
    subordinate ids (rootless).
    """
    if os.geteuid() == 0:
        shutil.rmtree(path, ignore_errors=True)
        return
    make_removable(Path(path))
    shutil.rmtree(path, ignore_errors=True)
    if spec is not None and os.path.lexists(path):
        from kit.security import userns

        if userns.maps_other_ids(spec):
            with contextlib.suppress(KitError):  # what stays is reported like rmtree's: not
                userns.in_mapped_namespace(spec, lambda: remove_tree(path))


def make_removable(top: Path) -> None:
    """Add owner read, write and search permission to every directory under ``top``."""
    stack = [str(top)]
    while stack:
        directory = stack.pop()
        try:
            st = os.lstat(directory)
            if not stat.S_ISDIR(st.st_mode):
                continue
            if st.st_mode & 0o700 != 0o700:
                os.chmod(directory, stat.S_IMODE(st.st_mode) | 0o700)
            with os.scandir(directory) as entries:
                stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue  # not ours (another owner) or gone: rmtree reports nothing either way
