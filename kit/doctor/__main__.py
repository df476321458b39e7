"""``python -m kit.doctor``: the probe interpreter (``--probe WHICH``, see
:mod:`kit.doctor.probes`), or, without arguments, every check printed like ``kit doctor``."""

from __future__ import annotations

import sys


def _main(argv: list[str]) -> int:
    if argv:
        from kit.doctor.probes import main

        return main(argv)
    from kit.doctor.checks import can_run_containers, run_checks

    checks = run_checks()
    for check in checks:
        print(check.line())
    return 0 if can_run_containers(checks) else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
