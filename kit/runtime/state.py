"""A container's record on disk: ``<run root>/containers/<id>/`` with config.json and state.json.

The record outlives the container process (``kit ps -a`` lists exited containers) until the
container is removed (``kit rm``, or ``kit run --rm`` at exit). Writes are atomic (write a
temporary file, then rename over the old one) and made under an exclusive ``flock`` on the
container's lock file, so concurrent kit commands never see half-written state: a reader
sees the old file or the new one, and two writers take turns (:func:`update`). Creating a
container also takes the lock of the whole containers directory, so two ``kit run --name web``
started at once cannot both get the name.

A record says "running" until somebody learns otherwise. The process that knows (the
monitor of a detached container, the foreground ``kit run``) writes the exit status; if it
was killed first, :func:`refresh` notices that the recorded process is gone. A PID alone is
not proof: PIDs are reused, so the record also keeps the process's start time (field 22 of
``/proc/PID/stat``, in clock ticks since boot), and a PID with another start time is another
process.

Other files in the directory: ``container.log`` (the output of a detached container, see
:mod:`kit.runtime.monitor`), ``exec.fifo`` (an OCI container between create and start, see
:mod:`kit.runtime.oci`) and, for image containers, the writable layer (see
:mod:`kit.image.container`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.errors import KitError
from kit.paths import containers_dir, ensure

if TYPE_CHECKING:  # imported by load_spec, when a spec is read (see there)
    from kit.spec import Spec

#: Statuses: the OCI runtime's four, and what they mean here.
CREATING = "creating"  # the record exists, the container process does not (yet)
CREATED = "created"  # OCI create: every stage ran, the process waits for `kit start`
RUNNING = "running"  # the program runs (or is being set up by a live kit process)
STOPPED = "stopped"  # it ended; exit_code says how, when known


@dataclass
class ContainerState:
    """What kit knows about a container (the OCI runtime's "state" plus kit's extras)."""

    id: str
    name: str
    status: str = CREATING
    #: The container's PID 1 as the host sees it, and its start time (see the module docs).
    pid: int = 0
    pid_start: int = 0
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
    #: The kit process answerable for the container while it lives (the monitor of a detached
    #: container, the foreground ``kit run``, ``kit create`` until the container is created),
    #: with its start time. If it is gone while the status says creating, the record is stale.
    owner_pid: int = 0
    owner_start: int = 0
    #: Remove the container when it exits (``--rm``).
    auto_remove: bool = False
    #: "kit" for containers made by ``kit run``; "oci" for ``kit create --bundle``.
    kind: str = "kit"
    #: Where the container's output is kept (detached containers).
    log_path: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def owner_alive(self) -> bool:
        """Whether the kit process answerable for the container still runs."""
        return bool(self.owner_pid) and is_alive(self.owner_pid, self.owner_start)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerState:
        """Rebuild a record; fields written by a newer or older kit are tolerated."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# --- processes ------------------------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot), or None if there is no such process.

    A zombie (exited, not yet reaped) counts as gone: it runs nothing any more.
    """
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ")": split
    # after the last ")".
    fields = stat.rsplit(b")", 1)[1].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_alive(pid: int, start: int) -> bool:
    """Whether the process recorded as (pid, start time) still runs."""
    now = process_start_time(pid)
    return now is not None and (start == 0 or now == start)


def utc_timestamp(when: float | None = None) -> str:
    """``when`` (seconds since the epoch; default: now) as RFC 3339 in UTC, the way runc's
    state, Docker's inspect and its json-file log write times: ``2026-11-26T18:24:17.5Z``."""
    import datetime  # here: most commands show no time (kit start need not import it)

    moment = datetime.datetime.fromtimestamp(time.time() if when is None else when, datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


# --- the records ----------------------------------------------------------------------------


def container_dir(container_id: str) -> Path:
    return containers_dir() / container_id


@contextlib.contextmanager
def locked(container_id: str, *, create: bool = False) -> Iterator[Path]:
    """Hold the container's lock while reading-modifying-writing its state.

    Only :func:`create` makes the directory: a writer that comes late (a monitor recording
    the exit of a container that ``kit rm -f`` removed meanwhile) must not bring it back.
    """
    directory = container_dir(container_id)
    if create:
        ensure(directory)
    try:
        lock = open(directory / ".lock", "a")  # noqa: SIM115
    except FileNotFoundError:
        raise KitError(
            f"no such container: {container_id}", fix="list containers with `kit ps -a`"
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield directory


@contextlib.contextmanager
def all_locked() -> Iterator[Path]:
    """Hold the lock of the containers directory (names and ids are unique across it)."""
    base = ensure(containers_dir())
    with open(base / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield base


def _write_atomic(path: Path, text: str) -> None:
    # rename(2) replaces the file in one step: a reader sees the old or the new state, never
    # half of it. No fsync: this is live state (under /run), worthless after a reboot anyway.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


def _state_text(state: ContainerState) -> str:
    return json.dumps(state.to_dict(), indent=2) + "\n"


def create(state: ContainerState, spec: Spec) -> None:
    """Write a new container's record; refuses an id or name already in use."""
    # Encoded before taking the lock that every container being created waits for.
    config, record = spec.to_json(indent=2) + "\n", _state_text(state)
    with all_locked():
        for other in list_states():
            if other.id == state.id or other.name == state.name:
                raise KitError(
                    f"a container named {state.name!r} already exists ({other.short_id})",
                    fix=f"remove it with `kit rm {state.name}` or choose another name",
                    exit_code=125,
                )
        with locked(state.id, create=True) as directory:
            _write_atomic(directory / "config.json", config)
            _write_atomic(directory / "state.json", record)


def save(state: ContainerState) -> None:
    with locked(state.id) as directory:
        _write_atomic(directory / "state.json", _state_text(state))


def _read(directory: Path) -> ContainerState:
    return ContainerState.from_dict(json.loads((directory / "state.json").read_text()))


def load(container_id: str) -> ContainerState:
    try:
        return _read(container_dir(container_id))
    except FileNotFoundError:
        raise KitError(
            f"no such container: {container_id}", fix="list containers with `kit ps -a`"
        ) from None


def update(container_id: str, change: Callable[[ContainerState], None]) -> ContainerState:
    """Read, change and write a record under its lock (no lost update between writers)."""
    with locked(container_id) as directory:
        try:
            state = _read(directory)
        except FileNotFoundError:
            raise KitError(
                f"no such container: {container_id}",
                cause="it was removed meanwhile",
                fix="list containers with `kit ps -a`",
            ) from None
        change(state)
        _write_atomic(directory / "state.json", _state_text(state))
        return state


def load_spec(container_id: str) -> Spec:
    # Imported here: kit start, kill and delete never decode a spec, and creating kit.spec's
    # dataclasses costs about 5 ms of every command that imports it.
    from kit.spec import Spec

    return Spec.load(str(container_dir(container_id) / "config.json"))


def config_value(container_id: str, *keys: str) -> Any:
    """One field of the container's config.json, read as plain JSON (None if it is missing):
    ``config_value(id, "root", "path")``. For kit state and kit delete, which need a field or
    two, not the whole spec decoded."""
    try:
        with open(container_dir(container_id) / "config.json", "rb") as f:
            value = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def list_states() -> list[ContainerState]:
    base = containers_dir()
    if not base.is_dir():
        return []
    out = []
    for entry in sorted(base.iterdir()):
        if not entry.is_dir():
            continue
        try:
            out.append(_read(entry))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            continue
    return out


def find(text: str) -> ContainerState:
    """A container by name, full id, or unique id prefix (as Docker matches them)."""
    states = list_states()
    for state in states:
        if text in (state.name, state.id):
            return state
    matches = [s for s in states if text and s.id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise KitError(
            f"{text!r} matches {len(matches)} containers: "
            + ", ".join(s.short_id for s in matches),
            fix="give more of the id, or the name",
        )
    raise KitError(f"no such container: {text}", fix="list containers with `kit ps -a`")


def refresh(state: ContainerState) -> ContainerState:
    """Correct a record whose process is gone but which still says created or running.

    The exit status is then unknown (whoever would have recorded it was killed too); the
    record says so in ``error``. Records of containers being created are left alone while
    the kit process creating them lives.
    """
    stale = False
    if state.status in (CREATED, RUNNING) and state.pid:
        # PID 1 gone is not enough: a live owner (the monitor, a foreground kit run) records
        # the end itself a moment later, once it has read the OOM count and removed cgroups.
        stale = not is_alive(state.pid, state.pid_start) and not state.owner_alive()
    elif state.status in (CREATING, RUNNING) and not state.pid and state.owner_pid:
        stale = not state.owner_alive()
    if not stale:
        return state

    def mark(current: ContainerState) -> None:
        if current.status in (CREATING, CREATED, RUNNING) and current.pid == state.pid:
            current.status = STOPPED
            current.finished = current.finished or time.time()
            if current.exit_code is None:
                current.error = current.error or (
                    "the container's process is gone and nobody recorded how it ended "
                    "(its kit process was killed)"
                )

    try:
        return update(state.id, mark)
    except KitError:
        return state


def live_status(state: ContainerState) -> str:
    """The status with a dead process accounted for (without writing anything)."""
    if (
        state.status in (CREATED, RUNNING)
        and state.pid
        and not is_alive(state.pid, state.pid_start)
    ):
        return STOPPED
    return state.status


def remove(container_id: str) -> None:
    """Delete the container's record (and anything else in its directory)."""
    from kit.removal import remove_tree

    # Not shutil.rmtree alone: a rootless image container's directory holds overlayfs's
    # work/work, mode 000, and may hold files of its subordinate ids (see kit.removal).
    # Only that rootless case needs the spec (its id maps): root removes everything without
    # reading the config back.
    spec = None
    if os.geteuid() != 0:
        with contextlib.suppress(KitError):
            spec = load_spec(container_id)
    remove_tree(container_dir(container_id), spec=spec)
