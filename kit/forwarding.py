"""The signals kit passes on to the program it runs.

``kit run``, ``kit exec``, ``kit run --bundle`` and a lesson's shell all stand between a caller
and a program in a container. A signal the caller sends to stop or steer the program (Ctrl-C,
``kill``, a hang-up, a daemon's reload or log-rotate signal) must reach the program, not end kit
and leave the program running. SIGKILL and SIGSTOP cannot be caught, so they never are.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator

FORWARDED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


@contextlib.contextmanager
def signals_forwarded(deliver: Callable[[int], object]) -> Iterator[None]:
    """Inside the block, each of :data:`FORWARDED_SIGNALS` that reaches kit is handed to
    ``deliver`` (which sends it on into the container) instead of ending kit; the handlers that
    were there before come back when the block ends, however it ends."""
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: deliver(signum)) for sig in FORWARDED_SIGNALS
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
