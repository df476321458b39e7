"""Exploring a container from outside and from inside: ``exec``, ``export``, ``cp``,
``mounts``, ``top``.

kit exec web cat /etc/hostname           # one more program in web's namespaces and cgroups
kit exec -it web /bin/sh                 # a shell inside, with its own terminal
kit export web > web.tar                 # the container's root filesystem as a tar stream
kit cp web:/etc/hostname .               # copy out (paths resolved inside the container)
kit cp notes.txt web:/tmp/               # copy in
kit mounts web                           # its mount tree, with propagation
kit top web                              # its processes (host PID and container PID)
"""

from __future__ import annotations

import argparse
import os
import sys

from kit.forwarding import signals_forwarded

#: The commands this module registers (see kit.cli).
COMMANDS = ("exec", "export", "cp", "mounts", "top")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "exec",
        help="run a command in a running container",
        description="Join a running container's namespaces and cgroups, take on its "
        "security settings (user, capabilities, no_new_privs, seccomp, Landlock) and run a "
        "command there.",
    )
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument(
        "-d", "--detach", action="store_true", help="return once the command runs (no output)"
    )
    p.add_argument(
        "-e", "--env", action="append", default=[], metavar="KEY=VALUE", help="set a variable"
    )
    p.add_argument(
        "-w", "--workdir", "--cwd", dest="workdir", metavar="DIR", help="working directory"
    )
    p.add_argument("-u", "--user", metavar="USER[:GROUP]", help="run as this user")
    p.add_argument("--trace", action="store_true", help="print every system call (to stderr)")
    # runc's exec options, as podman/conmon pass them.
    p.add_argument("-p", "--process", metavar="FILE", help="the process as OCI JSON (runc)")
    p.add_argument("--pid-file", metavar="FILE", help="write the process's host PID here")
    p.add_argument("--console-socket", metavar="PATH", help="send the terminal's master here")
    p.add_argument(
        "--preserve-fds", type=int, default=0, metavar="N", help="(runc) only 0 is supported"
    )
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, help="COMMAND [ARG...]")
    p.set_defaults(func=exec_command)

    p = subparsers.add_parser(
        "export", help="write a container's root filesystem as a tar stream (like docker export)"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=export_command)

    p = subparsers.add_parser(
        "cp",
        help="copy files between a container and the host",
        description="kit cp CONTAINER:SRC DEST, or kit cp SRC CONTAINER:DEST. Container paths "
        "are resolved inside the container's root (a symlink there never leads to the host).",
    )
    p.add_argument("source", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    p.set_defaults(func=cp_command)

    p = subparsers.add_parser("mounts", help="a container's mount tree, with propagation")
    p.add_argument("--table", action="store_true", help="a flat table instead of a tree")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=mounts_command)

    p = subparsers.add_parser("top", help="the processes of a container")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=top_command)


# --- exec ---------------------------------------------------------------------------------------


def running_container(text: str):  # type: ignore[no-untyped-def]
    """The record of a running container, or a KitError saying why it is not."""
    from kit.errors import KitError
    from kit.runtime import state

    record = state.refresh(state.find(text))
    if record.status not in (state.RUNNING, state.CREATED) or not record.pid:
        raise KitError(
            f"container {record.name} is not running ({record.status})",
            fix="start a container with `kit run -d ...`; `kit ps -a` shows how this one ended",
        )
    return record


def exec_spec(args: argparse.Namespace, container_id: str):  # type: ignore[no-untyped-def]
    """The container's spec with the process to exec in place of its own."""
    from kit.errors import KitError
    from kit.runtime import state
    from kit.spec import Spec

    spec = state.load_spec(container_id)
    spec.kit.probe = None
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if args.process:
        import json

        with open(args.process, encoding="utf-8") as f:
            loaded = Spec.from_dict({"process": json.load(f)})
        from kit.runtime.oci import check_process_fields

        check_process_fields(loaded.unknown)
        spec.process = loaded.process
        spec.kit.user = None
        if command:
            spec.process.args = command
    else:
        if not command:
            raise KitError(
                "no command given", fix="kit exec CONTAINER COMMAND [ARG...]", exit_code=2
            )
        spec.process.args = command
        spec.process.terminal = args.tty
    for item in args.env:
        if "=" not in item:
            raise KitError(f"invalid --env {item!r}", fix="use --env KEY=VALUE", exit_code=2)
        spec.process.env.append(item)
    if args.tty and not any(e.startswith("TERM=") for e in spec.process.env):
        spec.process.env.append("TERM=xterm")
    if args.workdir:
        spec.process.cwd = args.workdir
    if args.user:
        from kit.security.users import apply_user

        spec.process.user.additional_gids = []
        apply_user(spec, args.user, home_given=any(e.startswith("HOME=") for e in args.env))
    return spec


def exec_command(args: argparse.Namespace) -> int:
    from kit.errors import KitError
    from kit.runtime import oci
    from kit.runtime.exec import ExecProcess, Target
    from kit.trace import text_printer

    if args.preserve_fds:
        raise KitError(
            "--preserve-fds is not supported",
            cause="kit closes every inherited file descriptor before exec, on purpose",
            fix="pass data through stdin or a file in the container",
            exit_code=2,
        )
    record = running_container(args.container)
    spec = exec_spec(args, record.id)
    relay = spec.process.terminal and args.console_socket is None and not args.detach
    if relay and not os.isatty(0):
        raise KitError(
            "the input device is not a terminal",
            cause="-t needs kit's own stdin to be a terminal to relay keystrokes",
            fix="run from a terminal, or drop -t",
            exit_code=2,
        )
    console_socket = (
        oci.connect_console_socket(args.console_socket) if args.console_socket else None
    )
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    detached = args.detach
    stdin = None if (args.interactive or relay or args.process) and not detached else null
    out = null if detached and not args.process else None
    sinks = [text_printer(sys.stderr)] if args.trace else []
    process = ExecProcess(
        spec,
        Target(record.pid, record.pid_start),
        container_id=record.id,
        stdin=stdin,
        stdout=out,
        stderr=out,
        relay_terminal=relay,
        detach=detached,
        trace=args.trace,
        console_socket=console_socket.fileno() if console_socket else None,
        on_event=lambda event: [sink(event) for sink in sinks],
    )
    try:
        with signals_forwarded(process.signal):
            try:
                process.start()
                if console_socket is not None:
                    console_socket.close()
                status = process.wait()
            finally:
                process.close()
    finally:
        os.close(null)
    if status.error is not None:
        sys.stderr.write(f"kit: error: {status.error}\n")
        return status.code
    if args.pid_file:
        pid = _released_pid(process) or process.host_pid or 0
        oci.write_pid_file(args.pid_file, pid)
    return status.code


def _released_pid(process) -> int | None:  # type: ignore[no-untyped-def]
    for event in process.events:
        if event.kind == "process" and event.name == "released":
            return int(event.data["host_pid"])
    return None


# --- export, cp ---------------------------------------------------------------------------------


def export_command(args: argparse.Namespace) -> int:
    from kit.runtime import export, state

    record = state.refresh(state.find(args.container))
    if args.output:
        with open(args.output, "wb") as out:
            export.export(record, out)
        return 0
    if os.isatty(1):
        from kit.errors import KitError

        raise KitError(
            "refusing to write a tar stream to a terminal",
            fix="redirect it (kit export web > web.tar) or use -o FILE",
        )
    try:
        export.export(record, sys.stdout.buffer)
    except BrokenPipeError:
        return _reader_went_away()
    return 0


def _reader_went_away() -> int:
    """The reader of our stdout closed it (``| head``): stop quietly, as tar does."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # so that Python's own flush at exit does not complain again
    os.close(devnull)
    return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by SIGPIPE


def cp_command(args: argparse.Namespace) -> int:
    from kit.errors import KitError
    from kit.runtime import copy, state

    source, dest = _split(args.source), _split(args.dest)
    if (source[0] is None) == (dest[0] is None):
        raise KitError(
            "kit cp copies between a container and the host",
            fix="name the container on exactly one side: kit cp CONTAINER:SRC DEST or "
            "kit cp SRC CONTAINER:DEST",
            exit_code=2,
        )
    if source[0] is not None:
        record = state.refresh(state.find(source[0]))
        try:
            copy.copy_out(record, source[1], dest[1])
        except BrokenPipeError:
            return _reader_went_away()
    else:
        assert dest[0] is not None
        record = state.refresh(state.find(dest[0]))
        copy.copy_in(record, source[1], dest[1])
    return 0


def _split(text: str) -> tuple[str | None, str]:
    """``web:/etc/hosts`` -> ("web", "/etc/hosts"); a host path -> (None, path).

    As in Docker, a path with a slash before the first colon is a host path, and ``-`` is
    stdin/stdout (a tar stream).
    """
    name, colon, path = text.partition(":")
    if not colon or "/" in name or name in ("", ".", ".."):
        return None, text
    return name, path or "/"


# --- mounts, top ------------------------------------------------------------------------------


def mounts_command(args: argparse.Namespace) -> int:
    from kit import mounts, render

    record = running_container(args.container)
    table = mounts.read(record.pid)
    from rich.console import Console

    # No wrapping: a long line (a bind mount's source) stays one line, as findmnt prints it.
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 10_000)
    if args.table:
        console.print(render.mount_table(table))
    else:
        console.print(render.mount_tree(table, title=f"mounts of {record.name}"))
    return 0


def top_command(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from kit.cli.lifecycle import columns
    from kit.runtime.processes import container_processes, format_table

    record = running_container(args.container)
    found = container_processes(record.pid)
    if args.json:
        sys.stdout.write(json.dumps([asdict(p) for p in found], indent=2) + "\n")
        return 0
    sys.stdout.write(columns(format_table(found)))
    return 0
