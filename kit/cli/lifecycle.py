"""Living containers: ``kit run -d``, ``ps``, ``logs``, ``stop``, ``kill``, ``rm``, ``inspect``.

kit run -d --name web --rootfs DIR sleep 1000     # prints the id, returns at once
kit ps                                            # running containers (-a: all, -q: ids)
kit logs -f web                                   # what a detached container printed
kit stop -t 5 web                                 # SIGTERM, 5 s grace, then SIGKILL
kit kill -s HUP web                               # any signal (also `kit kill ID SIG`, as runc)
kit rm -f web                                     # remove (kill first with -f)
kit inspect web                                   # JSON: config, state, mounts, layers, limits

Containers are named by name, full id, or any unique prefix of the id.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kit.runtime.state import ContainerState

#: The commands this module registers (see kit.cli).
COMMANDS = ("ps", "logs", "stop", "kill", "rm", "inspect")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ps", help="list containers")
    p.add_argument("-a", "--all", action="store_true", help="also stopped containers")
    p.add_argument("-q", "--quiet", action="store_true", help="only the ids")
    p.add_argument("--no-trunc", action="store_true", help="full ids and commands")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=ps_command)

    p = subparsers.add_parser("logs", help="show what a detached container printed")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("-t", "--timestamps", action="store_true", help="prefix each line's time")
    p.add_argument("--tail", metavar="N", type=int, help="only the last N lines")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=logs_command)

    p = subparsers.add_parser("stop", help="stop containers (SIGTERM, then SIGKILL)")
    p.add_argument(
        "-t", "--time", type=float, default=10.0, metavar="SECONDS", help="grace period (10)"
    )
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=stop_command)

    p = subparsers.add_parser(
        "kill",
        help="send a signal to a container (kit kill [-s SIG] CONTAINER, or kit kill ID SIG)",
    )
    p.add_argument("-s", "--signal", default=None, metavar="SIG", help="signal (default KILL)")
    p.add_argument(
        "-a", "--all", action="store_true", help="signal every process of the container (runc)"
    )
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=kill_command)

    p = subparsers.add_parser("rm", help="remove containers")
    p.add_argument("-f", "--force", action="store_true", help="kill running containers first")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=rm_command)

    p = subparsers.add_parser("inspect", help="everything kit knows about containers, as JSON")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=inspect_command)


# --- kit run -d ---------------------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``kit run -d`` (called by kit.cli.run)."""
    parser.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="run in the background; print the id (kit logs/ps/stop/exec it later)",
    )


def run_detached(args: argparse.Namespace) -> int:
    """``kit run -d``: record the container, hand it to a monitor, print its id."""
    from kit.cli.run import build_spec
    from kit.errors import KitError
    from kit.runtime import lifecycle, monitor, state
    from kit.runtime.defaults import new_container_id

    if args.step or args.pause_after or args.pause_before or args.trace:
        raise KitError(
            "--step, --pause-* and --trace need a terminal to report to; -d has none",
            fix="drop -d to step through the stages, or drop the stepping options",
            exit_code=2,
        )
    container_id = new_container_id()
    name = args.name or container_id[:12]
    _check_name_free(name)
    spec = build_spec(args, container_id)
    record = state.ContainerState(id=container_id, name=name, auto_remove=args.rm)
    try:
        state.create(record, spec)
    except KitError:
        lifecycle.remove_files(container_id)  # the writable layer build_spec made
        raise
    try:
        monitor.start_detached(container_id, spec=spec, interactive=args.interactive)
    except KitError:
        if args.rm:
            lifecycle.remove_files(container_id)
        raise
    sys.stdout.write(container_id + "\n")
    return 0


def _check_name_free(name: str) -> None:
    from kit.errors import KitError
    from kit.runtime import state

    for other in state.list_states():
        if other.name == name:
            raise KitError(
                f"a container named {name!r} already exists ({other.short_id})",
                fix=f"remove it with `kit rm {name}` or choose another --name",
                exit_code=125,
            )


# --- ps -----------------------------------------------------------------------------------------


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{int(seconds)} second{'s' if int(seconds) != 1 else ''}"


def describe_status(record: ContainerState, now: float | None = None) -> str:
    """Docker's STATUS column: ``Up 5 seconds``, ``Exited (0) 2 minutes ago``, ``Created``."""
    from kit.runtime import state

    now = now or time.time()
    status = state.live_status(record)
    if status == state.RUNNING:
        return f"Up {_ago(now - (record.started or record.created))}"
    if status == state.CREATED:
        return "Created"
    if status == state.CREATING:
        return "Creating"
    code = "?" if record.exit_code is None else str(record.exit_code)
    when = record.finished or now
    return f"Exited ({code}) {_ago(now - when)} ago"


def source_of(record: ContainerState) -> str:
    """What the container runs on: its image, its --rootfs, or its OCI bundle."""
    import json

    from kit.runtime import state

    directory = state.container_dir(record.id)
    try:
        return str(json.loads((directory / "image.json").read_text())["name"])
    except (OSError, ValueError, KeyError):
        pass
    if record.bundle:
        return f"bundle:{record.bundle}"
    try:
        return state.load_spec(record.id).root.path
    except Exception:
        return "?"


def _command_of(record: ContainerState) -> str:
    import shlex

    from kit.runtime import state

    try:
        return shlex.join(state.load_spec(record.id).process.args)
    except Exception:
        return "?"


def ps_rows(show_all: bool) -> list[dict[str, Any]]:
    from kit.runtime import state

    rows = []
    for record in sorted(state.list_states(), key=lambda r: -r.created):
        record = state.refresh(record)
        if not show_all and record.status not in (state.RUNNING, state.CREATED):
            continue
        rows.append(
            {
                "id": record.id,
                "name": record.name,
                "image": source_of(record),
                "command": _command_of(record),
                "created": record.created,
                "status": record.status,
                "state": describe_status(record),
                "pid": record.pid,
                "exit_code": record.exit_code,
            }
        )
    return rows


def ps_command(args: argparse.Namespace) -> int:
    import json

    rows = ps_rows(args.all)
    if args.quiet:
        for row in rows:
            sys.stdout.write((row["id"] if args.no_trunc else row["id"][:12]) + "\n")
        return 0
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]
    lines = [header]
    now = time.time()
    for row in rows:
        command = row["command"] if args.no_trunc else _truncate(row["command"], 20)
        lines.append(
            [
                row["id"] if args.no_trunc else row["id"][:12],
                row["image"] if args.no_trunc else _truncate(row["image"], 30),
                f'"{command}"',
                f"{_ago(now - row['created'])} ago",
                row["state"],
                row["name"],
            ]
        )
    sys.stdout.write(columns(lines))
    return 0


def columns(lines: list[list[str]]) -> str:
    """Plain columns, three spaces apart, like Docker's listings (easy to grep and cut)."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- logs ---------------------------------------------------------------------------------------


def logs_command(args: argparse.Namespace) -> int:
    from kit.errors import KitError
    from kit.runtime import monitor, state

    record = state.find(args.container)
    path = monitor.log_path(record.id)
    if not path.exists():
        raise KitError(
            f"container {record.name} has no log",
            cause="only detached containers (kit run -d) keep their output; a foreground "
            "container's output went to the terminal that ran it",
            fix="run it with -d to keep a log",
        )
    out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}

    def show(line: str) -> None:
        parsed = monitor.parse_log_line(line)
        if parsed is None:
            return
        stream, data, when = parsed
        target = out.get(stream, sys.stdout.buffer)
        if args.timestamps:
            target.write(when.encode() + b" ")
        target.write(data)
        target.flush()

    with open(path, encoding="utf-8", errors="surrogateescape") as log:
        lines = log.readlines()
        complete = [line for line in lines if line.endswith("\n")]
        pending = "".join(lines[len(complete) :])
        if args.tail is not None:
            complete = complete[-args.tail :] if args.tail > 0 else []
        for line in complete:
            show(line)
        if not args.follow:
            return 0
        while True:
            chunk = log.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    show(pending)
                    pending = ""
                continue
            current = state.refresh(state.load(record.id))
            if current.status not in (state.RUNNING, state.CREATED, state.CREATING):
                # The monitor writes the last output before it records the exit.
                rest = log.read()
                for line in (pending + rest).splitlines(keepends=True):
                    show(line)
                return 0
            time.sleep(0.1)


# --- stop, kill, rm -----------------------------------------------------------------------------


def stop_command(args: argparse.Namespace) -> int:
    from kit.runtime import lifecycle, state

    for text in args.containers:
        record = state.find(text)
        lifecycle.stop(record, timeout=args.time)
        sys.stdout.write(text + "\n")
    return 0


def kill_command(args: argparse.Namespace) -> int:
    from kit.errors import KitError
    from kit.runtime import lifecycle, state

    targets = list(args.containers)
    sig_text = args.signal
    # runc's form: `kit kill ID [SIGNAL]` (podman and conmon call it so). A signal wins over
    # a container *prefix*: podman's `kill 9f3c... 9` must not read "9" as a second container.
    if sig_text is None and len(targets) == 2 and _is_signal(targets[1]):
        if not _names_a_container_exactly(targets[1]):
            sig_text = targets.pop()
    elif sig_text is None and len(targets) == 2 and not _is_container(targets[1]):
        sig_text = targets.pop()
    failed = 0
    for text in targets:
        record = state.find(text)
        # Docker's kill defaults to SIGKILL; runc's (OCI containers) to SIGTERM.
        sig = lifecycle.parse_signal(sig_text or ("TERM" if record.kind == "oci" else "KILL"))
        sent = lifecycle.signal_all(record, sig) if args.all else lifecycle.send_signal(record, sig)
        if not sent:
            sys.stderr.write(
                str(
                    KitError(
                        f"container {record.name} is not running",
                        fix="see `kit ps -a`; only a running container can get a signal",
                    )
                )
                + "\n"
            )
            failed = 1
            continue
        if record.kind != "oci":
            sys.stdout.write(text + "\n")
    return failed


def _is_signal(text: str) -> bool:
    from kit.errors import KitError
    from kit.runtime import lifecycle

    try:
        lifecycle.parse_signal(text)
    except KitError:
        return False
    return True


def _names_a_container_exactly(text: str) -> bool:
    record = _container_or_none(text)
    return record is not None and text in (record.id, record.name)


def _is_container(text: str) -> bool:
    """Whether ``text`` finds a container (its id, a prefix of it, or its name)."""
    return _container_or_none(text) is not None


def _container_or_none(text: str) -> ContainerState | None:
    """The container ``text`` finds, or None."""
    from kit.errors import KitError
    from kit.runtime import state

    try:
        return state.find(text)
    except KitError:
        return None


def rm_command(args: argparse.Namespace) -> int:
    from kit.runtime import lifecycle, state

    for text in args.containers:
        record = state.find(text)
        lifecycle.remove(record, force=args.force)
        sys.stdout.write(text + "\n")
    return 0


# --- inspect ------------------------------------------------------------------------------------


def inspect_command(args: argparse.Namespace) -> int:
    import json

    from kit.runtime import inspect, state

    found = [inspect.describe(state.find(text)) for text in args.containers]
    sys.stdout.write(json.dumps(found, indent=2) + "\n")
    return 0
