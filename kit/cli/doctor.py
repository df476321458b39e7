"""``kit doctor``: can this machine run containers, and which lessons will work here?

kit doctor                        # one line per check: ✓ ok, ! warning, ✗ failure, with the fix
kit doctor --json                 # the same for programs
kit doctor --trace                # also print every system call the checks made, like strace
kit doctor --requirements         # every lesson requirement key, met or not here, with the fix
kit doctor --require root,overlay # can a lesson needing these run here? (exit 0 yes, 1 no)
kit doctor --leaks [--clean]      # what killed kit processes left behind (and remove it)

Exit status 0 when containers can run here (or, with --require, when the keys are met).
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
    parser.add_argument(
        "--requirements",
        action="store_true",
        help="list every requirement key lessons declare, and whether this machine meets it",
    )
    parser.add_argument(
        "--require",
        metavar="KEY[,KEY...]",
        help="can a lesson needing these keys run here? exit 0 if so, 1 with the fixes if not",
    )
    parser.add_argument(
        "--leaks",
        action="store_true",
        help="find what killed kit processes left behind: stale records, cgroups, mounts, "
        "monitors (see kit.runtime.leaks); exit 1 if anything is found",
    )
    parser.add_argument("--clean", action="store_true", help="with --leaks: remove it all")
    parser.set_defaults(func=doctor_command)


def doctor_command(args: argparse.Namespace) -> int:
    """Run every check, print them, and exit 0 when containers (or --require) can run here."""
    import json
    import sys

    if args.leaks:
        from kit.cli.leaks import leaks_command

        return leaks_command(args)

    from kit import doctor
    from kit.doctor import requirements
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
    facts = requirements.Facts(checks)
    can_run = doctor.can_run_containers(checks)
    if args.require:
        keys = [key.strip() for key in args.require.split(",") if key.strip()]
        assessment = facts.assess(keys)
        if args.json:
            sys.stdout.write(json.dumps(assessment.to_dict(), indent=2) + "\n")
        else:
            sys.stdout.write(assessment.explain() + "\n")
        return 0 if assessment.runnable else 1
    outcomes = {key: facts.outcome(key) for key in requirements.all_keys()}
    if args.json:
        report = {
            "can_run_containers": can_run,
            "explanation": doctor.explain_blockers(checks),
            "checks": [check.to_dict() for check in checks],
            "requirements": {key: vars(outcome) for key, outcome in outcomes.items()},
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return 0 if can_run else 1
    if args.requirements:
        for key, outcome in outcomes.items():
            mark = doctor.MARKS["ok" if outcome.met else "fail"]
            sys.stdout.write(f"{mark} {key}: {outcome.found}\n")
            if not outcome.met and outcome.fix:
                sys.stdout.write(f"    fix: {outcome.fix}\n")
        return 0 if can_run else 1
    for check in checks:
        sys.stdout.write(check.line() + "\n")
    unmet = [key for key, outcome in outcomes.items() if not outcome.met]
    sys.stdout.write("\n" + doctor.explain_blockers(checks) + "\n")
    if unmet:
        sys.stdout.write(
            "Lessons that need these will say what blocks them (kit doctor --requirements): "
            + " ".join(unmet)
            + "\n"
        )
    return 0 if can_run else 1
