"""Small readers of system state: files under /proc and /sys, the kernel config, PATH.

Every reader returns None (or an empty result) instead of raising when the file is missing
or unreadable: a doctor has to work on machines that lack what it looks for.
"""

from __future__ import annotations

import gzip
import os
import platform
import shutil
from pathlib import Path

#: The sysctls that decide whether an unprivileged user may create a user namespace.
USERNS_SYSCTLS = {
    "user.max_user_namespaces": "/proc/sys/user/max_user_namespaces",
    # Debian and Ubuntu kernels only (a distribution patch; Debian 11+ defaults it to 1).
    "kernel.unprivileged_userns_clone": "/proc/sys/kernel/unprivileged_userns_clone",
    # Ubuntu 23.10+ kernels: AppArmor decides which programs get a capable user namespace.
    "kernel.apparmor_restrict_unprivileged_userns": (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
    ),
}


def read(path: str | Path) -> str | None:
    """The text of a file, or None when it does not exist or cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_int(path: str | Path) -> int | None:
    """A file holding one integer (a sysctl), or None."""
    text = read(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def status_field(name: str, text: str | None = None) -> str | None:
    """A field of /proc/self/status, e.g. ``Seccomp``."""
    text = text if text is not None else read("/proc/self/status") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return None


def read_sysctls() -> dict[str, int | None]:
    """The user-namespace sysctls of this kernel (None: this kernel has no such switch)."""
    return {key: read_int(path) for key, path in USERNS_SYSCTLS.items()}


def kernel_config() -> dict[str, str]:
    """The kernel's build configuration from /proc/config.gz or /boot/config-RELEASE."""
    text = None
    try:
        with gzip.open("/proc/config.gz", "rt", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = read(f"/boot/config-{platform.release()}")
    config: dict[str, str] = {}
    for line in (text or "").splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            config[key] = value.strip().strip('"')
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            config[line[2:].split()[0]] = "n"
    return config


def which(name: str) -> str | None:
    """Find a program on PATH, also in the sbin directories a non-root PATH lacks."""
    path = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin"
    return shutil.which(name, path=path)
