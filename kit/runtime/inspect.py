"""``kit inspect``: everything kit knows about a container, as one JSON-ready dict.

The shape follows ``docker inspect`` where the ideas match (``State.OOMKilled``,
``State.ExitCode``, ``Mounts``, ``LogPath``), and adds what kit can show that Docker hides:
the container's namespaces, its layer stack and the cgroup directories holding its limits.
"""

from __future__ import annotations

import json
from typing import Any

from kit.errors import KitError
from kit.runtime import state
from kit.runtime.state import ContainerState


def _iso(when: float | None) -> str | None:
    return None if when is None else state.utc_timestamp(when)


def _mounts(record: ContainerState, live: bool) -> list[dict[str, Any]]:
    """The mount table as the container sees it when it runs; the spec's mounts otherwise."""
    if live:
        from kit import mounts

        try:
            return [
                {
                    "Destination": m.mount_point,
                    "Type": m.fstype,
                    "Source": m.source,
                    "Root": m.root,
                    "Options": list(m.options),
                    "Propagation": m.propagation,
                    "RW": not m.read_only,
                }
                for m in mounts.read(record.pid)
            ]
        except (FileNotFoundError, ProcessLookupError):
            pass
    spec = state.load_spec(record.id)
    return [
        {
            "Destination": m.destination,
            "Type": m.type,
            "Source": m.source,
            "Options": list(m.options),
            "RW": "ro" not in m.options,
        }
        for m in spec.mounts
    ]


def _layers(record: ContainerState) -> dict[str, Any] | None:
    directory = state.container_dir(record.id)
    try:
        image = json.loads((directory / "image.json").read_text())
    except (OSError, ValueError):
        return None
    spec = state.load_spec(record.id)
    overlay = spec.kit.overlay
    return {
        "Image": image.get("image"),
        "ImageName": image.get("name"),
        "ChainIDs": image.get("chain_ids", []),
        "LowerDirs": list(overlay.lowers) if overlay else [],
        "UpperDir": overlay.upper if overlay else None,
        "WorkDir": overlay.work if overlay else None,
    }


def _limits(record: ContainerState) -> dict[str, Any]:
    from kit.runtime.lifecycle import container_cgroups

    spec = state.load_spec(record.id)
    resources = spec.linux.resources
    return {
        "Resources": resources and json.loads(json.dumps(_plain(resources))),
        "Rlimits": [{"Type": r.type, "Soft": r.soft, "Hard": r.hard} for r in spec.process.rlimits],
        "Cgroups": container_cgroups(record.id),
    }


def _plain(value: Any) -> Any:
    from kit.spec import _encode

    return _encode(value)


def _namespaces(record: ContainerState, live: bool) -> dict[str, int]:
    if not live:
        return {}
    from kit.linux.namespaces import namespace_ids

    return namespace_ids(record.pid)


def describe(record: ContainerState) -> dict[str, Any]:
    """The inspect document of one container."""
    record = state.refresh(record)
    live = record.status in (state.RUNNING, state.CREATED) and state.is_alive(
        record.pid, record.pid_start
    )
    try:
        spec = state.load_spec(record.id)
    except KitError:
        spec = None
    directory = state.container_dir(record.id)
    log = directory / "container.log"
    return {
        "Id": record.id,
        "Name": record.name,
        "Created": _iso(record.created),
        "Kind": record.kind,
        "Path": spec.process.args[0] if spec and spec.process.args else None,
        "Args": spec.process.args[1:] if spec else [],
        "State": {
            "Status": record.status,
            "Running": record.status == state.RUNNING and live,
            "Pid": record.pid if live else 0,
            "ExitCode": record.exit_code,
            "ExitSignal": record.exit_signal,
            "OOMKilled": record.oom_killed,
            "Error": record.error or "",
            "StartedAt": _iso(record.started),
            "FinishedAt": _iso(record.finished),
        },
        "Config": spec.to_dict() if spec else None,
        "Mounts": _mounts(record, live),
        "Layers": _layers(record),
        "Limits": _limits(record),
        "Namespaces": _namespaces(record, live),
        "Bundle": record.bundle or None,
        "LogPath": str(log) if log.exists() else None,
        "StateDir": str(directory),
        "AutoRemove": record.auto_remove,
        "MonitorPid": record.owner_pid if record.owner_alive() else 0,
    }
