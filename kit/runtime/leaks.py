"""``kit doctor --leaks``: what a killed kit may have left on the host, and cleaning it up.

kit is built so that a SIGKILL at any moment leaves little behind: the container's mounts
live in its own mount namespace (they vanish with its last process), the container process
dies with its init parent (PR_SET_PDEATHSIG), and the init parent kills the container when
its caller disappears. What *can* remain when processes die at the wrong moment:

* **stale records**: state.json still says creating/created/running, but the process it
  names is gone (the kit process that would have written "stopped" was killed too);
* **cgroups**: ``kit/<root tag>-<id>`` directories (or an OCI container's cgroupsPath) of a
  container that no longer runs; the init parent removes them after the container exits,
  unless it was killed first;
* **mounts** on the host naming kit's directories (kit itself mounts nothing on the host;
  another tool, or a bug, might);
* **monitors** of containers whose record is gone;
* **container directories** without a record (a writable layer made just before the kit
  process was killed).

Only this kit root is examined: cgroup names carry its tag (kit.paths.root_tag), and
monitors carry KIT_ROOT in their environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from kit.errors import KitError
from kit.paths import containers_dir, data_root, root_tag, run_root
from kit.runtime import lifecycle, state


@dataclass
class Leak:
    """One thing left behind, and how --clean removes it."""

    kind: str  # record, cgroup, mount, process, directory
    what: str
    detail: str
    cleanup: str

    def line(self) -> str:
        return f"{self.kind:<9} {self.what}  ({self.detail}); --clean: {self.cleanup}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _live(record: state.ContainerState) -> bool:
    if record.pid and state.is_alive(record.pid, record.pid_start):
        return True
    return record.owner_alive()


def stale_records() -> list[Leak]:
    found = []
    for record in state.list_states():
        if record.status in (state.CREATING, state.CREATED, state.RUNNING) and not _live(record):
            if record.auto_remove or record.status == state.CREATING:
                cleanup = "remove the container (it was to be removed, or never started)"
            else:
                cleanup = "record it as stopped (exit status unknown); `kit rm` removes it"
            found.append(
                Leak(
                    "record",
                    f"{record.name} ({record.short_id})",
                    f"says {record.status}, but its process {record.pid or record.owner_pid} "
                    "is gone",
                    cleanup,
                )
            )
    return found


def stray_cgroups() -> list[Leak]:
    """kit cgroups of this root whose container does not run (any hierarchy)."""
    tag = root_tag()
    records = state.list_states()
    running = {r.id for r in records if _live(r)}
    custom = {
        r.id: lifecycle.container_cgroups(r.id)
        for r in records
        if r.kind == "oci" and r.id not in running
    }
    found = []
    for root in lifecycle.cgroup_roots():
        base = Path(root, "kit")
        if base.is_dir():
            for entry in sorted(base.iterdir()):
                if not entry.is_dir() or not entry.name.startswith(tag + "-"):
                    continue
                container_id = entry.name[len(tag) + 1 :]
                if container_id not in running:
                    found.append(_cgroup_leak(str(entry), container_id))
    for container_id, paths in custom.items():
        for path in paths:
            if "/kit/" not in path:
                found.append(_cgroup_leak(path, container_id))
    return found


def _cgroup_leak(path: str, container_id: str) -> Leak:
    try:
        procs = Path(path, "cgroup.procs").read_text().split()
    except OSError:
        procs = []
    return Leak(
        "cgroup",
        path,
        f"container {container_id[:12]} is not running; {len(procs)} process(es) inside",
        "kill what is inside, then remove the directory",
    )


def stray_mounts() -> list[Leak]:
    """Host mounts that name kit's directories (as mount point, source or overlay option)."""
    from kit import mounts

    roots = tuple({str(data_root()), str(run_root())})
    found = []
    for m in mounts.read():
        named = (
            m.mount_point.startswith(roots)
            or m.source.startswith(roots)
            or any(root in option for option in m.super_options for root in roots)
        )
        if named:
            found.append(
                Leak(
                    "mount",
                    m.mount_point,
                    f"{m.fstype} from {m.source}, on the host's mount table",
                    "unmount it (lazily: MNT_DETACH)",
                )
            )
    return found


def _monitors() -> list[tuple[int, str]]:
    """(pid, container id) of monitor processes of this kit root."""
    wanted = f"KIT_ROOT={os.environ.get('KIT_ROOT', '')}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", "rb") as f:
                if f.read().strip() != b"kit-monitor":
                    continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if os.environ.get("KIT_ROOT") and wanted not in environ:
            continue
        # The monitor's stderr is <container dir>/monitor.log: it names its container.
        try:
            log = os.readlink(f"/proc/{entry}/fd/2")
        except OSError:
            log = ""
        container_id = Path(log).parent.name if log.endswith("monitor.log") else ""
        if container_id or cmdline:
            found.append((int(entry), container_id))
    return found


def stray_monitors() -> list[Leak]:
    base = containers_dir()
    found = []
    for pid, container_id in _monitors():
        if container_id and not (base / container_id / "state.json").exists():
            found.append(
                Leak(
                    "process",
                    f"kit-monitor {pid}",
                    f"its container {container_id[:12]} has no record any more",
                    "kill it (SIGKILL)",
                )
            )
    return found


def orphan_directories() -> list[Leak]:
    base = containers_dir()
    if not base.is_dir():
        return []
    found = []
    for entry in sorted(base.iterdir()):
        if entry.is_dir() and not (entry / "state.json").exists():
            found.append(
                Leak(
                    "directory",
                    str(entry),
                    "a container directory without a record (a writable layer, half made)",
                    "remove it",
                )
            )
    return found


def find_leaks() -> list[Leak]:
    return [
        *stale_records(),
        *stray_cgroups(),
        *stray_mounts(),
        *stray_monitors(),
        *orphan_directories(),
    ]


def clean(leaks: list[Leak]) -> list[str]:
    """Remove what :func:`find_leaks` found; returns what could not be cleaned."""
    from kit.linux.flags import MNT_DETACH
    from kit.linux.mount import umount2

    failures: list[str] = []
    for leak in leaks:
        try:
            if leak.kind == "record":
                _clean_record(leak)
            elif leak.kind == "cgroup":
                lifecycle.remove_cgroup_dir(leak.what)
            elif leak.kind == "mount":
                umount2(leak.what, MNT_DETACH, note="a mount left behind")
            elif leak.kind == "process":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(leak.what.split()[-1]), signal.SIGKILL)
            elif leak.kind == "directory":
                state.remove(Path(leak.what).name)
        except (KitError, OSError) as error:
            failures.append(f"{leak.what}: {error}")
    return failures


def _clean_record(leak: Leak) -> None:
    short = leak.what.rsplit("(", 1)[1].rstrip(")")
    record = next(r for r in state.list_states() if r.id.startswith(short))
    if record.auto_remove or record.status == state.CREATING:
        lifecycle.remove(record, force=True)
        return
    state.refresh(record)
    lifecycle.remove_cgroups(record.id)
