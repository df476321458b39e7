"""podman as a client of kit: a podman whose every file lives in one directory, with kit as its
OCI runtime.

podman calls its runtime by one executable path, with runc's command line: conmon runs
``RUNTIME create --bundle DIR --pid-file FILE ID``, then podman runs ``start``, ``state``,
``kill``, ``exec --process`` and ``delete --force`` (:mod:`kit.cli.oci` answers them all).
Lesson 12, the podman tests and the podman benchmark each drive a podman that must leave the
machine's own podman alone. Its images, containers, run-time state, events, volumes and
network files all go under one directory, named in the two files podman reads at start
(``$CONTAINERS_CONF`` and ``$CONTAINERS_STORAGE_CONF``).

podman leaves two things outside that directory's files, and they are cleaned up here too:
the overlay driver's mounts below the store, and the ``/libpod_parent`` cgroups that its
cgroupfs manager makes in every hierarchy.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

#: Where the runtime script (:meth:`PrivatePodman.kit_runtime`) logs podman's calls.
CALLS_LOG = "runtime-calls.log"


class PrivatePodman:
    """podman with a store of its own under ``base``.

    ``runroot`` holds podman's run-time state, sockets included, so podman refuses a path
    longer than 50 characters; it is ``base/runroot`` unless given.
    """

    def __init__(self, base: Path, runroot: Path | None = None) -> None:
        self.base = base
        self.runroot = runroot or base / "runroot"
        base.mkdir(parents=True, exist_ok=True)
        (base / "containers.conf").write_text(
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{base}/events.log"\n'
            f'tmp_dir = "{base}/tmp"\n'
            f'volume_path = "{base}/volumes"\n'
            "[network]\n"
            f'network_config_dir = "{base}/net"\n'
        )
        (base / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\nrunroot = "{self.runroot}"\n'
            f'graphroot = "{base}/root"\n'
        )
        #: The podman command, before its own arguments.
        self.argv = ["podman", "--root", str(base / "root"), "--runroot", str(self.runroot)]
        #: podman's environment. KIT_ROOT is left out: kit's state directory comes from the
        #: runtime script, not from whoever started podman.
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(base / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(base / "storage.conf"),
        }
        self.env.pop("KIT_ROOT", None)

    def kit_runtime(
        self, kit_command: str, kit_root: Path, *, name: str = "kit-runtime", environment: str = ""
    ) -> Path:
        """Write the runtime to pass as ``podman --runtime PATH``: a script that logs each call
        (:meth:`calls`) and runs ``kit_command`` with its own KIT_ROOT (and ``environment``,
        ``NAME=VALUE `` words put before it)."""
        script = self.base / name
        script.write_text(
            "#!/bin/sh\n"
            f'echo "$*" >> {self.base / CALLS_LOG}\n'
            f'{environment}KIT_ROOT={kit_root} exec {kit_command} "$@"\n'
        )
        script.chmod(0o755)
        return script

    def calls(self) -> list[str]:
        """What podman asked of kit so far, one call a line (``create --bundle ...``)."""
        path = self.base / CALLS_LOG
        return path.read_text().splitlines() if path.exists() else []

    def cleaning_up(self) -> bool:
        """Whether a ``podman container cleanup`` of this store is running.

        ``podman run --rm`` returns before conmon's exit command (that clean-up) has finished.
        When it unmounts the storage of the last mounted container, it also unmounts the overlay
        driver's home, and a container being created at that moment finds an empty rootfs:
        podman races itself, with runc as with kit. So callers wait between runs.
        """
        marker = f"{self.base}/root".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as file:
                words = file.read().split(b"\0")
                # podman itself, not a conmon naming the clean-up as its exit command.
                podman_cleanup = words[0].endswith(b"podman") and b"cleanup" in words
                if podman_cleanup and any(marker in word for word in words):
                    return True
        return False

    def wait_for_cleanup(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.cleaning_up() and time.monotonic() < deadline:
            time.sleep(0.05)

    def unmount_leftovers(self) -> None:
        """Detach what podman left mounted below the store (the overlay driver keeps its home
        bind-mounted on itself), deepest first."""
        from kit import mounts

        below = f"{self.base}/"  # with the slash: not a sibling whose name starts the same
        left = [m.mount_point for m in mounts.read() if m.mount_point.startswith(below)]
        for point in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def podman_cgroups() -> set[Path]:
    """The ``/libpod_parent`` cgroups there are now (read before running podman)."""
    return set(Path("/sys/fs/cgroup").glob("*/libpod_parent"))


def forget_podman_cgroups(before: set[Path]) -> None:
    """Remove the ``/libpod_parent`` cgroups (and the ``conmon`` ones in them) that are new
    since ``before`` and empty, leaving the host's cgroup trees as they were. A cgroup whose
    last process has just exited can stay busy for a moment, hence the retries."""
    for parent in podman_cgroups() - before:
        for _ in range(50):
            if not parent.exists():
                break
            for child in [c for c in parent.iterdir() if c.is_dir()]:
                with contextlib.suppress(OSError):
                    child.rmdir()
            try:
                parent.rmdir()
                break
            except OSError:
                time.sleep(0.05)
