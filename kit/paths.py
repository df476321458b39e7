"""Where kit keeps its state on disk.

As root: ``/var/lib/kit`` for lasting data (images, layers, volumes, root filesystems) and
``/run/kit`` for live state (running containers). Rootless: ``$XDG_DATA_HOME/kit`` and
``$XDG_RUNTIME_DIR/kit``. ``KIT_ROOT`` (or ``kit --root``) puts both under one directory, which
is how every test gets a private, disposable kit.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """Lasting data: images, layers, volumes, built root filesystems."""
    override = os.environ.get("KIT_ROOT")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/lib/kit")
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(xdg) / "kit"


def run_root() -> Path:
    """Live state of containers; on a tmpfs where the system has one (gone after reboot)."""
    override = os.environ.get("KIT_ROOT")
    if override:
        return Path(override) / "run"
    if os.geteuid() == 0:
        return Path("/run/kit")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "kit"
    return data_root() / "run"


def containers_dir() -> Path:
    """One directory per container: its config, state, logs and writable layer."""
    return run_root() / "containers"


def rootfs_dir() -> Path:
    """Root filesystems built by ``kit rootfs build`` for the tutorial's default."""
    return data_root() / "rootfs"


def default_rootfs() -> Path:
    """The root filesystem the tutorial and ``kit run`` use when none is given."""
    return rootfs_dir() / "default"


def ensure(path: Path, mode: int = 0o700) -> Path:
    """Create a kit directory (and its parents) if needed; kit's dirs are private by default."""
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    return path


def root_tag(root: Path | None = None) -> str:
    """A short tag naming this kit root, used where kit shares a host-wide namespace.

    cgroups live in one host-wide tree: kit places containers under ``kit/<tag>-<id>`` so that
    two kit roots (two students, two test runs) never collide, and leftovers can be traced back.
    """
    try:
        # hashlib's own SHA-256, without hashlib's set-up of OpenSSL (2-3 ms): every
        # container's init parent computes this tag for its cgroup path.
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:  # Python 3.12 renamed the module
        from hashlib import sha256

    base = str((root or data_root()).resolve())
    return sha256(base.encode()).hexdigest()[:8]
