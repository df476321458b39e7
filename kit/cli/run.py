"""``kit run``: create and run a container, in the foreground.

kit run --rm --rootfs DIR /bin/sh -c 'echo hello from $(hostname)'
kit run -it --rootfs DIR /bin/sh
kit run --step --rootfs DIR /bin/true          # pause after every stage
kit run --trace --rootfs DIR /bin/true         # every system call, like strace
"""

from __future__ import annotations

import argparse
import importlib
import re

#: Modules that add options to ``kit run``: each has ``add_arguments(parser)`` and
#: ``apply(args, spec)`` (called after the base spec is built, in this order).
RUN_OPTION_MODULES: list[str] = [
    "kit.cli.run_isolation",
    "kit.cli.run_security",
    # Last: it creates named volumes and the container's /etc files once all else is checked.
    "kit.cli.run_mounts",
]

#: RFC 1123 host names: labels of letters, digits and hyphens, not starting or ending with one.
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


#: The commands this module registers (see kit.cli).
COMMANDS = ("run",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a command in a new container",
        description="Run a command in a new container, built stage by stage.",
    )
    add_run_arguments(parser)
    parser.set_defaults(func=run_command)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``kit run`` (shared with commands that create containers the same way)."""
    parser.add_argument("--rootfs", metavar="DIR", help="use DIR as the root filesystem")
    parser.add_argument("--rm", action="store_true", help="remove the container when it exits")
    parser.add_argument("--name", help="a name for the container (default: a short id)")
    parser.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    parser.add_argument(
        "-e", "--env", action="append", default=[], metavar="KEY=VALUE", help="set a variable"
    )
    parser.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside")
    parser.add_argument(
        "-u",
        "--user",
        metavar="USER[:GROUP]",
        help="run as this user: ids, or names from the container's /etc/passwd and /etc/group",
    )
    parser.add_argument("--hostname", help="the container's hostname (default: its short id)")
    parser.add_argument(
        "--net",
        "--network",
        dest="net",
        choices=["none", "host"],
        default="none",
        help="none: own network namespace with loopback only (default); host: the host's",
    )
    parser.add_argument(
        "--trace", action="store_true", help="print every system call as it happens"
    )
    parser.add_argument(
        "--events",
        choices=["json"],
        help="write every event as a JSON line (to stderr, or --events-file)",
    )
    parser.add_argument("--events-file", metavar="PATH", help="where --events writes")
    parser.add_argument(
        "--step", action="store_true", help="pause after every stage and show what it did"
    )
    parser.add_argument(
        "--pause-after",
        action="append",
        default=[],
        metavar="STAGE",
        help="pause after STAGE (repeatable); Enter continues, q aborts",
    )
    parser.add_argument(
        "--pause-before", action="append", default=[], metavar="STAGE", help="pause before STAGE"
    )
    parser.add_argument(
        "--reexec",
        action="store_true",
        help="start the init in a fresh interpreter instead of forking (what the TUI does)",
    )
    for name in RUN_OPTION_MODULES:
        importlib.import_module(name).add_arguments(parser)
    # -d (kit.cli.lifecycle) and --bundle with runc's run options (kit.cli.oci).
    for name in ("kit.cli.lifecycle", "kit.cli.oci"):
        importlib.import_module(name).add_run_arguments(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="IMAGE and/or COMMAND [ARG...]")


def check_hostname(name: str) -> None:
    from kit.errors import KitError

    if len(name.encode()) > 64 or not _HOSTNAME.match(name):
        raise KitError(
            f"invalid hostname {name!r}",
            cause="a hostname is at most 64 characters of letters, digits, hyphens and dots, "
            "and no label starts or ends with a hyphen",
            fix="choose a name like web-1 or box.example",
            exit_code=2,
        )


def build_spec(args: argparse.Namespace, container_id: str):  # type: ignore[no-untyped-def]
    """The container spec that the command line describes."""
    args.container_id = container_id  # option modules write per-container files there
    from kit.errors import KitError
    from kit.rootfs_check import check_rootfs
    from kit.runtime.defaults import default_spec

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not args.rootfs:
        # Without --rootfs the first word is an IMAGE: its layers become the root.
        if not command:
            raise KitError(
                "no image or root filesystem given",
                fix="kit run IMAGE [COMMAND...], or pass --rootfs DIR",
                exit_code=2,
            )
        return _image_spec(args, container_id, command[0], command[1:])
    rootfs = check_rootfs(args.rootfs)
    if not command:
        raise KitError(
            "no command given",
            fix="add the command to run, e.g. /bin/sh -c 'echo hi'",
            exit_code=2,
        )
    hostname, namespaces = _hostname_and_namespaces(args, container_id)
    spec = default_spec(
        command,
        rootfs,
        hostname=hostname,
        env=args.env,
        cwd=args.workdir or "/",
        terminal=args.tty,
        namespaces=namespaces,
    )
    if args.user is not None:
        from kit.security.users import apply_user

        home_given = any(item.startswith("HOME=") for item in args.env)
        apply_user(spec, args.user, home_given=home_given)
    for name in RUN_OPTION_MODULES:
        importlib.import_module(name).apply(args, spec)
    return spec


def _hostname_and_namespaces(
    args: argparse.Namespace, container_id: str
) -> tuple[str, tuple[str, ...]]:
    """Check --env and the hostname; the hostname and the namespaces the options ask for."""
    from kit.errors import KitError
    from kit.runtime.defaults import DEFAULT_NAMESPACES

    for item in args.env:
        if "=" not in item:
            raise KitError(f"invalid --env {item!r}", fix="use --env KEY=VALUE", exit_code=2)
    hostname = args.hostname or container_id[:12]
    check_hostname(hostname)
    # --net host: the container stays in the host's network namespace.
    namespaces = tuple(n for n in DEFAULT_NAMESPACES if not (n == "network" and args.net == "host"))
    return hostname, namespaces


def _image_spec(args: argparse.Namespace, container_id: str, name: str, command: list[str]):  # type: ignore[no-untyped-def]
    """The spec for ``kit run IMAGE [COMMAND...]``: image layers + a writable layer."""
    from kit.image.container import apply_image_config, create_writable_layer, writable_layer
    from kit.image.image import resolve
    from kit.image.store import Store
    from kit.runtime.defaults import default_spec

    hostname, namespaces = _hostname_and_namespaces(args, container_id)
    image = resolve(Store(), name)
    image.unpack()  # the layers not unpacked yet (and a check that the store is ours)
    spec = default_spec(command, "", hostname=hostname, terminal=args.tty, namespaces=namespaces)
    apply_image_config(
        spec,
        image,
        command=command,
        user=args.user,
        workdir=args.workdir,
        user_env=args.env,
        hostname_given=bool(args.hostname),
    )
    for module in RUN_OPTION_MODULES:
        importlib.import_module(module).apply(args, spec)
    # Last, so a refused option above leaves no directory behind. In a user namespace the
    # writable layer belongs to the container's root as the host knows it.
    from kit.security.userns import root_on_host

    spec.kit.overlay = create_writable_layer(
        container_id, image, workdir=spec.process.cwd, owner=root_on_host(spec)
    )
    spec.root.path = str(writable_layer(container_id).merged)
    return spec


def run_command(args: argparse.Namespace) -> int:
    import os
    import sys

    from kit.cli.foreground import ForegroundRun
    from kit.errors import KitError
    from kit.runtime.defaults import new_container_id

    if args.bundle:  # runc's `run --bundle DIR ID`: an OCI bundle, runc's semantics
        from kit.cli.oci import run_bundle_command

        return run_bundle_command(args)
    if args.detach:
        from kit.cli.lifecycle import run_detached

        return run_detached(args)
    if args.tty and not os.isatty(0):
        raise KitError(
            "the input device is not a terminal",
            cause="-t needs kit's own stdin to be a terminal to relay keystrokes",
            fix="run from a terminal, or drop -t",
            exit_code=2,
        )
    container_id = new_container_id()
    spec = build_spec(args, container_id)
    run = ForegroundRun(
        spec,
        container_id=container_id,
        name=args.name,
        remove=args.rm,
        interactive=args.interactive,
        trace=args.trace,
        events_json=args.events == "json",
        events_file=args.events_file,
        step=args.step,
        pause_after=args.pause_after,
        pause_before=args.pause_before,
        use_fork=not args.reexec,
    )
    status = run.run()
    if status.error is not None:
        sys.stderr.write(f"kit: error: {status.error}\n")
    if status.oom_killed:
        sys.stderr.write(
            "kit: OOMKilled: the container reached its memory limit and the kernel's OOM "
            "killer ended a process\n"
        )
    return status.code
