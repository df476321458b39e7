"""The processes of a container, as the host sees them (``kit top``, ``kit kill --all``).

A process belongs to a container's PID namespace when its ``/proc/PID/ns/pid`` link names the
same namespace (the same inode) as the container's PID 1. ``NSpid`` in ``/proc/PID/status``
lists the process's PID in each nested PID namespace, outermost first: the first is the
host's PID, the last the PID that ``ps`` inside the container shows.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessInfo:
    """One process of a container."""

    host_pid: int
    pid: int  # inside the container
    ppid: int  # inside the container (0 for PID 1: its parent is outside)
    uid: int
    state: str
    started: float  # seconds since the epoch
    cpu_seconds: float
    command: str

    @property
    def user(self) -> str:
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return str(self.uid)


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in _read(f"/proc/{pid}/status").decode(errors="replace").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def namespace_members(pid: int, kind: str = "pid") -> list[int]:
    """Host PIDs of every process in the same ``kind`` namespace as ``pid``."""
    try:
        target = os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except FileNotFoundError:
        return []
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            if os.stat(f"/proc/{entry}/ns/{kind}").st_ino == target:
                members.append(int(entry))
    return sorted(members)


def container_processes(pid: int) -> list[ProcessInfo]:
    """Every process in the PID namespace of the container whose PID 1 is ``pid`` (host)."""
    ticks = os.sysconf("SC_CLK_TCK")
    boot = _boot_time()
    out = []
    host_to_inner: dict[int, int] = {}
    raw = []
    for member in namespace_members(pid):
        try:
            status = _status(member)
            stat = _read(f"/proc/{member}/stat").decode(errors="replace")
            cmdline = _read(f"/proc/{member}/cmdline")
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended while we looked
        nspids = [int(p) for p in status.get("NSpid", str(member)).split()]
        host_to_inner[member] = nspids[-1]
        raw.append((member, nspids[-1], status, stat, cmdline))
    for member, inner, status, stat, cmdline in raw:
        fields = stat.rsplit(")", 1)[1].split()
        parent = int(fields[1])
        command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        if not command:
            command = "[" + stat.split("(", 1)[1].rsplit(")", 1)[0] + "]"
        out.append(
            ProcessInfo(
                host_pid=member,
                pid=inner,
                ppid=host_to_inner.get(parent, 0),
                uid=int(status.get("Uid", "0").split()[0]),
                state=fields[0],
                started=boot + int(fields[19]) / ticks,
                cpu_seconds=(int(fields[11]) + int(fields[12])) / ticks,
                command=command,
            )
        )
    return sorted(out, key=lambda p: p.pid)


def format_table(processes: list[ProcessInfo]) -> list[list[str]]:
    """Rows like ``ps -ef``: UID, PID (host), container PID, PPID, STIME, TIME, CMD."""
    rows = [["UID", "PID", "CPID", "PPID", "STIME", "TIME", "CMD"]]
    for p in processes:
        cpu = int(p.cpu_seconds)
        rows.append(
            [
                p.user,
                str(p.host_pid),
                str(p.pid),
                str(p.ppid),
                time.strftime("%H:%M", time.localtime(p.started)),
                f"{cpu // 3600:02d}:{cpu // 60 % 60:02d}:{cpu % 60:02d}",
                p.command,
            ]
        )
    return rows
