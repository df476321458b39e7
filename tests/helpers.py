"""Small helpers shared by tests (import with ``from helpers import ...``)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any


def kit_command(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kit ARGS`` (the real CLI, in its own process) and capture its output."""
    options: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 60}
    options.update(kwargs)
    return subprocess.run([sys.executable, "-m", "kit", *args], check=False, **options)


def kit_popen(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``python -m kit ARGS`` in the background."""
    return subprocess.Popen([sys.executable, "-m", "kit", *args], **kwargs)
