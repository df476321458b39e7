"""Entering a lesson's container: the command behind "open a shell here".

A learner's shell in a container must be confined exactly like the container, or what the
learner tries there proves nothing about the container. So the shell is made the way
``kit exec`` makes a process (see :mod:`kit.runtime.exec`): a fresh joiner enters every
namespace of the container's PID 1 and its cgroups, then the shell's process puts on the
container's own settings (rlimits, user and groups, capabilities, no_new_privs, Landlock,
seccomp) and execs ``/bin/sh`` found *inside* the container. A shell owns the terminal while it
runs, so it is a command of its own, which "open a shell here" hands the terminal to::

    python -m lessons.shell exec --spec FILE --pid PID --start TICKS -- /bin/sh

``FILE`` is the container's spec with the shell's environment (written in the lesson's
workspace). The same command with ``sh -c COMMAND`` runs a challenge's solution and a step's
look inside, so a solution can do no more than the learner's shell.

Where the confinement does not exist yet, the shell joins only what does, like util-linux's
``nsenter`` (``python -m lessons.shell join``): the namespaces, the root, the working directory
and the cgroups of the process, nothing else. Two cases:

* **A container paused before its process stages** (lessons 3 and 4 stop after mount stages,
  before or after pivot-root). Its PID 1 is still kit's init, which drops capabilities and
  loads its seccomp filter only just before exec: at the pause it holds every capability.
  ``kit exec`` would put on confinement the container does not have yet, and before
  pivot-root the container's root is still the host's ``/``: the shell would run the host's
  programs. Joining what exists gives the shell exactly what PID 1 has at that moment.
* **A lesson's experiment process** (lesson 2's chrooted probe, lesson 5's overlay): a process
  in a namespace or a chroot, not a container; there are no settings to put on.

Lesson 11 shows the difference on purpose: a process that joins the namespaces alone keeps the
host's capabilities and no seccomp filter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from kit.errors import KitError
from kit.forwarding import signals_forwarded
from kit.spec import DEFAULT_PATH, Spec

#: The directory holding the ``lessons`` package: the command's interpreter must find it.
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)

#: nsenter's option for each namespace it can join.
_NSENTER_OPTION = {
    "mnt": "--mount",
    "uts": "--uts",
    "ipc": "--ipc",
    "net": "--net",
    "pid": "--pid",
    "cgroup": "--cgroup",
    # A container with its own user namespace is entered as its root (nsenter then becomes
    # uid 0 inside), so the shell sees what the container's processes see.
    "user": "--user",
}


def nsenter() -> str:
    found = shutil.which("nsenter") or (
        "/usr/bin/nsenter" if os.path.exists("/usr/bin/nsenter") else None
    )
    if found is None:
        raise KitError(
            "nsenter is not installed",
            cause="a shell in a container paused before its confinement joins its namespaces "
            "with util-linux's nsenter",
            fix="sudo apt-get install util-linux",
        )
    return found


def shell_environment(label: str) -> dict[str, str]:
    """The variables a lesson's shell gets on top of the container's own."""
    return {
        "HOME": "/root",
        "TERM": os.environ.get("TERM", "xterm"),
        "PS1": f"[{label}] # ",
        "KIT_LESSON_SHELL": label,
    }


def command_environment() -> dict[str, str]:
    """The environment of the ``python -m lessons.shell`` command itself (on the host).

    The program inside never sees it: ``kit exec`` gives it the spec's environment, and the
    nsenter-like join the one :func:`join_argv` builds.
    """
    return {
        "PATH": DEFAULT_PATH,
        "PYTHONPATH": _PACKAGE_PARENT,
        "TERM": os.environ.get("TERM", "xterm"),
    }


def exec_spec(container_spec: Spec, label: str) -> Spec:
    """The container's spec for a process joining it: its own settings, the shell's
    environment added, no probe (the program is the shell)."""
    spec = Spec.from_dict(container_spec.to_dict())
    spec.kit.probe = None
    spec.kit.probe_args = {}
    extra = shell_environment(label)
    spec.process.env = [e for e in spec.process.env if e.split("=", 1)[0] not in extra]
    spec.process.env += [f"{key}={value}" for key, value in extra.items()]
    return spec


def exec_argv(
    spec_file: str | os.PathLike[str], pid: int, start: int, argv: list[str]
) -> list[str]:
    """The command that runs ``argv`` in the container of ``pid`` as ``kit exec`` would."""
    return [
        sys.executable,
        "-m",
        "lessons.shell",
        "exec",
        "--spec",
        os.fspath(spec_file),
        "--pid",
        str(pid),
        "--start",
        str(start),
        "--",
        *argv,
    ]


def join_argv(
    pid: int, argv: list[str], namespaces: list[str] | tuple[str, ...], label: str
) -> list[str]:
    """The command that joins ``pid``'s ``namespaces``, root and cgroups, nothing more."""
    return [
        sys.executable,
        "-m",
        "lessons.shell",
        "join",
        "--pid",
        str(pid),
        "--namespaces",
        ",".join(namespaces),
        "--label",
        label,
        "--",
        *argv,
    ]


def enter_argv(
    pid: int, argv: list[str], namespaces: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """util-linux's nsenter command for ``argv`` in ``pid``'s ``namespaces`` and root."""
    options = [_NSENTER_OPTION[name] for name in namespaces if name in _NSENTER_OPTION]
    return [nsenter(), f"--target={pid}", *options, "--root", "--wd", "--", *argv]


# --- the command ----------------------------------------------------------------------------


def _run_exec(args: argparse.Namespace) -> int:
    from kit.runtime.exec import ExecProcess, Target

    spec = Spec.load(args.spec)
    spec.process.args = list(args.argv)
    # A terminal of the container's own (from its devpts) when ours is one, as `kit exec -it`.
    terminal = os.isatty(0) and os.isatty(1)
    spec.process.terminal = terminal
    process = ExecProcess(spec, Target(args.pid, args.start), relay_terminal=terminal)
    with signals_forwarded(process.signal):
        try:
            process.start()
            status = process.wait()
        finally:
            process.close()
    if status.error is not None:
        sys.stderr.write(f"kit exec: {status.error}\n")
    return status.code


def _run_join(args: argparse.Namespace) -> int:
    from kit.runtime.exec import join_cgroups

    # The cgroups first, from the host's view of /sys/fs/cgroup: the limits hold for the shell
    # and everything it starts, as for the container's own processes.
    join_cgroups(args.pid)
    namespaces = [n for n in args.namespaces.split(",") if n]
    argv = enter_argv(args.pid, list(args.argv), namespaces)
    env = {"PATH": DEFAULT_PATH, **shell_environment(args.label)}
    os.execve(argv[0], argv, env)
    return 127  # not reached: execve replaced us


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lessons.shell",
        description="Run a program inside a lesson's container (its shell, a solution).",
    )
    sub = parser.add_subparsers(dest="how", required=True)
    joined = sub.add_parser("exec", help="join everything, as kit exec does")
    joined.add_argument("--spec", required=True, help="the container's spec (config.json)")
    joined.add_argument("--pid", type=int, required=True, help="host PID of its PID 1")
    joined.add_argument("--start", type=int, required=True, help="that process's start time")
    entered = sub.add_parser("join", help="join namespaces, root and cgroups only (nsenter)")
    entered.add_argument("--pid", type=int, required=True, help="host PID of the process")
    entered.add_argument("--namespaces", default="", help="mnt,pid,... to join")
    entered.add_argument("--label", default="lesson", help="the shell prompt's label")
    for each in (joined, entered):
        each.add_argument("argv", nargs="+", help="the program and its arguments")
    args = parser.parse_args(argv)
    try:
        return _run_exec(args) if args.how == "exec" else _run_join(args)
    except KitError as error:
        sys.stderr.write(f"lessons.shell: error: {error}\n")
        return 125


if __name__ == "__main__":
    sys.exit(main())
