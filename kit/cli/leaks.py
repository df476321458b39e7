"""``kit doctor --leaks [--clean] [--json]``: what killed kit processes left on this host.

See :mod:`kit.runtime.leaks` for what is looked for. Exit status 0 when nothing is left (or
everything was cleaned), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys


def leaks_command(args: argparse.Namespace) -> int:
    from kit.runtime import leaks

    found = leaks.find_leaks()
    failures = leaks.clean(found) if args.clean and found else []
    if args.json:
        report = {
            "leaks": [leak.to_dict() for leak in found],
            "cleaned": bool(args.clean),
            "failures": failures,
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    elif not found:
        sys.stdout.write("no leaks: every record, cgroup, mount and monitor is accounted for\n")
    else:
        for leak in found:
            sys.stdout.write(leak.line() + "\n")
        if args.clean:
            left = len(failures)
            sys.stdout.write(f"\ncleaned {len(found) - left} of {len(found)}\n")
            for failure in failures:
                sys.stdout.write(f"  could not clean {failure}\n")
        else:
            sys.stdout.write("\nrun `kit doctor --leaks --clean` to remove them\n")
    if not found:
        return 0
    return 1 if (not args.clean or failures) else 0
