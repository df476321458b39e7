#!/usr/bin/env python3
"""kit's tutorial: how a container gets its filesystem, taught on a real container engine.

    python tui.py                 # the Textual app (needs root, like the engine's lessons)
    python tui.py 3               # ... opened at lesson 3
    python tui.py --plain [N]     # any lesson as plain text, without Textual (projectors, ssh)

For classes (see lessons/report.py, lessons/instructor.py, lessons/export.py):

    python tui.py --report [--json]                  # this learner's progress, for the instructor
    python tui.py --instructor [--plain] [N]         # every step open, solutions shown
    python tui.py --check-all [--json] [N ...]       # validate the lessons on this machine
    python tui.py --export N --format html|md [-o FILE] [--solutions]   # a handout

Under sudo, each student gets a kit root of their own (lessons/users.py).

The app lives in ``kit_tui/``, the lessons in ``lessons/``, the engine in ``kit/``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(__doc__ or "")
        return 0
    from lessons.users import settle

    settle()  # root mode via sudo: this student's own kit root
    tools = {"--report": "report", "--check-all": "instructor", "--export": "export"}
    if args and args[0] in tools:
        import importlib

        return int(importlib.import_module(f"lessons.{tools[args[0]]}").main(args[1:]))
    if args and args[0] == "--instructor":
        from lessons.instructor import enable

        enable()
        args = args[1:]
    if args and args[0] == "--plain":
        from lessons.plain import main as plain_main

        return plain_main(args[1:])
    from kit_tui.app import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
