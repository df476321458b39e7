"""kit as an OCI runtime, with runc's command line: what podman/conmon and containerd call.

kit spec                                   # write a config.json for a rootfs/ beside it
kit create --bundle B [--pid-file P] [--console-socket S] ID
kit start ID                               # the program starts
kit state ID                               # {"ociVersion", "id", "status", "pid", "bundle"...}
kit kill ID [SIGNAL]                       # default SIGTERM, like runc
kit delete [--force] ID
kit run --bundle B [-d] ID                 # create + start (+ wait, without -d)

Global options (before the command), as runc has them: ``--root DIR`` (state), ``--log FILE``
and ``--log-format text|json`` (kit's own errors and warnings, also on stderr),
``--systemd-cgroup`` (refused when a cgroupsPath needs systemd; kit uses cgroupfs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

#: The commands this module registers (see kit.cli).
COMMANDS = ("spec", "create", "start", "state", "delete")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("spec", help="write a config.json (OCI bundle) to start from")
    p.add_argument("-b", "--bundle", default=".", metavar="DIR", help="where (default: .)")
    p.add_argument("--rootless", action="store_true", help="with a user namespace")
    p.set_defaults(func=spec_command)

    p = subparsers.add_parser("create", help="create a container from an OCI bundle (runc)")
    add_create_arguments(p)
    p.add_argument(
        "--pause-after",
        action="append",
        default=[],
        metavar="STAGE",
        help="(kit) stop after STAGE until a line arrives on stdin; end of input aborts",
    )
    p.add_argument(
        "--events-file",
        metavar="PATH",
        help="(kit) append every event of the init (system calls, stages) as JSON lines",
    )
    p.add_argument("id", metavar="ID")
    p.set_defaults(func=create_command)

    p = subparsers.add_parser("start", help="start a created container (runc)")
    p.add_argument("id", metavar="ID")
    p.set_defaults(func=start_command)

    p = subparsers.add_parser("state", help="the state of a container, as OCI JSON (runc)")
    p.add_argument("id", metavar="ID")
    p.set_defaults(func=state_command)

    p = subparsers.add_parser("delete", help="delete a container and its resources (runc)")
    p.add_argument("-f", "--force", action="store_true", help="kill it first if it runs")
    p.add_argument("id", metavar="ID")
    p.set_defaults(func=delete_command)


def add_create_arguments(parser: argparse.ArgumentParser, *, with_bundle: bool = True) -> None:
    if with_bundle:
        parser.add_argument("-b", "--bundle", default=".", metavar="DIR", help="the bundle")
    parser.add_argument("--pid-file", metavar="FILE", help="write the container's host PID here")
    parser.add_argument(
        "--console-socket", metavar="PATH", help="send the terminal's master fd to this socket"
    )
    parser.add_argument(
        "--no-new-keyring",
        action="store_true",
        help="accepted: kit never creates a session keyring (the container shares the "
        "caller's, as with runc --no-new-keyring)",
    )
    parser.add_argument(
        "--no-pivot",
        action="store_true",
        help="refused: kit always uses pivot_root (chroot can be escaped)",
    )
    parser.add_argument(
        "--preserve-fds", type=int, default=0, metavar="N", help="only 0 is supported"
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``kit run --bundle DIR [runc run options] ID`` (called by kit.cli.run)."""
    parser.add_argument(
        "-b", "--bundle", metavar="DIR", help="run an OCI bundle, with runc's semantics"
    )
    add_create_arguments(parser, with_bundle=False)
    parser.add_argument("--keep", action="store_true", help="(--bundle) keep the state at exit")


def _refuse_unsupported(args: argparse.Namespace) -> None:
    from kit.errors import KitError

    if getattr(args, "no_pivot", False):
        raise KitError(
            "--no-pivot is not supported",
            cause="kit always uses pivot_root: a chroot can be escaped by root in the container",
            fix="drop --no-pivot",
            exit_code=2,
        )
    if getattr(args, "preserve_fds", 0):
        raise KitError(
            "--preserve-fds is not supported",
            cause="kit closes every inherited file descriptor before exec, on purpose",
            fix="drop --preserve-fds",
            exit_code=2,
        )


def report(findings: list, stream=None) -> None:  # type: ignore[no-untyped-def,type-arg]
    """Warnings about config.json fields (see kit.runtime.oci.check_spec)."""
    from kit.cli import log_message

    for finding in findings:
        log_message("warning", f"{finding.field}: {finding.reason}", stream=stream)


# --- commands ---------------------------------------------------------------------------------


def spec_command(args: argparse.Namespace) -> int:
    from kit.errors import KitError
    from kit.runtime.oci import example_spec

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise KitError(f"{path} exists", fix="remove it first, or choose another --bundle")
    example_spec(rootless=args.rootless).save(path)
    return 0


def create_command(args: argparse.Namespace) -> int:
    from kit.runtime import oci

    _refuse_unsupported(args)
    _, findings = oci.create(
        args.id,
        args.bundle,
        pid_file=args.pid_file,
        console_socket=args.console_socket,
        pause_after=args.pause_after,
        events_file=args.events_file,
    )
    report(findings)
    return 0


def start_command(args: argparse.Namespace) -> int:
    from kit.runtime import oci

    oci.start(args.id)
    return 0


def state_command(args: argparse.Namespace) -> int:
    from kit.runtime import oci

    record = oci.find(args.id)
    sys.stdout.write(json.dumps(oci.state_document(record), indent=2) + "\n")
    return 0


def delete_command(args: argparse.Namespace) -> int:
    from kit.runtime import oci

    oci.delete(args.id, force=args.force)
    return 0


def run_bundle_command(args: argparse.Namespace) -> int:
    """``kit run --bundle B ID``: create, start, and (without -d) wait and delete."""
    from kit.errors import KitError
    from kit.runtime import oci

    _refuse_unsupported(args)
    command = [c for c in args.command if c != "--"]
    if len(command) != 1:
        raise KitError(
            "kit run --bundle takes exactly one argument, the container id",
            fix="kit run --bundle DIR ID (the command is in DIR/config.json)",
            exit_code=2,
        )
    container_id = command[0]
    if args.detach:
        _, findings = oci.create(
            container_id,
            args.bundle,
            pid_file=args.pid_file,
            console_socket=args.console_socket,
        )
        report(findings)
        oci.start(container_id)
        return 0
    return _run_foreground(args, container_id)


def _run_foreground(args: argparse.Namespace, container_id: str) -> int:
    """runc run: the container's stdio is ours; signals are forwarded; exit with its status."""

    from kit.forwarding import signals_forwarded
    from kit.runtime import oci, state
    from kit.runtime.launcher import ContainerProcess

    creation = oci.Creation(
        container_id, args.bundle, console_socket=args.console_socket, gate=False
    )
    spec = creation.prepare()
    report(creation.findings)
    relay = spec.process.terminal and not args.console_socket

    def on_event(event: object) -> None:
        from kit.trace import Event

        assert isinstance(event, Event)
        if event.kind == "process" and event.name == "container":
            pid = int(event.data["host_pid"])
            start = state.process_start_time(pid) or 0

            def running(record: state.ContainerState) -> None:
                record.pid, record.pid_start, record.status = pid, start, state.RUNNING

            state.update(container_id, running)
            if args.pid_file:
                oci.write_pid_file(args.pid_file, pid)

    container = ContainerProcess(
        spec,
        container_id=container_id,
        relay_terminal=relay,
        use_fork=True,
        trace=False,
        on_event=on_event,
    )
    status = None
    try:
        with signals_forwarded(container.signal):
            try:
                container.start()
                status = container.wait()
            finally:
                container.close()
    finally:
        if not args.keep:
            oci.delete(container_id, force=True)
    if status.error is not None:
        from kit.cli import log_message

        log_message("error", str(status.error))
    return status.code
