"""Starting a piece of kit in a fresh Python interpreter.

kit never forks a threaded process into a new namespace: the init, the probes' experiments and
the root opener's helper each start as a new interpreter instead. :func:`fresh_interpreter`
makes that command line in one place.

The child runs with ``-I -S``: isolated mode ignores PYTHON* variables and the user's site
directory, and ``-S`` skips ``site`` (and every ``.pth`` file it would run). The child needs only
the standard library and kit itself, so the directory holding the ``kit`` package goes first on
its ``sys.path``. That is also a good part of a container's start time saved (see bench/start.py).
"""

from __future__ import annotations

import os
import sys

#: The directory holding the ``kit`` package (the fresh interpreter sees no PYTHONPATH).
KIT_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fresh_interpreter(module: str, *args: str) -> list[str]:
    """The argv running ``module.boot()`` in a fresh interpreter; ``args`` are its sys.argv[1:]."""
    code = f"import sys; sys.path.insert(0, {KIT_PACKAGE_PARENT!r}); "
    code += f"from {module} import boot; boot()"
    return [sys.executable, "-I", "-S", "-c", code, *args]
