"""The container spec: what a container should be, as a subset of the OCI runtime spec.

Everything that starts a container (``kit run``, ``kit create --bundle``, lessons, the TUI)
first builds a :class:`Spec`; the init receives it as JSON and turns it into kernel state, one
stage at a time. The field names follow the OCI runtime specification's ``config.json``
(https://github.com/opencontainers/runtime-spec/blob/main/config.md), so a bundle written by
another tool loads here, and ``kit spec`` writes one that runc can run.

Fields kit does not implement are collected in :attr:`Spec.unknown` while loading, so the
runtime can report them instead of silently ignoring them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from kit import OCI_VERSION
from kit.errors import KitError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _named(json_name: str, **kwargs: Any) -> Any:
    """A field whose JSON name is not the camelCase of its Python name."""
    return field(metadata={"json": json_name}, **kwargs)


@dataclass
class User:
    """``process.user``: the numeric ids the program runs as (config.md#user)."""

    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] = field(default_factory=list)


@dataclass
class ConsoleSize:
    """``process.consoleSize``: rows and columns of the container's terminal."""

    height: int = 24
    width: int = 80


@dataclass
class Capabilities:
    """The five capability sets of the container process (capabilities(7)), as CAP_ names."""

    bounding: list[str] = field(default_factory=list)
    effective: list[str] = field(default_factory=list)
    inheritable: list[str] = field(default_factory=list)
    permitted: list[str] = field(default_factory=list)
    ambient: list[str] = field(default_factory=list)


@dataclass
class Rlimit:
    """One of ``process.rlimits``: setrlimit(2) of ``type`` to ``soft``/``hard`` before exec."""

    type: str  # e.g. "RLIMIT_NOFILE"
    hard: int
    soft: int


@dataclass
class Process:
    """``process``: what runs in the container, with which environment, terminal and rights."""

    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=lambda: [f"PATH={DEFAULT_PATH}"])
    cwd: str = "/"
    terminal: bool = False
    console_size: ConsoleSize | None = None
    user: User = field(default_factory=User)
    capabilities: Capabilities | None = None
    rlimits: list[Rlimit] = field(default_factory=list)
    no_new_privileges: bool = False
    apparmor_profile: str | None = None
    oom_score_adj: int | None = None
    selinux_label: str | None = None

    def env_dict(self) -> dict[str, str]:
        """The environment as a dict (later entries win, like execve's last-one-wins)."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out


@dataclass
class Root:
    """``root``: the root filesystem (a path, relative to the bundle unless absolute)."""

    path: str = "rootfs"
    readonly: bool = False


@dataclass
class IdMapping:
    """One line of a user namespace's uid_map or gid_map (``linux.uidMappings``)."""

    container_id: int = _named("containerID", default=0)
    host_id: int = _named("hostID", default=0)
    size: int = 1


@dataclass
class Mount:
    """One of ``mounts``: what is mounted at ``destination`` inside the container."""

    destination: str
    type: str | None = None
    source: str | None = None
    options: list[str] = field(default_factory=list)
    uid_mappings: list[IdMapping] = field(default_factory=list)
    gid_mappings: list[IdMapping] = field(default_factory=list)


@dataclass
class Namespace:
    """One of ``linux.namespaces``: a namespace to create, or to join when ``path`` is set."""

    type: str  # mount pid network ipc uts user cgroup time
    path: str | None = None


@dataclass
class Device:
    """One of ``linux.devices``: a device node to create inside the container's /dev."""

    path: str
    type: str  # c, b, u, p
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass
class DeviceRule:
    """A cgroup device-access rule (resources.devices)."""

    allow: bool
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    access: str | None = None


@dataclass
class MemoryResources:
    """``linux.resources.memory``: memory limits, in bytes."""

    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    swappiness: int | None = None
    disable_oom_killer: bool | None = None


@dataclass
class CpuResources:
    """``linux.resources.cpu``: CPU shares and quota (cpusets are refused by kit)."""

    shares: int | None = None
    quota: int | None = None
    period: int | None = None
    cpus: str | None = None
    mems: str | None = None


@dataclass
class PidsResources:
    """``linux.resources.pids``: the most processes the container may have."""

    limit: int = 0


@dataclass
class Resources:
    """``linux.resources``: the cgroup limits and device rules of the container."""

    devices: list[DeviceRule] = field(default_factory=list)
    memory: MemoryResources | None = None
    cpu: CpuResources | None = None
    pids: PidsResources | None = None
    unified: dict[str, str] = field(default_factory=dict)


@dataclass
class Linux:
    """``linux``: everything Linux-specific: namespaces, id maps, cgroups, masked paths..."""

    namespaces: list[Namespace] = field(default_factory=list)
    uid_mappings: list[IdMapping] = field(default_factory=list)
    gid_mappings: list[IdMapping] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    resources: Resources | None = None
    cgroups_path: str | None = None
    rootfs_propagation: str | None = None
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    seccomp: dict[str, Any] | None = None
    sysctl: dict[str, str] = field(default_factory=dict)
    mount_label: str | None = None

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None


@dataclass
class LandlockRule:
    """Allow ``access`` (read, write, execute) beneath ``path``; everything else is denied."""

    path: str
    access: list[str] = field(default_factory=lambda: ["read"])


@dataclass
class OverlaySpec:
    """The root filesystem as an overlay: image layers under the container's writable layer.

    The rootfs stage mounts it at ``root.path`` inside the container's own mount namespace,
    so the host never sees the mount and it vanishes with the container.
    """

    #: Read-only layer directories, top layer first (overlayfs's lowerdir order).
    lowers: list[str] = field(default_factory=list)
    #: The container's writable layer and overlayfs's scratch directory (same filesystem).
    upper: str | None = None
    work: str | None = None
    #: Keep overlay's marks in ``user.overlay.*`` (required inside a user namespace).
    userxattr: bool = False
    #: In a user namespace made by root: show the layers through idmapped mounts, so files
    #: owned by root on disk belong to the container's root (see kit.security.userns).
    idmap: bool = True


@dataclass
class KitOptions:
    """kit's own settings, kept under the ``"kit"`` key of config.json.

    Other runtimes ignore this key, as the OCI spec asks them to for unknown properties.
    """

    #: Landlock rules; an empty list with ``landlock`` true denies every path.
    landlock: list[LandlockRule] | None = None
    #: Instead of exec'ing ``process.args``, run this Python callable (``module:function``)
    #: inside the finished container and send back what it returns. Lessons and tests use it to
    #: look at the container from the inside without needing tools in the rootfs.
    probe: str | None = None
    probe_args: dict[str, Any] = field(default_factory=dict)
    #: Mount the root filesystem as an overlay of image layers (``kit run IMAGE``).
    overlay: OverlaySpec | None = None
    #: ``kit run -u`` as given (``NAME[:GROUP]`` or ``UID[:GID]``), completed from the
    #: container's own /etc/passwd and /etc/group by the identity stage (kit.security.users).
    user: str | None = None


@dataclass
class Spec:
    """A container: root filesystem, process, mounts and Linux specifics."""

    oci_version: str = OCI_VERSION
    root: Root = field(default_factory=Root)
    process: Process = field(default_factory=Process)
    hostname: str | None = None
    domainname: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    linux: Linux = field(default_factory=Linux)
    annotations: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, Any] | None = None
    kit: KitOptions = field(default_factory=KitOptions)
    #: JSON paths of fields that were present in config.json but that kit does not know.
    unknown: list[str] = field(default_factory=list, metadata={"skip": True})

    def to_dict(self) -> dict[str, Any]:
        return _encode(self)

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spec:
        unknown: list[str] = []
        spec = _decode(cls, data, "", unknown)
        spec.unknown = unknown
        return spec

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "config.json") -> Spec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KitError(
                f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                fix="fix the JSON syntax (a missing comma or quote is the usual culprit)",
            ) from None
        if not isinstance(data, dict):
            raise KitError(f"{source} must hold a JSON object", fix="wrap the settings in {}")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str) -> Spec:
        try:
            with open(path, "rb") as f:
                return cls.from_json(f.read(), source=path)
        except FileNotFoundError:
            raise KitError(
                f"no container config at {path}",
                fix="create one with `kit spec` in the bundle directory",
            ) from None

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json(indent=2) + "\n")

    def has_namespace(self, kind: str) -> bool:
        return self.linux.namespace(kind) is not None


# --- a small dataclass <-> JSON codec ------------------------------------------------------------


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            if f.metadata.get("skip"):
                continue
            item = getattr(value, f.name)
            if item is None or item == [] or item == {}:
                continue
            out[f.metadata.get("json", _json_name(f.name))] = _encode(item)
        return out
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(kind: Any, data: Any, path: str, unknown: list[str]) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if data is None:
            return None
        return _decode(options[0], data, path, unknown)
    if origin is list:
        (item_type,) = typing.get_args(kind)
        if not isinstance(data, list):
            raise _type_error(path, "a list", data)
        return [_decode(item_type, v, f"{path}[{i}]", unknown) for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise _type_error(path, "an object", data)
        return dict(data)
    if dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise _type_error(path, "an object", data)
        by_json = _json_fields(kind)
        values: dict[str, Any] = {}
        for key, item in data.items():
            where = f"{path}.{key}" if path else key
            if key not in by_json:
                unknown.append(where)
                continue
            name, hint = by_json[key]
            values[name] = _decode(hint, item, where, unknown)
        try:
            return kind(**values)
        except TypeError as exc:
            raise KitError(
                f"config field {path or 'root'} is incomplete: {exc}", fix="add the missing fields"
            ) from None
    if kind is Any:
        return data
    if kind is bool:
        if not isinstance(data, bool):
            raise _type_error(path, "true or false", data)
        return data
    if kind is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise _type_error(path, "an integer", data)
        return data
    if kind is str:
        if not isinstance(data, str):
            raise _type_error(path, "a string", data)
        return data
    return data


@functools.cache
def _json_fields(kind: type) -> dict[str, tuple[str, Any]]:
    """JSON name -> (field name, type) of a spec dataclass. Worked out once per class:
    get_type_hints evaluates every annotation's text again each time it is asked."""
    hints = typing.get_type_hints(kind)
    return {
        f.metadata.get("json", _json_name(f.name)): (f.name, hints[f.name])
        for f in dataclasses.fields(kind)
        if not f.metadata.get("skip")
    }


def _type_error(path: str, expected: str, data: Any) -> KitError:
    return KitError(
        f"config field {path} must be {expected}, not {json.dumps(data)[:60]}",
        fix="correct the value in config.json (see the OCI runtime spec's config.md)",
    )
