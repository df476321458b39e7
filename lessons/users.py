"""Who the learner is, and where their state lives, so students sharing a VM never meet.

Two ways to take the course on a shared machine:

* **rootless** (``kit-tutorial``): everything is the student's own by construction: kit's data
  under ``~/.local/share/kit``, live state under ``$XDG_RUNTIME_DIR/kit``, progress under
  ``~/.local/state/kit``.
* **root mode** (``sudo kit-tutorial``): kit runs as root, whose default data root
  (``/var/lib/kit``) every student would share: the same root filesystem under every
  container (one student's ``rm`` in a container shell would break the others' lessons), the
  same live state, the same cgroup names. So a learner behind sudo gets a kit root of their
  own, ``/var/lib/kit/users/<name>``, and their progress lives in it (not in a home directory
  root may not own).

``KIT_ROOT`` set by hand always wins (tests, an instructor's own experiments).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kit import mounts, paths


def sudo_learner() -> str | None:
    """The student behind ``sudo`` (root mode), or None when kit runs as the student itself."""
    name = os.environ.get("SUDO_USER", "")
    if os.geteuid() == 0 and name and name != "root":
        return name
    return None


def personal_root() -> Path | None:
    """The kit root a root-mode learner gets, or None (rootless, plain root, or KIT_ROOT set)."""
    name = sudo_learner()
    if name is None or os.environ.get("KIT_ROOT"):
        return None
    return paths.data_root() / "users" / name


def settle() -> Path | None:
    """Give a root-mode learner their own kit root (``KIT_ROOT``) for this process and the
    containers it starts; returns it, or None when nothing needed to change."""
    root = personal_root()
    if root is not None:
        os.environ["KIT_ROOT"] = str(root)
    return root


def mode() -> str:
    """``root`` or ``rootless``: how this learner's containers are made."""
    return "root" if os.geteuid() == 0 else "rootless"


@contextlib.contextmanager
def fresh_root(purpose: str) -> Iterator[Path]:
    """A brand-new kit root, as a new student starts with, for a run that must neither use nor
    touch anybody's progress, files or root filesystem (``--check-all``, ``--export``).

    It lives inside the current kit data root and is removed afterwards, unless something is
    still mounted in it (removing files would walk into a bind mount and delete what it shows).
    """
    scratch = Path(tempfile.mkdtemp(prefix=f"{purpose}-", dir=paths.ensure(paths.data_root())))
    previous = os.environ.get("KIT_ROOT")
    os.environ["KIT_ROOT"] = str(scratch)
    try:
        yield scratch
    finally:
        if previous is None:
            os.environ.pop("KIT_ROOT", None)
        else:
            os.environ["KIT_ROOT"] = previous
        left = [m.mount_point for m in mounts.read() if Path(m.mount_point).is_relative_to(scratch)]
        if left:
            sys.stderr.write(f"kit: left {scratch} in place, still mounted: {' '.join(left)}\n")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
