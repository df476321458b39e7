"""``kit doctor``: can this machine run containers, and which lessons will work here?

kit doctor            # one line per check: ✓ ok, ! warning, ✗ failure, with the fix
kit doctor --json     # the same for programs
kit doctor --trace    # also print every system call the checks made, like strace

Exit status 0 when containers can run here, 1 when a check failed.
"""

from __future__ import annotations

import argparse

#: The commands this module registers (see kit.cli).
COMMANDS = ("doctor",)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kit doctor`` to the command line."""
    parser = subparsers.add_parser(
        "doctor",
        help="check that this machine can run containers",
        description=(
            "Check the kernel and the system for what kit needs: privileges or user "
            "namespaces, every namespace type, overlayfs, cgroups, seccomp, Landlock, and the "
            "tools some lessons use. Exit status 0 when containers can run, 1 otherwise."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="print every system call the checks make (to stderr)",
    )
    parser.set_defaults(func=doctor_command)


def doctor_command(args: argparse.Namespace) -> int:
    """Run every check, print them, and exit 0 when containers can run here."""
    import json
    import sys

    from kit import doctor
    from kit.trace import text_printer, tracer

    sink = (
        text_printer(sys.stderr, show=lambda e: e.kind in ("syscall", "info"))
        if args.trace
        else None
    )
    if sink:
        tracer().add_sink(sink)
    try:
        checks = doctor.run_checks()
    finally:
        if sink:
            tracer().remove_sink(sink)
    can_run = doctor.can_run_containers(checks)
    if args.json:
        report = {
            "can_run_containers": can_run,
            "explanation": doctor.explain_blockers(checks),
            "checks": [check.to_dict() for check in checks],
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for check in checks:
            sys.stdout.write(check.line() + "\n")
        sys.stdout.write("\n" + doctor.explain_blockers(checks) + "\n")
    return 0 if can_run else 1
