"""kit as an OCI runtime: the ``create``/``start``/``state``/``kill``/``delete`` lifecycle of
the OCI runtime specification (runtime.md), on a *bundle*: a directory with ``config.json``
and (usually) the root filesystem.

This is the interface between an engine and its runtime. podman (through conmon), containerd
(through its shim) and CRI-O run containers by calling a runtime binary with these commands;
runc is the usual one, and kit speaks enough of the same language to stand in for it:

    engine (podman)  ->  conmon  ->  kit create --bundle B --pid-file P ID   the container
                                     kit start ID                            waits at a gate,
                                     kit state ID / kill ID SIG / delete ID  then runs

Every field of config.json is either honoured, or *reported*: :func:`check_spec` decides
field by field whether kit refuses the bundle (the field would change what
the container is allowed to do, and kit cannot apply it), warns (it changes nothing kit's
isolation depends on), or adapts it (it is done kit's way; the warning says how).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.errors import KitError
from kit.runtime import lifecycle, state
from kit.runtime.state import ContainerState

if TYPE_CHECKING:
    import socket

    # Imported where a spec is read or made: kit start, kill and delete never need kit.spec,
    # whose dataclasses take about 5 ms to create.
    from kit.spec import Spec

REFUSE = "refuse"
WARN = "warn"
ADAPT = "adapt"


@dataclass(frozen=True)
class Finding:
    """What kit does about one field of config.json."""

    field: str
    action: str  # refuse, warn or adapt
    reason: str

    def line(self) -> str:
        return f"{self.field}: {self.reason}"


#: Unknown fields (not in kit's model of config.json) under these keys are refused: they may
#: be security settings, and ignoring one would run a container with less isolation than its
#: bundle asks for. Unknown fields elsewhere are reported and ignored.
_GUARDED_PREFIXES = ("process", "linux", "root", "mounts", "hooks")


def _apparmor_enabled() -> bool:
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False


def _selinux_enabled() -> bool:
    return Path("/sys/fs/selinux/enforce").exists()


def check_spec(spec: Spec) -> list[Finding]:
    """Every field kit does not simply honour, with the decision (see the module docstring)."""
    found: list[Finding] = []

    def add(field: str, action: str, reason: str) -> None:
        found.append(Finding(field, action, reason))

    for path in spec.unknown:
        guarded = path.split(".")[0].split("[")[0] in _GUARDED_PREFIXES
        add(
            path,
            REFUSE if guarded else WARN,
            "unknown to kit"
            + (
                "; it may be a security setting, and kit will not run a container with less "
                "than its bundle asks for"
                if guarded
                else "; ignored"
            ),
        )
    major = spec.oci_version.split(".")[0]
    if major != "1":
        add("ociVersion", REFUSE, f"version {spec.oci_version}: kit implements 1.x")
    if spec.hooks and any(spec.hooks.get(k) for k in spec.hooks):
        add("hooks", REFUSE, "kit runs no hooks (a skipped hook may be the container's network)")
    if spec.linux.sysctl:
        add("linux.sysctl", REFUSE, "kit sets no sysctls")
    resources = spec.linux.resources
    if resources is not None:
        if resources.unified:
            add("linux.resources.unified", REFUSE, "kit writes no raw cgroup v2 files")
        cpu = resources.cpu
        if cpu is not None and (cpu.cpus or cpu.mems):
            add("linux.resources.cpu.cpus/mems", REFUSE, "kit does not manage cpusets")
        memory = resources.memory
        if memory is not None and memory.reservation is not None:
            add("linux.resources.memory.reservation", WARN, "a soft limit; not set by kit")
        if memory is not None and memory.disable_oom_killer:
            add("linux.resources.memory.disableOOMKiller", WARN, "not applied by kit")
    for index, mount in enumerate(spec.mounts):
        if mount.uid_mappings or mount.gid_mappings:
            add(f"mounts[{index}].uidMappings", REFUSE, "kit makes no id-mapped mounts")
        if mount.type == "cgroup":
            add(
                f"mounts[{index}] ({mount.destination})",
                ADAPT,
                "kit does not show cgroupfs inside containers: an empty read-only tmpfs is "
                "mounted there instead",
            )
    if spec.process.apparmor_profile:
        if _apparmor_enabled():
            add(
                "process.apparmorProfile",
                REFUSE,
                "AppArmor is enabled here and kit cannot apply profiles",
            )
        else:
            add(
                "process.apparmorProfile",
                WARN,
                "AppArmor is not enabled on this host (runc skips it too)",
            )
    for field_name, value in (
        ("process.selinuxLabel", spec.process.selinux_label),
        ("linux.mountLabel", spec.linux.mount_label),
    ):
        if value:
            if _selinux_enabled():
                add(field_name, REFUSE, "SELinux is enabled here and kit cannot apply labels")
            else:
                add(field_name, WARN, "SELinux is not enabled on this host")
    caps = spec.process.capabilities
    if caps is not None:
        impossible = _unraisable_ambient(spec)
        if impossible:
            add(
                "process.capabilities.ambient",
                ADAPT,
                f"{', '.join(impossible)} cannot be ambient (the kernel raises only capabilities "
                "that are permitted and inheritable); left out, as runc does with a warning",
            )
    if spec.process.oom_score_adj is not None:
        add("process.oomScoreAdj", WARN, "not applied by kit")
    return found


def refuse_if_needed(findings: list[Finding], where: str = "config.json") -> None:
    refused = [f for f in findings if f.action == REFUSE]
    if refused:
        raise KitError(
            f"{where} asks for what kit cannot do: " + "; ".join(f.line() for f in refused),
            cause="running anyway could leave the container less isolated than its bundle says",
            fix="remove those fields from the bundle, or run it with runc",
        )


def check_process_fields(unknown: list[str]) -> None:
    """For ``kit exec --process FILE``: unknown process fields are refused, as in bundles."""
    if unknown:
        raise KitError(
            "the process JSON has fields kit does not know: " + ", ".join(unknown),
            fix="remove them, or use runc",
        )


def adapt(spec: Spec, bundle: str) -> Spec:
    """The spec as kit will run it: root path absolute, cgroup mounts replaced."""
    from kit.spec import Mount

    if not os.path.isabs(spec.root.path):
        spec.root.path = os.path.normpath(os.path.join(bundle, spec.root.path))
    adapted = []
    for mount in spec.mounts:
        if mount.type == "cgroup":
            mount = Mount(
                mount.destination, "tmpfs", "tmpfs", ["ro", "nosuid", "nodev", "noexec", "mode=755"]
            )
        adapted.append(mount)
    spec.mounts = adapted
    impossible = _unraisable_ambient(spec)
    if impossible and spec.process.capabilities is not None:
        caps = spec.process.capabilities
        caps.ambient = [c for c in caps.ambient if c not in impossible]
    return spec


def _unraisable_ambient(spec: Spec) -> list[str]:
    caps = spec.process.capabilities
    if caps is None:
        return []
    return [c for c in caps.ambient if c not in caps.permitted or c not in caps.inheritable]


def load_bundle(bundle: str) -> tuple[Spec, list[Finding]]:
    """Read and check ``BUNDLE/config.json``; refuse what kit cannot honour."""
    from kit.spec import Spec

    bundle = os.path.abspath(bundle)
    spec = Spec.load(os.path.join(bundle, "config.json"))
    findings = check_spec(spec)
    refuse_if_needed(findings, f"{bundle}/config.json")
    return adapt(spec, bundle), findings


# --- kit spec ---------------------------------------------------------------------------------


def example_spec(*, rootless: bool = False) -> Spec:
    """What ``kit spec`` writes: kit's defaults for a shell in ``rootfs`` (like ``runc spec``)."""
    from kit.runtime.defaults import default_spec
    from kit.spec import OCI_VERSION

    spec = default_spec(["sh"], "rootfs", hostname="kit", terminal=True)
    spec.oci_version = OCI_VERSION
    spec.root.readonly = True
    spec.process.env = [e for e in spec.process.env if not e.startswith("HOSTNAME=")]
    if rootless:
        from kit.spec import IdMapping, Namespace

        uid, gid = os.geteuid(), os.getegid()
        spec.linux.namespaces.append(Namespace("user"))
        spec.linux.uid_mappings = [IdMapping(0, uid, 1)]
        spec.linux.gid_mappings = [IdMapping(0, gid, 1)]
        # As `runc spec --rootless`: no resources (a rootless container has no devices
        # cgroup, see kit.cgroups.devices).
        spec.linux.resources = None
    return spec


# --- the lifecycle ----------------------------------------------------------------------------


def find(container_id: str) -> ContainerState:
    """An OCI container by its exact id (runc does not match prefixes or names)."""
    directory = state.container_dir(container_id)
    if not (directory / "state.json").exists():
        raise KitError(
            f"container {container_id} does not exist",
            fix="list containers with `kit ps -a`",
        )
    return state.load(container_id)


def status_of(record: ContainerState) -> str:
    """created, running or stopped, from the process and the FIFO (not only the record)."""
    if record.status == state.CREATING:
        if record.owner_alive():
            return "creating"
        return "stopped"
    if not record.pid or not state.is_alive(record.pid, record.pid_start):
        return "stopped"
    if os.path.exists(fifo_path(state.container_dir(record.id))):
        return "created"
    return "running"


def state_document(record: ContainerState) -> dict[str, Any]:
    """The runtime spec's state JSON (plus runc's extra fields podman reads)."""
    from kit import OCI_VERSION

    status = status_of(record)
    document: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "id": record.id,
        "status": status,
        "pid": record.pid if status in ("created", "running") else 0,
        "bundle": record.bundle,
        "rootfs": _rootfs_of(record),
        "created": state.utc_timestamp(record.created or None),
        "owner": "",
    }
    if record.annotations:
        document["annotations"] = record.annotations
    return document


def _rootfs_of(record: ContainerState) -> str:
    path = state.config_value(record.id, "root", "path")
    return path if isinstance(path, str) else ""


class Creation:
    """``kit create``: the container built up to its start gate, its record written."""

    def __init__(
        self,
        container_id: str,
        bundle: str,
        *,
        pid_file: str | None = None,
        console_socket: str | None = None,
        gate: bool = True,
        stdio: tuple[int | None, int | None, int | None] = (None, None, None),
        pause_after: list[str] | None = None,
        events_file: str | None = None,
    ) -> None:
        self.container_id = container_id
        self.bundle = os.path.abspath(bundle)
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.gate = gate
        self.stdio = stdio
        self.findings: list[Finding] = []
        #: Stop after these stages until a line arrives on stdin (crash tests, learners).
        self.pause_after = list(pause_after or [])
        #: Write every event of the init (system calls, stages) here as JSON lines.
        self.events_file = events_file

    def prepare(self) -> Spec:
        _check_id(self.container_id)
        spec, self.findings = load_bundle(self.bundle)
        if spec.linux.cgroups_path and ":" in spec.linux.cgroups_path:
            raise KitError(
                f"cgroupsPath {spec.linux.cgroups_path!r} is in systemd's slice:prefix:name form",
                cause="kit manages cgroups through cgroupfs, not through systemd",
                fix="run the engine with --cgroup-manager cgroupfs",
            )
        me = os.getpid()
        record = ContainerState(
            id=self.container_id,
            name=self.container_id,
            bundle=self.bundle,
            kind="oci",
            annotations=dict(spec.annotations),
            owner_pid=me,
            owner_start=state.process_start_time(me) or 0,
        )
        state.create(record, spec)
        return spec

    def run(self, spec: Spec) -> ContainerState:
        """Start the init and wait until the container is created (or failed)."""
        from kit.runtime.launcher import ContainerProcess

        directory = state.container_dir(self.container_id)
        fifo = make_fifo(directory) if self.gate else None
        sock = connect_console_socket(self.console_socket) if self.console_socket else None
        container = ContainerProcess(
            spec,
            container_id=self.container_id,
            pause_after=sorted(set(self.pause_after)),
            stdin=self.stdio[0],
            stdout=self.stdio[1],
            stderr=self.stdio[2],
            use_fork=True,
            exec_fifo=fifo,
            console_socket=sock.fileno() if sock else None,
            trace=self.events_file is not None,
            on_event=self._event_sink(),
        )
        try:
            container.start()
            if sock is not None:
                sock.close()
                sock = None
            while (pause := container.next_pause()) is not None:
                if pause.stage in self.pause_after and not _wait_for_a_line(pause.stage):
                    container.abort()
                    break
                container.resume()
            status = container.wait()
        finally:
            if sock is not None:
                sock.close()
            container.close()
        created = any(e.kind == "process" and e.name == "created" for e in container.events)
        if status.error is not None or not created or container.host_pid is None:
            raise status.error or KitError(
                f"container {self.container_id} ended before it was created "
                f"(exit status {status.code})"
            )
        pid = container.host_pid
        pid_start = state.process_start_time(pid) or 0

        def mark(record: ContainerState) -> None:
            record.pid, record.pid_start = pid, pid_start
            record.status = state.CREATED
            record.owner_pid = record.owner_start = 0

        record = state.update(self.container_id, mark)
        if self.pid_file:
            write_pid_file(self.pid_file, pid)
        return record

    def _event_sink(self) -> Any:
        if self.events_file is None:
            return None
        from kit.trace import json_printer

        stream = open(self.events_file, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
        return json_printer(stream)


def _wait_for_a_line(stage: str) -> bool:
    """At a --pause-after stop: say so on stderr, wait for Enter (end of input: abort)."""
    import sys

    sys.stderr.write(f"kit: paused after {stage}; Enter continues\n")
    sys.stderr.flush()
    return sys.stdin.readline() != ""


def create(
    container_id: str,
    bundle: str,
    *,
    pid_file: str | None = None,
    console_socket: str | None = None,
    pause_after: list[str] | None = None,
    events_file: str | None = None,
) -> tuple[ContainerState, list[Finding]]:
    """``kit create``: on any failure, nothing of the container is left behind."""
    creation = Creation(
        container_id,
        bundle,
        pid_file=pid_file,
        console_socket=console_socket,
        pause_after=pause_after,
        events_file=events_file,
    )
    spec = creation.prepare()
    try:
        return creation.run(spec), creation.findings
    except BaseException:
        with contextlib.suppress(KitError):
            delete(container_id, force=True)
        raise


def start(container_id: str) -> ContainerState:
    """``kit start``: open the gate of a created container."""
    find(container_id)  # "does not exist", in runc's words
    with state.locked(container_id) as directory:
        record = state.load(container_id)
        status = status_of(record)
        if status != "created":
            raise KitError(
                f"container {container_id} is {status}, not created",
                fix="only a created container can be started (kit create, then kit start)",
            )
        open_the_gate(fifo_path(directory))

    def running(current: ContainerState) -> None:
        current.status = state.RUNNING
        current.started = time.time()

    return state.update(container_id, running)


def kill(container_id: str, sig: int, *, all_processes: bool = False) -> None:
    record = find(container_id)
    if status_of(record) not in ("created", "running"):
        raise KitError(
            f"container {container_id} is not running",
            fix="see `kit state ID`",
        )
    sent = (
        lifecycle.signal_all(record, sig) if all_processes else lifecycle.send_signal(record, sig)
    )
    if not sent:
        raise KitError(f"container {container_id} is not running", fix="see `kit state ID`")


def delete(container_id: str, *, force: bool = False) -> None:
    """``kit delete``: a stopped container's record and cgroups (``force``: kill it first)."""
    record = find(container_id)
    status = status_of(record)
    if status in ("created", "running", "creating"):
        if status == "running" and not force:
            raise KitError(
                f"container {container_id} is running",
                fix="stop it first (kit kill ID KILL), or use kit delete --force",
            )
        # A created container never ran its program: deleting it is always allowed (runc).
        lifecycle.kill(record)
        if status == "creating":
            lifecycle.remove(record, force=True)
            return
    lifecycle.remove_files(container_id)


def _check_id(container_id: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}", container_id):
        raise KitError(
            f"invalid container id {container_id!r}",
            fix="use letters, digits and . _ + - (at most 128 characters)",
            exit_code=2,
        )


def connect_console_socket(path: str) -> socket.socket:
    """A connection to the engine's console socket (the terminal's master goes there)."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as error:
        sock.close()
        raise KitError(
            f"cannot connect to the console socket {path}",
            errno=error.errno,
            fix="pass the path of a listening unix socket (the engine's --console-socket)",
        ) from None
    return sock


def write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc does: the engine may read it as soon as it exists."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(str(pid))
    os.replace(temporary, path)


# --- the start gate, the engine's side (the container's side: kit.runtime.gate) ---------------

#: The FIFO a created container waits at, in its state directory.
FIFO_NAME = "exec.fifo"


def fifo_path(container_dir: str | os.PathLike[str]) -> str:
    return os.path.join(container_dir, FIFO_NAME)


def make_fifo(container_dir: str | os.PathLike[str]) -> str:
    path = fifo_path(container_dir)
    os.mkfifo(path, 0o600)
    return path


def open_the_gate(path: str) -> None:
    """``kit start``: let the waiting container exec its program."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KitError(
            "the container is not in the created state",
            cause="its exec.fifo is gone: it was started already",
            fix="see `kit state ID`",
        ) from None
    except OSError as error:
        # ENXIO: a FIFO opened for writing without a reader. The container process is gone.
        raise KitError(
            "the container's process is gone: nothing waits at its exec.fifo",
            errno=error.errno,
            fix="delete it (`kit delete --force ID`) and create it again",
        ) from None
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
    os.unlink(path)
