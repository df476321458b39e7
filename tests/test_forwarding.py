"""kit.forwarding: the signals kit passes on, and the block that passes them."""

from __future__ import annotations

import os
import signal

from kit.forwarding import FORWARDED_SIGNALS, signals_forwarded


def test_signals_go_to_the_deliverer_inside_the_block_only() -> None:
    received: list[int] = []
    before = {sig: signal.getsignal(sig) for sig in FORWARDED_SIGNALS}
    with signals_forwarded(received.append):
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
            os.kill(os.getpid(), sig)  # Python runs the handler before the next statement
    assert received == [signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP]
    assert {sig: signal.getsignal(sig) for sig in FORWARDED_SIGNALS} == before


def test_the_handlers_come_back_when_the_block_fails() -> None:
    before = {sig: signal.getsignal(sig) for sig in FORWARDED_SIGNALS}
    try:
        with signals_forwarded(lambda signum: None):
            assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
            raise RuntimeError("the container failed to start")
    except RuntimeError:
        pass
    assert {sig: signal.getsignal(sig) for sig in FORWARDED_SIGNALS} == before
