"""A container's record on disk: ``<run root>/containers/<id>/`` with config.json and state.json.

The record outlives the container process (``kit ps -a`` lists exited containers) until the
container is removed (``kit rm``, or ``kit run --rm`` at exit). Writes are atomic (write a
temporary file, then rename over the old one) and made under an exclusive ``flock`` on the
container's lock file, so concurrent kit commands never see half-written state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.paths import containers_dir, ensure
from kit.spec import Spec


@dataclass
class ContainerState:
    """What kit knows about a container (the OCI runtime's "state" plus kit's extras)."""

    id: str
    name: str
    status: str = "creating"  # creating, created, running, stopped
    pid: int = 0
    bundle: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    oom_killed: bool = False
    error: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def container_dir(container_id: str) -> Path:
    return containers_dir() / container_id


@contextlib.contextmanager
def locked(container_id: str) -> Iterator[Path]:
    """Hold the container's lock while reading-modifying-writing its state."""
    directory = container_dir(container_id)
    ensure(directory)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield directory


def _write_atomic(path: Path, text: str) -> None:
    # rename(2) replaces the file in one step: a reader sees the old or the new state, never
    # half of it. No fsync: this is live state (under /run), worthless after a reboot anyway.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


def create(state: ContainerState, spec: Spec) -> None:
    """Write a new container's record; refuses an id or name already in use."""
    for other in list_states():
        if other.id == state.id or other.name == state.name:
            raise KitError(
                f"a container named {state.name!r} already exists ({other.id[:12]})",
                fix=f"remove it with `kit rm {state.name}` or choose another --name",
            )
    with locked(state.id) as directory:
        _write_atomic(directory / "config.json", spec.to_json(indent=2) + "\n")
        _write_atomic(directory / "state.json", json.dumps(asdict(state), indent=2) + "\n")


def save(state: ContainerState) -> None:
    with locked(state.id) as directory:
        _write_atomic(directory / "state.json", json.dumps(asdict(state), indent=2) + "\n")


def load(container_id: str) -> ContainerState:
    path = container_dir(container_id) / "state.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise KitError(
            f"no such container: {container_id}", fix="list containers with `kit ps -a`"
        ) from None
    return ContainerState(**data)


def load_spec(container_id: str) -> Spec:
    return Spec.load(str(container_dir(container_id) / "config.json"))


def list_states() -> list[ContainerState]:
    base = containers_dir()
    if not base.is_dir():
        return []
    out = []
    for entry in sorted(base.iterdir()):
        try:
            out.append(ContainerState(**json.loads((entry / "state.json").read_text())))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            continue
    return out


def remove(container_id: str) -> None:
    """Delete the container's record (and anything else in its directory)."""
    import shutil

    shutil.rmtree(container_dir(container_id), ignore_errors=True)
