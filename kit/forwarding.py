"""The signals kit passes on to the program it runs.

``kit run``, ``kit exec``, ``kit run --bundle`` and a lesson's shell all stand between a caller
and a program in a container. A signal the caller sends to stop or steer the program (Ctrl-C,
``kill``, a hang-up, a daemon's reload or log-rotate signal) must reach the program, not end kit
and leave the program running. SIGKILL and SIGSTOP cannot be caught, so they never are.
"""

from __future__ import annotations

import signal

FORWARDED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
