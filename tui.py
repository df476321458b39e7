#!/usr/bin/env python3
"""kit's tutorial: how a container gets its filesystem, taught on a real container engine.

    python tui.py                 # the Textual app (needs root, like the engine's lessons)
    python tui.py 3               # ... opened at lesson 3
    python tui.py --plain [N]     # any lesson as plain text, without Textual (projectors, ssh)

The app lives in ``kit_tui/``, the lessons in ``lessons/``, the engine in ``kit/``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(__doc__ or "")
        return 0
    if args and args[0] == "--plain":
        from lessons.plain import main as plain_main

        return plain_main(args[1:])
    from kit_tui.app import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
