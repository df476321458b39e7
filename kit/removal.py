"""Removing kit's own directories (layers, writable layers, container records), whatever
their modes.

Root may delete anything. An ordinary user (rootless kit) cannot list a directory without
read and search permission, nor delete in one without write permission, and kit's trees
hold such directories: image layers (0555 is common), copies the container made of them,
and overlayfs's own ``work/work`` (mode 000). In rootless mode the user owns them all, so kit
first gives itself those permissions back, as ``rm -rf`` cannot.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a directory tree kit made, like ``rm -rf`` (see the module docstring)."""
    if os.geteuid() != 0:
        _make_removable(Path(path))
    shutil.rmtree(path, ignore_errors=True)


def _make_removable(top: Path) -> None:
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
